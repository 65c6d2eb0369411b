// The native addon's interface, and its loader. Nothing here is public API:
// lib/pool.ts validates every argument before it reaches these functions.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import load from 'node-gyp-build';
import type { NativeDump, NativeStats } from './shapes.js';

export type { NativeDump, NativeStats } from './shapes.js';

/**
 * Results of the native calls (alloc::Status in native/alloc/arena.h, where
 * each is explained); test/binding.test.ts compares it with the addon's.
 */
export const NativeStatus = {
  Ok: 0,
  SegmentReleased: 1,
  DoubleFree: -1,
  Foreign: -2,
  Exhausted: -3,
  MapFailed: -4,
  Closed: -5,
  /** alloc(): a size over maxBytes (lib/ checks sizes first). */
  TooLarge: -6,
  /** refill(..., mayMap false): only a new chunk has room (never reaches a user: the pool asks again). */
  NeedsChunk: -7,
  /** alloc(): align above the page size (lib/ checks align first). */
  BadAlign: -8,
  /** retain(): the reference count is at 2^32 - 1. */
  CountFull: -9,
} as const;


export interface NativePoolOptions {
  backing: 'anonymous' | 'file' | 'heap';
  dir: string;
  chunkSize: number;
  hugeThreshold: number;
  maxBytes: number;
  /** Lock in RAM, keep out of core dumps, guard page after each mapping, wipe on free. */
  secure: boolean;
  /** Map with transparent huge pages asked for (2 MiB-aligned, MADV_HUGEPAGE); a no-op where unsupported. */
  hugePages: boolean;
  /** Fault every page of a new mapping in at once (MADV_POPULATE_WRITE, or a write per page). */
  prefault: boolean;
  /** heap backing only: makes the memory of a new segment. */
  heapFactory?: (size: number) => ArrayBuffer;
  /**
   * heap backing only: moves a given-back segment's memory to an ArrayBuffer
   * kept until `buffer` is collected, detaching `buffer`; never calls the pool.
   */
  heapRetire?: (buffer: ArrayBuffer) => void;
}

export interface NativePool {
  /**
   * A handle (>= 0) or a negative NativeStatus. `serial` (1 .. 2^53 - 1) names the
   * allocation; `align` (power of two up to the page size, 0 for none).
   * With `mayMap` false (default true), NeedsChunk instead of a new chunk.
   */
  alloc(size: number, zero: boolean, serial: number, align: number, mayMap?: boolean): number;
  /**
   * Block cache (lib/cache/transfers.ts): the array refill() and flush() read and
   * write from now on (held by the pool); false for anything but a
   * Float64Array. Handing it over once keeps those calls to plain numbers.
   */
  setScratch(array: Float64Array): boolean;
  /**
   * Block cache: first frees the `nflush` cached blocks given as (handle,
   * class size) pairs in scratch[0 .. 2 * nflush), then allocates up to
   * `count` blocks of class size `size`, not zeroed, under serial 0; their
   * handles in scratch[0..n). Returns n >= 1, 0 when `count` is 0, or a
   * negative NativeStatus when no block could be had: NeedsChunk when
   * `mayMap` is false and only a new chunk would have room. `aged`: bytes
   * the cache handed out since the last refill, which age the allocator's
   * idle chunks as its own allocations do.
   */
  refill(size: number, count: number, nflush: number, mayMap: boolean, aged: number): number;
  /** Frees n cached blocks given as (handle, class size) pairs in scratch[0 .. 2n); returns how many were refused (0). */
  flush(n: number): number;
  /** NativeStatus: Ok, SegmentReleased (a huge mapping went) or an error. */
  free(segment: number, offset: number, length: number, serial: number): number;
  /** The new count, or a negative NativeStatus. */
  retain(segment: number, offset: number, length: number, serial: number): number;
  /** The count left (0: freed), or a negative NativeStatus. */
  release(segment: number, offset: number, length: number, serial: number): number;
  refCount(segment: number, offset: number, length: number, serial: number): number;
  /**
   * The ArrayBuffer over a live segment; null when the runtime refuses
   * external ArrayBuffers, undefined if there is no such segment or it cannot be made.
   */
  segment(id: number): ArrayBuffer | null | undefined;
  /** An ArrayBuffer of its own over one allocation (guarded pools); undefined on failure. */
  view(segment: number, offset: number, length: number): ArrayBuffer | undefined;
  /** Detaches an ArrayBuffer; true when it is detached now. */
  detach(buffer: ArrayBuffer): boolean;
  /**
   * True when segment `id`'s ArrayBuffer was detached by someone else (a
   * web byte stream, ArrayBuffer.prototype.transfer()), now or before: the
   * allocator places nothing there again, its live allocations can still be
   * freed, and its memory stays mapped for the new owner. False otherwise
   * (no such segment, or one this pool detached). A guarded pool's segments
   * have no ArrayBuffer of their own: `guarded`, an allocation's own
   * ArrayBuffer found detached, stands for it.
   */
  lose(id: number, guarded?: ArrayBuffer): boolean;
  /** [offset, length] of the live allocation under `serial` in lost segment `id` (its views are detached), or undefined. */
  findLost(id: number, serial: number): [number, number] | undefined;
  reset(): void;
  trim(): number;
  /** Hands the pages of spare huge mappings not yet decayed to the OS lazily (MADV_FREE); returns how many spares it did or released. */
  decay(): number;
  stats(): NativeStats;
  /** Bytes mapped now for chunks and live huge allocations: mappedBytes less spareBytes (spares go back before maxBytes would be passed). */
  mapped(): number;
  /** Chunks with their runs, huge mappings and live allocations, as the allocator sees them. */
  dump(): NativeDump;
  close(): void;
  lastError(): { errno: number; syscall: string };
}

/** A shared pool's stats(): NativeStats and the program's counts, every attachment's summed (lib/threads/figures.ts). */
export interface NativeSharedStats extends NativeStats {
  usedBytes: number;
  peakUsedBytes: number;
  liveAllocations: number;
  totalAllocations: number;
  totalFrees: number;
  /** The threads attached now. */
  attachments: number;
}

/**
 * One thread's attachment to a shared pool (native/addon/shared_pool_wrap.h):
 * NativePool's calls over one allocator that every attached thread uses
 * (refill and flush serve this attachment's block cache), and these.
 */
export interface NativeSharedPool extends NativePool {
  stats(): NativeSharedStats;
  /** 0, or the negative NativeStatus that refused `{ attach, token }`: Closed (the pool ended) or Foreign. */
  attachStatus(): number;
  /** What a PoolHandle carries, and the options the pool was made with; undefined when never attached. */
  info(): { id: number; token: string; description: string; attachments: number } | undefined;
  /** The first of `n` serials unique in this pool across its threads. */
  serials(n: number): number;
  /** [share id, check] for one more reference of the allocation, or a negative NativeStatus. */
  share(segment: number, offset: number, length: number, serial: number): [number, string] | number;
  /** [segment, offset, length, serial] of a shared allocation, its reference now the caller's; or a negative NativeStatus. */
  adopt(shareId: number, check: string): [number, number, number, number, number] | number;
  /**
   * The cached block at (segment, offset) of class size `classSize` leaves
   * this attachment's cache: it becomes the allocation of `length` bytes
   * under `serial` with `count` references. A NativeStatus.
   */
  promote(segment: number, offset: number, classSize: number, serial: number, length: number, count: number): number;
  /** This attachment's counts, which every thread's stats() sums (lib/threads/figures.ts); undefined if no ArrayBuffer could be made. */
  figures(): Float64Array | undefined;
  /** Gives back the frees deferred in figures()' batch (lib/native/free-batch.ts); returns the entries refused as double frees (0 after a reset: SharedPool::DrainFrees). */
  flushFrees(): number;
}

/** new SharedPool(): a new shared pool, or an attachment to pool `attach`. */
export type NativeSharedPoolOptions =
  | (Omit<NativePoolOptions, 'heapFactory' | 'heapRetire'> & { description: string })
  | { attach: number; token: string };

export interface Binding {
  NativePool: new (options: NativePoolOptions) => NativePool;
  SharedPool: new (options: NativeSharedPoolOptions) => NativeSharedPool;
  pageSize: number;
  mapGranularity: number;
  /** The addon's own values of what lib/native/ writes down as constants (test/binding.test.ts compares them). */
  contract: { handleSpan: number; status: Record<string, number>; statsFields: string[] };
  /** The allocator's class sizes up to 64 KiB, ascending (index = class index). */
  classSizes: number[];
  /** The largest small (slab) class; larger classes are runs of whole pages. */
  smallMax: number;
  /** False where the runtime refuses external ArrayBuffers (or MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS=1). */
  externalBuffersAllowed(): boolean;
  /** True the first time it is called with `key` in this process (all threads together). */
  claimOnce(key: string): boolean;
  /** glibc's mallopt M_TRIM_THRESHOLD / M_MMAP_THRESHOLD (0: leave as is); false where the C library has neither. */
  tuneHeap(trimBytes: number, mmapBytes: number): boolean;
}

// lib/native/ (sources, under vitest) or dist/lib/native/ (compiled): the
// package root is the nearest parent holding package.json.
function packageRoot(): string {
  let dir = join(__dirname, '..', '..');
  if (!existsSync(join(dir, 'package.json'))) dir = join(dir, '..');
  return dir;
}

export const binding: Binding = load(packageRoot()) as Binding;
