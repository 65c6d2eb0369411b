// The trade-off options `hugePages` (transparent huge pages: 2 MiB-aligned
// mappings advised MADV_HUGEPAGE) and `prefault` (every page of a new
// mapping faulted in at once). Both are hints that never fail; what they do
// is read back from the kernel: /proc/self/smaps for huge pages, and
// stats().residentBytes (mincore) for residency. Option validation is in
// test/options.test.ts.
import * as fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { PoolError } from '../lib/index.js';
import { KiB, MiB, allZero, expectThrow, hold, make } from './helpers.js';

const linux = process.platform === 'linux';
const HUGE = 16 * MiB;
const PAGE = 4096;

/** The transparent huge page mode in force ('always' | 'madvise' | 'never'), or undefined without THP. */
function thpMode(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The PMD huge page size THP uses, or undefined. */
function hugePageSize(): number | undefined {
  try {
    return Number(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8').trim());
  } catch {
    return undefined;
  }
}

const MODE = linux ? thpMode() : undefined;
const HPAGE = linux ? hugePageSize() : undefined;
const THP = MODE === 'always' || MODE === 'madvise';
const THP_REASON = linux ? `transparent huge pages '${MODE ?? 'not in this kernel'}'` : process.platform;

interface SmapsEntry {
  line: string;
  start: number;
  end: number;
  perms: string;
  /** "Key: N kB" fields, in kB. */
  kB: Record<string, number>;
  vmFlags: string[];
}

/** Every entry of /proc/self/smaps. */
function smaps(): SmapsEntry[] {
  const entries: SmapsEntry[] = [];
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (head) {
      entries.push({ line, start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, kB: {}, vmFlags: [] });
      continue;
    }
    const last = entries[entries.length - 1];
    if (last === undefined) continue;
    const size = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (size) last.kB[size[1]!] = Number(size[2]);
    else if (line.startsWith('VmFlags:')) last.vmFlags = line.slice('VmFlags:'.length).trim().split(/\s+/);
  }
  return entries;
}

/**
 * Runs `fn` and returns the read/write mappings advised MADV_HUGEPAGE (VmFlags
 * `hg`) that appeared meanwhile, read after `fn`. The flag keeps such a
 * mapping from merging with its non-advised neighbours in /proc, so the
 * entry is the pool's mapping and nothing else.
 */
function newAdvised<T>(fn: () => T): { value: T; added: () => SmapsEntry[] } {
  const before = new Set(smaps().filter((e) => e.vmFlags.includes('hg')).map((e) => e.line));
  const value = fn();
  return {
    value,
    added: () => smaps().filter((e) => e.perms === 'rw-p' || e.perms === 'rw-s')
      .filter((e) => e.vmFlags.includes('hg') && !before.has(e.line)),
  };
}

/** AnonHugePages of the whole process, kB (/proc/self/smaps_rollup). */
function anonHugeKiB(): number {
  const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Writes one byte per 4 KiB page, as the huge 16 MiB benchmark does. */
function touch(buf: Buffer): void {
  for (let o = 0; o < buf.length; o += PAGE) buf[o] = (o >>> 12) & 0xff;
}

describe('hugePages and prefault: stats() and correctness everywhere', () => {
  it('stats().hugePages and stats().prefault are false by default', () => {
    const s = make().stats();
    expect(s.hugePages).toBe(false);
    expect(s.prefault).toBe(false);
  });

  it('stats().prefault is true with prefault: true, for anonymous and file pools', () => {
    expect(make({ prefault: true }).stats().prefault).toBe(true);
    expect(make({ prefault: true, backing: 'file' }).stats().prefault).toBe(true);
  });

  it('stats().hugePages is true exactly where the system has transparent huge pages to ask for (Linux with THP)', () => {
    const expected = HPAGE !== undefined && HPAGE > 0;
    expect(make({ hugePages: true }).stats().hugePages).toBe(expected);
    expect(make({ hugePages: true, backing: 'file' }).stats().hugePages).toBe(expected);
  });

  it("with backing 'heap' both options are accepted as no-ops: stats() says false and memory works", () => {
    const pool = make({ backing: 'heap', hugePages: true, prefault: true });
    expect(pool.stats().hugePages).toBe(false);
    expect(pool.stats().prefault).toBe(false);
    const b = pool.alloc(2 * MiB).fill(7);
    expect(b.every((x) => x === 7)).toBe(true);
  });

  it.each(['anonymous', 'file'] as const)("backing '%s' with hugePages and prefault: small, large and huge data round-trips; alloc() is zero-filled", (backing) => {
    const pool = make({ backing, hugePages: true, prefault: true });
    const small = hold(pool.alloc(100));
    const large = hold(pool.alloc(200 * KiB));
    const huge = hold(pool.alloc(HUGE + 123));
    expect(allZero(small) && allZero(large) && allZero(huge)).toBe(true);
    small.fill(1);
    large.fill(2);
    huge.fill(3);
    expect(small.every((x) => x === 1)).toBe(true);
    expect(large.every((x) => x === 2)).toBe(true);
    expect(huge.every((x) => x === 3)).toBe(true);
    pool.free(huge);
    expect(huge.length).toBe(0);
    expect(pool.stats().hugeAllocations).toBe(0);
  });

  it('with both options, a huge allocation past maxBytes still throws ERR_POOL_EXHAUSTED and maps nothing more', () => {
    const pool = make({ hugePages: true, prefault: true, maxBytes: 10 * MiB });
    const first = hold(pool.alloc(6 * MiB).fill(9));
    expectThrow(() => pool.allocUnsafe(6 * MiB), PoolError, 'ERR_POOL_EXHAUSTED');
    expect(pool.stats().mappedBytes).toBe(6 * MiB);
    expect(first.every((x) => x === 9)).toBe(true);
  });
});

describe('prefault: residency right after allocation (stats().residentBytes: mincore, or the working set on Windows)', () => {
  it('prefault: true: a 16 MiB huge allocation is resident in full right after allocUnsafe(), before any write', () => {
    const pool = make({ prefault: true });
    hold(pool.allocUnsafe(HUGE));
    expect(pool.stats().residentBytes).toBe(HUGE);
  });

  it('without prefault the same allocation is not resident until written, and is after one write per page', () => {
    const pool = make();
    const b = hold(pool.allocUnsafe(HUGE));
    expect(pool.stats().residentBytes).toBe(0);
    touch(b);
    expect(pool.stats().residentBytes).toBe(HUGE);
  });

  it("prefault: true with backing 'file': the huge allocation is resident right after alloc()", () => {
    const pool = make({ prefault: true, backing: 'file' });
    hold(pool.alloc(HUGE));
    expect(pool.stats().residentBytes).toBe(HUGE);
  });

  it('prefault: true: the first small allocation leaves its whole 4 MiB chunk resident (the cost: RSS from the start)', () => {
    const pool = make({ prefault: true });
    hold(pool.alloc(64));
    const s = pool.stats();
    expect(s.chunks).toBe(1);
    expect(s.residentBytes).toBe(s.chunkSize);
  });

  it('without prefault the first small allocation of a chunk makes at most the pages written resident', () => {
    const pool = make();
    hold(pool.alloc(64)).fill(1);
    const s = pool.stats();
    expect(s.chunks).toBe(1);
    // In 'always' THP mode the kernel may back the touched page with a 2 MiB page.
    expect(s.residentBytes).toBeLessThan(s.chunkSize);
  });
});

describe.runIf(linux && THP)(`hugePages on Linux: what /proc/self/smaps shows (needs transparent huge pages 'always' or 'madvise'; here ${THP_REASON})`, () => {
  it('hugePages: true: a 16 MiB huge allocation is backed by huge pages throughout once written (AnonHugePages 16384 kB)', () => {
    const pool = make({ hugePages: true });
    const { value: b, added } = newAdvised(() => hold(pool.allocUnsafe(HUGE)));
    touch(b);
    const mine = added();
    expect(mine.length, `new MADV_HUGEPAGE mappings: ${mine.map((e) => e.line).join(' | ')}`).toBe(1);
    const e = mine[0]!;
    // All of it: 8 huge pages, which needs the mapping to start on a 2 MiB boundary.
    expect(e.start % HPAGE!).toBe(0);
    expect(e.end - e.start).toBe(HUGE);
    expect(e.kB.AnonHugePages, `THP defrag setting may deny huge pages under fragmentation; smaps: ${JSON.stringify(e.kB)}`).toBe(HUGE / KiB);
  });

  it('hugePages and prefault together: the huge pages are there right after allocUnsafe(), before any write', () => {
    const pool = make({ hugePages: true, prefault: true });
    const { added } = newAdvised(() => hold(pool.allocUnsafe(HUGE)));
    const [e] = added();
    expect(e).toBeDefined();
    expect(e!.kB.Rss).toBe(HUGE / KiB);
    expect(e!.kB.AnonHugePages).toBe(HUGE / KiB);
    expect(pool.stats().residentBytes).toBe(HUGE);
  });

  it('hugePages: true: a 4 MiB chunk is advised and placed on a 2 MiB boundary; one small write makes a whole huge page resident', () => {
    const pool = make({ hugePages: true });
    const { value: b, added } = newAdvised(() => hold(pool.alloc(64)));
    b.fill(1);
    const [e] = added();
    expect(e).toBeDefined();
    expect(e!.start % HPAGE!).toBe(0);
    expect(e!.kB.AnonHugePages).toBe(HPAGE! / KiB);
    expect(pool.stats().residentBytes).toBe(HPAGE);
  });

  it('a huge allocation below one huge page (1.5 MiB) is not advised: nothing to gain from it', () => {
    const pool = make({ hugePages: true });
    const { added } = newAdvised(() => hold(pool.allocUnsafe(1.5 * MiB)));
    expect(added()).toEqual([]);
  });

  it('after trim() discards free pages inside a huge page, alloc() of them reads zero and the neighbours keep their bytes', () => {
    const pool = make({ hugePages: true });
    // Page runs above 64 KiB: the JS block cache holds none of them back.
    const keep = hold(pool.alloc(100 * KiB).fill(0x11));
    const dirty = pool.alloc(512 * KiB).fill(0xaa);
    pool.free(dirty);
    expect(pool.trim()).toBeGreaterThan(0);
    const again = hold(pool.alloc(512 * KiB));
    expect(again.byteOffset, 'the freed run is reused (precondition)').toBe(dirty.byteOffset);
    expect(allZero(again)).toBe(true);
    expect(keep.every((x) => x === 0x11)).toBe(true);
  });
});

describe.runIf(linux && MODE === 'madvise')("without hugePages in THP 'madvise' mode (a control for the tests above; needs mode 'madvise', here " + THP_REASON + ')', () => {
  it('the same 16 MiB huge allocation, written in full, gets no MADV_HUGEPAGE advice and no huge pages', () => {
    const pool = make();
    const before = anonHugeKiB();
    const { value: b, added } = newAdvised(() => hold(pool.allocUnsafe(HUGE)));
    touch(b);
    expect(added()).toEqual([]);
    expect(pool.stats().residentBytes).toBe(HUGE);
    // Process-wide: with hugePages this would grow by 16384 kB.
    expect(anonHugeKiB() - before).toBeLessThan(HUGE / KiB);
  });
});
