// Randomised allocate/write/free against a model: every live buffer keeps its
// bytes, no two live allocations overlap, and stats() agrees with the model.
// A seeded PRNG makes every run the same; a failure names its seed and step.
import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, make, mulberry32 } from './helpers.js';

const MAX_SIZE = 600 * KiB;

/** Random bytes that the fill patterns are cut from (so no two patterns line up by accident). */
const NOISE = (() => {
  const rand = mulberry32(0xc0ffee);
  const out = Buffer.allocUnsafe(MAX_SIZE + 256);
  for (let i = 0; i < out.length; i++) out[i] = (rand() * 256) | 0;
  return out;
})();
const ZEROS = Buffer.alloc(MAX_SIZE);

interface Live {
  id: number;
  size: number;
  buf: Buffer;
  refs: number;
}

/** Byte i of allocation `id`: its id (little-endian) in the first 4 bytes, then noise from an id-dependent offset. */
function noiseOffset(id: number): number {
  return (Math.imul(id, 37) >>> 0) & 255;
}

function writePattern(item: Live): void {
  const { buf, id, size } = item;
  for (let i = 0; i < Math.min(4, size); i++) buf[i] = (id >>> (8 * i)) & 255;
  if (size > 4) NOISE.copy(buf, 4, noiseOffset(id) + 4, noiseOffset(id) + size);
}

function patternIntact(item: Live): boolean {
  const { buf, id, size } = item;
  if (buf.length !== size) return false;
  for (let i = 0; i < Math.min(4, size); i++) if (buf[i] !== ((id >>> (8 * i)) & 255)) return false;
  if (size <= 4) return true;
  const off = noiseOffset(id);
  return buf.subarray(4).equals(NOISE.subarray(off + 4, off + size));
}

/** Log-uniform in [1, max]: as many tiny as small as large as huge requests, per doubling. */
function logUniformSize(rand: () => number, max: number): number {
  const n = Math.floor(Math.exp(rand() * Math.log(max + 1)));
  return Math.min(max, Math.max(1, n));
}

class Model {
  readonly live: Live[] = [];
  usedBytes = 0;
  nextId = 1;

  add(buf: Buffer, size: number): Live {
    const item: Live = { id: this.nextId++, size, buf, refs: 1 };
    this.live.push(item);
    this.usedBytes += size;
    return item;
  }

  removeAt(index: number): Live {
    const item = this.live[index];
    this.live[index] = this.live[this.live.length - 1];
    this.live.pop();
    this.usedBytes -= item.size;
    return item;
  }
}

/** Checks every live buffer's bytes, that none overlap, and stats()/dump() against the model. */
function checkAll(pool: Pool, model: Model, where: string): void {
  const damaged = model.live.filter((item) => !patternIntact(item));
  expect(damaged.map((d) => `#${d.id} (${d.size} B)`), `damaged buffers at ${where}`).toEqual([]);

  const bySegment = new Map<ArrayBufferLike, [number, number, number][]>();
  for (const { buf, id } of model.live) {
    let ranges = bySegment.get(buf.buffer);
    if (ranges === undefined) bySegment.set(buf.buffer, (ranges = []));
    ranges.push([buf.byteOffset, buf.byteOffset + buf.length, id]);
  }
  const overlaps: string[] = [];
  for (const ranges of bySegment.values()) {
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i][0] < ranges[i - 1][1]) overlaps.push(`#${ranges[i - 1][2]} and #${ranges[i][2]}`);
    }
  }
  expect(overlaps, `overlapping allocations at ${where}`).toEqual([]);

  const s = pool.stats();
  const hugeCount = model.live.filter((item) => item.size > s.hugeThreshold).length;
  for (const item of model.live) {
    if (item.size > s.hugeThreshold) {
      // A huge allocation has a mapping, and so an ArrayBuffer, of its own.
      expect(item.buf.byteOffset).toBe(0);
      expect(bySegment.get(item.buf.buffer)?.length).toBe(1);
    }
  }
  expect(s.liveAllocations, `liveAllocations at ${where}`).toBe(model.live.length);
  expect(s.usedBytes, `usedBytes at ${where}`).toBe(model.usedBytes);
  expect(s.allocatedBytes).toBeGreaterThanOrEqual(s.usedBytes);
  expect(s.hugeAllocations, `hugeAllocations at ${where}`).toBe(hugeCount);
  expect(s.totalAllocations - s.totalFrees).toBe(model.live.length);
  expect(s.peakUsedBytes).toBeGreaterThanOrEqual(s.usedBytes);
  for (const c of s.classes) expect(c.live).toBeLessThanOrEqual(c.capacity);
  if (Number.isFinite(s.maxBytes)) expect(s.mappedBytes).toBeLessThanOrEqual(s.maxBytes);

  const d = pool.dump();
  expect(d.allocations.length).toBe(model.live.length);
  const dumped = d.allocations.map((a) => a.size).sort((a, b) => a - b);
  const modelled = model.live.map((item) => item.size).sort((a, b) => a - b);
  expect(dumped).toEqual(modelled);
}

/** Allocates `size` with alloc() or allocUnsafe(), checks zero-fill for alloc(), records and fills it. */
function allocate(pool: Pool, model: Model, size: number, zeroed: boolean, where: string): Live {
  const buf = zeroed ? pool.alloc(size) : pool.allocUnsafe(size);
  expect(buf.length).toBe(size);
  if (zeroed) expect(buf.equals(ZEROS.subarray(0, size)), `alloc(${size}) not zero-filled at ${where}`).toBe(true);
  const item = model.add(buf, size);
  writePattern(item);
  return item;
}

/** Gives up one reference to a random live buffer (free(), or release() when retained); checks its bytes first. */
function dropRandom(pool: Pool, model: Model, rand: () => number, where: string): void {
  const index = Math.floor(rand() * model.live.length);
  const item = model.live[index];
  expect(patternIntact(item), `#${item.id} (${item.size} B) damaged before its free at ${where}`).toBe(true);
  if (item.refs > 1) {
    expect(pool.release(item.buf)).toBe(false);
    item.refs--;
    expect(pool.refCount(item.buf)).toBe(item.refs);
    return;
  }
  if (rand() < 0.2) expect(pool.release(item.buf)).toBe(true);
  else pool.free(item.buf);
  model.removeAt(index);
  expect(pool.owns(item.buf)).toBe(false);
}

/**
 * Lets the event loop turn once. A long synchronous test starves the vitest
 * worker's RPC, which fails the run after 60 s without a reply: under Wine,
 * where every stats() reads residency page by page (QueryWorkingSetEx, about
 * 1.6 ms per MiB mapped), these cases run for minutes.
 */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('randomised allocation', () => {
  it('30,000 random allocs and frees of 1 B .. 600 KiB keep every live buffer intact and stats() exact', async () => {
    const seed = 0x5eed1;
    const rand = mulberry32(seed);
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const model = new Model();
    const seen = { small: 0, large: 0, huge: 0, alloc: 0, allocUnsafe: 0, retained: 0 };
    const OPS = 30_000;

    for (let step = 0; step < OPS; step++) {
      if (step % 1000 === 999) await turn();
      const where = `seed ${seed} step ${step}`;
      const n = model.live.length;
      // Drift between ~50 and ~400 live buffers.
      const pAlloc = n < 50 ? 0.8 : n > 400 ? 0.3 : 0.52;
      const r = rand();
      if (n === 0 || r < pAlloc) {
        const size = logUniformSize(rand, MAX_SIZE);
        const zeroed = rand() < 0.5;
        allocate(pool, model, size, zeroed, where);
        if (size <= 28 * KiB) seen.small++;
        else if (size <= 256 * KiB) seen.large++;
        else seen.huge++;
        if (zeroed) seen.alloc++;
        else seen.allocUnsafe++;
      } else if (r < pAlloc + 0.03) {
        const item = model.live[Math.floor(rand() * n)];
        item.refs++;
        expect(pool.retain(item.buf)).toBe(item.refs);
        seen.retained++;
      } else {
        dropRandom(pool, model, rand, where);
      }
      if (step % 3000 === 2999) checkAll(pool, model, where);
    }

    expect(seen.small).toBeGreaterThan(1000);
    expect(seen.large).toBeGreaterThan(1000);
    expect(seen.huge).toBeGreaterThan(200);
    expect(seen.alloc).toBeGreaterThan(1000);
    expect(seen.allocUnsafe).toBeGreaterThan(1000);
    expect(seen.retained).toBeGreaterThan(100);
    checkAll(pool, model, 'the end');

    // Free everything: the pool is empty, and trim() gives all of it back.
    while (model.live.length > 0) {
      const item = model.removeAt(model.live.length - 1);
      pool.free(item.buf);
    }
    const s = pool.stats();
    expect(s.liveAllocations).toBe(0);
    expect(s.usedBytes).toBe(0);
    expect(s.allocatedBytes).toBe(0);
    expect(s.hugeAllocations).toBe(0);
    expect(s.classes.every((c) => c.live === 0)).toBe(true);
    expect(pool.trim()).toBeGreaterThan(0);
    expect(pool.stats().mappedBytes).toBe(0);
  });

  it('with maxBytes 8 MiB, ERR_POOL_EXHAUSTED damages nothing and allocation succeeds again after frees', async () => {
    const seed = 0xba5e;
    const rand = mulberry32(seed);
    const maxBytes = 8 * MiB;
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB, maxBytes });
    const model = new Model();
    let exhausted = 0;
    let recoveredWhileHolding = 0;
    const OPS = 12_000;

    for (let step = 0; step < OPS; step++) {
      if (step % 500 === 499) await turn();
      const where = `seed ${seed} step ${step}`;
      const n = model.live.length;
      if (n > 0 && rand() >= 0.7) {
        dropRandom(pool, model, rand, where);
        continue;
      }
      const size = logUniformSize(rand, MAX_SIZE);
      const zeroed = rand() < 0.5;
      const before = pool.stats();
      let err: unknown;
      try {
        allocate(pool, model, size, zeroed, where);
        continue;
      } catch (e) {
        err = e;
      }
      // The failed call changed nothing.
      expect(err, `alloc(${size}) at ${where}`).toBeInstanceOf(PoolError);
      expect((err as PoolError).code).toBe('ERR_POOL_EXHAUSTED');
      exhausted++;
      const after = pool.stats();
      expect(after.mappedBytes).toBe(before.mappedBytes);
      expect(after.mappedBytes).toBeLessThanOrEqual(maxBytes);
      expect(after.totalAllocations).toBe(before.totalAllocations);
      expect(after.liveAllocations).toBe(before.liveAllocations);
      expect(after.usedBytes).toBe(before.usedBytes);
      if (exhausted <= 20 || exhausted % 10 === 0) checkAll(pool, model, `${where} (after ERR_POOL_EXHAUSTED)`);
      else expect(model.live.every(patternIntact), `damaged after ERR_POOL_EXHAUSTED at ${where}`).toBe(true);

      // Free random buffers (and give empty chunks back) until the same request fits.
      let ok = false;
      for (let tries = 0; !ok; tries++) {
        if (model.live.length === 0) {
          pool.trim();
          allocate(pool, model, size, zeroed, `${where} (retry on an empty pool)`);
          ok = true;
          break;
        }
        dropRandom(pool, model, rand, `${where} (recovery)`);
        if (tries % 4 === 3) pool.trim();
        try {
          allocate(pool, model, size, zeroed, `${where} (retry ${tries})`);
          ok = true;
          recoveredWhileHolding++;
        } catch (e) {
          expect((e as PoolError).code).toBe('ERR_POOL_EXHAUSTED');
        }
      }
      expect(ok).toBe(true);
    }

    expect(exhausted).toBeGreaterThan(20);
    expect(recoveredWhileHolding).toBeGreaterThan(0);
    checkAll(pool, model, 'the end');
  });
});
