// SlowPath: every allocation and free of a pool that goes through the
// native allocator, and what keeps the pool's memory in step with the
// ArrayBuffers over it. The Pool owns one and sends here what its fast path
// (lib/cache/block-cache.ts take() and freeBlock()) does not serve:
//
//   Pool ──> SlowPath ──> PoolMemory (lib/native/) ──> the addon
//              ├───────> BlockCache (refill, flush, lose)
//              └───────> Segments (lost, released, swept; the pressure check)
//
// It calls nothing above it: results come back as return values, and the
// events it causes go out through the pool's PressureWatch and LeakTracker.
//
// Every allocation gets a serial number, kept by the allocator and recorded
// on the view (a private field of PoolBuffer; a tag on the typed arrays of
// allocTyped), which free() checks (lib/alloc/references.ts).
//
// User code can run in the middle of an allocation: a 'pressure' listener,
// an options getter, valueOf(), a typed array's constructor. So no step of
// an allocation hands values to the next through a field, and the event
// comes last, once the Buffer is built, counted and tracked; after it (and
// after a constructor) the allocation checks that it survived (survived()):
// a listener that closed the pool gets the caller ERR_POOL_CLOSED, one that
// reset it makes the allocation start again. A failure after memory was
// taken gives the memory back.
//
// A chunk's ArrayBuffer detached by someone else takes the whole chunk with
// it: found where a view would be built over it (BlockCache.take(),
// reserve(), refill(), allocTyped()) or seen detached (trim(), reset(),
// free() of one of its views), the segment is lost (lib/alloc/segments.ts).
//
// Frees, reference counts and owns() of a Buffer are References'
// (lib/alloc/references.ts), which this makes over the same memory, cache
// and counts. A shared pool (`shared: true`): its memory is this thread's
// attachment (lib/threads/), with a block cache of its own whose counts,
// like the others, live where every thread's stats() sums them (lib/threads/
// figures.ts).
//
// Threads: the pool's JS thread only, like the pool; a shared pool's
// allocator is every attached thread's.
import type { Buffer } from 'node:buffer';

import { NativeStatus } from '../native/binding.js';
import { offsetOf, segmentOf } from '../native/handle.js';
import { PoolMemory } from '../native/pool-memory.js';
import { classSizes } from '../native/runtime.js';
import { statusError, type PoolDescription } from '../native/status.js';
import { closedError, mapFailed, withStack, type Caller } from '../errors.js';
import { PoolBuffer, tagView } from '../buffers/pool-buffer.js';
import { BlockCache } from '../cache/block-cache.js';
import { startCoarseClock, tick } from '../observe/clock.js';
import type { Backing, ResolvedOptions } from '../options.js';
import type { LeakTracker } from '../observe/leaks.js';
import type { PressureWatch } from '../observe/pressure.js';
import { Segments } from './segments.js';
import { References } from './references.js';
import { sharedNative } from '../threads/attach.js';
import { CACHE_HALF, FigureCounts, OTHER_HALF } from '../threads/figures.js';
import type { Counts } from '../observe/counts.js';

export class SlowPath {
  readonly memory: PoolMemory;
  /** memory.segments: ArrayBuffer of each live segment, by id. */
  readonly segments: (ArrayBuffer | undefined)[];
  /** guard or secure: every allocation has an ArrayBuffer of its own. */
  readonly own: boolean;
  readonly counts: Counts;
  /** free(), retain(), release(), refCount() and owns() of the pool's Buffers. */
  readonly refs: References;
  #cache: BlockCache | undefined;
  readonly #leaks: LeakTracker | undefined;
  /** What becomes of segments: lost, released, swept; and the pressure check. */
  readonly #segs: Segments;
  readonly #describe: PoolDescription;
  #closed = false;
  /** reset() calls so far: an allocation that sees it change while user code ran was freed under it. */
  #resets = 0;

  /**
   * Maps nothing yet: makes the pool's memory gateway (`backing`, which
   * may differ from o.backing) and, unless `guard` or `secure`, its block
   * cache. `leaks` and `pressure` are the pool's; `counts` what the pool
   * counts with (a shared pool's are the attachment's figures instead).
   */
  constructor(o: ResolvedOptions, backing: Backing, counts: Counts, leaks: LeakTracker | undefined, pressure: PressureWatch) {
    const own = o.guard || o.secure;
    const native = {
      backing,
      dir: o.dir,
      chunkSize: o.chunkSize,
      hugeThreshold: o.hugeThreshold,
      maxBytes: o.maxBytes,
      secure: o.secure,
      hugePages: o.hugePages,
      prefault: o.prefault,
    };
    // A shared pool: this thread's attachment (lib/threads/).
    const memory = new PoolMemory(native, own, o.shared ? sharedNative(o, native) : undefined);
    // A free() deferred and refused later cannot throw: say so (docs/threads.md).
    memory.onRefusedFrees = (refused) => process.emitWarning(
      `pool "${o.name}": ${refused} deferred free() call(s) of this thread were refused when their batch went back: ` +
      'the allocation had been freed first through another view, or by a reset in another thread (a double free)',
      { code: 'MMAP_POOL_DOUBLE_FREE' });
    this.memory = memory;
    this.segments = memory.segments;
    this.own = own;
    const figures = memory.figures();
    this.counts = figures !== undefined ? new FigureCounts(figures, OTHER_HALF) : counts;
    this.#leaks = leaks;
    if (!own) {
      const cacheCounts = figures !== undefined ? new FigureCounts(figures, CACHE_HALF) : counts;
      this.#cache = new BlockCache(memory, classSizes, Math.min(o.hugeThreshold, 65536), o.chunkSize, cacheCounts);
      this.#cache.watch(leaks);
      startCoarseClock();
    }
    this.#segs = new Segments(memory, this.#cache, pressure);
    this.#describe = {
      name: o.name, backing, secure: o.secure, maxBytes: o.maxBytes,
      mappedBytes: () => memory.mapped(),
      lastError: () => memory.lastError(),
    };
    this.refs = new References(memory, this.#cache, this.counts, leaks, this.#segs, this.#describe);
  }

  /** The block cache: undefined for guard and secure pools, and once closed. */
  get cache(): BlockCache | undefined {
    return this.#cache;
  }

  /** reset() calls so far (an allocation reads it before user code runs, survived() after). */
  get resets(): number {
    return this.#resets;
  }

  /**
   * Every allocation of a Buffer that the fast path (BlockCache.take())
   * did not serve: a size the cache serves whose class stack was empty
   * (refilled here), or any other (from the allocator). `size` is valid (the
   * pool checked it), `align` 0 or a power of two. Both cases are written
   * out in this one function, on purpose: it is then too long for V8 to
   * inline (its bytecode limit), so that the rare case stays a call and
   * neither alloc() nor a caller's loop that inlines alloc() spends its
   * inlining budget on it (docs/design.md, "The JS fast path").
   */
  allocate(size: number, zero: boolean, align: number, caller: Caller): Buffer {
    const cache = this.#cache;
    // Every cached block starts at a multiple of 16.
    if (cache !== undefined && align <= 16 && cache.serves(size)) {
      // Its class's stack was empty when take() came (or left so by a
      // 'pressure' listener): refill it and take a block. The refill may map
      // a chunk, whose event comes once the Buffer is counted.
      for (let quiet = false; ; quiet = true) {
        let view = cache.take(size, caller);
        if (view === undefined) {
          const resets = this.#resets;
          const exposures = this.memory.exposures;
          this.refill(cache, size, caller);
          view = cache.take(size, caller) as PoolBuffer;  // the stack holds a block now
          if (!quiet && this.memory.exposures !== exposures && !this.settle(resets, caller)) continue;
        }
        if (zero) view.fill(0);
        return view as unknown as Buffer;
      }
    }
    for (let quiet = false; ; quiet = true) {
      const resets = this.#resets;
      const exposures = this.memory.exposures;
      const serial = this.memory.serial();
      const handle = this.reserve(size, zero, align, serial, caller);
      const ab = this.bufferOf(handle, size, serial, caller);
      const buf = new PoolBuffer(ab, this.own ? 0 : offsetOf(handle), size, -1, serial) as unknown as Buffer;
      this.handOut(buf, size, serial, caller);
      if (quiet || this.memory.exposures === exposures || this.settle(resets, caller)) return buf;
    }
  }

  /**
   * An empty class stack: one native call brings a batch (#retry() when
   * the allocator has no room for it as things are). No event here: the
   * caller settles once its Buffer is made. Blocks of a segment someone
   * else took go back at once (Segments.lose()), and it asks again until the class
   * has a block.
   */
  refill(cache: BlockCache, size: number, caller: Caller): void {
    const c = cache.classOf(size);
    do {
      let n = cache.refill(c, false);
      if (n < 0) n = this.#retry(cache, n, (mayMap) => cache.refill(c, mayMap));
      if (n < 0) throw this.#statusError(n, `alloc(${size})`, caller);
      tick();
      const fresh = cache.unexposed;
      while (fresh.length > 0) {
        const id = fresh.pop() as number;
        if (this.segments[id] !== undefined && this.#segs.lose(id)) continue;
        if (this.memory.expose(id) === undefined) {
          fresh.length = 0;
          cache.flushAll();
          throw withStack(mapFailed('napi_create_external_arraybuffer', 0,
            `pool "${this.#describe.name}": the runtime refused an external ArrayBuffer`), caller);
        }
      }
    } while (cache.top[c] === 0);
  }

  /** Allocates `size` valid bytes under `serial`: returns the allocator's handle (lib/native/handle.ts). */
  reserve(size: number, zero: boolean, align: number, serial: number, caller: Caller): number {
    if (this.#closed) throw closedError(caller);
    const cache = this.#cache;
    for (;;) {
      // With a block cache, as in refill(): its memory is used before a new chunk.
      let handle = this.memory.alloc(size, zero, serial, align, cache === undefined);
      if (handle < 0 && cache !== undefined) {
        handle = this.#retry(cache, handle, (mayMap) => this.memory.alloc(size, zero, serial, align, mayMap));
      }
      if (handle < 0) throw this.#statusError(handle, `alloc(${size})`, caller);
      if (this.own) return handle;
      const id = segmentOf(handle);
      const ab = this.segments[id];
      // Someone else took the segment: the allocation goes back, and the
      // allocator, which places nothing there now, is asked again.
      if (ab === undefined || ab.byteLength !== 0 || !this.#segs.lose(id)) return handle;
      this.memory.free(handle, size, serial);
    }
  }

  /**
   * The ArrayBuffer to view the allocation at `handle` through: its own
   * (guard, secure; the view starts at 0) or its segment's (the view starts
   * at its offset). If none can be made, the allocation goes back.
   */
  bufferOf(handle: number, size: number, serial: number, caller: Caller): ArrayBuffer {
    const ab = this.memory.bufferOf(handle, size);
    if (ab !== undefined) return ab;
    // No ArrayBuffer for an allocation just made: it goes back (a failed
    // call changes nothing).
    this.memory.free(handle, size, serial);
    const why = this.own ? 'no ArrayBuffer of its own could be made for an allocation' : 'the runtime refused an external ArrayBuffer';
    throw withStack(mapFailed('napi_create_external_arraybuffer', 0, `pool "${this.#describe.name}": ${why}`), caller);
  }

  /** An allocation made and never handed out (its view was refused): given back, as if it had not been made. */
  giveBack(handle: number, size: number, serial: number, ab: ArrayBuffer): void {
    if (this.memory.giveBack(handle, size, serial, ab)) this.#segs.released(segmentOf(handle));
  }

  /**
   * Tags a view with the serial of its allocation, counts it and shows it
   * to the leak detector: the last step of every allocation the block cache
   * does not serve (BlockCache.take() and track() do the same for its own).
   */
  handOut<V extends ArrayBufferView>(view: V, size: number, serial: number, caller: Caller): V {
    // A PoolBuffer got its serial in its constructor.
    if (!(view instanceof PoolBuffer)) tagView(view, -1, serial);
    this.counts.count(size);
    if (this.#leaks !== undefined) this.#leaks.allocated(view, size, serial, caller);
    return view;
  }

  /**
   * An allocation is complete and new memory may be mapped for it: the
   * pressure check, whose listeners may call any pool method. True when the
   * allocation survived them (see survived()).
   */
  settle(resets: number, caller: Caller): boolean {
    this.#segs.checkPressure();
    return this.survived(resets, caller);
  }

  /**
   * After user code ran in the middle of an allocation: ERR_POOL_CLOSED if
   * it closed the pool; false if it reset the pool (the allocation was
   * freed with everything else: the caller makes it again), else true.
   */
  survived(resets: number, caller: Caller): boolean {
    if (this.#closed) throw closedError(caller);
    return this.#resets === resets;
  }

  /**
   * reset(): every allocation freed and counted so, the cache emptied, the
   * leak tracker told; then segments are swept, whose pressure check may
   * run listeners (they see the pool reset, and may allocate again).
   */
  reset(): void {
    this.#resets++;
    this.memory.detachGuarded();
    this.#segs.loseDetached();
    this.memory.reset();
    // The one place counts are zeroed. (A shared pool's are its figures,
    // the cache's apart: lib/threads/figures.ts; a pool of one thread's are
    // one Counts, which freeAll() leaves as it is the second time.)
    this.counts.freeAll();
    this.#cache?.counts.freeAll();
    this.#cache?.clear();
    this.#leaks?.forgetAll();
    this.#segs.sweep();
  }

  /** trim(): free memory back to the OS; returns the bytes given back. */
  trim(): number {
    this.#cache?.flushAll();
    // (Before the allocator discards free pages: a lost chunk's are its new owner's.)
    this.#segs.loseDetached();
    const released = this.memory.trim();
    this.#segs.sweep();
    return released;
  }

  /** close(): every ArrayBuffer detached, all memory given back, the leak tracker told; later calls throw ERR_POOL_CLOSED. */
  close(): void {
    this.#closed = true;
    this.#segs.close();
    this.memory.detachGuarded();
    this.memory.close();
    this.refs.close();
    this.#cache = undefined;
    this.#leaks?.forgetAll();
  }

  // An allocator call that failed with `status`, asked again by `ask` as
  // the block cache's memory allows: when only a new chunk has room, the
  // free blocks the cache holds go back first and then the allocator may
  // map (docs/design.md, "Idle chunks"); when maxBytes is reached, every
  // block the cache holds free goes back and it tries once more; so too
  // when the OS refused memory (the allocator has given back its own spares
  // and empty chunks then, and the cache's blocks may be what keeps a chunk
  // mapped). Returns the last call's result. Only failures come here, so
  // the closure costs nothing on the way that succeeds.
  #retry(cache: BlockCache, status: number, ask: (mayMap: boolean) => number): number {
    let n = status;
    if (n === NativeStatus.NeedsChunk && cache.holdingFree) {
      cache.flushAll();
      n = ask(false);
    }
    if (n === NativeStatus.NeedsChunk) n = ask(true);
    if ((n === NativeStatus.Exhausted && cache.holding) || (n === NativeStatus.MapFailed && cache.holdingFree)) {
      cache.flushAll();
      n = ask(true);
    }
    return n;
  }

  #statusError(status: number, what: string, caller: Caller): Error {
    return statusError(status, what, caller, this.#describe);
  }
}
