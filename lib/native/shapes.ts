// The shapes of what the addon reports of a pool: its stats() and dump().
// Each is written down once on each side: native/alloc/arena.h (Stats, its
// MMAP_POOL_STATS_FIGURES, and ArenaDump) and here; lib/observe/stats.ts
// adds what only lib/ knows to make PoolStats and PoolDump, and
// test/binding.test.ts fails if the addon's contract.statsFields differs
// from NATIVE_STATS_FIELDS.

/** One row per size class: what it holds and what its slabs could hold. */
export interface SizeClassStats {
  /** The class's size in bytes: requests round up to it. */
  size: number;
  /** Allocations of this class alive now. */
  live: number;
  /** Slots in this class's slabs (small classes); equal to `live` for page-run classes. */
  capacity: number;
}

/** What the allocator reports of itself: NativePool.stats(), the part of PoolStats that comes from the addon. */
export interface NativeStats {
  /** Bytes mapped from the OS (chunks, huge mappings and spare huge mappings). */
  mappedBytes: number;
  /** The live allocations' sizes after rounding to size classes and pages. */
  allocatedBytes: number;
  chunks: number;
  hugeAllocations: number;
  /** Bytes mapped for live huge allocations. */
  hugeBytes: number;
  /**
   * Bytes still mapped for freed huge allocations, kept for the next huge
   * allocation of the same size (at most 32 mappings of up to 32 MiB each,
   * 256 MiB together;
   * their pages are the OS's to take whenever it needs memory). Part of
   * `mappedBytes`; trim() and close() unmap them.
   */
  spareBytes: number;
  /** Bytes in free page runs of the chunks. */
  freeBytes: number;
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

/** The fields of NativeStats, in the order the addon sets them. */
export const NATIVE_STATS_FIELDS = [
  'mappedBytes', 'allocatedBytes', 'chunks', 'hugeAllocations', 'hugeBytes', 'spareBytes', 'freeBytes',
  'hugePages', 'prefault', 'residentBytes', 'classes',
] as const satisfies readonly (keyof NativeStats)[];

// tsc fails here when NativeStats has a field NATIVE_STATS_FIELDS lacks.
true satisfies [Exclude<keyof NativeStats, (typeof NATIVE_STATS_FIELDS)[number]>] extends [never] ? true : never;

export type RunDump =
  | { page: number; pages: number; kind: 'free' }
  | { page: number; pages: number; kind: 'slab' | 'large'; classSize: number; live: number; capacity: number };

export interface ChunkDump {
  id: number;
  size: number;
  freePages: number;
  runs: RunDump[];
}

export interface HugeDump {
  id: number;
  /** The requested size. */
  size: number;
  mappedBytes: number;
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

/** What the allocator reports of its layout: NativePool.dump(), the part of PoolDump that comes from the addon. */
export interface NativeDump {
  pageSize: number;
  chunkSize: number;
  hugeThreshold: number;
  /** As stats().spareBytes: mapped for freed huge allocations, kept for reuse. */
  spareBytes: number;
  chunks: ChunkDump[];
  huge: HugeDump[];
  allocations: AllocationDump[];
}
