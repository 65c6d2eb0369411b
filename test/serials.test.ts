// Serials: a stale Buffer is refused however many allocations came since
// (at least 2^52). The counter starts near each boundary through
// setLastSerial(), a hook of lib/buffers/serials.ts the package does not export; every
// allocation and free below then takes the production path.
import { afterEach, describe, expect, it } from 'vitest';

import { PoolError, type Pool } from '../lib/index.js';
import { serialOf } from '../lib/buffers/pool-buffer.js';
import { MAX_SERIAL, setLastSerial } from '../lib/buffers/serials.js';
import { expectThrow, KiB, make, MiB } from './helpers.js';

/** The serials of the earlier design ran 1 .. 2^30 - 1 and round again: n and n + WRAP named the same allocation. */
const WRAP = 2 ** 30 - 1;

// The counter is shared by every pool of the thread: later tests start afresh.
afterEach(() => setLastSerial(0));

interface Kind {
  name: string;
  alloc(pool: Pool): ArrayBufferView;
  /** Whether a new allocation of the same kind lands where the freed one was (a huge one gets a mapping, its old view is detached). */
  samePlace: boolean;
}

const KINDS: Kind[] = [
  { name: 'a cached size (64 B)', alloc: (p) => p.allocUnsafe(64), samePlace: true },
  { name: 'a page run (100 KiB)', alloc: (p) => p.allocUnsafe(100 * KiB), samePlace: true },
  { name: 'a huge allocation (2 MiB)', alloc: (p) => p.allocUnsafe(2 * MiB), samePlace: false },
  { name: 'allocTyped (Float64Array of 8)', alloc: (p) => p.allocTyped(Float64Array, 8), samePlace: true },
];

/** Where a's serial is set: just below the old wrap, across 2^31 (a V8 small integer no more), across 2^52. */
const STARTS: [string, number][] = [
  ['below 2^30', 0],
  ['at 2^31', 2 ** 31 - 2],
  ['at 2^52', 2 ** 52 - 2],
];

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

describe('a stale Buffer stays stale across the serial boundaries', () => {
  for (const kind of KINDS) {
    for (const [where, start] of STARTS) {
      // The case: a is freed at serial s; the counter is put where
      // 30-bit serials would give the next allocation s again.
      it(`free() of a freed allocation throws ERR_DOUBLE_FREE and leaves the one now in its place intact: ${kind.name}, ${where}`, () => {
        const pool = make({ leakDetection: 'paranoid' });
        if (start > 0) setLastSerial(start);
        const a = kind.alloc(pool);
        const s = serialOf(a) as number;
        expect(s).toBe(start > 0 ? start + 1 : s);
        const at = { buffer: a.buffer, offset: a.byteOffset };
        pool.free(a);
        setLastSerial(s - 1 + WRAP);
        const b = kind.alloc(pool);
        const sb = serialOf(b) as number;
        expect(sb).not.toBe(s);
        expect(sb).toBe(s + WRAP);
        if (kind.samePlace) {
          expect(b.buffer).toBe(at.buffer);
          expect(b.byteOffset).toBe(at.offset);
        }
        bytesOf(b).fill(0xbb);

        expectThrow(() => pool.free(a), PoolError, 'ERR_DOUBLE_FREE');
        expect(pool.owns(b)).toBe(true);
        expect(pool.stats().liveAllocations).toBe(1);
        expect(bytesOf(b).every((x) => x === 0xbb)).toBe(true);
        // The allocator and the leak detector keep the serial exactly.
        const dumped = pool.dump().allocations.filter((x) => x.serial !== 0);
        expect(dumped.map((x) => x.serial)).toEqual([sb]);
        expect(dumped[0].createdAt).toBeDefined();
        expect(pool.retain(b)).toBe(2);
        expect(pool.refCount(b)).toBe(2);
        expect(pool.release(b)).toBe(false);
        pool.free(b);
        expect(pool.stats().liveAllocations).toBe(0);
        expectThrow(() => pool.free(b), PoolError, 'ERR_DOUBLE_FREE');
      });
    }
  }

  it('serials count on past 2^31 and 2^52 by ones, each allocation freeable once', () => {
    const pool = make();
    for (const start of [2 ** 31 - 3, 2 ** 52 - 3]) {
      setLastSerial(start);
      const views = [pool.allocUnsafe(64), pool.allocUnsafe(64), pool.allocUnsafe(64), pool.allocUnsafe(100 * KiB)];
      expect(views.map((v) => serialOf(v))).toEqual([start + 1, start + 2, start + 3, start + 4]);
      for (const v of views) pool.free(v);
      for (const v of views) expectThrow(() => pool.free(v), PoolError, 'ERR_DOUBLE_FREE');
      expect(pool.stats().liveAllocations).toBe(0);
    }
  });

  it('after 2^53 - 1 the counter starts again from 1 (it never stops counting), and the old Buffer is still refused', () => {
    const pool = make();
    setLastSerial(MAX_SERIAL - 1);
    const a = pool.allocUnsafe(64);
    expect(serialOf(a)).toBe(MAX_SERIAL);
    pool.free(a);
    const b = pool.allocUnsafe(64);
    expect(serialOf(b)).toBe(1);
    expect(b.byteOffset).toBe(a.byteOffset);
    expectThrow(() => pool.free(a), PoolError, 'ERR_DOUBLE_FREE');
    const c = pool.allocUnsafe(64);
    expect(serialOf(c)).toBe(2);
    pool.free(b);
    pool.free(c);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});
