// Detaching the pool's ArrayBuffers, in a child process each (a fatal error
// or a segfault must be seen as how the child ended, not take the runner
// down): test/fixtures/detach.js.
import { describe, expect, it } from 'vitest';

import { resultOf, run } from './fixture-run.js';

/** ArrayBuffer.prototype.transfer(): Node 22 and later. */
const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

describe('detaching the ArrayBuffers a pool made', () => {
  // Node 24 made markAsUntransferable() set a V8 detach key, which
  // napi_detach_arraybuffer cannot pass: each of these aborted the process
  // there ("FATAL ERROR: v8::FromJust Maybe value is Nothing").
  it("close(), free() of a huge allocation, trim(), a guard pool's free() and reset() end with every view detached and the process alive", () => {
    const r = run('detach.js', ['every-detach']);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const res = resultOf<{ lengths: number[]; trimmed: number }>(r);
    expect(res.lengths).toEqual([0, 0, 0, 0, 0]);
    expect(res.trimmed).toBeGreaterThan(0);
  });

  // Reported as skipped on Node 20, which has no ArrayBuffer.prototype.transfer;
  // CI runs it on Node 22, 24 and 26 (.ci/run).
  it.runIf(canTransfer)('memory whose ArrayBuffer was transferred away stays mapped through free(), trim() and close() (ArrayBuffer.prototype.transfer)', () => {
    const r = run('detach.js', ['transferred']);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();  // SIGSEGV when the pool unmapped it
    expect(r.status).toBe(0);
    const res = resultOf<{ detachedHere: number[]; freeCodes: string[]; hugePagesIntact: boolean; chunkBytesIntact: boolean }>(r);
    expect(res.detachedHere).toEqual([0, 0]);
    // Both allocations the transfers took along can still be freed: the huge
    // one found by its serial (its view reads length 0), the chunk's block by
    // its block-cache block id.
    expect(res.freeCodes).toEqual(['freed', 'freed']);
    expect(res.hugePagesIntact).toBe(true);
    expect(res.chunkBytesIntact).toBe(true);
  });
});
