// Placement: where the blocks of the block cache sit, and which of them it
// keeps. This matters as much as how many are kept (docs/design.md, "Cache
// placement"): the allocator fills memory from the bottom so that the
// highest chunk empties and can go back, and a cache that hands the last
// freed block out again defeats that. So:
//   - when blocks of the cache sit in more than 2 * DRAIN_DEPTH segments, a
//     freed block in a segment whose id is within DRAIN_DEPTH of the highest
//     such id is not kept but goes back to the allocator (chunks get ids from
//     the lowest free id up, and the allocator fills the lowest ids first,
//     so these are the chunks that can empty): drainFrom();
//   - the classes from 4 KiB up (slabs of four slots, and page runs; see
//     lib/cache/classes.ts) keep their stacks in address order: the lowest
//     block is handed out first, the highest given back first when full
//     (sortByAddress() after a refill; a freed block is inserted in order
//     by ClassStacks.#place(), lib/cache/class-stacks.ts).
// The batches that carry blocks to and from the allocator are
// lib/cache/transfers.ts.
//
// Threads: the pool's JS thread only, like the pool.

/** Freed blocks in the segments whose ids are within this many of the highest holding cached blocks go back to the allocator. */
const DRAIN_DEPTH = 2;
/** drainFrom() when no segment is drained (a small integer, above every segment id). */
export const NONE = 0x3fffffff;

/** Blocks held by segment: how many segments hold any, and the highest that does. */
export class Placement {
  #held = new Int32Array(8);
  #segs = 0;
  #top = -1;

  /** A block of segment `s` is held now: true when it is the segment's first. */
  add(s: number): boolean {
    if (s >= this.#held.length) {
      const held = new Int32Array(Math.max(s + 1, this.#held.length * 2));
      held.set(this.#held);
      this.#held = held;
    }
    if (this.#held[s]++ !== 0) return false;
    this.#segs++;
    if (s > this.#top) this.#top = s;
    return true;
  }

  /** A block of segment `s` went back to the allocator. */
  remove(s: number): void {
    if (--this.#held[s] !== 0) return;
    this.#segs--;
    if (s === this.#top) {
      let top = s - 1;
      while (top >= 0 && this.#held[top] === 0) top--;
      this.#top = top;
    }
  }

  /**
   * The lowest drained segment id, or NONE: from DRAIN_DEPTH below the
   * highest segment holding blocks up, when more than twice as many
   * segments hold any (the allocator fills the lowest ids first; with few,
   * big chunks, draining would send most frees to the allocator for little
   * gain).
   */
  drainFrom(): number {
    return this.#segs > 2 * DRAIN_DEPTH ? this.#top - DRAIN_DEPTH + 1 : NONE;
  }

  /** No block is held. */
  clear(): void {
    this.#held = new Int32Array(8);
    this.#segs = 0;
    this.#top = -1;
  }
}

/** Insertion sort of an ordered stack stack[b .. b + n) (after a refill): highest address at the bottom. */
export function sortByAddress(stack: Int32Array, b: number, n: number, addr: Float64Array): void {
  for (let i = b + 1; i < b + n; i++) {
    const k = stack[i];
    const a = addr[k];
    let j = i;
    for (; j > b && addr[stack[j - 1]] < a; j--) stack[j] = stack[j - 1];
    stack[j] = k;
  }
}
