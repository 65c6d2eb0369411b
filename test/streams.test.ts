// A pool Buffer handed to a web byte stream takes its whole chunk along:
// enqueue() and a BYOB read() transfer the chunk's ArrayBuffer (Node's own
// detach ignores markAsUntransferable()), as ArrayBuffer.prototype.transfer()
// does. The pool loses that chunk and nothing else: its other allocations
// still count and can be freed, new ones are exact-size and never over the
// lost chunk, trim() and reset() work, no call throws an uncoded error, and
// the new owner's memory stays mapped and untouched. In a child process each
// (test/fixtures/streams.js): an unmapped page would be a signal.
import { describe, expect, it } from 'vitest';

import { resultOf, run } from './fixture-run.js';

/** ArrayBuffer.prototype.transfer(): Node 22 and later. */
const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

interface Outcome {
  errors: string[];
  detached: boolean;
  neighbourLengths: number[];
  consumerOwnsChunk: boolean;
  consumerIsPoolMemory: boolean;
  counted: [number, number];
  freshBad: string[];
  freshCount: number;
  freshIntact: boolean;
  frees: string[];
  secondFrees: string[];
  liveAfterFrees: number;
  liveAtEnd: number;
  afterTrim: [number, boolean] | null;
  afterReset: [number, boolean] | null;
  consumerIntact: boolean;
  consumerIntactAfterClose: boolean;
}

/** Runs test/fixtures/streams.js: `how` hands a pool Buffer over, `first` is the pool's first call after. */
function check(how: string, first: string, takesChunk: boolean): void {
  const r = run('streams.js', [how, first]);
  expect(r.stderr).toBe('');
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  const res = resultOf<Outcome>(r);
  // No call threw, coded or not.
  expect(res.errors).toEqual([]);
  if (takesChunk) {
    // The new owner took the whole chunk: every neighbour reads length 0.
    expect(res.detached).toBe(true);
    expect(res.neighbourLengths).toEqual([0, 0, 0, 0, 0]);
    expect(res.consumerOwnsChunk).toBe(true);
  } else {
    expect(res.detached).toBe(false);
    expect(res.neighbourLengths).toEqual([64, 64, 4096, 100 * 1024, 64]);
    expect(res.consumerIsPoolMemory).toBe(false);
  }
  // The allocations it took along still count (live, bytes).
  expect(res.counted).toEqual([0, 0]);
  // 202 new allocations of every kind: exact size, over live memory that is
  // not the lost chunk, and not changed by the new owner writing all of its memory.
  expect(res.freshBad).toEqual([]);
  expect(res.freshCount).toBe(7 + 39 * 5);
  expect(res.freshIntact).toBe(true);
  // Each can be freed once (reset() freed them all).
  const n = first === 'reset' ? 0 : 6;
  expect(res.frees).toEqual(Array(n).fill('freed'));
  expect(res.secondFrees).toEqual(Array(n).fill('ERR_DOUBLE_FREE'));
  expect(res.liveAfterFrees).toBe(0);
  expect(res.liveAtEnd).toBe(0);
  expect(res.afterTrim).toEqual([100, true]);
  expect(res.afterReset).toEqual([100, true]);
  // The new owner's memory stays mapped and as it left it, through frees, trim(), reset() and close().
  expect(res.consumerIntact).toBe(true);
  expect(res.consumerIntactAfterClose).toBe(true);
}

describe('a chunk taken by a web byte stream', () => {
  it.each([
    ['take', 'an allocation of a cached size'],
    ['pageRun', 'an allocation of 100 KiB'],
    ['free', 'free() of a neighbour'],
    ['reset', 'reset()'],
  ])("ReadableStream({ type: 'bytes' }) enqueue() of a pool Buffer: the pool loses that chunk only (first after: %s, %s)", (first) => {
    check('enqueue', first, true);
  });

  it.each([
    ['allocTyped', 'allocTyped()'],
    ['trim', 'trim()'],
  ])('a BYOB reader read() into a pool Buffer: the pool loses that chunk only (first after: %s, %s)', (first) => {
    check('byob', first, true);
  });

  // Readable.toWeb() copies each Buffer chunk (new Uint8Array(chunk)) on the
  // Node versions tested here, so a byte stream fed from it takes no chunk of the pool.
  it('Readable.toWeb() of a Readable fed pool Buffers, read through a byte stream: the pool keeps its chunk and works on', () => {
    check('toWeb', 'take', false);
  });

  // Reported as skipped on Node 20, which has no ArrayBuffer.prototype.transfer;
  // `npm run test:node-versions` runs them on Node 22, 24 and 26.
  it.runIf(canTransfer).each([
    ['take', 'an allocation of a cached size'],
    ['trim', 'trim()'],
  ])('ArrayBuffer.prototype.transfer() of a chunk: the pool loses that chunk only (first after: %s, %s)', (first) => {
    check('transfer', first, true);
  });

  // The way the docs suggest: a guard: true allocation has an ArrayBuffer of
  // its own, so the stream takes that allocation only. It stays the
  // stream's (free(): ERR_DOUBLE_FREE); reset() does not reuse its memory and
  // close() does not unmap it (close() unmapped it: SIGSEGV).
  it('enqueue() of a guard: true pool Buffer takes that allocation only, and the pool never reuses or unmaps its memory', () => {
    const r = run('streams.js', ['guard', '-']);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const res = resultOf<{ errors: string[]; neighbourLength: number; consumerBytes: number; freeGiven: string; freshIntact: boolean; freshIntactAfterReset: boolean; consumerIntactAfterClose: boolean }>(r);
    expect(res.errors).toEqual([]);
    expect(res.neighbourLength).toBe(64);
    expect(res.consumerBytes).toBe(64);
    expect(res.freeGiven).toBe('ERR_DOUBLE_FREE');
    expect(res.freshIntact).toBe(true);
    expect(res.freshIntactAfterReset).toBe(true);
    expect(res.consumerIntactAfterClose).toBe(true);
  });
});
