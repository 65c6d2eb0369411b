// The shapes of stats() and dump(), and a plain-text table of stats for
// people reading a terminal.
import type { Backing } from '../options.js';

/** One row per size class: what it holds and what its slabs could hold. */
export interface SizeClassStats {
  /** The class's size in bytes: requests round up to it. */
  size: number;
  /** Allocations of this class alive now. */
  live: number;
  /** Slots in this class's slabs (small classes); equal to `live` for page-run classes. */
  capacity: number;
}

export interface PoolStats {
  name: string;
  /** The backing in use: 'heap' where the runtime refused external ArrayBuffers. */
  backing: Backing;
  guard: boolean;
  secure: boolean;
  closed: boolean;
  pageSize: number;
  chunkSize: number;
  hugeThreshold: number;
  maxBytes: number;
  /** Bytes mapped from the OS (chunks, huge mappings and spare huge mappings). */
  mappedBytes: number;
  /** Sum of the requested sizes of the live allocations. */
  usedBytes: number;
  /** The same after rounding to size classes and pages. */
  allocatedBytes: number;
  peakUsedBytes: number;
  liveAllocations: number;
  totalAllocations: number;
  totalFrees: number;
  chunks: number;
  hugeAllocations: number;
  /** Bytes mapped for live huge allocations. */
  hugeBytes: number;
  /**
   * Bytes still mapped for freed huge allocations, kept for the next huge
   * allocation of the same size (at most four mappings of up to 32 MiB each;
   * their pages are the OS's to take whenever it needs memory). Part of
   * `mappedBytes`; trim() and close() unmap them.
   */
  spareBytes: number;
  /** Bytes in free page runs of the chunks. */
  freeBytes: number;
  /**
   * Bytes of freed blocks (classes up to 64 KiB) the pool keeps on the JS
   * side to hand out again without a native call (its block cache). Free to
   * the program, so not in `allocatedBytes`, but still taken from the
   * chunks; trim(), maxBytes pressure and an OS refusal of memory give
   * them back. 0 for guard and secure pools, which keep none.
   */
  cachedBytes: number;
  /** Shared pools only (`shared: true`): how many threads are attached now (lib/threads/). */
  attachments?: number;
  /**
   * The `hugePages` option where it is in force: false when not asked for, and
   * where it is a no-op (no transparent huge pages on this system: Windows,
   * macOS, a Linux kernel without THP; and 'heap'). Whether the kernel then
   * gives huge pages is its setting: see AnonHugePages in /proc/self/smaps.
   */
  hugePages: boolean;
  /** The `prefault` option where it is in force (false for 'heap'). */
  prefault: boolean;
  /** Bytes of mapped memory resident in RAM now (mincore; Windows: in the process's working set); null where the OS does not tell, or for 'heap'. */
  residentBytes: number | null;
  classes: SizeClassStats[];
}

export type RunDump =
  | { page: number; pages: number; kind: 'free' }
  | { page: number; pages: number; kind: 'slab' | 'large'; classSize: number; live: number; capacity: number };

export interface ChunkDump {
  id: number;
  size: number;
  freePages: number;
  runs: RunDump[];
}

export interface AllocationDump {
  /** Segment (chunk or huge mapping) id. */
  segment: number;
  offset: number;
  size: number;
  /** null for a huge allocation. */
  classSize: number | null;
  /** The allocation's serial number (its order among this pool's allocations). */
  serial: number;
  /** Milliseconds since it was allocated: coarse, to within about 100 ms for sizes up to 64 KiB (the block cache reads the clock every 100 ms), a few ms for larger ones (wraps after 49 days). */
  ageMs: number;
  /** Where it was allocated, for allocations the leak detector tracks with stacks ('advanced', 'paranoid'). */
  createdAt?: string;
}

export interface PoolDump {
  name: string;
  backing: Backing;
  closed: boolean;
  pageSize: number;
  chunkSize: number;
  hugeThreshold: number;
  /** As stats().spareBytes: mapped for freed huge allocations, kept for reuse. */
  spareBytes: number;
  chunks: ChunkDump[];
  huge: { id: number; size: number; mappedBytes: number }[];
  allocations: AllocationDump[];
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A terminal table of the classes in use, then the totals. */
export function formatStats(s: PoolStats): string {
  const lines = [`pool "${s.name}" (${s.backing}${s.closed ? ', closed' : ''})`];
  const rows = s.classes.filter((c) => c.capacity > 0 || c.live > 0);
  if (rows.length > 0) {
    lines.push('  class        live  capacity');
    for (const c of rows) {
      lines.push(`  ${bytes(c.size).padStart(9)}  ${String(c.live).padStart(6)}  ${String(c.capacity).padStart(8)}`);
    }
  }
  lines.push(
    `  mapped ${bytes(s.mappedBytes)} in ${s.chunks} chunk(s) + ${s.hugeAllocations} huge` +
      `${s.spareBytes > 0 ? ` + ${bytes(s.spareBytes)} spare` : ''}` +
      `${s.residentBytes === null ? '' : ` (${bytes(s.residentBytes)} resident)`}; ` +
      `used ${bytes(s.usedBytes)} (allocated ${bytes(s.allocatedBytes)}, peak ${bytes(s.peakUsedBytes)}` +
      `${s.cachedBytes > 0 ? `; ${bytes(s.cachedBytes)} held free for the next allocations` : ''})`,
    `  live ${s.liveAllocations}; ${s.totalAllocations} allocations and ${s.totalFrees} frees in all`,
  );
  return lines.join('\n');
}

export { bytes as formatBytes };
