// Transfers: the blocks that move between the block cache and the native
// allocator, in batches:
//
//   native Arena                       block cache
//   ┌──────────────────────┐  refill   ┌──────────────────────────────────┐
//   │ blocks of class c,   │ ────────> │ class c's stack                  │
//   │ allocated with the   │  (batch)  │                                  │
//   │ cache's serial 0     │ <──────── │ pending: ids going back with the │
//   └──────────────────────┘  (pending │ next call                        │
//                              rides   └──────────────────────────────────┘
//                              along)
//
//   - blocks going back wait in `pending` and ride along with the next
//     refill (one native call gives back and brings), or go on their own
//     once PENDING_MAX wait;
//   - a refill asks the allocator not to map a new chunk unless told it may
//     (the pool gives every free block back first: lib/alloc/slow-path.ts),
//     and the allocator lets its empty slabs go first;
//   - each refill reports about how many bytes the cache handed out since
//     the last one (#served()): the allocator gives an idle chunk back after
//     two chunks' worth of allocation without it, and the allocations served
//     by the cache never reach it.
// Handles cross in one Float64Array handed to the allocator once
// (CacheGateway.setScratch), so the calls themselves take numbers only.
//
// Threads: the pool's JS thread only, like the pool.
import type { CacheGateway } from '../native/pool-memory.js';
import type { Counts } from '../observe/counts.js';

/** Blocks waiting to go back, at most: more, and they go at once. */
export const PENDING_MAX = 64;

export class Transfers {
  /**
   * Handles crossing to and from the allocator, handed to it once: room for
   * the largest refill batch and for PENDING_MAX (handle, class size) pairs.
   */
  readonly scratch: Float64Array;
  /** Free blocks to give back with the next native call: pending[0 .. pendingTop). */
  #pending = new Int32Array(PENDING_MAX);
  #pendingTop = 0;
  /** counts.allocs at the last refill (#served()). */
  #allocsSeen = 0;
  readonly #native: CacheGateway;
  readonly #counts: Counts;
  readonly #maxSize: number;

  constructor(native: CacheGateway, maxBatch: number, maxSize: number, counts: Counts) {
    this.#native = native;
    this.#maxSize = maxSize;
    this.#counts = counts;
    this.scratch = new Float64Array(Math.max(2 * PENDING_MAX, maxBatch));
    if (!native.setScratch(this.scratch)) throw new Error('the allocator refused the block cache\'s scratch array');
  }

  /** How many blocks wait to go back. */
  get pendingCount(): number {
    return this.#pendingTop;
  }

  /** The ids of the free blocks waiting to go back (a view, valid until the next call). */
  pendingIds(): Int32Array {
    return this.#pending.subarray(0, this.#pendingTop);
  }

  /** Block `k` goes back with the next native call. */
  defer(k: number): void {
    if (this.#pendingTop === this.#pending.length) {
      const pending = new Int32Array(this.#pending.length * 2);
      pending.set(this.#pending);
      this.#pending = pending;
    }
    this.#pending[this.#pendingTop++] = k;
  }

  /**
   * Takes up to PENDING_MAX pending ids off the queue: returns `from`, the
   * index in pending() of the first of them; they are pending()[from ..
   * the pendingCount before the call). The caller writes each one's
   * (handle, class size) at 2i, 2i + 1 of `scratch` and passes their number
   * to the next refill() or flush(), before any defer().
   */
  next(): number {
    const n = Math.min(this.#pendingTop, PENDING_MAX);
    return (this.#pendingTop -= n);
  }

  /** The queue of pending ids itself (see next()). */
  pending(): Int32Array {
    return this.#pending;
  }

  /**
   * One native call: the `given` blocks written in `scratch` go back, and
   * up to `want` blocks of class size `size` come: returns how many came
   * (their handles at scratch[0 .. n)), or the allocator's negative status.
   */
  refill(size: number, want: number, given: number, mayMap: boolean): number {
    return this.#native.refill(size, want, given, mayMap, this.#served());
  }

  /** The `given` blocks written in `scratch` go back on their own (no refill to ride along with). */
  flush(given: number): void {
    this.#native.flush(given);
  }

  /** Forgets the pending blocks: the allocator freed them all (reset), or none is held. */
  clear(): void {
    this.#pendingTop = 0;
    if (this.#pending.length > PENDING_MAX) this.#pending = new Int32Array(PENDING_MAX);
  }

  // About how many bytes the pool handed out since the last call: the
  // allocations since then, at the mean size of what is live, at most
  // maxSize each (the fast path counts allocations, not their bytes; the
  // pool's other allocations are in the count too, and a few big live ones
  // raise the mean, so idle chunks may age early, never late).
  #served(): number {
    const n = this.#counts;
    const allocs = n.allocs - this.#allocsSeen;
    this.#allocsSeen = n.allocs;
    const live = n.allocs - n.frees;
    return allocs > 0 && live > 0 ? allocs * Math.min(n.used / live, this.#maxSize) : 0;
  }
}
