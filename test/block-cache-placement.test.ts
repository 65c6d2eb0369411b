// Where the block cache (lib/cache/block-cache.ts) keeps its free blocks, and which
// it gives back: the policy that lets the allocator empty its highest chunks
// under churn. BlockCache runs here against a scripted allocator that records
// every block given back, so each rule is seen exactly; the last tests run
// real pools: one new chunk avoided, and the benchmark's churn and the
// memory it maps.
import { describe, expect, it } from 'vitest';

import { Pool } from '../lib/index.js';
import { binding, NativeStatus } from '../lib/native/binding.js';
import { handleOf } from '../lib/native/handle.js';
import { BlockCache, type CacheMemory } from '../lib/cache/block-cache.js';
import { KiB, MiB, mulberry32 } from './helpers.js';

const handle = handleOf;

/** The allocator side of the cache's two native calls, scripted: hands out queued handles, records what comes back. */
class ScriptedAllocator implements CacheMemory {
  readonly segments: (ArrayBuffer | undefined)[] = [];
  lose(): boolean {
    return false;
  }

  readonly queue = new Map<number, number[]>();
  /** Every block given back, per native call: [handle, class size] pairs; `via` says which call carried them. */
  readonly returns: { via: 'refill' | 'flush'; pairs: [number, number][] }[] = [];

  /** Queues blocks of class size `size`, handed out in this order. */
  add(size: number, handles: number[]): void {
    this.queue.set(size, [...(this.queue.get(size) ?? []), ...handles]);
  }

  /** The `aged` argument of every refill: bytes the cache says it handed out since the one before. */
  readonly aged: number[] = [];

  /** The array the cache handed over (setScratch): pairs come in and handles go out there. */
  scratch = new Float64Array(0);
  setScratch(array: Float64Array): boolean {
    this.scratch = array;
    return true;
  }

  refill(size: number, count: number, nflush: number, _mayMap: boolean, aged: number): number {
    const out = this.scratch;
    this.#record('refill', out, nflush);
    this.aged.push(aged);
    const q = this.queue.get(size) ?? [];
    const n = Math.min(count, q.length);
    for (let i = 0; i < n; i++) out[i] = q.shift()!;
    return n === 0 ? NativeStatus.Exhausted : n;
  }

  flush(n: number): number {
    this.#record('flush', this.scratch, n);
    return 0;
  }

  /** Tables the cache replaced: detached for real (by transfer), so a later use of one would show. */
  detached = 0;
  detach(buffer: ArrayBuffer): boolean {
    structuredClone(buffer, { transfer: [buffer] });
    this.detached++;
    return true;
  }

  /** Handles given back so far (in any call), sorted. */
  given(): number[] {
    return this.returns.flatMap((r) => r.pairs.map(([h]) => h)).sort((a, b) => a - b);
  }

  #record(via: 'refill' | 'flush', pairs: Float64Array, n: number): void {
    if (n === 0) return;
    const got: [number, number][] = [];
    for (let i = 0; i < n; i++) got.push([pairs[2 * i], pairs[2 * i + 1]]);
    this.returns.push({ via, pairs: got });
  }
}

function setup(): { alloc: ScriptedAllocator; cache: BlockCache } {
  const alloc = new ScriptedAllocator();
  const cache = new BlockCache(alloc, binding.classSizes, 64 * KiB, 4 * MiB);
  return { alloc, cache };
}

/** What Pool does to hand out a block of class size `size`: its id (a refill when the stack is empty). */
function take(cache: BlockCache, size: number): number {
  const c = cache.classSize.indexOf(size);
  let k = cache.pop(c);
  if (k < 0) {
    expect(cache.refill(c), `a refill of ${size} B blocks`).toBeGreaterThan(0);
    k = cache.pop(c);
  }
  cache.serial[k] = 1;
  return k;
}

/** What Pool does at free(): the block is free again and goes to the cache. */
function give(cache: BlockCache, k: number): void {
  cache.serial[k] = 0;
  cache.push(k);
}

const addr = (cache: BlockCache, k: number): number => handle(cache.seg[k], cache.off[k]);

function shuffled<T>(xs: T[], seed: number): T[] {
  const rand = mulberry32(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('the order in which the block cache hands blocks out', () => {
  it('classes of 4 KiB and up hand out their lowest free block first, whatever order they were freed in', () => {
    const { alloc, cache } = setup();
    alloc.add(4096, Array.from({ length: 16 }, (_, i) => handle(0, (15 - i) * 4096)));
    const ks = Array.from({ length: 16 }, () => take(cache, 4096));
    for (const k of shuffled(ks, 7)) give(cache, k);
    const again = Array.from({ length: 16 }, () => addr(cache, take(cache, 4096)));
    expect(again).toEqual(Array.from({ length: 16 }, (_, i) => handle(0, i * 4096)));
    expect(alloc.given()).toEqual([]);
  });

  it('a full 4 KiB stack gives its highest blocks back, with the next native call, and keeps the lowest', () => {
    const { alloc, cache } = setup();
    alloc.add(4096, Array.from({ length: 17 }, (_, i) => handle(0, i * 4096)));
    const ks = Array.from({ length: 17 }, () => take(cache, 4096));
    for (const k of ks) give(cache, k);                 // the 17th finds the stack full (16 kept)
    expect(alloc.given(), 'nothing goes back before a native call').toEqual([]);
    alloc.add(64, [handle(0, 2 * MiB)]);
    take(cache, 64);                                    // a refill of another class carries them
    const back = alloc.returns.at(-1)!;
    expect(back.via).toBe('refill');
    expect([...back.pairs].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 8 }, (_, i) => [handle(0, (8 + i) * 4096), 4096]));
    const kept = Array.from({ length: 9 }, () => addr(cache, take(cache, 4096)));
    expect(kept).toEqual([...Array.from({ length: 8 }, (_, i) => handle(0, i * 4096)), handle(0, 16 * 4096)]);
  });

  it('classes below 4 KiB hand out the block freed last first, and a full stack gives back its oldest half', () => {
    const { alloc, cache } = setup();
    const n = 65;                                       // 1 KiB: 64 kept
    alloc.add(1024, Array.from({ length: n }, (_, i) => handle(0, i * 1024)));
    const ks = Array.from({ length: n }, () => take(cache, 1024));
    const order = shuffled(ks, 3);
    const oldest = order.slice(0, 32).map((k) => addr(cache, k)).sort((a, b) => a - b);
    for (const k of order) give(cache, k);
    alloc.add(64, [handle(0, 2 * MiB)]);
    take(cache, 64);                                    // (ids given back may be reused from here)
    expect(alloc.given()).toEqual(oldest);
    expect(alloc.returns.at(-1)!.pairs.every(([, size]) => size === 1024)).toBe(true);
    const out = Array.from({ length: n - 32 }, () => take(cache, 1024));
    expect(out).toEqual(order.slice(32).reverse());
  });
});

describe('blocks of the highest segments go back to the allocator', () => {
  /** A cache holding `perSegment` 1 KiB blocks in each of `segments` segments, all handed out; their ids by segment. */
  function spread(segments: number, perSegment: number): { alloc: ScriptedAllocator; cache: BlockCache; bySeg: number[][] } {
    const { alloc, cache } = setup();
    for (let s = 0; s < segments; s++) alloc.add(1024, Array.from({ length: perSegment }, (_, i) => handle(s, i * 1024)));
    const bySeg: number[][] = Array.from({ length: segments }, () => []);
    for (let i = 0; i < segments * perSegment; i++) {
      const k = take(cache, 1024);
      bySeg[cache.seg[k]].push(k);
    }
    return { alloc, cache, bySeg };
  }

  it('with blocks in five segments, a freed block of the two highest is not kept; one of the three lowest is', () => {
    const { alloc, cache, bySeg } = spread(5, 4);
    for (let seg = 0; seg < 5; seg++) give(cache, bySeg[seg][0]);
    const c = cache.classSize.indexOf(1024);
    expect([cache.pop(c), cache.pop(c), cache.pop(c)]).toEqual([bySeg[2][0], bySeg[1][0], bySeg[0][0]]);
    expect(cache.pop(c), 'the others are not on the stack').toBe(-1);
    alloc.add(64, [handle(0, 2 * MiB)]);
    take(cache, 64);
    expect(alloc.given()).toEqual([handle(3, 0), handle(4, 0)]);
  });

  it('with blocks in four segments or fewer nothing is given back on free (draining two of four would send half the frees)', () => {
    const { alloc, cache, bySeg } = spread(4, 4);
    for (const k of bySeg.flat()) give(cache, k);
    alloc.add(64, [handle(0, 2 * MiB)]);
    take(cache, 64);
    expect(alloc.given()).toEqual([]);
  });

  it('once the highest segments hold no block of the cache, the next ones down are drained', () => {
    const { alloc, cache, bySeg } = spread(7, 4);
    const high = [...bySeg[5], ...bySeg[6]].map((k) => addr(cache, k)).sort((a, b) => a - b);
    for (const k of [...bySeg[6], ...bySeg[5]]) give(cache, k);     // segments 5 and 6 drain
    alloc.add(64, [handle(0, 2 * MiB)]);
    take(cache, 64);                                                  // ... and go back here
    expect(alloc.given()).toEqual(high);
    give(cache, bySeg[4][0]);                  // five segments left: 3 and 4 drain now
    give(cache, bySeg[2][0]);
    const c = cache.classSize.indexOf(1024);
    expect(cache.pop(c)).toBe(bySeg[2][0]);
    expect(cache.pop(c)).toBe(-1);
    alloc.add(64, [handle(0, 2 * MiB + 64)]);
    take(cache, 64);
    expect(alloc.given()).toContain(handle(4, 0));
  });

  it('64 blocks waiting to go back go on their own, in one flush() call', () => {
    const { alloc, cache, bySeg } = spread(5, 64);
    for (const k of bySeg[4].slice(0, 63)) give(cache, k);
    expect(alloc.returns).toEqual([]);
    give(cache, bySeg[4][63]);
    expect(alloc.returns.length).toBe(1);
    expect(alloc.returns[0].via).toBe('flush');
    expect(alloc.returns[0].pairs).toEqual(Array.from({ length: 64 }, (_, i) => [handle(4, i * 1024), 1024]));
  });
});

describe('flushAll() and the per-block tables', () => {
  it('gives back every free block, kept or waiting, at most 64 a call; with nothing held the tables shrink to their first size', () => {
    const { alloc, cache } = setup();
    alloc.add(64, Array.from({ length: 300 }, (_, i) => handle(0, i * 64)));   // 64 B: up to 256 kept
    const ks = Array.from({ length: 300 }, () => take(cache, 64));
    const all = ks.map((k) => addr(cache, k)).sort((a, b) => a - b);
    const first = cache.tableLength;
    expect(first).toBeGreaterThanOrEqual(300);
    for (const k of ks.slice(0, 299)) give(cache, k);
    const before = alloc.returns.length;
    cache.flushAll();
    const calls = alloc.returns.slice(before);
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.every((r) => r.via === 'flush' && r.pairs.length <= 64)).toBe(true);
    expect(cache.holding, 'one block is still handed out').toBe(true);
    expect(cache.tableLength, 'tables stay while a block is held').toBe(first);
    give(cache, ks[299]);
    const detached = alloc.detached;
    cache.flushAll();
    expect(cache.holding).toBe(false);
    expect(alloc.detached, 'the big tables are freed at once').toBeGreaterThan(detached);
    expect(alloc.given()).toEqual(all);
    expect(cache.tableLength).toBe(8);
  });
});

describe('what the allocator hears of the allocations the cache serves', () => {
  // The allocator gives an idle chunk back after two chunks' worth of
  // allocation without it; the allocations the cache serves never reach it,
  // so each refill tells it about how many bytes went out since the last
  // one: the allocations counted since, at the mean live size.
  it('each refill reports the allocations since the one before, at the mean size of what is live', () => {
    const { alloc, cache } = setup();
    alloc.add(1024, Array.from({ length: 64 }, (_, i) => handle(0, i * 1024)));
    const counted = (size: number): number => {
      const k = take(cache, 1024);
      cache.counts.count(size);  // as Pool does for each allocation
      return k;
    };
    const a = counted(1000);               // refill 1 (brings 2): nothing handed out before it
    counted(600);
    expect(alloc.aged).toEqual([0]);
    counted(800);                          // refill 2 (brings 4): 2 allocations, 1600 B live in 2
    expect(alloc.aged).toEqual([0, 1600]);
    cache.counts.uncount(1000);            // free(a)
    give(cache, a);
    for (const size of [100, 300, 200, 400]) counted(size);  // the stack's 4: no refill
    expect(alloc.aged).toEqual([0, 1600]);
    counted(50);                           // refill 3: 5 allocations since, 2400 B live in 6
    expect(alloc.aged).toEqual([0, 1600, 5 * (2400 / 6)]);
    // A big live allocation (one the cache does not serve) lifts the mean:
    // each allocation counts as at most the largest size the cache serves.
    cache.counts.count(100 * MiB);
    for (let i = 0; i < 7; i++) counted(10);   // the rest of refill 3's 8 blocks
    expect(alloc.aged.length).toBe(3);
    counted(10);                               // refill 4: the 50 B one, the big one and seven
    expect(alloc.aged[3]).toBe(9 * cache.maxSize);
  });
});

describe('before the allocator maps a new chunk, the cache gives its free blocks back', () => {
  it.runIf(binding.pageSize === 4096)('a slab that fits where the cache held free blocks goes there: no second chunk', () => {
    // 64 KiB chunks: four 16,000 B allocations fill chunk 0 with one
    // 16-page slab of four slots. Freed, they wait in the cache, so the
    // allocator still sees chunk 0 full; a 100 B allocation then needs a
    // page. The cache gives the four blocks back, the allocator lets the
    // empty slab go, and the new slab takes its first page.
    const pool = new Pool({ chunkSize: 64 * KiB, leakDetection: 'disabled' });
    const big = Array.from({ length: 4 }, () => pool.allocUnsafe(16_000));
    expect(pool.stats().chunks).toBe(1);
    const chunk0 = big[0].buffer;
    expect(big.every((b) => b.buffer === chunk0)).toBe(true);
    for (const b of big) pool.free(b);
    expect(pool.stats().cachedBytes, 'the freed blocks wait in the cache').toBe(4 * 16_384);
    const small = pool.allocUnsafe(100);
    const s = pool.stats();
    expect(s.chunks).toBe(1);
    expect(s.mappedBytes).toBe(64 * KiB);
    expect(small.buffer).toBe(chunk0);
    expect(small.byteOffset).toBe(0);
    // And the memory is whole: the four come back as ever.
    const again = Array.from({ length: 3 }, () => pool.allocUnsafe(16_000));
    expect(pool.stats().chunks).toBe(2);
    for (const b of [...again, small]) pool.free(b);
    pool.close();
  });

  it.runIf(binding.pageSize === 4096)('so does an allocation the cache does not serve (above 64 KiB)', () => {
    // 256 KiB chunks: four 64 KiB allocations fill chunk 0 (16-page runs).
    // Freed, they wait in the cache; a 100 KiB allocation (a 28-page run,
    // from the allocator itself) then finds chunk 0 full until the cache
    // gives them back.
    const pool = new Pool({ chunkSize: 256 * KiB, hugeThreshold: 256 * KiB, leakDetection: 'disabled' });
    const big = Array.from({ length: 4 }, () => pool.allocUnsafe(64 * KiB));
    const chunk0 = big[0].buffer;
    expect(big.every((b) => b.buffer === chunk0)).toBe(true);
    for (const b of big) pool.free(b);
    expect(pool.stats().cachedBytes).toBe(4 * 64 * KiB);
    const large = pool.allocUnsafe(100 * KiB);
    expect(pool.stats().chunks).toBe(1);
    expect(pool.stats().cachedBytes).toBe(0);
    expect(large.buffer).toBe(chunk0);
    pool.free(large);
    pool.close();
  });
});

describe('churn on a real pool', () => {
  // The benchmark's churn (bench/cases.ts): 4096 live buffers, sizes
  // log-uniform 16 B .. 64 KiB, the oldest freed first. Deterministic for a
  // page size: the sizes are seeded and nothing here depends on time. With
  // every freed block kept wherever it was (no drain), it maps 11 chunks in
  // most samples (10 or fewer in 22%).
  it.runIf(binding.pageSize === 4096)('maps at most 10 chunks (40 MiB) for 90% of a run of 600,000 operations', () => {
    const pool = new Pool({ leakDetection: 'disabled' });
    const rand = mulberry32(0x5eed);
    const ring: (Buffer | undefined)[] = new Array(4096).fill(undefined);
    const chunks: number[] = [];
    for (let i = 0; i < 600_000; i++) {
      const j = i & 4095;
      if (ring[j] !== undefined) pool.free(ring[j]!);
      ring[j] = pool.allocUnsafe(Math.min(64 * KiB, Math.floor(16 * 4096 ** rand())));
      if (i >= 100_000 && i % 5000 === 0) chunks.push(pool.stats().chunks);
    }
    const atMost10 = chunks.filter((n) => n <= 10).length / chunks.length;
    expect(atMost10, `chunks seen: ${chunks.join(' ')}`).toBeGreaterThanOrEqual(0.9);
    pool.close();
  });
});
