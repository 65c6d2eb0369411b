// BlockCache: free blocks of the classes up to 64 KiB, kept on the JS side so
// that most allocations and frees never cross into native code (the idea of
// jemalloc's thread cache and Netty's PoolThreadCache). This file is the
// fast path: take() and freeBlock() (with ClassStacks.push()), what alloc()
// and free() run for a cached size, a few lines each; every rare case is a
// named method (retake(), drop(), lose(), and ClassStacks' #place(),
// refill()).
//
// The cache, file by file (docs/design.md, "The free-block cache"):
//   block-cache.ts   the fast path, leak sampling, lost segments
//   class-stacks.ts  the per-class free lists: refill, spill, flush
//   transfers.ts     the batches to and from the allocator, and aging
//   placement.ts     where blocks sit: drained segments, address order
//   block-table.ts   what is known of each block, by id
//   classes.ts       which classes, how many blocks each keeps and brings
//
// To the allocator every block here is one live allocation, whether it sits
// in a stack or is handed out; Pool.stats() / dump() take the free ones out
// of the allocator's figures (lib/observe/dump.ts). A Buffer handed out from
// the cache carries k and its serial; free(buf) accepts it when serial[k]
// still equals its serial. A stale Buffer (freed, reset, or its block
// flushed and reused) fails that check and goes the slow way, to the
// allocator, which refuses it.
//
// A segment someone else took (a web byte stream detached its ArrayBuffer)
// is lost (lose()): its free blocks go back to the allocator, which places
// nothing there again, and each of its blocks handed out has seg[k] = LOST,
// so that its free() sends it back too (push() sees it as drained). take()
// finds out by the view it cannot build over the detached ArrayBuffer.
//
// Threads: the pool's JS thread only, like the pool; a shared pool's
// attachment has one of its own (lib/threads/share.ts says how a block
// leaves it for another thread).
import type { CacheGateway } from '../native/pool-memory.js';
import { ClassStacks } from './class-stacks.js';
import { LOST, RETAINED, TRACKED } from './block-table.js';
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

/** BlockCache.gap while leak detection is off (a small integer: counting down from it takes 2^30 allocations). */
const NEVER = 0x3fffffff;

/** What a BlockCache needs of its pool's memory (lib/native/pool-memory.ts PoolMemory). */
export interface CacheMemory extends CacheGateway {
  readonly segments: (ArrayBuffer | undefined)[];
  /** True when segment `id` is lost (someone else detached its ArrayBuffer), now marked so. */
  lose(id: number): boolean;
  /** Set for a shared pool's attachment (other threads may give segments back). */
  readonly shared?: unknown;
}

export class BlockCache extends ClassStacks {
  /** The pool's leak tracker; undefined when leak detection is disabled (set by watch()). */
  leaks: LeakTracker | undefined;
  /**
   * Allocations until the leak detector samples the next one: counted down
   * here, on the fast path, so that an allocation it does not sample makes
   * no call (NEVER while leak detection is off). The allocations this cache
   * does not hand out have their own countdown in LeakTracker (lib/observe/
   * leaks.ts), which says why the two are not one; both draw their lengths
   * from LeakTracker.nextGap(), the one source of the sampling rate.
   */
  gap = NEVER;
  readonly #memory: CacheMemory;

  /**
   * `memory`: the pool's memory (lib/native/pool-memory.ts), which this
   * cache takes blocks from and gives them back to. `classSizes`: the
   * allocator's class sizes, ascending; the cache serves those <= `limit`.
   */
  constructor(memory: CacheMemory, classSizes: readonly number[], limit: number, chunkSize: number, counts = new Counts()) {
    super(memory, memory.segments, classSizes, limit, chunkSize, counts, memory.shared !== undefined);
    this.#memory = memory;
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
    this.defer(k);
    this.send();
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
        if (this.seg[k] === id) this.defer(k);
        else stack[b + t++] = k;
      }
      this.top[c] = t;
    }
    for (let k = 0; k < this.idCount; k++) {
      if (this.seg[k] === id && this.serial[k] !== 0) this.seg[k] = LOST;
    }
    this.send();
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
}
