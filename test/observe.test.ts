// stats() and dump() as a person reads them: resident bytes, allocation ages
// and stacks, and dump() agreeing with stats().
import { describe, expect, it } from 'vitest';

import { KiB, make, MiB } from './helpers.js';
import { CLOCK_MS } from '../lib/observe/clock.js';

describe('stats().residentBytes', () => {
  it('counts touched pages of mapped memory: 0 for untouched huge memory, all of it once written', () => {
    const pool = make({ leakDetection: 'disabled' });
    const before = pool.stats().residentBytes!;
    const huge = pool.allocUnsafe(8 * MiB);       // a fresh mapping: nothing resident yet
    const untouched = pool.stats().residentBytes!;
    expect(untouched - before).toBeLessThan(64 * KiB);
    huge.fill(1);
    const touched = pool.stats().residentBytes!;
    expect(touched - untouched).toBeGreaterThanOrEqual(8 * MiB);
    expect(touched).toBeLessThanOrEqual(pool.stats().mappedBytes);
    pool.free(huge);  // kept as a spare: its pages are the kernel's to take, resident until it does
    pool.trim();
    expect(pool.stats().residentBytes!).toBeLessThan(touched - 4 * MiB);
  });

  it("is null for the 'heap' backing, whose memory is V8's", () => {
    const pool = make({ backing: 'heap', leakDetection: 'disabled' });
    pool.free(pool.alloc(100));
    expect(pool.stats().residentBytes).toBeNull();
  });
});

describe('dump()', () => {
  it('agrees with stats(): allocation count, used bytes, huge mappings, chunks and free pages', () => {
    const pool = make({ chunkSize: 1 * MiB, hugeThreshold: 256 * KiB, leakDetection: 'disabled' });
    const held = [1, 40, 700, 5000, 30_000, 100_000, 300_000, 2_000_000].map((n) => pool.allocUnsafe(n));
    pool.free(held[1]);
    const s = pool.stats();
    const d = pool.dump();
    expect(d.allocations).toHaveLength(s.liveAllocations);
    expect(d.allocations.reduce((sum, a) => sum + a.size, 0)).toBe(s.usedBytes);
    expect(d.huge).toHaveLength(s.hugeAllocations);
    expect(d.chunks).toHaveLength(s.chunks);
    expect(d.chunks.reduce((sum, c) => sum + c.freePages, 0) * d.pageSize).toBe(s.freeBytes);
    const live = d.chunks.flatMap((c) => c.runs).filter((r) => r.kind !== 'free')
      .reduce((sum, r) => sum + ('live' in r ? r.live : 0), 0);
    expect(live + d.huge.length).toBe(s.liveAllocations);
    void held;
  });

  it('gives every live allocation its serial and age; older allocations are older', async () => {
    const pool = make({ leakDetection: 'disabled' });
    const old = pool.alloc(64);
    const oldLarge = pool.alloc(100 * KiB);   // not from the block cache: the allocator's clock
    await new Promise((r) => setTimeout(r, 250));
    const young = pool.alloc(64);
    const youngLarge = pool.alloc(100 * KiB);
    const byOffset = (b: Buffer) => pool.dump().allocations.find((a) => a.segment >= 0 && a.offset === b.byteOffset && a.size === b.length)!;
    const a = byOffset(old);
    const b = byOffset(young);
    expect(b.serial).toBeGreaterThan(a.serial);
    // Block-cache allocations are stamped by a clock read every CLOCK_MS (100 ms).
    expect(a.ageMs).toBeGreaterThanOrEqual(250 - CLOCK_MS);
    expect(a.ageMs - b.ageMs).toBeGreaterThanOrEqual(250 - CLOCK_MS - 50);
    // The allocator's own clock ticks every few ms.
    const al = byOffset(oldLarge);
    const bl = byOffset(youngLarge);
    expect(al.ageMs - bl.ageMs).toBeGreaterThanOrEqual(200);
    expect(bl.ageMs).toBeLessThan(1000);
    expect(b.ageMs).toBeLessThan(1000);
  });

  it("shows where a tracked allocation was made ('paranoid'), and forgets it once freed", () => {
    const pool = make({ leakDetection: 'paranoid' });
    function allocateTheTrackedOne(): Buffer {
      return pool.alloc(100);
    }
    const buf = allocateTheTrackedOne();
    const entry = pool.dump().allocations.find((a) => a.offset === buf.byteOffset)!;
    expect(entry.createdAt).toContain('allocateTheTrackedOne');
    pool.free(buf);
    const other = pool.alloc(100);
    expect(pool.dump().allocations.find((a) => a.offset === other.byteOffset)!.createdAt).not.toContain('allocateTheTrackedOne');
  });

  it("has no stacks without 'advanced' or 'paranoid'", () => {
    const pool = make({ leakDetection: 'simple' });
    for (let i = 0; i < 300; i++) pool.alloc(10);
    expect(pool.dump().allocations.every((a) => a.createdAt === undefined)).toBe(true);
  });
});
