// BlockCache: free blocks of the classes up to 64 KiB, kept on the JS side so
// that most allocations and frees never cross into native code (the idea of
// jemalloc's thread cache and Netty's PoolThreadCache).
//
//   native Arena                       BlockCache (one per pool; not for guard/secure)
//   ┌──────────────────────┐  refill   ┌───────────────────────────────────────────────┐
//   │ blocks of class c,   │ ────────> │ stack: one Int32Array; class c's free ids at  │
//   │ allocated with the   │  (batch)  │   base[c] .. base[c] + top[c], next out last  │
//   │ cache's serial 0     │ <──────── │ pending: ids going back with the next call    │
//   └──────────────────────┘  (pending │ per block id k (typed arrays, grown by 2x):   │
//                              rides   │   seg[k] off[k] cls[k]   where it is          │
//                              along)  │   serial[k]  0 = free in the cache, else the  │
//                                      │              serial of the Buffer holding it  │
//                                      │   size[k] refs[k] born[k]   that allocation   │
//                                      │   flags[k]  TRACKED, RETAINED (0: neither)    │
//                                      └───────────────────────────────────────────────┘
//
// To the allocator every block here is one live allocation, whether it sits
// in a stack or is handed out; this class keeps what it knows of the
// handed-out ones, and Pool.stats() / dump() take the free ones out of the
// allocator's figures (lib/observe/dump.ts). A Buffer handed out from the cache
// carries k and its serial; free(buf) accepts it when serial[k] still equals
// its serial. A stale Buffer (freed, reset, or its block flushed and reused)
// fails that check and goes the slow way, to the allocator, which refuses it.
//
// Where blocks sit matters as much as how many are kept (docs/design.md,
// "Cache placement"): the allocator fills memory from
// the bottom so that the highest chunk empties and can go back, and a cache
// that hands the last freed block out again defeats that. So:
//   - when blocks of this cache sit in more than 2 * DRAIN_DEPTH segments, a
//     freed block in a segment whose id is within DRAIN_DEPTH of the highest
//     such id is not kept but goes back to the allocator (chunks get ids from
//     the lowest free id up, and the allocator fills the lowest ids first,
//     so these are the chunks that can empty);
//   - the classes from 4 KiB up (slabs of four slots, and page runs; see
//     lib/cache/classes.ts) keep their stacks in address order: the lowest
//     block is handed out first, the highest given back first when full;
//   - blocks going back wait in `pending` and ride along with the next
//     refill (one native call gives back and brings), or go on their own
//     once PENDING_MAX wait;
//   - a refill (and any allocation of the pool) asks the allocator not to
//     map a new chunk: when only a new chunk has room, the pool gives every
//     free block back and asks again (lib/pool.ts), and the allocator lets
//     its empty slabs go first;
//   - each refill reports about how many bytes the cache handed out since
//     the last one (#served()): the allocator gives an idle chunk back after
//     two chunks' worth of allocation without it, and the allocations served
//     here never reach it.
//
// A segment someone else took (a web byte stream detached its ArrayBuffer)
// is lost (lose()): its free blocks go back to the allocator, which places
// nothing there again, and each of its blocks handed out has seg[k] = LOST,
// so that its free() sends it back too (push() sees it as drained). take()
// finds out by the view it cannot build over the detached ArrayBuffer.
import type { NativePool } from '../native/binding.js';
import { offsetOf, segmentOf } from '../native/handle.js';
import { classTable } from './classes.js';
import { coarseClock } from '../observe/clock.js';
import { Counts } from '../observe/counts.js';
import type { Caller } from '../errors.js';
import type { LeakTracker } from '../observe/leaks.js';
import { PoolBuffer } from '../buffers/pool-buffer.js';
import { nextSerial } from '../buffers/serials.js';

// What the fast path calls, as module constants: an imported binding is a
// property of another module's exports object, read at every use.
const Buf = PoolBuffer;
const newSerial = nextSerial;
const clock = coarseClock;

/** Freed blocks in the segments whose ids are within this many of the highest holding cached blocks go back to the allocator. */
const DRAIN_DEPTH = 2;
/** Blocks waiting to go back, at most: more, and they go at once. */
const PENDING_MAX = 64;
/** Initial length of the per-block tables; trim() (everything flushed, nothing held) shrinks them back to it. */
const INITIAL_BLOCKS = 8;
/** BlockCache.gap while leak detection is off (a small integer: counting down from it takes 2^30 allocations). */
const NEVER = 0x3fffffff;
/** BlockCache.flags bits. */
const TRACKED = 1;
const RETAINED = 2;
/** #drainFrom when no segment is drained (a small integer, above every segment id). */
const NONE = 0x3fffffff;

/** What a BlockCache needs of its pool's memory (lib/native/pool-memory.ts PoolMemory). */
export interface CacheMemory {
  readonly native: NativePool;
  readonly segments: (ArrayBuffer | undefined)[];
  /** True when segment `id` is lost (someone else detached its ArrayBuffer), now marked so. */
  lose(id: number): boolean;
}

/** seg[k] of a handed-out block of a lost segment: not below #drainFrom, so its free gives it back. */
const LOST = NONE;

export class BlockCache {
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
  /** Blocks the next refill of each class asks for: from 2, doubling up to the table's batch. */
  readonly #fill: number[];
  // Per block id.
  seg = new Int32Array(INITIAL_BLOCKS);
  off = new Int32Array(INITIAL_BLOCKS);
  cls = new Uint8Array(INITIAL_BLOCKS);
  serial = new Float64Array(INITIAL_BLOCKS);
  size = new Int32Array(INITIAL_BLOCKS);
  /** The reference count: 1 for every block, free or handed out, whose flags lack RETAINED. */
  refs = new Uint32Array(INITIAL_BLOCKS);
  born = new Float64Array(INITIAL_BLOCKS);
  /**
   * TRACKED while the block's allocation is tracked by the leak detector
   * (which is then told of its free); RETAINED once it was retained (its
   * count goes back to 1 on free). 0, the common case, is all freeBlock()
   * reads, so that an allocation need not write its count.
   */
  flags = new Uint8Array(INITIAL_BLOCKS);
  /** The block's handle (segment * 2^30 + offset): its address, which orders the ordered stacks. */
  addr = new Float64Array(INITIAL_BLOCKS);
  /** Ids not naming a block: a stack, and the high-water mark of ids ever used. */
  #idle = new Int32Array(INITIAL_BLOCKS);
  #idleTop = 0;
  #ids = 0;
  /** Blocks held from the allocator (free, pending or handed out). */
  #held = 0;
  /** Blocks held by segment id; how many segments hold any; the highest that does (-1: none). */
  #segHeld = new Int32Array(INITIAL_BLOCKS);
  #segs = 0;
  #topSeg = -1;
  /** A freed block in this segment or above goes back to the allocator (NONE: none does). */
  #drainFrom = NONE;
  /** Free blocks to give back with the next native call: pending[0 .. pendingTop). */
  #pending = new Int32Array(PENDING_MAX);
  #pendingTop = 0;
  /** counts.allocs at the last refill (#served()). */
  #allocsSeen = 0;
  readonly #native: NativePool;
  /**
   * Handles crossing to and from the allocator, handed to it once
   * (NativePool.setScratch): room for the largest refill batch and for
   * PENDING_MAX (handle, class size) pairs.
   */
  readonly #scratch: Float64Array;
  /** The ArrayBuffer of each segment, by id (the pool memory's). */
  readonly segments: (ArrayBuffer | undefined)[];
  /** The pool's counts: take() and freeBlock() count there (a Counts of its own for a cache on its own, as in tests). */
  readonly counts: Counts;
  /** The pool's leak tracker; undefined when leak detection is disabled (set by watch()). */
  leaks: LeakTracker | undefined;
  /**
   * Allocations until the leak detector samples the next one: counted down
   * here, on the fast path, so that an allocation it does not sample makes
   * no call (NEVER while leak detection is off).
   */
  gap = NEVER;
  /** Segments refill() brought blocks of that have no live ArrayBuffer in `segments`: the pool exposes them (and empties this). */
  readonly unexposed: number[] = [];
  readonly #memory: CacheMemory;

  /**
   * `memory`: the pool's memory (lib/native/pool-memory.ts), which this
   * cache takes blocks from and gives them back to. `classSizes`: the
   * allocator's class sizes, ascending; the cache serves those <= `limit`.
   */
  constructor(memory: CacheMemory, classSizes: readonly number[], limit: number, chunkSize: number, counts = new Counts()) {
    this.#memory = memory;
    this.counts = counts;
    this.#native = memory.native;
    this.segments = memory.segments;
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
    this.#scratch = new Float64Array(Math.max(2 * PENDING_MAX, ...t.batch));
    if (!this.#native.setScratch(this.#scratch)) throw new Error('NativePool refused the block cache\'s scratch array');
  }

  // The fast path: take() and freeBlock() (after PoolBuffer.liveBlock()) are
  // what alloc() and free() run for a cached size. They are kept small, with plain fields,
  // so that V8 can inline the whole of alloc() and free() into a caller's
  // loop within its inlining budget (docs/design.md, "The JS fast path").

  /**
   * A block of `size`'s class (an integer 1 .. maxSize) for a new
   * allocation of `size` bytes, with a new serial: returns its id, or -1
   * when the class's stack is empty (the pool refills it, a slow path of
   * its own, and asks again). The caller counts the allocation.
   */
  claim(size: number): number {
    const c = this.binOf[(size + 15) >>> 4];
    const top = this.top;
    const t = top[c];
    if (t === 0) return -1;
    // pop(), written out (one call less for V8's inlining budget).
    const k = this.stack[this.base[c] + (top[c] = t - 1)];
    this.serial[k] = newSerial();
    this.size[k] = size;
    this.born[k] = clock.now;
    return k;
  }

  /**
   * alloc()'s fast path: a PoolBuffer of `size` bytes over a block of its
   * class, or undefined when this cache does not serve `size` (anything but
   * an integer 1 .. maxSize) or has no free block of its class (serves()
   * tells the two apart).
   */
  take(size: number, caller: Caller): PoolBuffer | undefined {
    if (!(typeof size === 'number' && (size | 0) === size && size > 0 && size <= this.maxSize)) return undefined;
    // claim(), written out (one call less for V8's inlining budget, which
    // the check of the segment's ArrayBuffer below needs).
    const c = this.binOf[(size + 15) >>> 4];
    const top = this.top;
    const t = top[c];
    if (t === 0) return undefined;
    const k = this.stack[this.base[c] + (top[c] = t - 1)];
    const serial = (this.serial[k] = newSerial());
    this.size[k] = size;
    this.born[k] = clock.now;
    const ab = this.segments[this.seg[k]] as ArrayBuffer;
    // Detached: someone else took the segment (retake()).
    if (ab.byteLength === 0) return this.retake(k, size, caller);
    const view = new Buf(ab, this.off[k], size, k, serial);
    // Counts.count(), written out: one call less keeps alloc() within V8's inlining budget.
    const n = this.counts;
    n.allocs++;
    const used = (n.used += size);
    if (used > n.peak) n.peak = used;
    // track(), written out: a call more would take the fast path past V8's inlining budget.
    if (--this.gap === 0) this.sample(k, view, caller);
    return view;
  }

  /** Whether this cache serves allocations of `size` (an integer 1 .. maxSize). */
  serves(size: unknown): size is number {
    return typeof size === 'number' && (size | 0) === size && size > 0 && size <= this.maxSize;
  }

  /** The class of the sizes `size` (served) falls in. */
  classOf(size: number): number {
    return this.binOf[(size + 15) >>> 4];
  }

  /** Takes back block `k`, claimed and neither counted nor tracked (its allocation failed): free again, on its stack. */
  unclaim(k: number): void {
    this.serial[k] = 0;
    this.push(k);
  }

  /**
   * Block `k`, just claimed, cannot be handed out: its segment's
   * ArrayBuffer reads byteLength 0, and building a view over it throws
   * `err`. The claim is undone; when the pool's memory finds its segment
   * lost (someone else detached its ArrayBuffer), k goes back to the
   * allocator with the segment's other free blocks, else it goes back on
   * its stack and `err` is thrown.
   */
  drop(k: number, err: unknown): void {
    this.serial[k] = 0;
    const id = this.seg[k];
    if (!this.#memory.lose(id)) {
      this.push(k);
      throw err;
    }
    this.lose(id);
    this.#defer(k);
    this.#sendPending();
  }

  // take() when block k, just claimed, lies in a segment whose ArrayBuffer
  // reads byteLength 0: drop() it and take another; or, if the segment is
  // not lost after all, throw what building a view over it throws.
  retake(k: number, size: number, caller: Caller): PoolBuffer | undefined {
    let err: unknown;
    try {
      new Buf(this.segments[this.seg[k]] as ArrayBuffer, this.off[k], size);
    } catch (e) {
      err = e;
    }
    this.drop(k, err);
    return this.take(size, caller);
  }

  /**
   * Segment `id` is lost (someone else detached its ArrayBuffer): its free
   * blocks go back to the allocator now, and each block of it handed out
   * goes back when it is freed.
   */
  lose(id: number): void {
    const stack = this.stack;
    for (let c = 0; c < this.top.length; c++) {
      const b = this.base[c];
      let t = 0;
      for (let i = 0; i < this.top[c]; i++) {
        const k = stack[b + i];
        if (this.seg[k] === id) this.#defer(k);
        else stack[b + t++] = k;
      }
      this.top[c] = t;
    }
    for (let k = 0; k < this.#ids; k++) {
      if (this.seg[k] === id && this.serial[k] !== 0) this.seg[k] = LOST;
    }
    this.#sendPending();
  }

  /** Block `k` is free again (its allocation freed or released). */
  freeBlock(k: number): void {
    if (this.flags[k] !== 0) this.#unflag(k);
    this.serial[k] = 0;
    // Counts.uncount(), written out (as in take()).
    const n = this.counts;
    n.frees++;
    n.used -= this.size[k];
    this.push(k);
  }

  // freeBlock() of a block with flags: its count back to 1, and the leak
  // detector told of the free when it tracks the allocation.
  #unflag(k: number): void {
    const f = this.flags[k];
    this.flags[k] = 0;
    this.refs[k] = 1;
    if ((f & TRACKED) !== 0) this.leaks?.freedSerial(this.serial[k]);
  }

  /** Adds a reference to the allocation in block `k` (the caller checks the count's limit): the new count. */
  retain(k: number): number {
    this.flags[k] |= RETAINED;
    return ++this.refs[k];
  }

  /** Drops a reference to the allocation in block `k`: true when it was the last (the block is free again). */
  release(k: number): boolean {
    if (this.refs[k] > 1) {
      this.refs[k]--;
      return false;
    }
    this.freeBlock(k);
    return true;
  }

  /** Uses `leaks` (undefined: none) from now on. */
  watch(leaks: LeakTracker | undefined): void {
    this.leaks = leaks;
    this.gap = leaks === undefined ? NEVER : leaks.nextGap();
  }

  /** The allocation in block `k`, handed out as `view`, for the leak detector: the one in every gap it samples. */
  track(k: number, view: ArrayBufferView, caller: Caller): void {
    if (--this.gap === 0) this.sample(k, view, caller);
  }

  /** track() of the allocation its gap ended at: tracks it, and starts the next gap. */
  sample(k: number, view: ArrayBufferView, caller: Caller): void {
    const leaks = this.leaks;
    if (leaks === undefined) {
      this.gap = NEVER;  // 2^30 allocations with leak detection off
      return;
    }
    this.gap = leaks.nextGap();
    leaks.track(view, this.size[k], this.serial[k], caller);
    this.flags[k] |= TRACKED;
  }

  /** Pops a free block of class `c`: its id, or -1 when the stack is empty. */
  pop(c: number): number {
    const t = this.top[c];
    if (t === 0) return -1;
    this.top[c] = t - 1;
    return this.stack[this.base[c] + t - 1];
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
    // (#drainFrom is NONE, above every id, when none is).
    if (t < this.#room[c] && this.seg[k] < this.#drainFrom) {
      this.stack[this.base[c] + t] = k;
      this.top[c] = t + 1;
      return;
    }
    this.#place(c, k);
  }

  // push() for the rest: a drained segment, a full stack, or an ordered
  // class (classes ascend by size, so these are the last ones).
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
      // Highest address at the bottom, lowest on top.
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
    const given = this.#pack();
    const n = this.#native.refill(this.classSize[c], want, given, mayMap, this.#served());
    if (n < 0) return n;
    this.#fill[c] = Math.min(this.#fill[c] * 2, this.#batch[c]);
    const handles = this.#scratch;
    let t = this.base[c] + this.top[c];
    const stack = this.stack;
    // Lowest address on top: a fresh slab fills from its start.
    for (let i = n - 1; i >= 0; i--) {
      const k = this.#newId();
      const h = handles[i];
      const s = segmentOf(h);
      this.seg[k] = s;
      this.off[k] = offsetOf(h);
      this.addr[k] = h;
      this.cls[k] = c;
      this.serial[k] = 0;
      this.refs[k] = 1;
      stack[t++] = k;
      if (s >= this.#segHeld.length) this.#segHeld = this.#grown(this.#segHeld, Math.max(s + 1, this.#segHeld.length * 2));
      if (this.#segHeld[s]++ === 0) {
        this.#segs++;
        if (s > this.#topSeg) this.#topSeg = s;
        // A segment the pool has no live ArrayBuffer for: the first block
        // held in it is where to find out (one held block keeps the
        // allocator from unmapping it).
        const ab = this.segments[s];
        if (ab === undefined || ab.byteLength === 0) this.unexposed.push(s);
      }
    }
    this.top[c] += n;
    if (c >= this.#firstOrdered) this.#sort(c);
    this.#held += n;
    this.#pickDrain();
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
      for (let i = 0; i < this.top[c]; i++) this.#defer(this.stack[b + i]);
      this.top[c] = 0;
    }
    this.#sendPending();
    if (this.#held === 0) this.#shrink();
  }

  /** True when the cache holds any block at all. */
  get holding(): boolean {
    return this.#held > 0;
  }

  /** True when the cache holds a free block (on a stack, or waiting to go back). */
  get holdingFree(): boolean {
    if (this.#pendingTop > 0) return true;
    for (let c = 0; c < this.top.length; c++) if (this.top[c] > 0) return true;
    return false;
  }

  /** Blocks the per-block tables have room for (they grow by doubling; flushAll() with nothing held shrinks them). */
  get tableLength(): number {
    return this.seg.length;
  }

  /** Forgets every block: the allocator has freed them all (reset). Old Buffers fail the serial check. */
  clear(): void {
    this.top.fill(0);
    this.#pendingTop = 0;
    this.#held = 0;
    this.#shrink();
  }

  /** The ids of the free blocks waiting to go back to the allocator (a view, valid until the next call). */
  pendingIds(): Int32Array {
    return this.#pending.subarray(0, this.#pendingTop);
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

  /** Block ids ever given out (every id below it names a block, or an idle id whose serial is 0). */
  get idCount(): number {
    return this.#ids;
  }

  // A freed block of a drained segment: goes back with the next native call.
  #giveBack(k: number): void {
    this.#defer(k);
    if (this.#pendingTop >= PENDING_MAX) this.#sendPending();
  }

  #defer(k: number): void {
    if (this.#pendingTop === this.#pending.length) this.#pending = this.#grown(this.#pending, this.#pending.length * 2);
    this.#pending[this.#pendingTop++] = k;
  }

  // About how many bytes the pool handed out since the last call: the
  // allocations since then, at the mean size of what is live, at most
  // maxSize each (the fast path counts allocations, not their bytes; the
  // pool's other allocations are in the count too, and a few big live ones
  // raise the mean, so idle chunks may age early, never late).
  #served(): number {
    const n = this.counts;
    const allocs = n.allocs - this.#allocsSeen;
    this.#allocsSeen = n.allocs;
    const live = n.allocs - n.frees;
    return allocs > 0 && live > 0 ? allocs * Math.min(n.used / live, this.maxSize) : 0;
  }

  // A full stack: its bottom `n` blocks (the oldest, or in an ordered class
  // the highest) go back with the next native call. Returns the new top.
  #spill(c: number, n: number): number {
    const t = this.top[c];
    const b = this.base[c];
    for (let i = 0; i < n; i++) this.#defer(this.stack[b + i]);
    this.stack.copyWithin(b, b + n, b + t);
    this.top[c] = t - n;
    if (this.#pendingTop >= PENDING_MAX) this.#sendPending();
    return t - n;
  }

  // Gives the pending blocks back on their own (no refill to ride along
  // with), PENDING_MAX per call.
  #sendPending(): void {
    while (this.#pendingTop > 0) this.#native.flush(this.#pack());
  }

  // Writes up to PENDING_MAX pending blocks as (handle, class size) pairs at
  // the start of the scratch array and forgets
  // them; returns how many. The caller's native call gives them back.
  #pack(): number {
    const n = Math.min(this.#pendingTop, PENDING_MAX);
    const out = this.#scratch;
    if (n === 0) return 0;
    const from = (this.#pendingTop -= n);
    const pending = this.#pending;
    if (this.#idle.length < this.#idleTop + n) this.#idle = this.#grown(this.#idle, Math.max(this.#idle.length * 2, this.#idleTop + n));
    for (let i = 0; i < n; i++) {
      const k = pending[from + i];
      // (From the handle: a lost segment's seg[k] is LOST.)
      const s = segmentOf(this.addr[k]);
      out[2 * i] = this.addr[k];
      out[2 * i + 1] = this.classSize[this.cls[k]];
      this.#idle[this.#idleTop++] = k;
      if (--this.#segHeld[s] === 0) {
        this.#segs--;
        if (s === this.#topSeg) {
          let top = s - 1;
          while (top >= 0 && this.#segHeld[top] === 0) top--;
          this.#topSeg = top;
        }
      }
    }
    this.#held -= n;
    this.#pickDrain();
    return n;
  }

  // The drained segments: ids from DRAIN_DEPTH below the highest holding
  // blocks of this cache up, when more than twice as many segments hold any
  // (the allocator fills the lowest ids first; with few, big chunks,
  // draining would send most frees to the allocator for little gain).
  #pickDrain(): void {
    this.#drainFrom = this.#segs > 2 * DRAIN_DEPTH ? this.#topSeg - DRAIN_DEPTH + 1 : NONE;
  }

  // Insertion sort of an ordered class's stack (after a refill): highest address at the bottom.
  #sort(c: number): void {
    const stack = this.stack;
    const b = this.base[c];
    const addr = this.addr;
    for (let i = b + 1; i < b + this.top[c]; i++) {
      const k = stack[i];
      const a = addr[k];
      let j = i;
      for (; j > b && addr[stack[j - 1]] < a; j--) stack[j] = stack[j - 1];
      stack[j] = k;
    }
  }

  #newId(): number {
    if (this.#idleTop > 0) return this.#idle[--this.#idleTop];
    const k = this.#ids++;
    if (k === this.seg.length) this.#resizeBlocks(k * 2, true);
    return k;
  }

  // Every per-block table to length n: the old contents copied (growing) or
  // not (shrinking, when no block is held); the old tables freed.
  #resizeBlocks(n: number, copy: boolean): void {
    const to = <T extends Table>(a: T): T => (copy ? this.#grown(a, n) : this.#fresh(a, n));
    this.seg = to(this.seg);
    this.off = to(this.off);
    this.cls = to(this.cls);
    this.serial = to(this.serial);
    this.size = to(this.size);
    this.refs = to(this.refs);
    this.born = to(this.born);
    this.flags = to(this.flags);
    this.addr = to(this.addr);
  }

  // No block held (nothing free here, none handed out): back to the first,
  // small tables, the big ones freed now. A stale Buffer still names its old
  // id k and serial; serial[k] is now undefined (k past the table) or 0 or a
  // later block's serial (serials are never reused), so Pool's check refuses
  // it and the allocator decides.
  #shrink(): void {
    this.#resizeBlocks(INITIAL_BLOCKS, false);
    this.#idle = this.#fresh(this.#idle, INITIAL_BLOCKS);
    this.#idleTop = 0;
    this.#ids = 0;
    this.#segHeld = this.#fresh(this.#segHeld, INITIAL_BLOCKS);
    this.#segs = 0;
    this.#topSeg = -1;
    this.#drainFrom = NONE;
    if (this.#pending.length > PENDING_MAX) this.#pending = this.#fresh(this.#pending, PENDING_MAX);
    for (let c = 0; c < this.top.length; c++) this.#fill[c] = Math.min(2, this.#batch[c]);
  }

  /** A copy of `a` with room for `n` elements; `a`'s memory is freed. */
  #grown<T extends Table>(a: T, n: number): T {
    const b = new (a.constructor as new (n: number) => T)(n);
    b.set(a);
    this.#free(a);
    return b;
  }

  /** A new zeroed table of `a`'s type and length `n`; `a`'s memory is freed. */
  #fresh<T extends Table>(a: T, n: number): T {
    this.#free(a);
    return new (a.constructor as new (n: number) => T)(n);
  }

  // The tables' memory is outside V8's heap, freed when the collector gets to
  // the old typed array: a table replaced by a bigger one, or by a small one
  // in #shrink(), is detached instead (nothing else refers to it), so its
  // memory goes back at once (and trim()'s malloc_trim finds it). Up to 64
  // bytes V8 keeps a typed array inside its heap, and asking for its buffer
  // would make one: those are left to the collector.
  #free(a: Table): void {
    if (a.byteLength > 64) this.#native.detach(a.buffer as ArrayBuffer);
  }
}

type Table = Int32Array | Uint32Array | Uint8Array | Float64Array;

