// References: free(), retain(), release(), refCount() and owns() of a
// Buffer the pool handed out, whichever way it was made. Pool.free() serves
// a live PoolBuffer of the block cache itself (the fast path); everything
// else comes here:
//
//   Pool ──> References ──> BlockCache   a live block of the cache (a typed
//                │                        array of allocTyped(), a retain())
//                └────────> PoolMemory   any other allocation, through the
//                                         allocator (lib/native/)
//
// The allocation is found from the view (locate()): its serial (a private
// tag, lib/buffers/pool-buffer.ts) and its ArrayBuffer name a handle, and
// the allocator checks (segment, offset, length, serial) exactly, so a stale
// Buffer is refused with ERR_DOUBLE_FREE and a view this pool did not hand
// out (a slice, a copy) with ERR_FOREIGN_BUFFER. A failed call changes
// nothing. What a free does to segments (a huge mapping gone, a lost chunk
// found) goes to Segments (lib/alloc/segments.ts). In a shared pool, the
// free (or last release) of a Buffer adopt() made as its allocation's only
// reference is counted here and deferred to a batch (#deferred(),
// lib/native/free-batch.ts).
//
// SlowPath makes one per pool over the same memory, cache, counts and
// leak tracker; it calls nothing above it.
//
// Threads: the pool's JS thread only, like the pool.
import { NativeStatus } from '../native/binding.js';
import { segmentOf } from '../native/handle.js';
import type { PoolMemory } from '../native/pool-memory.js';
import { statusError, type PoolDescription } from '../native/status.js';
import { closedError, invalidArgType, PoolError, withStack, type Caller } from '../errors.js';
import { blockOf, deferSole, serialOf, unsole } from '../buffers/pool-buffer.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { Counts } from '../observe/counts.js';
import type { LeakTracker } from '../observe/leaks.js';
import type { Segments } from './segments.js';

export class References {
  readonly memory: PoolMemory;
  /** Where the allocations the block cache does not hand out are counted (a shared pool: its figures). */
  readonly counts: Counts;
  readonly leaks: LeakTracker | undefined;
  /** The pool, as its errors name it. */
  readonly pool: PoolDescription;
  readonly #segs: Segments;
  #cache: BlockCache | undefined;
  #closed = false;

  constructor(memory: PoolMemory, cache: BlockCache | undefined, counts: Counts, leaks: LeakTracker | undefined,
    segs: Segments, pool: PoolDescription) {
    this.memory = memory;
    this.#cache = cache;
    this.counts = counts;
    this.leaks = leaks;
    this.#segs = segs;
    this.pool = pool;
  }

  /** The block cache: undefined for guard and secure pools, and once closed. */
  get cache(): BlockCache | undefined {
    return this.#cache;
  }

  /** True once close() has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Pool.free() of anything but a live PoolBuffer of the cache. */
  free(buf: ArrayBufferView, caller: Caller): void {
    if (!this.#closed && this.#deferred(buf)) return;
    const k = this.#cached(buf);
    if (k >= 0) {
      (this.#cache as BlockCache).freeBlock(k);
      return;
    }
    const handle = this.locate(buf, caller);
    const serial = serialOf(buf) as number;
    const length = this.memory.lengthOf(buf, handle, serial);  // before a guarded view is detached
    if (this.memory.own) this.#unguard(buf, handle, serial, caller);
    const status = this.memory.free(handle, length, serial);
    if (status === NativeStatus.SegmentReleased) {
      this.#segs.released(segmentOf(handle));
    } else if (status !== NativeStatus.Ok) {
      throw this.#statusError(status, 'free', caller);
    }
    this.#uncount(length, serial);
  }

  /** Pool.retain(): the new count. */
  retain(buf: ArrayBufferView, caller: Caller): number {
    const k = this.#cached(buf);
    if (k >= 0) {
      const cache = this.#cache as BlockCache;
      if (cache.refs[k] === 0xffffffff) throw this.#statusError(NativeStatus.CountFull, 'retain', caller);
      return cache.retain(k);
    }
    const handle = this.locate(buf, caller);
    const serial = serialOf(buf) as number;
    const count = this.memory.retain(handle, this.memory.lengthOf(buf, handle, serial), serial);
    if (count < 0) throw this.#statusError(count, 'retain', caller);
    unsole(buf);
    return count;
  }

  /** Pool.release(): true when that was the last reference. `free` is free(), which a guarded allocation's last release runs. */
  release(buf: ArrayBufferView, caller: Caller, free: Caller): boolean {
    const k = this.#cached(buf);
    if (k >= 0) return (this.#cache as BlockCache).release(k);
    if (!this.#closed && this.#deferred(buf)) return true;
    const handle = this.locate(buf, caller);
    const serial = serialOf(buf) as number;
    const segment = segmentOf(handle);
    const length = this.memory.lengthOf(buf, handle, serial);  // before a huge allocation's view is detached
    if (this.memory.own && this.memory.refCount(handle, length, serial) === 1) {
      this.free(buf, free);
      return true;
    }
    const count = this.memory.release(handle, length, serial);
    if (count < 0) throw this.#statusError(count, 'release', caller);
    if (count > 0) {
      // In a shared pool the other references may be other threads': this one is done with it.
      if (this.memory.shared !== undefined) this.leaks?.freedSerial(serial);
      return false;
    }
    // release() reports only the count: a detached segment is how a huge
    // allocation's mapping is seen to have gone.
    if (this.memory.segments[segment]?.byteLength === 0) this.#segs.released(segment);
    this.#uncount(length, serial);
    return true;
  }

  /** Pool.refCount(). */
  refCount(buf: ArrayBufferView, caller: Caller): number {
    const k = this.#cached(buf);
    if (k >= 0) return (this.#cache as BlockCache).refs[k];
    const handle = this.locate(buf, caller);
    const serial = serialOf(buf) as number;
    const count = this.memory.refCount(handle, this.memory.lengthOf(buf, handle, serial), serial);
    if (count < 0) throw this.#statusError(count, 'refCount', caller);
    return count;
  }

  /** Pool.owns(). Never throws. */
  owns(buf: unknown): boolean {
    if (this.#closed || !ArrayBuffer.isView(buf)) return false;
    if (this.#cached(buf) >= 0) return true;
    const serial = serialOf(buf);
    if (serial === undefined) return false;
    const handle = this.#find(buf, serial);
    return handle >= 0 && this.memory.refCount(handle, this.memory.lengthOf(buf, handle, serial), serial) > 0;
  }

  /**
   * Checks `buf` for free/retain/release/refCount/share and returns the
   * allocator's handle of its allocation (its serial is serialOf(buf)): not
   * for a live block of the cache, which the allocator sees as the cache's.
   * @throws TypeError ERR_INVALID_ARG_TYPE, PoolError ERR_POOL_CLOSED, ERR_DOUBLE_FREE, ERR_FOREIGN_BUFFER
   */
  locate(buf: ArrayBufferView, caller: Caller): number {
    if (!ArrayBuffer.isView(buf)) {
      throw invalidArgType('buf', 'an instance of Buffer, TypedArray, or DataView', buf, caller);
    }
    if (this.#closed) throw closedError(caller);
    const serial = serialOf(buf);
    const handle = serial !== undefined ? this.#find(buf, serial) : -1;
    if (handle >= 0) return handle;
    if (this.memory.isRetired(buf.buffer as ArrayBuffer) && serial !== undefined) throw this.#statusError(NativeStatus.DoubleFree, caller.name, caller);
    throw withStack(new PoolError('ERR_FOREIGN_BUFFER',
      `${caller.name}: this buffer was not handed out by pool "${this.pool.name}" (a slice of one, or another view of its bytes, is not accepted either)`), caller);
  }

  /** The pool closed: every later call but owns() throws ERR_POOL_CLOSED, and the cache is gone. */
  close(): void {
    this.#closed = true;
    this.#cache = undefined;
  }

  // The block id of a view handed out from the block cache and still live,
  // or -1 (anything else: the allocator decides). Its tags are private
  // fields (a PoolBuffer's, or a typed array's from allocTyped()), which no
  // copy of its properties carries.
  #cached(buf: ArrayBufferView): number {
    const cache = this.#cache;
    if (cache === undefined) return -1;
    const k = blockOf(buf);
    return k >= 0 && cache.serial[k] === serialOf(buf) ? k : -1;
  }

  // A shared pool's free() of `buf` when it is the only reference of its
  // allocation (adopt() marked it: soleBlock()), deferred
  // (PoolMemory.deferFree()): counted freed and done with now, its memory
  // given back with its batch. False when free() must do it now.
  #deferred(buf: ArrayBufferView): boolean {
    const serial = deferSole(buf, this.memory);
    if (serial < 0) return false;
    this.#uncount(buf.byteLength, serial);
    return true;
  }

  #uncount(length: number, serial: number): void {
    this.counts.uncount(length);
    if (this.leaks !== undefined) this.leaks.freedSerial(serial);
  }

  // Pools with views of their own: check that the allocation can be freed,
  // then detach its ArrayBuffer before the memory goes back.
  #unguard(buf: ArrayBufferView, handle: number, serial: number, caller: Caller): void {
    const count = this.memory.unguard(buf, handle, serial);
    if (count < 0) throw this.#statusError(count, caller.name, caller);
  }

  // The handle of the allocation `buf` (tagged `serial`) was handed out
  // for, or -1. A view of a segment someone else detached is found by its
  // serial; the block cache then gives that segment's free blocks back.
  #find(buf: ArrayBufferView, serial: number): number {
    const handle = this.memory.find(buf, serial);
    if (handle >= 0 && !this.memory.own && (buf.buffer as ArrayBuffer).byteLength === 0) this.#segs.lost(segmentOf(handle));
    return handle;
  }

  #statusError(status: number, what: string, caller: Caller): Error {
    return statusError(status, what, caller, this.pool);
  }
}
