// 'pressure' listeners that call back into the pool in the middle of the
// allocation that made the event: whatever they do (trim, reset and
// allocate, allocate, free, close), the call that triggered the event
// returns a correct, exact-size, freeable Buffer of memory no other live
// allocation shares, or throws a coded error.
import { describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, expectThrow, make } from './helpers.js';

// maxBytes 32 MiB, warning at 15% (4.8 MiB): `pre` (a 1.5 MiB huge
// allocation) stays below it, and the outer call's first mapping, a 4 MiB
// chunk or a 4 MiB huge allocation, crosses it. No cooldown.
const OPTIONS: PoolOptions = {
  chunkSize: 4 * MiB,
  hugeThreshold: 1 * MiB,
  maxBytes: 32 * MiB,
  thresholds: { warning: 0.15, critical: 0.95 },
  cooldownMs: 0,
  leakDetection: 'paranoid',
};

const SIZES: [string, number, PoolOptions][] = [
  ['a cached size (100 B)', 100, {}],
  ['a page run above 64 KiB (100 KiB)', 100 * KiB, {}],
  ['a huge allocation (4 MiB)', 4 * MiB, {}],
  ['guard: true (100 B)', 100, { guard: true }],
];

type Call = (pool: Pool, size: number) => ArrayBufferView;
const CALLS: [string, Call][] = [
  ['alloc', (pool, size) => pool.alloc(size)],
  ['allocUnsafe', (pool, size) => pool.allocUnsafe(size)],
  ['allocTyped', (pool, size) => pool.allocTyped(Uint32Array, size / 4)],
  ['from', (pool, size) => pool.from(Buffer.alloc(size, 7))],
];

type Action = 'trim' | 'reset+alloc' | 'alloc' | 'free' | 'close';
const ACTIONS: Action[] = ['trim', 'reset+alloc', 'alloc', 'free', 'close'];

function bytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Live allocations of `pool` own their bytes: each is filled with its own pattern, and all of them read back intact. */
function expectDistinct(live: ArrayBufferView[]): void {
  live.forEach((v, i) => bytes(v).fill(i + 1));
  live.forEach((v, i) => expect(bytes(v).every((b) => b === i + 1), `allocation ${i} (${v.byteLength} B) kept its bytes`).toBe(true));
}

/** stats() and dump() agree with the live set: its count, sizes, and no two allocations overlapping in the pool. */
function expectAccounted(pool: Pool, live: ArrayBufferView[]): void {
  expect(pool.stats().liveAllocations).toBe(live.length);
  expect(pool.stats().usedBytes).toBe(live.reduce((n, v) => n + v.byteLength, 0));
  const dumped = pool.dump().allocations;
  expect(dumped.map((a) => a.size).sort((a, b) => a - b)).toEqual(live.map((v) => v.byteLength).sort((a, b) => a - b));
  const ranges = dumped.map((a) => [a.segment, a.offset, a.offset + a.size] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < ranges.length; i++) {
    const [seg, , end] = ranges[i - 1]!;
    if (ranges[i]![0] === seg) expect(ranges[i]![1], 'allocations overlap in dump()').toBeGreaterThanOrEqual(end);
  }
}

describe.each(SIZES)("a 'pressure' listener re-entering the pool during %s", (_label, size, extra) => {
  describe.each(CALLS)('%s()', (_call, call) => {
    it.each(ACTIONS)('listener does %s: the outer call returns an exact, distinct, freeable allocation or a coded error', (action) => {
      const pool = make({ ...OPTIONS, ...extra });
      const pre = pool.allocUnsafe(1.5 * MiB);
      const inner: ArrayBufferView[] = [];
      let fired = 0;
      pool.once('pressure', () => {
        fired++;
        if (action === 'trim') pool.trim();
        if (action === 'reset+alloc') pool.reset();
        if (action === 'reset+alloc' || action === 'alloc') inner.push(pool.allocUnsafe(size), pool.allocUnsafe(64));
        if (action === 'free') pool.free(pre);
        if (action === 'close') pool.close();
      });
      if (action === 'close') {
        expectThrow(() => call(pool, size), PoolError, 'ERR_POOL_CLOSED');
        expect(fired, 'the listener ran (precondition)').toBe(1);
        expect(pool.closed).toBe(true);
        return;
      }
      const outer = call(pool, size);
      expect(fired, 'the listener ran in the outer call (precondition)').toBe(1);
      expect(outer.byteLength).toBe(size);
      expect(bytes(outer).every((b) => b === (_call === 'from' ? 7 : _call === 'allocUnsafe' ? b : 0)), 'contents as the call promises').toBe(true);
      const live = [outer, ...inner];
      if (action !== 'reset+alloc' && action !== 'free') live.push(pre);
      expectDistinct(live);
      expectAccounted(pool, live);
      for (const v of live) pool.free(v);
      expectAccounted(pool, []);
      // And the pool goes on working.
      const after = pool.alloc(size);
      expect(after.byteLength).toBe(size);
      pool.free(after);
    });
  });
});

describe("'pressure' listeners that keep undoing the allocation", () => {
  it('a listener that resets and trims at every event (no cooldown) does not make the allocation loop: it gets a live Buffer', () => {
    const pool = make({ ...OPTIONS, maxBytes: 8 * MiB, thresholds: { warning: 0.1, critical: 0.95 } });
    let fired = 0;
    pool.on('pressure', () => {
      fired++;
      pool.reset();
      pool.trim();
    });
    const buf = pool.allocUnsafe(100);
    expect(fired).toBeGreaterThanOrEqual(1);
    expect(buf.length).toBe(100);
    expect(pool.owns(buf)).toBe(true);
    expectAccounted(pool, [buf]);
    pool.free(buf);
    expectAccounted(pool, []);
  });

  it('a listener that allocates and frees what it allocated leaves the outer Buffer freeable (no ERR_DOUBLE_FREE)', () => {
    const pool = make(OPTIONS);
    pool.once('pressure', () => {
      for (let i = 0; i < 100; i++) pool.free(pool.alloc(200000));
    });
    const outer = pool.alloc(200000);
    expect(outer.length).toBe(200000);
    expectDistinct([outer]);
    pool.free(outer);
    expectAccounted(pool, []);
  });
});
