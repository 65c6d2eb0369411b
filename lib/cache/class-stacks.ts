// ClassStacks: the block cache's free lists, one stack of block ids per
// size class, and how they fill from the allocator and empty back to it:
// refill() brings a batch, a full stack spills its bottom half, flushAll()
// gives everything back, and a freed block of a drained segment goes back
// instead of onto its stack. push() is the free side of the fast path (a
// few lines; everything else it meets is #place()); the rest of the fast
// path, take() and freeBlock(), is lib/cache/block-cache.ts. Blocks move in
// batches through lib/cache/transfers.ts; where they sit is
// lib/cache/placement.ts's.
//
//   stack (one Int32Array for all classes)
//   ┌────────────────────┬────────────────────┬─────┐
//   │ class 0            │ class 1            │ ... │   class c's free ids at
//   │ base[0] .. +top[0] │ base[1] .. +top[1] │     │   base[c] .. base[c] + top[c],
//   └────────────────────┴────────────────────┴─────┘   the next one out last
//
// Threads: the pool's JS thread only, like the pool.
import type { CacheGateway } from '../native/pool-memory.js';
import { offsetOf, segmentOf } from '../native/handle.js';
import type { Counts } from '../observe/counts.js';
import { BlockTable } from './block-table.js';
import { classTable } from './classes.js';
import { NONE, Placement, sortByAddress } from './placement.js';
import { PENDING_MAX, Transfers } from './transfers.js';

// As module constants: an imported binding is a property of another
// module's exports object, read at every use (these run on every refill,
// and on frees that fill a stack).
const sort = sortByAddress;
const MAX_PENDING = PENDING_MAX;

export class ClassStacks extends BlockTable {
  /** Class index by (size + 15) >>> 4, for sizes 1 .. maxSize. */
  readonly binOf: Uint8Array;
  /** The largest size the cache serves. */
  readonly maxSize: number;
  readonly classSize: readonly number[];
  readonly #cap: readonly number[];
  readonly #batch: readonly number[];
  /** The first class whose stack is kept in address order (all after it are too). */
  readonly #firstOrdered: number;
  // Per class c: its free ids are stack[base[c] .. base[c] + top[c]), the
  // next one out last, at most cap[c] of them. One array holds every
  // class's stack, so that the stacks of all classes share one object
  // (a stack object per class meant a cache miss or two per allocation of
  // a random size).
  readonly top: number[];
  readonly base: readonly number[];
  readonly stack: Int32Array;
  /** Per class: cap[c] for an unordered class, 0 for an ordered one: push() leaves a block to #place() from there. */
  readonly #room: readonly number[];
  /** A freed block in this segment or above goes back to the allocator (NONE: none does): Placement.drainFrom(), kept here for push(). */
  #drainFrom = NONE;
  /** Blocks the next refill of each class asks for: from 2, doubling up to the table's batch. */
  readonly #fill: number[];
  /** Blocks held from the allocator (free, pending or handed out). */
  #held = 0;
  readonly #placement = new Placement();
  readonly #moves: Transfers;
  /** The ArrayBuffer of each segment, by id (the pool memory's). */
  readonly segments: (ArrayBuffer | undefined)[];
  /** The pool's counts: take() and freeBlock() count there (a Counts of its own for a cache on its own, as in tests). */
  readonly counts: Counts;
  /**
   * Segments refill() brought blocks of that have no live ArrayBuffer in
   * `segments` (a shared pool: every segment it starts holding blocks in,
   * since another thread may have given back the one its ArrayBuffer was
   * over): the pool exposes them (and empties this).
   */
  readonly unexposed: number[] = [];
  readonly #recheck: boolean;

  /**
   * `native` gives and takes the blocks; `segments` are the pool memory's
   * ArrayBuffers. `classSizes`: the allocator's class sizes, ascending;
   * the cache serves those <= `limit`.
   */
  constructor(native: CacheGateway, segments: (ArrayBuffer | undefined)[], classSizes: readonly number[], limit: number, chunkSize: number, counts: Counts, recheck = false) {
    super(native);
    this.#recheck = recheck;
    this.counts = counts;
    this.segments = segments;
    const t = classTable(classSizes, limit, chunkSize);
    this.binOf = t.binOf;
    this.maxSize = t.maxSize;
    this.classSize = t.size;
    this.#cap = t.cap;
    this.#batch = t.batch;
    this.#firstOrdered = t.firstOrdered;
    this.top = t.size.map(() => 0);
    this.#fill = t.batch.map((b) => Math.min(2, b));
    this.base = t.base;
    this.stack = new Int32Array(t.stackLength);
    this.#room = t.room;
    this.#moves = new Transfers(native, Math.max(...t.batch), t.maxSize, counts);
  }

  /** Block `k` goes back to the allocator with the next native call. */
  protected defer(k: number): void {
    this.#moves.defer(k);
  }

  /** Pops a free block of class `c`: its id, or -1 when the stack is empty. */
  pop(c: number): number {
    const t = this.top[c];
    if (t === 0) return -1;
    this.top[c] = t - 1;
    return this.stack[this.base[c] + t - 1];
  }

  /**
   * Brings new blocks of class `c` onto its stack: 2 the first time, twice
   * as many each time after, up to the class's batch (half its capacity, at
   * most 16 KiB or 1/16 of a chunk); the blocks waiting to go back go in the
   * same native call, first. Returns how many came (their ids on top of the
   * stack), or the allocator's negative status when none did.
   */
  refill(c: number, mayMap = true): number {
    // Never more than the stack has room for (refill comes when it is empty).
    const want = Math.min(this.#fill[c], this.#cap[c] - this.top[c]);
    const n = this.#moves.refill(this.classSize[c], want, this.#pack(), mayMap);
    if (n < 0) return n;
    this.#fill[c] = Math.min(this.#fill[c] * 2, this.#batch[c]);
    const handles = this.#moves.scratch;
    let t = this.base[c] + this.top[c];
    // Lowest address on top: a fresh slab fills from its start.
    for (let i = n - 1; i >= 0; i--) {
      const h = handles[i];
      const s = segmentOf(h);
      this.stack[t++] = this.newBlock(h, s, offsetOf(h), c);
      // A segment the pool has no live ArrayBuffer for: the first block
      // held in it is where to find out (one held block keeps the
      // allocator from unmapping it).
      if (this.#placement.add(s)) {
        const ab = this.segments[s];
        if (ab === undefined || ab.byteLength === 0 || this.#recheck) this.unexposed.push(s);
      }
    }
    this.top[c] += n;
    if (c >= this.#firstOrdered) sort(this.stack, this.base[c], this.top[c], this.addr);
    this.#held += n;
    this.#drainFrom = this.#placement.drainFrom();
    return n;
  }

  /**
   * Gives every free block back to the allocator (before trim(), or to make
   * room). When no block is held any more, the tables shrink back to their
   * first size: safe at any time, since no live Buffer names a block then.
   */
  flushAll(): void {
    for (let c = 0; c < this.top.length; c++) {
      const b = this.base[c];
      for (let i = 0; i < this.top[c]; i++) this.defer(this.stack[b + i]);
      this.top[c] = 0;
    }
    this.send();
    if (this.#held === 0) this.#shrink();
  }

  /**
   * Block `k`, handed out, leaves the cache for good (a shared pool's
   * block, shared and renamed in the allocator: lib/threads/share.ts): its
   * id goes idle, so its Buffer is no longer the cache's.
   */
  forget(k: number): void {
    this.serial[k] = 0;
    this.flags[k] = 0;
    this.refs[k] = 1;
    this.#placement.remove(segmentOf(this.addr[k]));
    this.retireId(k);
    this.#held--;
    this.#drainFrom = this.#placement.drainFrom();
  }

  /** True when the cache holds any block at all. */
  get holding(): boolean {
    return this.#held > 0;
  }

  /** True when the cache holds a free block (on a stack, or waiting to go back). */
  get holdingFree(): boolean {
    if (this.#moves.pendingCount > 0) return true;
    for (let c = 0; c < this.top.length; c++) if (this.top[c] > 0) return true;
    return false;
  }

  /** Forgets every block: the allocator has freed them all (reset). Old Buffers fail the serial check. */
  clear(): void {
    this.top.fill(0);
    this.#moves.clear();
    this.#held = 0;
    this.#shrink();
  }

  /** The ids of the free blocks waiting to go back to the allocator (a view, valid until the next call). */
  pendingIds(): Int32Array {
    return this.#moves.pendingIds();
  }

  /** The ids of the free blocks this cache holds: on the stacks, and waiting to go back. */
  freeIds(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.top.length; c++) {
      for (let i = 0; i < this.top[c]; i++) out.push(this.stack[this.base[c] + i]);
    }
    for (const k of this.pendingIds()) out.push(k);
    return out;
  }

  /**
   * Takes block `k` (its serial already 0) back: onto its class's stack
   * (a full stack first gives its bottom half back), or, when it sits in a
   * drained segment, to the blocks going back to the allocator.
   */
  push(k: number): void {
    const c = this.cls[k];
    const t = this.top[c];
    // The common case, kept small (it is inlined into every free()): room
    // on the stack of an unordered class, and k not in a drained segment
    // (#drainFrom is NONE, above every id, when none is). #place() is a
    // private method, which V8 does not inline: the rare case stays out of
    // a caller's loop and its inlining budget.
    if (t < this.#room[c] && this.seg[k] < this.#drainFrom) {
      this.stack[this.base[c] + t] = k;
      this.top[c] = t + 1;
      return;
    }
    this.#place(c, k);
  }

  // push() for the rest: a drained segment, a full stack, or an ordered
  // class (classes ascend by size, so these are the last ones). Written out
  // in one body (not calls to small helpers, which V8 would inline into a
  // caller's loop ahead of the fast path itself).
  #place(c: number, k: number): void {
    if (this.seg[k] >= this.#drainFrom) {
      this.#giveBack(k);
      return;
    }
    let t = this.top[c];
    if (t === this.#cap[c]) t = this.#spill(c, t >>> 1);
    this.top[c] = t + 1;
    const stack = this.stack;
    const b = this.base[c];
    if (c >= this.#firstOrdered) {
      // Address order (lib/cache/placement.ts): highest address at the
      // bottom, lowest on top.
      const addr = this.addr;
      const a = addr[k];
      for (; t > 0; t--) {
        const j = stack[b + t - 1];
        if (addr[j] >= a) break;
        stack[b + t] = j;
      }
    }
    stack[b + t] = k;
  }

  // A freed block of a drained segment: goes back with the next native call.
  #giveBack(k: number): void {
    this.#moves.defer(k);
    if (this.#moves.pendingCount >= MAX_PENDING) this.send();
  }

  // A full stack: its bottom `n` blocks (the oldest, or in an ordered class
  // the highest) go back with the next native call. Returns the new top.
  #spill(c: number, n: number): number {
    const t = this.top[c];
    const b = this.base[c];
    for (let i = 0; i < n; i++) this.defer(this.stack[b + i]);
    this.stack.copyWithin(b, b + n, b + t);
    this.top[c] = t - n;
    if (this.#moves.pendingCount >= MAX_PENDING) this.send();
    return t - n;
  }

  // Gives the pending blocks back on their own (no refill to ride along
  // with), PENDING_MAX per call.
  protected send(): void {
    while (this.#moves.pendingCount > 0) this.#moves.flush(this.#pack());
  }

  // Up to PENDING_MAX pending blocks, written for the next native call
  // (which gives them back) and forgotten here; returns how many.
  #pack(): number {
    const end = this.#moves.pendingCount;
    const from = this.#moves.next();
    const ids = this.#moves.pending();
    const out = this.#moves.scratch;
    const n = end - from;
    for (let i = 0; i < n; i++) {
      const k = ids[from + i];
      out[2 * i] = this.addr[k];
      out[2 * i + 1] = this.classSize[this.cls[k]];
      // (From the handle: a lost segment's seg[k] is LOST.)
      this.#placement.remove(segmentOf(this.addr[k]));
      this.retireId(k);
    }
    if (n > 0) {
      this.#held -= n;
      this.#drainFrom = this.#placement.drainFrom();
    }
    return n;
  }

  // No block held (nothing free here, none handed out): back to the first,
  // small tables (a stale Buffer's old id k then has serial[k] undefined, 0
  // or a later block's: serials are never reused, so Pool's check refuses
  // it and the allocator decides).
  #shrink(): void {
    this.shrinkTables();
    this.#placement.clear();
    this.#drainFrom = NONE;
    this.#moves.clear();
    for (let c = 0; c < this.top.length; c++) this.#fill[c] = Math.min(2, this.#batch[c]);
  }

}
