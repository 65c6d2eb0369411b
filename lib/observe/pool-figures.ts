// What a pool says of itself: stats(), dump(), the line of the process-exit
// hook and the monitor's sample. It reads the pool's memory (lib/native/),
// its counts and its block cache, and changes none of them.
//
// Who counts what the program holds: each thread counts it in JS (Counts,
// at every allocation and free; the allocator sees the cache's blocks as
// live allocations, so its own figures would be wrong). A pool of one
// thread reports its Counts; a shared pool reports every attached thread's
// summed by the addon (lib/threads/figures.ts), which its stats carry.
//
// Threads: the pool's JS thread only, like the pool.
import type { NativeSharedStats, NativeStats } from '../native/binding.js';
import type { PoolMemory } from '../native/pool-memory.js';
import { pageSize } from '../native/runtime.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { Backing, ResolvedOptions } from '../options.js';
import type { Counts } from './counts.js';
import { fixClasses, fixDump } from './dump.js';
import type { LeakTracker } from './leaks.js';
import type { PoolDump, PoolStats } from './stats.js';

type Held = Pick<PoolStats, 'usedBytes' | 'peakUsedBytes' | 'liveAllocations' | 'totalAllocations' | 'totalFrees'>;

export class PoolFigures {
  readonly #memory: PoolMemory;
  readonly #counts: Counts;
  readonly #o: ResolvedOptions;
  readonly #backing: Backing;
  readonly #leaks: LeakTracker | undefined;

  constructor(memory: PoolMemory, counts: Counts, o: ResolvedOptions, backing: Backing, leaks: LeakTracker | undefined) {
    this.#memory = memory;
    this.#counts = counts;
    this.#o = o;
    this.#backing = backing;
    this.#leaks = leaks;
  }

  /** Pool.stats(): `cache` is the pool's block cache (undefined when it has none, or is closed). */
  stats(cache: BlockCache | undefined, closed: boolean): PoolStats {
    const o = this.#o;
    const n = this.#memory.stats();
    const cachedBytes = cache !== undefined ? fixClasses(cache, n.classes) : 0;
    n.allocatedBytes -= cachedBytes;
    return {
      name: o.name, backing: this.#backing, guard: o.guard, secure: o.secure, closed,
      pageSize, chunkSize: o.chunkSize, hugeThreshold: o.hugeThreshold, maxBytes: o.maxBytes,
      ...n,
      ...this.#held(n),
      cachedBytes,
    };
  }

  /** Pool.dump(): allocations as the program made them, with where each was made when leak detection knows. */
  dump(cache: BlockCache | undefined, closed: boolean): PoolDump {
    const raw = this.#memory.dump();
    if (cache !== undefined) fixDump(cache, raw, performance.now());
    if (this.#leaks !== undefined) {
      for (const a of raw.allocations) {
        const stack = this.#leaks.stackOf(a.serial);
        if (stack !== undefined) a.createdAt = stack;
      }
    }
    return { name: this.#o.name, backing: this.#backing, closed, ...raw };
  }

  /** The bytes the program holds, for the monitor's samples (no whole stats() per sample). */
  usedBytes(): number {
    return this.#memory.shared === undefined ? this.#counts.used : (this.#memory.stats() as NativeSharedStats).usedBytes;
  }

  /** The process-exit hook's line for an open pool: undefined when nothing is held (or leak detection is off). */
  exitReport(): string | undefined {
    if (this.#o.leakDetection === 'disabled') return undefined;
    // A shared pool's allocations are every thread's: the last one attached reports them.
    const whole = this.#memory.shared !== undefined ? this.#memory.stats() as NativeSharedStats : undefined;
    if (whole !== undefined && whole.attachments !== 1) return undefined;
    const live = whole !== undefined ? whole.liveAllocations : this.#counts.live;
    if (live === 0) return undefined;
    const used = whole !== undefined ? whole.usedBytes : this.#counts.used;
    return `mmap-pool: pool "${this.#o.name}" still holds ${live} allocation(s) (${used} bytes) at exit; ` +
      `free or release them, or set leakDetection: 'paranoid' to learn where they were made`;
  }

  #held(n: NativeStats): Held {
    const c = this.#counts;
    if (this.#memory.shared === undefined) {
      return { usedBytes: c.used, peakUsedBytes: c.peak, liveAllocations: c.live, totalAllocations: c.allocs, totalFrees: c.frees };
    }
    const { usedBytes, peakUsedBytes, liveAllocations, totalAllocations, totalFrees } = n as NativeSharedStats;
    return { usedBytes, peakUsedBytes, liveAllocations, totalAllocations, totalFrees };
  }
}
