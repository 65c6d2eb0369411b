// What the program holds of one pool, counted where every allocation and
// free passes: by Pool on the slow path and by its BlockCache on the fast
// path, in this one object they share. (The allocator's own count sees a
// cached block as one allocation from when it enters the cache to when it
// leaves it, which is not what the program holds.)
export class Counts {
  /** Allocations ever made (stats().totalAllocations). */
  allocs = 0;
  /** Frees ever made, release() to zero included (stats().totalFrees). */
  frees = 0;
  /** Sum of the requested sizes of live allocations (stats().usedBytes). */
  used = 0;
  /** The highest `used` has been (stats().peakUsedBytes). */
  peak = 0;
  /** Allocations that ended with close(), freed by none. */
  closed = 0;

  /** Allocations live now (stats().liveAllocations). */
  get live(): number {
    return this.allocs - this.frees - this.closed;
  }

  /** reset(): every live allocation freed. */
  freeAll(): void {
    this.frees = this.allocs - this.closed;
    this.used = 0;
  }

  /** close(): every live allocation ended, not freed. */
  closeAll(): void {
    this.closed += this.live;
    this.used = 0;
  }

  /** An allocation of `size` bytes was made. */
  count(size: number): void {
    this.allocs++;
    if ((this.used += size) > this.peak) this.peak = this.used;
  }

  /** An allocation of `size` bytes was freed. */
  uncount(size: number): void {
    this.frees++;
    this.used -= size;
  }
}
