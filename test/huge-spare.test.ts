// Spare huge mappings: a freed huge allocation's mapping (anonymous, not
// secure, at most 32 MiB) is kept, its pages handed to the kernel lazily
// (MADV_FREE), for the next huge allocation of the same mapped size. The
// freed Buffer is detached at once all the same, so no view of it can see
// what the next owner writes; trim(), close() and maxBytes give spares back.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KEEPS_SPARES, KiB, MiB, allZero, expectThrow, make } from './helpers.js';


function pool(options: PoolOptions = {}): Pool {
  return make({ leakDetection: 'disabled', ...options });
}

/** Bytes of this process's memory handed to the kernel with MADV_FREE and not yet taken (smaps LazyFree). */
function lazyFreeBytes(): number {
  let kb = 0;
  for (const m of readFileSync('/proc/self/smaps', 'utf8').matchAll(/^LazyFree:\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb * 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(KEEPS_SPARES)('spare huge mappings', () => {
  it('the next huge allocation of the same size takes the spare: nothing new is mapped', () => {
    const p = pool();
    p.free(p.allocUnsafe(3 * MiB).fill(1));
    const mapped = p.stats().mappedBytes;
    expect(p.stats().spareBytes).toBe(3 * MiB);
    const again = p.allocUnsafe(3 * MiB - 100);  // rounds to the same mapped size
    const s = p.stats();
    expect(s.spareBytes).toBe(0);
    expect(s.mappedBytes).toBe(mapped);
    expect(s.hugeBytes).toBe(3 * MiB);
    expect(again.length).toBe(3 * MiB - 100);
    again.fill(2);
    expect(again[again.length - 1]).toBe(2);
  });

  it('a view of the freed allocation is detached before the memory is reused, and free() of it throws ERR_DOUBLE_FREE', () => {
    const p = pool();
    const old = p.allocUnsafe(2 * MiB).fill(7);
    p.free(old);
    expect(old.length).toBe(0);
    expect(old.buffer.byteLength).toBe(0);
    const next = p.allocUnsafe(2 * MiB).fill(9);
    expect(p.stats().spareBytes).toBe(0);  // the spare was reused
    expect(old.length).toBe(0);
    expectThrow(() => p.free(old), PoolError, 'ERR_DOUBLE_FREE');
    expect(next[0]).toBe(9);
    expect(next.every((b) => b === 9)).toBe(true);
    expect(p.refCount(next)).toBe(1);
  });

  it('alloc() on a spare is zero-filled, whatever the previous owner wrote', () => {
    const p = pool();
    p.free(p.allocUnsafe(4 * MiB).fill(0xab));
    const z = p.alloc(4 * MiB);
    expect(p.stats().spareBytes).toBe(0);
    expect(allZero(z)).toBe(true);
  });

  it('a huge allocation of another size maps its own and leaves the spare', () => {
    const p = pool();
    p.free(p.allocUnsafe(2 * MiB));
    const mapped = p.stats().mappedBytes;
    const other = p.allocUnsafe(3 * MiB);
    expect(p.stats().spareBytes).toBe(2 * MiB);
    expect(p.stats().mappedBytes).toBe(mapped + 3 * MiB);
    p.free(other);
    expect(p.stats().spareBytes).toBe(5 * MiB);
  });

  it('at most 32 spares are kept: the 33rd freed mapping sends the oldest back', () => {
    const p = pool();
    const sizes = [3, ...Array<number>(32).fill(2)];  // the oldest differs: the bytes kept say which went
    const bufs = sizes.map((n) => p.allocUnsafe(n * MiB));
    for (const b of bufs) p.free(b);
    expect(p.stats().spareBytes).toBe(32 * 2 * MiB);
    expect(p.stats().mappedBytes).toBe(p.stats().chunks * p.stats().chunkSize + 32 * 2 * MiB);
  });

  it('spares together stay within 256 MiB: the freed mapping past it sends the oldest back', () => {
    const p = pool();
    const bufs = [20, 30, 30, 30, 30, 30, 30, 30, 30].map((n) => p.allocUnsafe(n * MiB));  // never written: no RAM
    for (const b of bufs.slice(0, 8)) p.free(b);
    expect(p.stats().spareBytes).toBe(230 * MiB);
    p.free(bufs[8]!);  // 260 MiB kept would pass 256: the 20 MiB one goes
    expect(p.stats().spareBytes).toBe(240 * MiB);
  });

  it('a mapping above 32 MiB is unmapped when freed, as before', () => {
    const p = pool();
    const big = p.allocUnsafe(33 * MiB);
    const mapped = p.stats().mappedBytes;
    p.free(big);
    expect(p.stats().spareBytes).toBe(0);
    expect(p.stats().mappedBytes).toBe(mapped - 33 * MiB);
    const edge = p.allocUnsafe(32 * MiB);
    p.free(edge);
    expect(p.stats().spareBytes).toBe(32 * MiB);
  });

  it('release() of the last reference keeps the mapping as a spare, like free()', () => {
    const p = pool();
    const b = p.allocUnsafe(2 * MiB);
    p.retain(b);
    expect(p.release(b)).toBe(false);
    expect(p.stats().spareBytes).toBe(0);
    expect(p.release(b)).toBe(true);
    expect(b.length).toBe(0);
    expect(p.stats().spareBytes).toBe(2 * MiB);
    expect(p.stats().liveAllocations).toBe(0);
  });

  it('trim() unmaps the spares and counts them in the bytes it returns', () => {
    const p = pool();
    p.free(p.allocUnsafe(2 * MiB));
    p.free(p.allocUnsafe(3 * MiB));
    const mapped = p.stats().mappedBytes;
    expect(p.trim()).toBeGreaterThanOrEqual(5 * MiB);
    expect(p.stats().spareBytes).toBe(0);
    expect(p.stats().mappedBytes).toBeLessThanOrEqual(mapped - 5 * MiB);
    expect(p.dump().spareBytes).toBe(0);
  });

  it('stats(), dump() and the metrics show the spares; mappedBytes includes them', async () => {
    const { formatStats, toPrometheus } = await import('../lib/index.js');
    const p = pool({ name: 'spares' });
    p.free(p.allocUnsafe(2 * MiB));
    const s = p.stats();
    expect(s.mappedBytes).toBe(s.chunks * s.chunkSize + s.hugeBytes + s.spareBytes);
    expect(p.dump().spareBytes).toBe(2 * MiB);
    expect(toPrometheus(p)).toContain(`mmap_pool_spare_bytes{pool="spares"} ${2 * MiB}`);
    expect(formatStats(s)).toMatch(/mapped 2\.0 MiB in 0 chunk\(s\) \+ 0 huge \+ 2\.0 MiB spare/);
  });

  it('under maxBytes a spare goes back to make room rather than ERR_POOL_EXHAUSTED', () => {
    const p = pool({ maxBytes: 8 * MiB, chunkSize: MiB, hugeThreshold: 64 * KiB });
    p.free(p.allocUnsafe(4 * MiB));
    expect(p.stats().spareBytes).toBe(4 * MiB);
    const b = p.allocUnsafe(6 * MiB);  // 6 + 4 > 8: the spare must go
    expect(p.stats().spareBytes).toBe(0);
    expect(p.stats().mappedBytes).toBeLessThanOrEqual(8 * MiB);
    p.free(b);
  });

  it('an allocation that fails even without the spares keeps them (a failed call changes nothing)', () => {
    const p = pool({ maxBytes: 8 * MiB, chunkSize: MiB, hugeThreshold: 64 * KiB });
    const live = p.allocUnsafe(5 * MiB);
    p.free(p.allocUnsafe(2 * MiB));
    const before = p.stats();
    expect(before.spareBytes).toBe(2 * MiB);
    expectThrow(() => p.allocUnsafe(4 * MiB), PoolError, 'ERR_POOL_EXHAUSTED');  // 5 + 4 > 8
    const after = p.stats();
    expect(after.spareBytes).toBe(2 * MiB);
    expect(after.mappedBytes).toBe(before.mappedBytes);
    expect(p.allocUnsafe(2 * MiB).length).toBe(2 * MiB);  // and the spare still serves its size
    p.free(live);
  });

  it("'pressure' counts mapped bytes less the spares: a spare does not bring the pool closer to maxBytes", () => {
    const p = pool({ maxBytes: 10 * MiB, chunkSize: MiB, hugeThreshold: 64 * KiB, cooldownMs: 0 });
    const events: { level: string; mappedBytes: number }[] = [];
    p.on('pressure', (e: { level: string; mappedBytes: number }) => events.push(e));
    p.free(p.allocUnsafe(8 * MiB));   // 80%: warning; then 0% in use, and a spare of 8 MiB
    expect(events.map((e) => e.level)).toEqual(['warning']);
    expect(p.stats().spareBytes).toBe(8 * MiB);
    const b = p.allocUnsafe(8 * MiB); // the spare in use again: 80% reached from below
    expect(events.map((e) => e.level)).toEqual(['warning', 'warning']);
    expect(events.map((e) => e.mappedBytes)).toEqual([8 * MiB, 8 * MiB]);
    p.free(b);
  });

  it('a guarded pool keeps spares too; the guarded view is detached at free()', () => {
    const p = pool({ guard: true });
    const g = p.allocUnsafe(2 * MiB).fill(5);
    p.free(g);
    expect(g.length).toBe(0);
    expect(p.stats().spareBytes).toBe(2 * MiB);
    const h = p.alloc(2 * MiB);
    expect(allZero(h)).toBe(true);
    expect(g.length).toBe(0);
  });

  it.runIf(process.platform === 'linux')('a spare not reused within 100 ms has its pages handed to the kernel (LazyFree), and serves the next allocation all the same', async () => {
    const p = pool();
    const before = lazyFreeBytes();
    p.free(p.allocUnsafe(8 * MiB).fill(3));
    const resident = p.stats().residentBytes!;
    expect(resident).toBeGreaterThanOrEqual(8 * MiB);
    expect(lazyFreeBytes() - before).toBeLessThan(MiB);  // kept warm at first
    await sleep(250);
    // Handed over: lazily free now, or (under memory pressure) already taken.
    const decayed = lazyFreeBytes() - before;
    const taken = resident - p.stats().residentBytes!;
    expect(decayed + taken).toBeGreaterThan(7 * MiB);
    expect(decayed).toBeLessThanOrEqual(8 * MiB + MiB);
    expect(p.stats().spareBytes).toBe(8 * MiB);
    const z = p.alloc(8 * MiB);
    expect(p.stats().spareBytes).toBe(0);
    expect(allZero(z)).toBe(true);
    z.fill(4);
    expect(z[8 * MiB - 1]).toBe(4);
    expect(lazyFreeBytes() - before).toBeLessThan(MiB);  // written again: no longer lazily free
  });

  it('close() unmaps the spares: stats() after close shows nothing mapped', () => {
    const p = pool();
    p.free(p.allocUnsafe(2 * MiB));
    p.close();
    expect(p.stats().mappedBytes).toBe(0);
    expect(p.stats().spareBytes).toBe(0);
  });
});
