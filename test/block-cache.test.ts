// The block cache (lib/cache/block-cache.ts): free blocks of the classes up to 64 KiB
// kept per class on the JS side. Every promise of the README must hold through
// it: stats() and dump() show what the program holds, not what the cache
// holds; stale Buffers are refused with ERR_DOUBLE_FREE and never touch the
// block's new owner; foreign Buffers and slices are refused; maxBytes, trim(),
// zero-fill and alignment work as without a cache; guard and secure pools do
// not use it. A seeded differential test runs the whole API against a model.
import { describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolStats } from '../lib/index.js';
import { binding } from '../lib/native/binding.js';
import { serialOf, blockOf } from '../lib/buffers/pool-buffer.js';
import { KiB, MiB, allZero, expectThrow, hold, make, mulberry32 } from './helpers.js';

/** The class sizes the block cache serves (up to 64 KiB), ascending. */
const CACHED_CLASSES: readonly number[] = binding.classSizes;

/** The smallest of `classes` that holds `size` bytes and is a multiple of `align`. */
function classOf(size: number, classes: readonly number[] = CACHED_CLASSES, align = 1): number {
  const c = classes.find((s) => s >= Math.max(size, 1) && s % align === 0);
  if (c === undefined) throw new Error(`no class for ${size} B (align ${align})`);
  return c;
}

/**
 * More free blocks than a class cache keeps (lib/cache/classes.ts: at most
 * 256 blocks of a class, and far less than 1 MiB of one): freeing this many
 * makes it flush to the allocator, however the budgets are tuned.
 */
function overflowCount(classSize: number): number {
  return Math.min(256, Math.max(4, Math.ceil(MiB / classSize))) + 8;
}

/** The smallest request that rounds up to the same class as `size`. */
function smallestOfClass(size: number): number {
  const i = CACHED_CLASSES.indexOf(classOf(size));
  return i === 0 ? 1 : CACHED_CLASSES[i - 1] + 1;
}

function sameMemory(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** True when every byte of `buf` is `byte` (an empty view is). */
function filledWith(buf: Uint8Array, byte: number): boolean {
  if (buf.length === 0) return true;
  return buf[0] === byte && Buffer.compare(buf.subarray(1), buf.subarray(0, buf.length - 1)) === 0;
}

/** free(), retain(), release() and refCount() of `buf` all throw `code`, and owns() is false. */
function expectRefused(pool: Pool, buf: ArrayBufferView, code: string): void {
  expectThrow(() => pool.free(buf), PoolError, code);
  expectThrow(() => pool.retain(buf), PoolError, code);
  expectThrow(() => pool.release(buf), PoolError, code);
  expectThrow(() => pool.refCount(buf), PoolError, code);
  expect(pool.owns(buf)).toBe(false);
}

/** The counters of stats() that no refused call may change. */
function counters(s: PoolStats): Record<string, number> {
  return {
    liveAllocations: s.liveAllocations,
    usedBytes: s.usedBytes,
    allocatedBytes: s.allocatedBytes,
    totalAllocations: s.totalAllocations,
    totalFrees: s.totalFrees,
    mappedBytes: s.mappedBytes,
    peakUsedBytes: s.peakUsedBytes,
  };
}

/** Log-uniform in [1, max]. */
function logUniformSize(rand: () => number, max: number): number {
  return Math.min(max, Math.max(1, Math.floor(Math.exp(rand() * Math.log(max + 1)))));
}

/**
 * Checks stats() and dump() of a pool against the Buffers the program holds
 * (all in chunks, none huge): counts, bytes, class rows, and dump()'s
 * allocations and run occupancy.
 */
function expectHolds(pool: Pool, held: Iterable<Buffer>, classes: readonly number[], where = ''): void {
  const bufs = [...held];
  const s = pool.stats();
  expect(s.liveAllocations, `liveAllocations ${where}`).toBe(bufs.length);
  expect(s.usedBytes, `usedBytes ${where}`).toBe(bufs.reduce((sum, b) => sum + b.length, 0));
  expect(s.allocatedBytes, `allocatedBytes ${where}`).toBe(bufs.reduce((sum, b) => sum + classOf(b.length, classes), 0));
  const perClass = new Map<number, number>();
  for (const b of bufs) perClass.set(classOf(b.length, classes), (perClass.get(classOf(b.length, classes)) ?? 0) + 1);
  for (const row of s.classes) {
    expect(row.live, `classes[${row.size}].live ${where}`).toBe(perClass.get(row.size) ?? 0);
    expect(row.live).toBeLessThanOrEqual(row.capacity);
    // Page-run classes: capacity is their live runs.
    if (row.size > 28 * KiB) expect(row.capacity, `classes[${row.size}].capacity ${where}`).toBe(row.live);
  }

  const d = pool.dump();
  const key = (offset: number, size: number, serial: number) => `${offset}/${size}/${serial}`;
  expect(d.allocations.map((a) => key(a.offset, a.size, a.serial)).sort(), `dump().allocations ${where}`)
    .toEqual(bufs.map((b) => key(b.byteOffset, b.length, serialOf(b)!)).sort());
  for (const a of d.allocations) expect(a.classSize).toBe(classOf(a.size, classes));
  const runs = d.chunks.flatMap((c) => c.runs);
  let runLive = 0;
  const runLiveByClass = new Map<number, number>();
  for (const r of runs) {
    if (r.kind === 'free') continue;
    expect(r.live).toBeGreaterThanOrEqual(0);
    expect(r.live).toBeLessThanOrEqual(r.capacity);
    runLive += r.live;
    runLiveByClass.set(r.classSize, (runLiveByClass.get(r.classSize) ?? 0) + r.live);
  }
  expect(runLive + d.huge.length, `runs' live counts ${where}`).toBe(bufs.length);
  for (const row of s.classes) expect(runLiveByClass.get(row.size) ?? 0, `runs of class ${row.size} ${where}`).toBe(row.live);
}

describe('stats() and dump() with the block cache', () => {
  it('count exactly what the program holds after cached allocs and frees that overflow every class cache', () => {
    const pool = make({ leakDetection: 'disabled' });
    const classes = pool.stats().classes.map((c) => c.size);
    const rand = mulberry32(0x51075);
    // Two sizes of one class where possible, so usedBytes must add requested sizes, not class sizes.
    const sizes = [1, 16, 17, 100, 112, 1000, 4000, 4096, 20_000, 40 * KiB, 60 * KiB, 64 * KiB];
    const held = new Map<Buffer, number>();   // each held Buffer and its fill byte
    let allocs = 0;
    let frees = 0;
    let used = 0;
    let peak = 0;
    let fill = 0;
    const alloc = (size: number) => {
      fill = (fill % 255) + 1;
      const buf = (rand() < 0.5 ? pool.alloc(size) : pool.allocUnsafe(size)).fill(fill);
      held.set(buf, fill);
      allocs++;
      used += size;
      peak = Math.max(peak, used);
      return buf;
    };
    const free = (buf: Buffer) => {
      if (rand() < 0.3) {
        pool.retain(buf);
        expect(pool.release(buf)).toBe(false);
        expect(pool.release(buf)).toBe(true);
      } else {
        pool.free(buf);
      }
      held.delete(buf);
      frees++;
      used -= buf.length;
    };

    // More than each class's cache keeps, interleaved across classes.
    const perSize = sizes.map((s) => overflowCount(classOf(s)) + 3);
    for (let round = 0; round < Math.max(...perSize); round++) {
      sizes.forEach((s, i) => round < perSize[i] && alloc(s));
    }
    // Free all but 3 of each size, in random order: every class's cache overflows and flushes.
    const bySize = new Map<number, Buffer[]>();
    for (const b of held.keys()) bySize.set(b.length, [...(bySize.get(b.length) ?? []), b]);
    const doomed = [...bySize.values()].flatMap((list) => list.slice(3));
    for (let i = doomed.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [doomed[i], doomed[j]] = [doomed[j], doomed[i]];
    }
    for (const c of new Set(sizes.map((s) => classOf(s)))) {
      expect(doomed.filter((b) => classOf(b.length) === c).length).toBeGreaterThanOrEqual(overflowCount(c));
    }
    for (const b of doomed) free(b);
    expectHolds(pool, held.keys(), classes, 'after the frees');

    // Allocate again from the caches (other sizes of the same classes), free some of those.
    for (const s of sizes) for (let i = 0; i < 5; i++) alloc(Math.max(1, s - i));
    let n = 0;
    for (const b of [...held.keys()]) if (n++ % 3 === 0) free(b);

    const s = pool.stats();
    expect(s.peakUsedBytes).toBe(peak);
    expect(s.totalAllocations).toBe(allocs);
    expect(s.totalFrees).toBe(frees);
    expect(held.size).toBeGreaterThan(40);
    expectHolds(pool, held.keys(), classes, 'at the end');
    const damaged = [...held].filter(([b, byte]) => !filledWith(b, byte)).map(([b]) => `${b.length} B at ${b.byteOffset}`);
    expect(damaged).toEqual([]);

    // Everything freed: all zeros, even with most blocks sitting free in the caches.
    for (const b of [...held.keys()]) free(b);
    const e = pool.stats();
    expect(e.liveAllocations).toBe(0);
    expect(e.usedBytes).toBe(0);
    expect(e.allocatedBytes).toBe(0);
    expect(e.classes.every((c) => c.live === 0 && (c.size <= 28 * KiB || c.capacity === 0))).toBe(true);
    expect(e.totalAllocations - e.totalFrees).toBe(0);
    expect(e.peakUsedBytes).toBe(peak);
    expect(pool.dump().allocations).toEqual([]);
    expectHolds(pool, [], classes, 'when empty');
  });

  it('cachedBytes counts the freed blocks the cache keeps, by class size; trim() and reset() take it to 0', async () => {
    const { formatStats } = await import('../lib/index.js');
    const pool = make({ leakDetection: 'disabled' });
    expect(pool.stats().cachedBytes).toBe(0);
    const small = [100, 100, 100].map((n) => pool.allocUnsafe(n));   // class 112
    const big = pool.allocUnsafe(5000);                             // class 5120
    // A refill brings a batch: the blocks not handed out yet count too, and
    // formatStats says what they are (none was freed yet).
    const { allocatedBytes: allocated, cachedBytes: refilled } = pool.stats();
    expect(refilled % 16).toBe(0);
    expect(refilled).toBeGreaterThan(0);
    expect(formatStats(pool.stats())).not.toContain('freed');
    pool.free(small[0]);
    pool.free(small[1]);
    pool.free(big);
    let s = pool.stats();
    expect(s.cachedBytes).toBe(refilled + 2 * 112 + 5120);
    expect(s.allocatedBytes).toBe(allocated - 2 * 112 - 5120);
    expect(formatStats(s)).toMatch(/; [\d.]+ KiB held free for the next allocations\)/);
    pool.allocUnsafe(101);                                          // class 112 again: from the cache
    expect(pool.stats().cachedBytes).toBe(refilled + 112 + 5120);
    expect(pool.trim()).toBeGreaterThanOrEqual(0);
    s = pool.stats();
    expect(s.cachedBytes).toBe(0);
    expect(formatStats(s)).not.toContain('held free');
    pool.free(small[2]);
    expect(pool.stats().cachedBytes).toBe(112);
    pool.reset();
    expect(pool.stats().cachedBytes).toBe(0);
  });

  it('reset() zeroes the figures, with blocks sitting in the cache, and counts every live allocation as freed', () => {
    const pool = make({ leakDetection: 'disabled' });
    const classes = pool.stats().classes.map((c) => c.size);
    const keep = [100, 1000, 30 * KiB].map((n) => pool.alloc(n));
    for (let i = 0; i < 50; i++) pool.free(pool.alloc(200));
    pool.reset();
    const s = pool.stats();
    expect(s.liveAllocations).toBe(0);
    expect(s.usedBytes).toBe(0);
    expect(s.allocatedBytes).toBe(0);
    expect(s.totalFrees).toBe(53);
    expect(s.totalAllocations).toBe(53);
    expectHolds(pool, [], classes, 'after reset()');
    const again = [hold(pool.alloc(100)), hold(pool.alloc(64 * KiB))];
    expectHolds(pool, again, classes, 'after reset() and two allocations');
    void keep;
  });
});

describe('stale Buffers from the block cache', () => {
  it('free() twice throws ERR_DOUBLE_FREE, as do retain(), release() and refCount() of the freed Buffer', () => {
    const pool = make({ leakDetection: 'disabled' });
    for (const size of [1, 100, 4000, 40 * KiB, 64 * KiB]) {
      const buf = pool.alloc(size);
      pool.free(buf);
      expectRefused(pool, buf, 'ERR_DOUBLE_FREE');
      expect(pool.stats().liveAllocations).toBe(0);
      expect(pool.stats().totalFrees).toBe(pool.stats().totalAllocations);
    }
  });

  it.each([
    ['1 B', 1, 1],
    ['100 B', 100, 97],
    ['4000 B', 4000, 4096],
    ['40 KiB', 40 * KiB, 40 * KiB - 5],
    ['64 KiB', 64 * KiB, 63 * KiB],
  ])('a freed %s Buffer whose block was handed out again is refused and leaves the new owner alone', (_label, size, again) => {
    const pool = make({ leakDetection: 'disabled' });
    const old = pool.allocUnsafe(size).fill(0xaa);
    pool.free(old);
    const owner = pool.allocUnsafe(again).fill(0xbb);
    expect(sameMemory(owner, old), 'the block is handed out again (precondition)').toBe(true);
    const before = counters(pool.stats());
    expectRefused(pool, old, 'ERR_DOUBLE_FREE');
    expect(counters(pool.stats())).toEqual(before);
    expect(filledWith(owner, 0xbb)).toBe(true);
    expect(pool.owns(owner)).toBe(true);
    expect(pool.refCount(owner)).toBe(1);
    expect(pool.retain(owner)).toBe(2);
    expect(pool.release(owner)).toBe(false);
    pool.free(owner);
    expectRefused(pool, owner, 'ERR_DOUBLE_FREE');
    expectRefused(pool, old, 'ERR_DOUBLE_FREE');
  });

  it('a Buffer whose block was flushed to the allocator and reused by another size class is refused; the new owner keeps its bytes', () => {
    const pool = make({ leakDetection: 'disabled' });
    // Freeing more 64 KiB blocks than the class cache keeps gives some back to the allocator.
    const old = Array.from({ length: overflowCount(64 * KiB) }, (_, i) => pool.allocUnsafe(64 * KiB).fill(0x10 + i));
    for (const b of old) pool.free(b);
    for (const b of old) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    const owners: Buffer[] = [];
    const landed = (): Buffer | undefined => owners.find((o) => old.some((b) => overlaps(o, b)));
    for (let i = 0; i < 40 && landed() === undefined; i++) owners.push(pool.allocUnsafe(40 * KiB).fill(0x60 + i));
    const owner = landed();
    expect(owner, 'a 40 KiB block lands on a flushed 64 KiB block (precondition)').toBeDefined();
    expect(owner!.length).toBe(40 * KiB);
    const fill = owner![0];
    const before = counters(pool.stats());
    for (const b of old) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    expect(counters(pool.stats())).toEqual(before);
    owners.forEach((o, i) => expect(filledWith(o, 0x60 + i), `owner ${i}`).toBe(true));
    expect(pool.refCount(owner!)).toBe(1);
    expect(pool.owns(owner!)).toBe(true);
    expect(fill).toBe(owner![owner!.length - 1]);
    expect(pool.stats().liveAllocations).toBe(owners.length);
    // Small classes too: 4 KiB blocks over the flushed pages.
    const small = Array.from({ length: 40 }, (_, i) => pool.allocUnsafe(3000).fill(i + 1));
    for (const b of old) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    small.forEach((b, i) => expect(filledWith(b, i + 1)).toBe(true));
    owners.forEach((o, i) => expect(filledWith(o, 0x60 + i)).toBe(true));
  });

  it('after reset(), every Buffer handed out before is refused at once and after its block is handed out again', () => {
    const pool = make({ leakDetection: 'disabled' });
    const before = [1, 100, 100, 5000, 64 * KiB].map((n, i) => pool.allocUnsafe(n).fill(i + 1));
    const freedBefore = pool.alloc(100);
    pool.free(freedBefore);
    pool.reset();
    // Straight after reset(), before any block is handed out again.
    for (const b of [...before, freedBefore]) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    expect(pool.stats().liveAllocations).toBe(0);
    const after = [1, 100, 100, 5000, 64 * KiB].map((n) => pool.allocUnsafe(n).fill(0xcc));
    expect(after.some((a, i) => sameMemory(a, before[i])), 'blocks are handed out again (precondition)').toBe(true);
    expect(after.some((a, i) => blockOf(a) === blockOf(before[i])), 'block ids are used again (precondition)').toBe(true);
    for (const b of [...before, freedBefore]) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    for (const a of after) {
      expect(filledWith(a, 0xcc)).toBe(true);
      expect(pool.refCount(a)).toBe(1);
    }
    expect(pool.stats().liveAllocations).toBe(after.length);
    for (const a of after) pool.free(a);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('after trim(), views of a released chunk are detached and refused; stale views of a kept chunk are refused; held ones intact', () => {
    const pool = make({ chunkSize: 64 * KiB, leakDetection: 'disabled' });
    const bufs = Array.from({ length: 24 }, (_, i) => pool.allocUnsafe(4000).fill(i + 1));
    const first = bufs[0].buffer;
    const second = bufs.filter((b) => b.buffer !== first);
    expect(second.length, 'the allocations span two chunks (precondition)').toBeGreaterThan(0);
    expect(pool.stats().chunks).toBe(2);
    const inFirst = bufs.filter((b) => b.buffer === first);
    const keep = inFirst.filter((_, i) => i % 2 === 0);
    const freedInFirst = inFirst.filter((_, i) => i % 2 === 1);
    for (const b of [...second, ...freedInFirst]) pool.free(b);
    const mapped = pool.stats().mappedBytes;
    expect(pool.trim()).toBeGreaterThanOrEqual(64 * KiB);
    const s = pool.stats();
    expect(s.chunks).toBe(1);
    expect(s.mappedBytes).toBe(mapped - 64 * KiB);
    for (const b of second) {
      expect(b.length).toBe(0);
      expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    }
    for (const b of freedInFirst) {
      expect(b.length).toBe(4000);
      expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    }
    for (const b of keep) {
      expect(filledWith(b, bufs.indexOf(b) + 1)).toBe(true);
      expect(pool.refCount(b)).toBe(1);
    }
    expectHolds(pool, keep, s.classes.map((c) => c.size), 'after trim()');
    // Blocks handed out after trim() are not confused with the stale views.
    const fresh = Array.from({ length: 20 }, () => pool.allocUnsafe(4000).fill(0xee));
    for (const b of [...second, ...freedInFirst]) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    for (const b of fresh) expect(filledWith(b, 0xee)).toBe(true);
    for (const b of keep) expect(filledWith(b, bufs.indexOf(b) + 1)).toBe(true);
  });
});

describe('retain(), release() and refCount() of cached allocations', () => {
  it('count up and down; the last release() frees (stats drop) and the Buffer is then refused', () => {
    const pool = make({ leakDetection: 'disabled' });
    const other = pool.alloc(100).fill(3);
    const buf = pool.alloc(100);
    expect(pool.refCount(buf)).toBe(1);
    for (let n = 2; n <= 6; n++) expect(pool.retain(buf)).toBe(n);
    expect(pool.refCount(buf)).toBe(6);
    expect(pool.refCount(other)).toBe(1);
    for (let n = 5; n >= 1; n--) {
      expect(pool.release(buf)).toBe(false);
      expect(pool.refCount(buf)).toBe(n);
      expect(pool.stats().liveAllocations).toBe(2);
      expect(pool.stats().usedBytes).toBe(200);
    }
    expect(pool.release(buf)).toBe(true);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(1);
    expect(s.usedBytes).toBe(100);
    expect(s.totalFrees).toBe(1);
    expectRefused(pool, buf, 'ERR_DOUBLE_FREE');
    expect(pool.refCount(other)).toBe(1);
    expect(filledWith(other, 3)).toBe(true);
  });

  it('free() frees whatever the count, and the count does not carry over to the next owner of the block', () => {
    const pool = make({ leakDetection: 'disabled' });
    const buf = pool.alloc(5000);
    pool.retain(buf);
    pool.retain(buf);
    expect(pool.refCount(buf)).toBe(3);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().usedBytes).toBe(0);
    expectRefused(pool, buf, 'ERR_DOUBLE_FREE');
    const next = pool.alloc(5000);
    expect(sameMemory(next, buf), 'the block is handed out again (precondition)').toBe(true);
    expect(pool.refCount(next)).toBe(1);
    expect(pool.release(next)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('foreign Buffers and the block cache', () => {
  it("a cached Buffer of pool A given to pool B throws ERR_FOREIGN_BUFFER and neither pool changes", () => {
    const a = make({ leakDetection: 'disabled' });
    const b = make({ leakDetection: 'disabled' });
    const bufA = a.alloc(100).fill(1);
    const bufB = b.alloc(100).fill(2);
    b.free(b.alloc(100));    // B has a free block of that class in its cache
    const sa = counters(a.stats());
    const sb = counters(b.stats());
    expectRefused(b, bufA, 'ERR_FOREIGN_BUFFER');
    expectRefused(a, bufB, 'ERR_FOREIGN_BUFFER');
    expect(counters(a.stats())).toEqual(sa);
    expect(counters(b.stats())).toEqual(sb);
    expect(a.refCount(bufA)).toBe(1);
    expect(b.refCount(bufB)).toBe(1);
    expect(filledWith(bufA, 1) && filledWith(bufB, 2)).toBe(true);
  });

  it('copies of a cached Buffer\'s properties (object spread, Object.assign onto another Buffer) are refused and free nothing', () => {
    const pool = make({ leakDetection: 'disabled' });
    const buf = pool.alloc(100).fill(7);
    const before = counters(pool.stats());
    // Spread copies the indices and the pool's tags, but it is not a view.
    expectThrow(() => pool.free({ ...buf } as unknown as Buffer), TypeError, 'ERR_INVALID_ARG_TYPE');
    const copy = Object.assign(Buffer.alloc(100), buf);
    expect(pool.owns(copy)).toBe(false);
    expectRefused(pool, copy, 'ERR_FOREIGN_BUFFER');
    expect(counters(pool.stats())).toEqual(before);
    expect(pool.owns(buf)).toBe(true);
    const next = pool.alloc(100);   // must not be buf's block
    expect(next.buffer === buf.buffer && next.byteOffset === buf.byteOffset).toBe(false);
    expect(filledWith(buf, 7)).toBe(true);
  });

  it("a typed array from allocTyped(): another view over its bytes with its properties copied onto it is refused and frees nothing", () => {
    const pool = make({ leakDetection: 'disabled' });
    for (const length of [4, 20_000]) {   // from the block cache, and a page run of its own
      const arr = pool.allocTyped(Float64Array, length).fill(1.5);
      const before = counters(pool.stats());
      const copy = Object.assign(new Float64Array(arr.buffer, arr.byteOffset, arr.length), arr);
      for (const key of Reflect.ownKeys(arr)) {
        if (typeof key === 'symbol') (copy as unknown as Record<symbol, unknown>)[key] = (arr as unknown as Record<symbol, unknown>)[key];
      }
      expect(pool.owns(copy), `${length}`).toBe(false);
      expectRefused(pool, copy, 'ERR_FOREIGN_BUFFER');
      expect(counters(pool.stats())).toEqual(before);
      expect(pool.owns(arr)).toBe(true);
      expect(arr.every((x) => x === 1.5)).toBe(true);
      pool.free(arr);
    }
  });

  it('a slice, a subarray, Buffer.from(buf.buffer, ...) and other views of a cached Buffer are refused with ERR_FOREIGN_BUFFER', () => {
    const pool = make({ leakDetection: 'disabled' });
    const buf = pool.alloc(100).fill(9);
    const views: ArrayBufferView[] = [
      buf.subarray(0),
      buf.subarray(1, 50),
      buf.slice(0, 100),
      Buffer.from(buf.buffer, buf.byteOffset, buf.length),
      new Uint8Array(buf.buffer, buf.byteOffset, buf.length),
      new DataView(buf.buffer, buf.byteOffset, buf.length),
      new Float64Array(buf.buffer, buf.byteOffset, 12),
    ];
    const before = counters(pool.stats());
    for (const v of views) expectRefused(pool, v, 'ERR_FOREIGN_BUFFER');
    expect(counters(pool.stats())).toEqual(before);
    expect(pool.owns(buf)).toBe(true);
    expect(pool.refCount(buf)).toBe(1);
    pool.free(buf);
    // The slices stay refused after the Buffer itself is freed.
    for (const v of views) expectRefused(pool, v, 'ERR_FOREIGN_BUFFER');
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it("serials are per thread across pools: A's Buffer with the block id of B's live block cannot free it", () => {
    const a = make({ leakDetection: 'disabled' });
    const b = make({ leakDetection: 'disabled' });
    const sizes = [100, 100, 2000, 100, 40 * KiB];
    const fromA = sizes.map((n) => a.allocUnsafe(n).fill(0xa1));
    const fromB = sizes.map((n) => b.allocUnsafe(n).fill(0xb1));
    for (let i = 0; i < sizes.length; i++) {
      expect(blockOf(fromA[i]), 'same block ids in both pools (precondition)').toBe(blockOf(fromB[i]));
      expect(fromA[i].byteOffset).toBe(fromB[i].byteOffset);
    }
    const serials = new Set([...fromA, ...fromB].map(serialOf));
    expect(serials.size).toBe(2 * sizes.length);
    const sb = counters(b.stats());
    for (const buf of fromA) expectRefused(b, buf, 'ERR_FOREIGN_BUFFER');
    for (const buf of fromB) expectRefused(a, buf, 'ERR_FOREIGN_BUFFER');
    expect(counters(b.stats())).toEqual(sb);
    for (const buf of fromB) {
      expect(b.owns(buf)).toBe(true);
      expect(b.refCount(buf)).toBe(1);
      expect(filledWith(buf, 0xb1)).toBe(true);
    }
    // Freed in A, its block id reused in A: still not B's to free.
    a.free(fromA[0]);
    expectRefused(b, fromA[0], 'ERR_FOREIGN_BUFFER');
    expect(b.owns(fromB[0])).toBe(true);
    expect(b.stats().liveAllocations).toBe(sizes.length);
  });
});

describe('maxBytes with the block cache', () => {
  /** Fills a 4-chunk pool with small cached blocks of 4 classes, then frees them all: they sit in the cache. */
  function filledThenFreed(): Pool {
    const pool = make({ chunkSize: 64 * KiB, maxBytes: 256 * KiB, leakDetection: 'disabled' });
    const sizes = [500, 1000, 2000, 4000];
    const held: Buffer[] = [];
    let err: unknown;
    for (let i = 0; i < 10_000 && err === undefined; i++) {
      try {
        held.push(pool.allocUnsafe(sizes[i % 4]).fill((i % 250) + 1));
      } catch (e) {
        err = e;
      }
    }
    expect((err as PoolError).code).toBe('ERR_POOL_EXHAUSTED');
    expect(pool.stats().mappedBytes).toBe(256 * KiB);
    held.forEach((b, i) => expect(filledWith(b, (i % 250) + 1)).toBe(true));
    for (const b of held) pool.free(b);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(0);
    expect(s.allocatedBytes).toBe(0);
    expect(s.mappedBytes, 'the chunks stay mapped (precondition)').toBe(256 * KiB);
    // The allocator has no free run of 40 KiB: only blocks the cache gives back can make room.
    const d = pool.dump();
    const freeRuns = d.chunks.flatMap((c) => c.runs.filter((r) => r.kind === 'free').map((r) => r.pages * d.pageSize));
    expect(Math.max(0, ...freeRuns), 'cached blocks keep pages of every chunk (precondition)').toBeLessThan(40 * KiB);
    return pool;
  }

  it.each([
    ['40 KiB (a cached page-run class)', 40 * KiB, undefined],
    ['60 KiB (the 64 KiB class)', 60 * KiB, undefined],
    ['40 KiB with align 4096 (the allocator path)', 40 * KiB, 4096],
    ['100 KiB (huge: a mapping of its own)', 100 * KiB, undefined],
  ])('after small cached blocks filled it and were freed, alloc() of %s succeeds: cached blocks go back first', (_label, size, align) => {
    const pool = filledThenFreed();
    const buf = align === undefined ? pool.alloc(size) : pool.alloc(size, { align });
    expect(buf.length).toBe(size);
    expect(allZero(buf)).toBe(true);
    if (align !== undefined) expect(buf.byteOffset % align).toBe(0);
    buf.fill(0x5a);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(1);
    expect(s.usedBytes).toBe(size);
    expect(s.mappedBytes).toBeLessThanOrEqual(256 * KiB);
    // And the others still fit beside it.
    const rest = [40 * KiB, 60 * KiB, 100 * KiB].filter((n) => n !== size).map((n) => pool.alloc(n).fill(0x33));
    expect(filledWith(buf, 0x5a)).toBe(true);
    for (const r of rest) expect(filledWith(r, 0x33)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(1 + rest.length);
  });

  it('when truly exhausted, alloc() of every kind throws ERR_POOL_EXHAUSTED and nothing held changes', () => {
    const pool = filledThenFreed();
    const held = [pool.alloc(40 * KiB).fill(1), pool.alloc(60 * KiB).fill(2), pool.alloc(100 * KiB).fill(3)];
    let err: unknown;
    for (let i = 0; i < 10_000 && err === undefined; i++) {
      try {
        held.push(pool.allocUnsafe(1000).fill(held.length + 1));
      } catch (e) {
        err = e;
      }
    }
    expect((err as PoolError).code).toBe('ERR_POOL_EXHAUSTED');
    // A cached block is free again: the pool gives it back and still fails.
    pool.free(held.pop()!);
    const before = counters(pool.stats());
    const classesBefore = pool.stats().classes;
    for (const [size, align] of [[2000, undefined], [4000, undefined], [40 * KiB, undefined], [64 * KiB, undefined], [100, 64], [200 * KiB, undefined]] as const) {
      // A 1000 B block may still come from the cache; ask for what cannot fit.
      expectThrow(() => (align === undefined ? pool.alloc(size) : pool.alloc(size, { align })), PoolError, 'ERR_POOL_EXHAUSTED');
      const s = pool.stats();
      expect(counters(s), `after alloc(${size})`).toEqual(before);
      expect(s.mappedBytes).toBeLessThanOrEqual(256 * KiB);
      expect(s.classes.map((c) => c.live)).toEqual(classesBefore.map((c) => c.live));
    }
    held.forEach((b, i) => {
      expect(filledWith(b, (i + 1) & 255), `held #${i}`).toBe(true);
      expect(pool.refCount(b)).toBe(1);
    });
    // Frees make room again.
    for (const b of held.splice(3)) pool.free(b);
    expect(pool.alloc(4000).length).toBe(4000);
  });
});

describe('trim() with the block cache', () => {
  it('after everything is freed, trim() returns every chunk byte and stats().mappedBytes is 0: cached blocks do not pin chunks', () => {
    const pool = make({ chunkSize: 256 * KiB, leakDetection: 'disabled' });
    const rand = mulberry32(77);
    const bufs = Array.from({ length: 400 }, () => pool.allocUnsafe(logUniformSize(rand, 64 * KiB)).fill(7));
    const s = pool.stats();
    expect(s.chunks).toBeGreaterThan(2);
    for (const b of bufs) pool.free(b);
    const mapped = pool.stats().mappedBytes;
    expect(mapped).toBe(s.mappedBytes);
    expect(pool.trim()).toBe(mapped);
    const t = pool.stats();
    expect(t.mappedBytes).toBe(0);
    expect(t.chunks).toBe(0);
    expect(t.allocatedBytes).toBe(0);
    expect(bufs.every((b) => b.length === 0)).toBe(true);
    for (const b of bufs.slice(0, 20)) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    // The pool works on: a fresh chunk, zero-filled blocks.
    const again = pool.alloc(100);
    expect(allZero(again)).toBe(true);
    expect(pool.stats().chunks).toBe(1);
    pool.free(again);
  });

  it('with nothing held, trim() frees the per-block tables at once (no GC needed); stale Buffers stay refused, a held one keeps them', () => {
    const pool = make({ leakDetection: 'disabled' });
    // 5,000 live blocks: the tables grow by doubling to 8,192 ids (~29 bytes each).
    const bufs = Array.from({ length: 5000 }, () => pool.allocUnsafe(16));
    const keep = pool.allocUnsafe(16);
    for (const b of bufs) pool.free(b);
    pool.trim();
    const kept = process.memoryUsage().arrayBuffers;
    // One block still held: the tables stay, and it frees normally afterwards.
    pool.free(keep);
    pool.trim();
    expect(kept - process.memoryUsage().arrayBuffers, 'bytes freed by trim() with nothing held').toBeGreaterThan(200 * KiB);
    for (const b of [...bufs.slice(0, 10), ...bufs.slice(-10), keep]) expectRefused(pool, b, 'ERR_DOUBLE_FREE');
    // The cache works on from small tables.
    const again = Array.from({ length: 100 }, () => pool.alloc(16));
    expect(again.every((b) => blockOf(b)! >= 0 && allZero(b))).toBe(true);
    for (const b of again) pool.free(b);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('zero-fill and alignment through the block cache', () => {
  it.each([1, 16, 100, 1000, 4096, 20_000, 40 * KiB, 64 * KiB])('alloc(%i) of a reused cached block that was written is zero-filled', (size) => {
    const pool = make({ leakDetection: 'disabled' });
    const dirty = pool.allocUnsafe(size).fill(0xff);
    pool.free(dirty);
    const buf = pool.alloc(size);
    expect(sameMemory(buf, dirty), 'the cached block is reused (precondition)').toBe(true);
    expect(allZero(buf)).toBe(true);
    // A smaller size in the same class: the whole new Buffer is zero.
    buf.fill(0xfe);
    pool.free(buf);
    const smaller = pool.alloc(smallestOfClass(size));
    expect(sameMemory(smaller, dirty)).toBe(true);
    expect(allZero(smaller)).toBe(true);
  });

  it('allocTyped(Float64Array, n) from a reused written block is zero and 8-aligned, and frees like any other', () => {
    const pool = make({ leakDetection: 'disabled' });
    for (const n of [1, 3, 100, 1000]) {
      const dirty = pool.allocUnsafe(n * 8).fill(0xff);
      pool.free(dirty);
      const f = pool.allocTyped(Float64Array, n);
      expect(f.buffer === dirty.buffer && f.byteOffset === dirty.byteOffset, 'the cached block is reused (precondition)').toBe(true);
      expect(f.length).toBe(n);
      expect(f.byteOffset % 8).toBe(0);
      expect(allZero(f)).toBe(true);
      expect(pool.owns(f)).toBe(true);
      expect(pool.stats().usedBytes).toBe(n * 8);
      pool.free(f);
      expectRefused(pool, f, 'ERR_DOUBLE_FREE');
      expect(pool.stats().liveAllocations).toBe(0);
    }
  });

  it('alloc(size, { align: 16 }) comes from the cache; align 32 and up come from the allocator; both free correctly', () => {
    const pool = make({ leakDetection: 'disabled' });
    const classes = pool.stats().classes.map((c) => c.size);
    const dirty = pool.allocUnsafe(100).fill(0xff);
    pool.free(dirty);
    const a16 = pool.alloc(100, { align: 16 });
    expect(sameMemory(a16, dirty), 'align 16 reuses the cached block').toBe(true);
    expect(a16.byteOffset % 16).toBe(0);
    expect(allZero(a16)).toBe(true);
    const aligned = ([[48, 32], [100, 64], [5000, 4096], [40 * KiB, 32]] as const).map(([size, align]) => {
      const dirt = pool.allocUnsafe(size, { align }).fill(0xee);
      pool.free(dirt);
      const buf = pool.alloc(size, { align });
      expect(buf.length).toBe(size);
      expect(buf.byteOffset % align, `alloc(${size}, { align: ${align} })`).toBe(0);
      expect(allZero(buf)).toBe(true);
      return { buf, align };
    });
    const all = [a16, ...aligned.map((x) => x.buf)];
    all.forEach((b, i) => b.fill(i + 1));
    const s = pool.stats();
    expect(s.liveAllocations).toBe(all.length);
    expect(s.usedBytes).toBe(all.reduce((sum, b) => sum + b.length, 0));
    expect(s.allocatedBytes).toBe(classOf(100, classes) + aligned.reduce((sum, { buf, align }) => sum + classOf(buf.length, classes, align), 0));
    // Free in mixed order; each is refused afterwards and the others keep their bytes.
    for (const i of [2, 0, 4, 1, 3]) {
      pool.free(all[i]);
      expectRefused(pool, all[i], 'ERR_DOUBLE_FREE');
      all.forEach((b, j) => {
        if (pool.owns(b)) expect(filledWith(b, j + 1)).toBe(true);
      });
    }
    expect(all.every((b) => !pool.owns(b))).toBe(true);
    const e = pool.stats();
    expect(e.liveAllocations).toBe(0);
    expect(e.usedBytes).toBe(0);
    expect(e.allocatedBytes).toBe(0);
  });
});

describe('guard and secure pools do not use the block cache', () => {
  it('guard: true: a freed small Buffer is detached at once and every allocation has its own ArrayBuffer', () => {
    const pool = make({ guard: true, leakDetection: 'disabled' });
    const a = pool.allocUnsafe(100).fill(1);
    pool.free(a);
    expect(a.length).toBe(0);
    expectRefused(pool, a, 'ERR_DOUBLE_FREE');
    const b = pool.allocUnsafe(100);
    expect(b.buffer).not.toBe(a.buffer);
    expect(b.byteOffset).toBe(0);
    expect(b.buffer.byteLength).toBe(100);
    pool.retain(b);
    expect(pool.release(b)).toBe(false);
    expect(b.length).toBe(100);
    expect(pool.release(b)).toBe(true);
    expect(b.length).toBe(0);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().cachedBytes).toBe(0);
  });

  it('secure: true: free() wipes the block (a cache would keep the bytes) and allocUnsafe() of it sees zeros', () => {
    const pool = make({ secure: true, chunkSize: 256 * KiB, leakDetection: 'disabled' });
    const places = (): string[] => pool.dump().allocations.map((a) => `${a.segment}:${a.offset}`);
    for (const size of [40, 100, 5000]) {
      const keep = pool.alloc(16).fill(1);
      const before = places();
      const dirty = pool.allocUnsafe(size).fill(0xaa);
      const slot = places().filter((p) => !before.includes(p));
      pool.free(dirty);
      expect(dirty.length, 'its own ArrayBuffer is detached').toBe(0);
      const again = pool.allocUnsafe(size);
      expect(places().filter((p) => !before.includes(p)), 'the same block (precondition)').toEqual(slot);
      expect(again.buffer.byteLength).toBe(size);
      expect(allZero(again)).toBe(true);
      expect(filledWith(keep, 1)).toBe(true);
      pool.free(again);
      pool.free(keep);
      expectRefused(pool, dirty, 'ERR_DOUBLE_FREE');
      expect(pool.stats().cachedBytes).toBe(0);
    }
  });
});

describe('randomised differential test against a model', () => {
  interface Live {
    id: number;
    buf: Buffer;
    refs: number;
    fill: number;
    align: number;
  }

  it('20,000 seeded operations of 1 B .. 80 KiB keep stats(), bytes and stale-Buffer refusals exact', async () => {
    const seed = 0x5107ca;
    const rand = mulberry32(seed);
    const pool = make({ chunkSize: MiB });
    const classes = pool.stats().classes.map((c) => c.size);
    const live: Live[] = [];
    let stale: Buffer[] = [];
    let nextId = 1;
    let used = 0;
    let peak = 0;
    let allocs = 0;
    let frees = 0;
    const seen = { cached: 0, uncached: 0, aligned: 0, empty: 0, stale: 0, staleReused: 0, detached: 0, reset: 0, trim: 0, release0: 0, retain: 0 };
    const OPS = 20_000;

    const toStale = (buf: Buffer) => {
      if (stale.length < 400) stale.push(buf);
      else stale[Math.floor(rand() * stale.length)] = buf;
    };
    const remove = (i: number) => {
      const item = live[i];
      live[i] = live[live.length - 1];
      live.pop();
      used -= item.buf.length;
      frees++;
      toStale(item.buf);
    };
    const intact = (item: Live) => filledWith(item.buf, item.fill);

    const check = (where: string) => {
      const damaged = live.filter((item) => !intact(item)).map((item) => `#${item.id} (${item.buf.length} B)`);
      expect(damaged, `damaged at ${where}`).toEqual([]);
      const bySegment = new Map<ArrayBufferLike, Buffer[]>();
      for (const x of live) {
        if (x.buf.length === 0) continue;
        const list = bySegment.get(x.buf.buffer) ?? [];
        list.push(x.buf);
        bySegment.set(x.buf.buffer, list);
      }
      for (const list of bySegment.values()) {
        list.sort((x, y) => x.byteOffset - y.byteOffset);
        for (let i = 1; i < list.length; i++) expect(overlaps(list[i - 1], list[i]), `overlap at ${where}`).toBe(false);
      }
      const s = pool.stats();
      expect(s.liveAllocations, `liveAllocations at ${where}`).toBe(live.length);
      expect(s.usedBytes, `usedBytes at ${where}`).toBe(used);
      expect(s.peakUsedBytes, `peakUsedBytes at ${where}`).toBe(peak);
      expect(s.totalAllocations, `totalAllocations at ${where}`).toBe(allocs);
      expect(s.totalFrees, `totalFrees at ${where}`).toBe(frees);
      expect(s.allocatedBytes, `allocatedBytes at ${where}`)
        .toBe(live.reduce((sum, x) => sum + classOf(x.buf.length, classes, x.align), 0));
      const perClass = new Map<number, number>();
      for (const x of live) {
        const c = classOf(x.buf.length, classes, x.align);
        perClass.set(c, (perClass.get(c) ?? 0) + 1);
      }
      for (const row of s.classes) expect(row.live, `classes[${row.size}].live at ${where}`).toBe(perClass.get(row.size) ?? 0);
    };

    for (let step = 0; step < OPS; step++) {
      // Let the event loop turn now and then: under Wine this case runs for
      // minutes (stats() reads residency page by page there), and a vitest
      // worker that answers no RPC for 60 s fails the run.
      if (step % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
      const where = `seed ${seed} step ${step}`;
      const n = live.length;
      const pAlloc = n < 50 ? 0.8 : n > 300 ? 0.3 : 0.45;
      const r = rand();
      if (n === 0 || r < pAlloc) {
        const q = rand();
        const size = q < 0.01 ? 0 : logUniformSize(rand, 80 * KiB);
        const align = q > 0.97 ? (rand() < 0.5 ? 32 : 64) : 1;
        const zeroed = rand() < 0.5;
        const opts = align > 1 ? { align } : undefined;
        const buf = zeroed ? pool.alloc(size, opts) : pool.allocUnsafe(size, opts);
        expect(buf.length).toBe(size);
        if (zeroed) expect(allZero(buf), `alloc(${size}) not zero at ${where}`).toBe(true);
        if (align > 1) expect(buf.byteOffset % align).toBe(0);
        const id = nextId++;
        const fill = (id % 255) + 1;
        buf.fill(fill);
        live.push({ id, buf, refs: 1, fill, align });
        allocs++;
        used += size;
        peak = Math.max(peak, used);
        if (size === 0) seen.empty++;
        else if (align > 1) seen.aligned++;
        else if (size <= 64 * KiB) seen.cached++;
        else seen.uncached++;
        continue;
      }
      const p = (r - pAlloc) / (1 - pAlloc);
      const i = Math.floor(rand() * n);
      const item = live[i];
      if (p < 0.45) {
        expect(intact(item), `#${item.id} damaged before free at ${where}`).toBe(true);
        pool.free(item.buf);
        remove(i);
        expect(pool.owns(item.buf)).toBe(false);
      } else if (p < 0.55) {
        item.refs++;
        expect(pool.retain(item.buf)).toBe(item.refs);
        seen.retain++;
      } else if (p < 0.7) {
        item.refs--;
        expect(pool.release(item.buf), `release at ${where}`).toBe(item.refs === 0);
        if (item.refs === 0) {
          remove(i);
          seen.release0++;
        }
      } else if (p < 0.75) {
        expect(pool.refCount(item.buf)).toBe(item.refs);
        expect(pool.owns(item.buf)).toBe(true);
      } else if (p < 0.995) {
        if (stale.length === 0) continue;
        const old = stale[Math.floor(rand() * stale.length)];
        const op = Math.floor(rand() * 5);
        const before = pool.stats();
        if (op === 4) {
          expect(pool.owns(old), `owns(stale) at ${where}`).toBe(false);
        } else {
          const call = [() => pool.free(old), () => pool.retain(old), () => pool.release(old), () => pool.refCount(old)][op];
          let err: unknown;
          try {
            call();
          } catch (e) {
            err = e;
          }
          expect(err, `stale ${['free', 'retain', 'release', 'refCount'][op]}(${old.length} B) at ${where}`).toBeInstanceOf(PoolError);
          expect((err as PoolError).code, where).toBe('ERR_DOUBLE_FREE');
        }
        const after = pool.stats();
        expect(after.liveAllocations).toBe(before.liveAllocations);
        expect(after.totalFrees).toBe(before.totalFrees);
        expect(after.usedBytes).toBe(before.usedBytes);
        seen.stale++;
        if (old.length === 0 && old.buffer.byteLength === 0) seen.detached++;
        for (const x of live) {
          if (overlaps(x.buf, old) || sameMemory(x.buf, old)) {
            seen.staleReused++;
            expect(intact(x), `#${x.id} damaged by a stale call at ${where}`).toBe(true);
            expect(pool.refCount(x.buf)).toBe(x.refs);
          }
        }
      } else if (p < 0.9993) {
        pool.trim();
        seen.trim++;
      } else {
        pool.reset();
        frees += live.length;
        used = 0;
        for (const x of live) toStale(x.buf);
        live.length = 0;
        seen.reset++;
      }
      if (step % 500 === 499) check(where);
    }
    check('the end');

    expect(seen.cached).toBeGreaterThan(5000);
    expect(seen.uncached).toBeGreaterThan(50);
    expect(seen.aligned).toBeGreaterThan(100);
    expect(seen.empty).toBeGreaterThan(20);
    expect(seen.stale).toBeGreaterThan(1000);
    expect(seen.staleReused, 'stale Buffers over memory that is live again').toBeGreaterThan(50);
    expect(seen.detached, 'stale Buffers of chunks that trim() released').toBeGreaterThan(0);
    expect(seen.trim).toBeGreaterThan(10);
    expect(seen.reset).toBeGreaterThan(1);
    expect(seen.release0).toBeGreaterThan(100);
    expect(seen.retain).toBeGreaterThan(100);

    // Free everything: trim() gives all of it back.
    while (live.length > 0) {
      pool.free(live[live.length - 1].buf);
      remove(live.length - 1);
    }
    check('all freed');
    pool.trim();
    expect(pool.stats().mappedBytes).toBe(0);
    stale = [];
  });
});
