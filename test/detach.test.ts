// Detaching the pool's ArrayBuffers, in a child process each (a fatal error
// or a segfault must be seen as how the child ended, not take the runner
// down): test/fixtures/detach.js.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const LIB = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
const FIXTURE = path.join(__dirname, 'fixtures', 'detach.js');
/** ArrayBuffer.prototype.transfer(): Node 22 and later. */
const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

function run(mode: string): { status: number | null; signal: NodeJS.Signals | null; stderr: string; result: Record<string, unknown> } {
  const r = spawnSync(process.execPath, [FIXTURE, mode], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MMAP_POOL_LIB: LIB },
    encoding: 'utf8',
    timeout: 20_000,
    killSignal: 'SIGKILL',
  });
  if (r.error) throw r.error;
  const line = r.stdout.split('\n').find((l) => l.startsWith('result '));
  return { status: r.status, signal: r.signal, stderr: r.stderr, result: line === undefined ? {} : JSON.parse(line.slice(7)) };
}

describe('detaching the ArrayBuffers a pool made', () => {
  // Node 24 made markAsUntransferable() set a V8 detach key, which
  // napi_detach_arraybuffer cannot pass: each of these aborted the process
  // there ("FATAL ERROR: v8::FromJust Maybe value is Nothing").
  it("close(), free() of a huge allocation, trim(), a guard pool's free() and reset() end with every view detached and the process alive", () => {
    const r = run('every-detach');
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.result.lengths).toEqual([0, 0, 0, 0, 0]);
    expect(r.result.trimmed).toBeGreaterThan(0);
  });

  // Reported as skipped on Node 20, which has no ArrayBuffer.prototype.transfer;
  // CI runs it on Node 22, 24 and 26 (.ci/run).
  it.runIf(canTransfer)('memory whose ArrayBuffer was transferred away stays mapped through free(), trim() and close() (ArrayBuffer.prototype.transfer)', () => {
    const r = run('transferred');
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();  // SIGSEGV when the pool unmapped it
    expect(r.status).toBe(0);
    expect(r.result.detachedHere).toEqual([0, 0]);
    // The huge allocation's own ArrayBuffer is gone: a stale view. The chunk's
    // block is still the pool's (the slot cache frees by block, not by buffer).
    expect(r.result.freeCodes).toEqual(['ERR_DOUBLE_FREE', 'freed']);
    expect(r.result.hugePagesIntact).toBe(true);
    expect(r.result.chunkBytesIntact).toBe(true);
  });
});
