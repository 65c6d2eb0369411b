// Pool: Buffers over mmap-backed memory, freed when the program says so.
//
// Each chunk (and each huge allocation) is one ArrayBuffer, made once by the
// addon and kept here by segment id; alloc() asks the native allocator for a
// (segment, offset) handle and returns Buffer.from(chunk, offset, size).
// Every allocation also gets a serial number, kept by the allocator and
// recorded on the Buffer object (a private field of PoolBuffer; a symbol on
// the typed arrays of allocTyped). free() finds the segment from buf.buffer
// and hands (segment, offset, length, serial) back to the allocator, which
// checks all four exactly: a stale Buffer whose slot now belongs to a newer
// allocation carries an old serial and is refused with ERR_DOUBLE_FREE
// instead of freeing the new owner.
//
// Sizes up to 64 KiB (unguarded, non-secure pools, no `align`) take a fast
// path: lib/cache/block-cache.ts keeps free blocks of each class on the JS side, so
// alloc() pops one and free() pushes it back without a native call; blocks
// move to and from the allocator in batches. Those Buffers also carry their
// block id, and the cache keeps the serial of the Buffer holding each block:
// a stale one fails that check and takes the slow path above.
//
// The figures about allocations (used, live, peak, totals) are counted here,
// where every allocation and free passes; the allocator's own count sees a
// cached block as one allocation from when it enters the cache to when it
// leaves it.
//
// Every call to the addon goes through lib/native/pool-memory.ts (the
// allocator, and the ArrayBuffers the pool has shown to JS: which ones are
// stale, lost or retired). Guarded and secure pools give each
// allocation an ArrayBuffer of its own over its slot and detach it on free
// (so, in a secure pool, buf.buffer, structuredClone() and postMessage()
// reach that allocation's bytes only).
//
// User code can run in the middle of an allocation: a 'pressure' listener,
// an options getter, valueOf(), a typed array's constructor. So no step of
// an allocation hands values to the next through a field, and the event
// comes last, once the Buffer is built, counted and tracked; after it (and
// after a constructor) the allocation checks that it survived: a listener
// that closed the pool gets the caller ERR_POOL_CLOSED, one that reset it
// makes the allocation start again. Conversions that can throw come before
// any memory is taken; a failure after that gives the memory back.
//
// A chunk's ArrayBuffer detached by someone else (a web byte stream's
// enqueue() or BYOB read(), ArrayBuffer.prototype.transfer()) takes the
// whole chunk with it. The pool finds out where it would build a view over
// it (BlockCache.take(), #reserve(), #refill(), allocTyped()) or sees it
// detached (trim(), reset(), free() of one of its views), and loses the
// segment (#lose()): nothing is placed there again, its memory stays mapped
// for its new owner, and its allocations still count and can be freed, a
// view that reads byteLength 0 by its serial (#find()).
import { Buffer } from 'node:buffer';  // not the global, an accessor in Node 20 (a getter call per read)
import { EventEmitter } from 'node:events';

import { binding, NativeStatus } from './native/binding.js';
import { offsetOf, segmentOf } from './native/handle.js';
import { PoolMemory } from './native/pool-memory.js';
import { convert, type Source } from './buffers/convert.js';
import { closedError, invalidArgType, mapFailed, outOfRange, PoolError, withStack, type Caller } from './errors.js';
import { statusError, type PoolDescription } from './native/status.js';
import { track, untrack } from './exit.js';
import { LeakTracker, type LeakDetection } from './observe/leaks.js';
import { monitor as startMonitor, type Monitor, type MonitorOptions } from './observe/monitor.js';
import { PressureWatch } from './observe/pressure.js';
import { alignOf, MAX_BUFFER, resolveOptions, type AllocOptions, type Backing, type PoolOptions } from './options.js';
import { Scope } from './scope.js';
import type { PoolDump, PoolStats } from './observe/stats.js';
import { PoolBuffer, serialOf, blockOf, tagView } from './buffers/pool-buffer.js';
import { nextSerial } from './buffers/serials.js';
import { elementSize, isFreshView, type TypedArrayConstructor } from './buffers/typed.js';
import { dispose } from './dispose.js';
import { BlockCache } from './cache/block-cache.js';
import { fixClasses, fixDump } from './observe/dump.js';
import { startCoarseClock, tick } from './observe/clock.js';
import { Counts } from './observe/counts.js';
import { collect, type CollectOptions } from './io/collect.js';
import { readFile, type ReadFileOptions } from './io/read-file.js';
import { onread, type PoolReader } from './io/onread.js';
import { releaseAfter } from './io/release-after.js';

/**
 * How long a freed huge allocation's mapping (a spare, kept for the next
 * huge allocation of its size) stays as it is before its pages are handed to
 * the OS lazily (MADV_FREE): a program that frees and allocates huge buffers
 * back to back reuses warm pages; one that stops gives them up this soon
 * after (docs/design.md, "Huge allocations and spares").
 */
const SPARE_DECAY_MS = 100;

// free()'s fast path reads PoolBuffer through a module constant: an imported
// binding is a property of the other module's exports object, read at every use.
const Buf = PoolBuffer;

/** A `Type` of `length` elements at `offset` in `ab`; for Buffer itself, Buffer.from (not the deprecated `new Buffer`). */
function typedView<T extends ArrayBufferView>(Type: TypedArrayConstructor<T>, ab: ArrayBuffer, offset: number, length: number): T {
  return (Type as unknown) === Buffer ? Buffer.from(ab, offset, length) as unknown as T : new Type(ab, offset, length);
}


export class Pool extends EventEmitter {
  /** The allocator and the ArrayBuffers over its memory: every call to the addon goes through it. */
  readonly #memory: PoolMemory;
  readonly #name: string;
  readonly #backing: Backing;
  readonly #guard: boolean;
  readonly #secure: boolean;
  /** guard or secure: every allocation has an ArrayBuffer of its own. */
  readonly #own: boolean;
  readonly #chunkSize: number;
  readonly #hugeThreshold: number;
  readonly #maxBytes: number;
  readonly #maxSize: number;
  /** #memory.segments: ArrayBuffer of each live segment, by id (read on the hot path). */
  readonly #segments: (ArrayBuffer | undefined)[];
  readonly #exitToken: WeakRef<{ close(): void }>;
  readonly #leaks: LeakTracker | undefined;
  readonly #leakDetection: LeakDetection;
  readonly #pressure: PressureWatch;
  #closed = false;
  /** Set while a decay of spare huge mappings is due (SPARE_DECAY_MS). */
  #decayTimer: ReturnType<typeof setTimeout> | undefined;
  /** Free blocks of the classes up to 64 KiB; undefined for guard and secure pools, and once closed. */
  #cache: BlockCache | undefined;
  /** What the program holds, counted at every allocation and free; shared with the block cache (lib/observe/counts.ts). */
  readonly #counts = new Counts();
  /** Allocations that ended with close() (live = allocs - frees - #closedLive). */
  #closedLive = 0;
  /** What statusError() needs to word an error about this pool. */
  readonly #describe: PoolDescription;
  /** reset() calls so far: an allocation that sees it change while user code ran was freed under it. */
  #resets = 0;

  /**
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE, RangeError ERR_OUT_OF_RANGE
   * for bad options; PoolError ERR_MAP_FAILED for `guard` or `secure` where the runtime refuses
   * external ArrayBuffers. Memory is mapped lazily: a backing the OS refuses (say, a `dir`
   * that does not exist) fails on the first allocation, with ERR_MAP_FAILED.
   *
   * Where the runtime refuses external ArrayBuffers (Electron's V8 sandbox),
   * an 'anonymous' or 'file' pool switches to 'heap' by itself, says so once
   * per process with a warning (code MMAP_POOL_FALLBACK), and stats().backing
   * reports 'heap'.
   */
  constructor(options?: PoolOptions) {
    super();
    const o = resolveOptions(options);
    let backing = o.backing;
    if (backing !== 'heap' && !binding.externalBuffersAllowed()) {
      if (o.guard || o.secure) {
        throw mapFailed('napi_create_external_arraybuffer', 0,
          `pool "${o.name}": this runtime refuses external ArrayBuffers, which ${o.guard ? 'guard' : 'secure'}: true needs`);
      }
      backing = 'heap';
      // Once per process, not per thread: the flag lives in the addon.
      if (binding.claimOnce('fallback-warning')) {
        process.emitWarning(
          `This runtime refuses external ArrayBuffers; mmap-pool pools use V8 heap memory instead of '${o.backing}' (stats().backing says 'heap')`,
          { code: 'MMAP_POOL_FALLBACK' },
        );
      }
    }
    this.#name = o.name;
    this.#backing = backing;
    this.#guard = o.guard;
    this.#secure = o.secure;
    this.#own = o.guard || o.secure;
    this.#chunkSize = o.chunkSize;
    this.#hugeThreshold = o.hugeThreshold;
    this.#maxBytes = o.maxBytes;
    this.#maxSize = Math.min(o.maxBytes, MAX_BUFFER);
    this.#memory = new PoolMemory({
      backing,
      dir: o.dir,
      chunkSize: o.chunkSize,
      hugeThreshold: o.hugeThreshold,
      maxBytes: o.maxBytes,
      secure: o.secure,
      hugePages: o.hugePages,
      prefault: o.prefault,
    }, this.#own);
    this.#segments = this.#memory.segments;
    this.#leakDetection = o.leakDetection;
    this.#leaks = o.leakDetection === 'disabled' ? undefined
      : new LeakTracker(o.leakDetection, o.name, (report) => this.emit('leak', report));
    this.#pressure = new PressureWatch(o.name, o.maxBytes, o.warning, o.critical, o.cooldownMs,
      (event) => this.emit('pressure', event));
    this.#exitToken = track(this);
    if (!o.guard && !o.secure) {
      const cache = new BlockCache(this.#memory, binding.classSizes, Math.min(o.hugeThreshold, 65536), o.chunkSize);
      cache.counts = this.#counts;
      cache.watch(this.#leaks);
      this.#cache = cache;
      startCoarseClock();
    }
    const memory = this.#memory;
    this.#describe = {
      name: o.name, backing, secure: o.secure, maxBytes: o.maxBytes,
      mappedBytes: () => memory.mapped(),
      lastError: () => memory.lastError(),
    };
  }

  /** The `leakDetection` option in force. */
  get leakDetection(): LeakDetection {
    return this.#leakDetection;
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** True once close() has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A zero-filled Buffer of `size` bytes, like Buffer.alloc(size).
   * @throws TypeError ERR_INVALID_ARG_TYPE (size not a number), RangeError ERR_OUT_OF_RANGE
   * (negative, fractional, NaN, above maxBytes or the Buffer limit; a bad `align`), PoolError
   * ERR_POOL_CLOSED, ERR_POOL_EXHAUSTED (maxBytes reached), ERR_MAP_FAILED (the OS refused memory,
   * also once the pool had given back what it held unused: spares, idle chunks, cached blocks).
   */
  alloc(size: number, options?: AllocOptions): Buffer {
    const view = options === undefined ? this.#cache?.take(size, this.alloc) : undefined;
    if (view !== undefined) return view.fill(0) as unknown as Buffer;
    return this.#buffer(size, true, options, this.alloc);
  }

  /**
   * Like alloc(), but the contents are unspecified (like Buffer.allocUnsafe):
   * the only way to see bytes an earlier allocation left (never in a
   * `secure` pool, which wipes memory on free). Same errors.
   */
  allocUnsafe(size: number, options?: AllocOptions): Buffer {
    const view = options === undefined ? this.#cache?.take(size, this.allocUnsafe) : undefined;
    if (view !== undefined) return view as unknown as Buffer;
    return this.#buffer(size, false, options, this.allocUnsafe);
  }

  /**
   * A zero-filled `Type` of `length` elements over pool memory, aligned to
   * its element size: `pool.allocTyped(Float64Array, 100)`. `Type` may be a
   * subclass: the element size is that of the built-in TypedArray it
   * extends (its own BYTES_PER_ELEMENT is not read), and its constructor,
   * called as `new Type(buffer, byteOffset, length)`, must return a new view
   * of exactly those; whatever it throws is thrown, with the memory given back.
   * @throws TypeError ERR_INVALID_ARG_TYPE (not a TypedArray constructor, or its constructor
   * returned another object), and alloc()'s errors for `length`
   */
  allocTyped<T extends ArrayBufferView>(Type: TypedArrayConstructor<T>, length: number): T {
    const unit = elementSize(Type);
    if (unit === 0) throw invalidArgType('Type', 'a TypedArray constructor', Type, this.allocTyped);
    if (typeof length !== 'number' || !(length >= 0) || length % 1 !== 0 || length * unit > this.#maxSize) {
      throw this.#sizeError(length, this.allocTyped, 'length', Math.floor(this.#maxSize / unit));
    }
    const size = length * unit;
    for (let quiet = false; ; quiet = true) {
      const resets = this.#resets;
      const exposures = this.#memory.exposures;
      const cache = this.#cache;
      const view = cache !== undefined && cache.serves(size)
        ? this.#typedFromCache(cache, Type, length, size, resets)
        : this.#typedFromAllocator(Type, length, size, unit, resets);
      // undefined: a reset() in Type's constructor freed the memory under it
      // (whether the constructor then threw or not): again.
      if (view !== undefined && (quiet || this.#memory.exposures === exposures || this.#settle(resets, this.allocTyped))) return view;
    }
  }

  /**
   * A copy of `value` in pool memory, like Buffer.from(): a string (in
   * `encoding`, default utf8), an ArrayBufferView, an ArrayBuffer or an
   * array(-like) of byte values. Always a copy, never a view of `value`.
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_UNKNOWN_ENCODING, and alloc()'s errors
   */
  from(value: Source, encoding?: BufferEncoding): Buffer {
    const c = convert(value, encoding, this.from);
    if (!('text' in c)) {
      const bytes = 'bytes' in c ? c.bytes : this.#bytesOf(c.items);
      const buf = this.#buffer(bytes.length, false, undefined, this.from);
      buf.set(bytes);
      return buf;
    }
    // byteLength is exact for utf8/utf16le/latin1/ascii, an upper bound for
    // hex and base64 (invalid characters, whitespace): shrink to what decodes.
    const bound = Buffer.byteLength(c.text, c.encoding);
    const buf = this.#buffer(bound, false, undefined, this.from);
    const written = buf.write(c.text, 0, bound, c.encoding);
    if (written === bound) return buf;
    // Copied out and freed first: the exact allocation may run a 'pressure'
    // listener, and nothing of this call's may be pending then.
    const bytes = new Uint8Array(buf.subarray(0, written));
    this.free(buf);
    const exact = this.#buffer(written, false, undefined, this.from);
    exact.set(bytes);
    return exact;
  }

  /**
   * Gives the memory of `buf` back now, whatever its reference count. Views
   * of it stay readable but their bytes may belong to a later allocation;
   * a huge allocation's views, and the view of every allocation in a
   * `guard` or `secure` pool, are detached (length 0), as are the views of
   * a chunk the allocator later unmaps because nothing in it is live
   * (docs/safety.md).
   * @throws TypeError ERR_INVALID_ARG_TYPE (not a Buffer/TypedArray/DataView), PoolError
   * ERR_DOUBLE_FREE (already freed, or a stale Buffer of a reused slot), ERR_FOREIGN_BUFFER
   * (not handed out by this pool, or a slice or copy-view of one), ERR_POOL_CLOSED
   */
  free(buf: ArrayBufferView): void {
    // The fast path (lib/cache/block-cache.ts): a live PoolBuffer from the cache.
    const cache = this.#cache;
    if (cache !== undefined) {
      const k = Buf.liveBlock(buf, cache.serial);
      if (k >= 0) {
        cache.freeBlock(k);
        return;
      }
    }
    this.#freeOther(buf);
  }

  // free() for everything but a live PoolBuffer from the cache.
  #freeOther(buf: ArrayBufferView): void {
    const k = this.#cached(buf);
    if (k >= 0) {
      (this.#cache as BlockCache).freeBlock(k);
      return;
    }
    const handle = this.#locate(buf, this.free);
    const serial = serialOf(buf) as number;
    const length = this.#memory.lengthOf(buf, handle, serial);  // before a guarded view is detached
    if (this.#own) this.#unguard(buf, handle, serial, this.free);
    const status = this.#memory.free(handle, length, serial);
    if (status === NativeStatus.SegmentReleased) {
      this.#segmentReleased(segmentOf(handle));
    } else if (status !== NativeStatus.Ok) {
      throw this.#statusError(status, 'free', this.free);
    }
    this.#counts.uncount(length);
    if (this.#leaks !== undefined) this.#leaks.freedSerial(serial);
  }

  /** Adds a reference to `buf`; returns the new count. Same errors as free(). */
  retain(buf: ArrayBufferView): number {
    const k = this.#cached(buf);
    if (k >= 0) {
      const cache = this.#cache as BlockCache;
      if (cache.refs[k] === 0xffffffff) throw this.#statusError(NativeStatus.CountFull, 'retain', this.retain);
      return cache.retain(k);
    }
    const handle = this.#locate(buf, this.retain);
    const serial = serialOf(buf) as number;
    const count = this.#memory.retain(handle, this.#memory.lengthOf(buf, handle, serial), serial);
    if (count < 0) throw this.#statusError(count, 'retain', this.retain);
    return count;
  }

  /** Drops a reference to `buf`; frees it when none is left and then returns true. Same errors as free(). */
  release(buf: ArrayBufferView): boolean {
    const k = this.#cached(buf);
    if (k >= 0) {
      const refs = (this.#cache as BlockCache).refs;
      if (refs[k] > 1) {
        refs[k]--;
        return false;
      }
      (this.#cache as BlockCache).freeBlock(k);
      return true;
    }
    const handle = this.#locate(buf, this.release);
    const serial = serialOf(buf) as number;
    const segment = segmentOf(handle);
    const length = this.#memory.lengthOf(buf, handle, serial);  // before a huge allocation's view is detached
    if (this.#own && this.#memory.refCount(handle, length, serial) === 1) {
      this.free(buf);
      return true;
    }
    const count = this.#memory.release(handle, length, serial);
    if (count < 0) throw this.#statusError(count, 'release', this.release);
    if (count > 0) return false;
    // release() reports only the count: a detached segment is how a huge
    // allocation's mapping is seen to have gone.
    if (this.#segments[segment]?.byteLength === 0) this.#segmentReleased(segment);
    this.#counts.uncount(length);
    if (this.#leaks !== undefined) this.#leaks.freedSerial(serial);
    return true;
  }

  /** The reference count of a live allocation (1 unless retained). Same errors as free(). */
  refCount(buf: ArrayBufferView): number {
    const k = this.#cached(buf);
    if (k >= 0) return (this.#cache as BlockCache).refs[k];
    const handle = this.#locate(buf, this.refCount);
    const serial = serialOf(buf) as number;
    const count = this.#memory.refCount(handle, this.#memory.lengthOf(buf, handle, serial), serial);
    if (count < 0) throw this.#statusError(count, 'refCount', this.refCount);
    return count;
  }

  /** True when `buf` is a live allocation of this pool, the very object handed out (free() would take it). Never throws. */
  owns(buf: unknown): boolean {
    if (this.#closed || !ArrayBuffer.isView(buf)) return false;
    if (this.#cached(buf) >= 0) return true;
    const serial = serialOf(buf);
    if (serial === undefined) return false;
    const handle = this.#find(buf, serial);
    return handle >= 0 && this.#memory.refCount(handle, this.#memory.lengthOf(buf, handle, serial), serial) > 0;
  }

  /**
   * Every byte of `source` (a Readable, an HTTP request, any async iterable
   * of Uint8Array) in one pool Buffer of exactly that length, which the
   * caller owns. `sizeHint` (say, Content-Length) sizes the first buffer;
   * without it the buffer starts at 64 KiB and doubles (lib/io/collect.ts).
   * Rejects, with nothing left allocated and the source stopped: RangeError
   * ERR_OUT_OF_RANGE past `limit`; the source's own error; an AbortError
   * (code ABORT_ERR) when `signal` aborts; and alloc()'s errors.
   */
  collect(source: AsyncIterable<Uint8Array>, options?: CollectOptions): Promise<Buffer> {
    return collect(this, source, options, this.#maxSize, this.collect);
  }

  /**
   * The whole file (a path, or a FileHandle read from its current
   * position) in one pool Buffer, read straight into it after one fstat.
   * Rejects as Node's fs does (ENOENT, EISDIR, ...), with an AbortError
   * when `signal` aborts between reads, or with alloc()'s errors; nothing
   * stays allocated, and a file opened here is closed.
   */
  readFile(file: string | Buffer | URL | import('node:fs/promises').FileHandle, options?: ReadFileOptions): Promise<Buffer> {
    return readFile(this, file, options, this.#maxSize, this.readFile);
  }

  /**
   * The `onread` option of net.Socket: every read lands in a fresh pool
   * Buffer of `size` bytes that `callback(nread, buf)` receives and owns
   * (free or release it; bytes past nread are unspecified). The Buffer of
   * the read still to come is freed when the socket closes.
   * @throws TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE, PoolError ERR_POOL_CLOSED
   */
  onread(size: number, callback: (nread: number, buf: Buffer) => boolean | void): PoolReader {
    this.#checkOpen(this.onread);
    return onread(this, size, callback, this.#maxSize, this.onread);
  }

  /**
   * Releases one reference of `buf` when `stream` is done with it: finished,
   * errored, destroyed or closed (stream.finished()), so a response whose
   * client went away never keeps it. With `res.end(buf)` it replaces the
   * write callback, which never fires in that case.
   * @throws TypeError ERR_INVALID_ARG_TYPE, and refCount()'s errors for `buf`
   */
  releaseAfter(stream: NodeJS.EventEmitter, buf: ArrayBufferView): void {
    releaseAfter(this, stream, buf, this.releaseAfter);
  }

  /** A Scope: allocations made through it are released together by its close() (or `using`). @throws ERR_POOL_CLOSED */
  scope(): Scope {
    this.#checkOpen(this.scope);
    return new Scope(this);
  }

  /**
   * Frees every allocation at once and keeps the chunks mapped. Huge
   * allocations' memory goes back and their views are detached (in a
   * `guard` or `secure` pool, every view). @throws ERR_POOL_CLOSED
   */
  reset(): void {
    this.#checkOpen(this.reset);
    this.#resets++;
    this.#memory.detachGuarded();
    this.#loseDetached();
    this.#memory.reset();
    this.#cache?.clear();
    this.#counts.frees = this.#counts.allocs - this.#closedLive;
    this.#counts.used = 0;
    this.#leaks?.forgetAll();
    this.#sweep();
  }

  /**
   * Gives free memory back to the OS: empty chunks go (their ArrayBuffers
   * detached first; their addresses stay reserved until the collector has
   * taken every view, docs/safety.md) and the free pages of the others are
   * discarded. Returns the bytes given back. @throws ERR_POOL_CLOSED
   */
  trim(): number {
    this.#checkOpen(this.trim);
    this.#cache?.flushAll();
    // (Before the allocator discards free pages: a lost chunk's are its new owner's.)
    this.#loseDetached();
    const released = this.#memory.trim();
    this.#sweep();
    return released;
  }

  /**
   * Samples stats() every `intervalMs` and emits 'growth' when used bytes
   * grow steadily across the last `window` samples: a least-squares slope
   * above max(1 KiB/s, 1% of used bytes per window span) with r² >= 0.8
   * (lib/observe/monitor.ts). The timer never keeps the process alive; it stops with
   * dispose(), stop() or close().
   * @throws TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE, PoolError ERR_POOL_CLOSED
   */
  monitor(options: MonitorOptions): Monitor {
    this.#checkOpen(this.monitor);
    // usedBytes is counted here: no need for a whole stats() per sample.
    return startMonitor(this, options, () => this.#counts.used);
  }

  /** @internal For the process-exit hook: one line when allocations are still held. */
  exitReport(): string | undefined {
    if (this.#leakDetection === 'disabled' || this.#closed) return undefined;
    const live = this.#liveCount();
    if (live === 0) return undefined;
    return `mmap-pool: pool "${this.#name}" still holds ${live} allocation(s) (${this.#counts.used} bytes) at exit; ` +
      `free or release them, or set leakDetection: 'paranoid' to learn where they were made`;
  }

  /** Counters and per-class figures; cheap enough to call every second. Works after close() too. */
  stats(): PoolStats {
    const n = this.#memory.stats();
    const cachedBytes = this.#cache !== undefined ? fixClasses(this.#cache, n.classes) : 0;
    n.allocatedBytes -= cachedBytes;
    return {
      name: this.#name,
      backing: this.#backing,
      guard: this.#guard,
      secure: this.#secure,
      closed: this.#closed,
      pageSize: binding.pageSize,
      chunkSize: this.#chunkSize,
      hugeThreshold: this.#hugeThreshold,
      maxBytes: this.#maxBytes,
      ...n,
      usedBytes: this.#counts.used,
      peakUsedBytes: this.#counts.peak,
      liveAllocations: this.#liveCount(),
      totalAllocations: this.#counts.allocs,
      totalFrees: this.#counts.frees,
      cachedBytes,
    };
  }

  /** Every chunk with its runs, every huge mapping and every live allocation, JSON-ready. Works after close() too. */
  dump(): PoolDump {
    const raw = this.#memory.dump();
    if (this.#cache !== undefined) fixDump(this.#cache, raw, performance.now());
    if (this.#leaks !== undefined) {
      for (const a of raw.allocations) {
        const stack = this.#leaks.stackOf(a.serial);
        if (stack !== undefined) a.createdAt = stack;
      }
    }
    return { name: this.#name, backing: this.#backing, closed: this.#closed, ...raw };
  }

  /**
   * Detaches every ArrayBuffer the pool made (old views read as length 0 and
   * their read and write methods throw), then gives all its memory back
   * (addresses a pending native job may still use stay reserved until the
   * collector has taken every view: docs/safety.md). Temp files go with
   * their mappings. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    untrack(this.#exitToken);
    clearTimeout(this.#decayTimer);
    this.#memory.detachGuarded();
    this.#memory.close();
    this.#cache = undefined;
    this.#closedLive += this.#liveCount();
    this.#counts.used = 0;
    this.#leaks?.forgetAll();
  }

  [dispose](): void {
    this.close();
  }

  // Every allocation of a Buffer but the common one, which alloc() and
  // allocUnsafe() take from the cache themselves.
  #buffer(size: number, zero: boolean, options: AllocOptions | undefined, caller: Caller): Buffer {
    // Before any memory is taken: the getter of `align` is user code.
    const align = options === undefined ? 0 : alignOf(options, binding.pageSize, caller);
    const cache = this.#cache;
    // Every cached block starts at a multiple of 16.
    if (cache !== undefined && align <= 16 && cache.serves(size)) {
      const view = this.#cachedBuffer(cache, size, caller);
      if (zero) view.fill(0);
      return view as unknown as Buffer;
    }
    if (typeof size !== 'number' || !(size >= 0 && size <= this.#maxSize) || size % 1 !== 0) {
      throw this.#sizeError(size, caller);
    }
    for (let quiet = false; ; quiet = true) {
      const resets = this.#resets;
      const exposures = this.#memory.exposures;
      const serial = nextSerial();
      const handle = this.#reserve(size, zero, align, serial, caller);
      const ab = this.#bufferOf(handle, size, serial, caller);
      const buf = new PoolBuffer(ab, this.#own ? 0 : offsetOf(handle), size, -1, serial) as unknown as Buffer;
      this.#handOut(buf, size, serial, caller);
      if (quiet || this.#memory.exposures === exposures || this.#settle(resets, caller)) return buf;
    }
  }

  // A size the block cache serves, its class's stack empty when take() came
  // (or left so by a 'pressure' listener): refill it and take a block. The
  // refill may map a chunk, whose event comes once the Buffer is counted.
  #cachedBuffer(cache: BlockCache, size: number, caller: Caller): PoolBuffer {
    for (let quiet = false; ; quiet = true) {
      const view = cache.take(size, caller);
      if (view !== undefined) return view;
      const resets = this.#resets;
      const exposures = this.#memory.exposures;
      this.#refill(cache, size, caller);
      const fresh = cache.take(size, caller) as PoolBuffer;  // the stack holds a block now
      if (quiet || this.#memory.exposures === exposures || this.#settle(resets, caller)) return fresh;
    }
  }

  // allocTyped() of a size the block cache serves: undefined when Type's
  // constructor reset the pool (the caller starts again).
  #typedFromCache<T extends ArrayBufferView>(cache: BlockCache, Type: TypedArrayConstructor<T>, length: number, size: number, resets: number): T | undefined {
    let k: number;
    let ab: ArrayBuffer;
    for (;;) {
      k = cache.claim(size);
      if (k < 0) {
        this.#refill(cache, size, this.allocTyped);
        continue;
      }
      ab = this.#segments[cache.seg[k]] as ArrayBuffer;
      if (ab.byteLength !== 0) break;
      // Someone else took the segment (a web byte stream): another block.
      cache.drop(k, new TypeError('Cannot perform Construct on a detached ArrayBuffer'));
    }
    const offset = cache.off[k];
    const serial = cache.serial[k];
    new Uint8Array(ab, offset, size).fill(0);
    let view: T;
    try {
      view = this.#construct(Type, ab, offset, length, size);
    } catch (err) {
      // Unless close() or reset() in the constructor took the block already
      // (and, likely, made it throw: its buffer may be detached).
      if (!this.#survived(resets, this.allocTyped)) return undefined;
      cache.unclaim(k);
      throw err;
    }
    if (!this.#survived(resets, this.allocTyped)) return undefined;
    tagView(view, k, serial);
    this.#counts.count(size);
    cache.track(k, view, this.allocTyped);
    return view;
  }

  // allocTyped() of any other size, or in a pool without a block cache:
  // undefined when Type's constructor reset the pool.
  #typedFromAllocator<T extends ArrayBufferView>(Type: TypedArrayConstructor<T>, length: number, size: number, unit: number, resets: number): T | undefined {
    const serial = nextSerial();
    const handle = this.#reserve(size, true, unit, serial, this.allocTyped);
    const ab = this.#bufferOf(handle, size, serial, this.allocTyped);
    const offset = this.#own ? 0 : offsetOf(handle);
    let view: T;
    try {
      view = this.#construct(Type, ab, offset, length, size);
    } catch (err) {
      // Unless close() or reset() in the constructor took the memory already.
      if (!this.#survived(resets, this.allocTyped)) return undefined;
      this.#giveBack(handle, size, serial, ab);
      throw err;
    }
    if (!this.#survived(resets, this.allocTyped)) return undefined;
    return this.#handOut(view, size, serial, this.allocTyped);
  }

  // `new Type(ab, offset, length)`, checked: a subclass's constructor may
  // return any object, or a view of something else.
  #construct<T extends ArrayBufferView>(Type: TypedArrayConstructor<T>, ab: ArrayBuffer, offset: number, length: number, size: number): T {
    const view = typedView(Type, ab, offset, length);
    if (!isFreshView(view, ab, offset, length, size)) {
      throw invalidArgType('Type', 'a TypedArray constructor whose instances are new views of the buffer, byteOffset and length it is given', Type, this.allocTyped);
    }
    return view;
  }

  // from() of an array(-like): its items as bytes, converted (ToNumber:
  // valueOf, getters, all user code) before any memory is taken, so that a
  // throw leaves the pool as it was.
  #bytesOf(items: ArrayLike<unknown>): Uint8Array {
    const n = items.length;
    if (typeof n !== 'number' || !(n >= 0 && n <= this.#maxSize) || n % 1 !== 0) throw this.#sizeError(n, this.from);
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = items[i] as number;
    return bytes;
  }

  // The block id of a view handed out from the block cache and still live,
  // or -1 (anything else: the slow path decides). Its tags are private
  // fields (a PoolBuffer's, or a typed array's from allocTyped()), which no
  // copy of its properties carries.
  #cached(buf: ArrayBufferView): number {
    const cache = this.#cache;
    if (cache === undefined) return -1;
    const k = blockOf(buf);
    return k >= 0 && cache.serial[k] === serialOf(buf) ? k : -1;
  }

  // An allocator call that failed with `status`, asked again by `ask` as
  // the block cache's memory allows: when only a new chunk has room, the
  // free blocks the cache holds go back first and then the allocator may
  // map (docs/design.md, "Idle chunks"); when
  // maxBytes is reached, every block the cache holds free goes back and it
  // tries once more; so too when the OS refused memory (the allocator has
  // given back its own spares and empty chunks then, and the cache's blocks
  // may be what keeps a chunk mapped). Returns the last call's result. Only
  // failures come here, so the closure costs nothing on the way that succeeds.
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

  // An empty class stack: one native call brings a batch (#retry() when
  // the allocator has no room for it as things are). No event here: the
  // caller settles once its Buffer is made.
  // Blocks of a segment someone else took go back at once (#lose()), and
  // it asks again until the class has a block.
  #refill(cache: BlockCache, size: number, caller: Caller): void {
    const c = cache.classOf(size);
    do {
      let n = cache.refill(c, false);
      if (n < 0) n = this.#retry(cache, n, (mayMap) => cache.refill(c, mayMap));
      if (n < 0) throw this.#statusError(n, `alloc(${size})`, caller);
      tick();
      const fresh = cache.unexposed;
      while (fresh.length > 0) {
        const id = fresh.pop() as number;
        if (this.#segments[id] !== undefined && this.#lose(id)) continue;
        if (this.#memory.expose(id) === undefined) {
          fresh.length = 0;
          cache.flushAll();
          throw withStack(mapFailed('napi_create_external_arraybuffer', 0,
            `pool "${this.#name}": the runtime refused an external ArrayBuffer`), caller);
        }
      }
    } while (cache.top[c] === 0);
  }

  // Tags a view with the serial of its allocation, counts it and shows it
  // to the leak detector: the last step of every allocation the block cache
  // does not serve (BlockCache.take() and track() do the same for its own).
  #handOut<V extends ArrayBufferView>(view: V, size: number, serial: number, caller: Caller): V {
    // A PoolBuffer got its serial in its constructor.
    if (!(view instanceof PoolBuffer)) tagView(view, -1, serial);
    this.#counts.count(size);
    if (this.#leaks !== undefined) this.#leaks.allocated(view, size, serial, caller);
    return view;
  }

  // An allocation is complete and new memory may be mapped for it: the
  // pressure check, whose listeners may call any pool method. True when the
  // allocation survived them (see #survived()).
  #settle(resets: number, caller: Caller): boolean {
    this.#checkPressure();
    return this.#survived(resets, caller);
  }

  // After user code ran in the middle of an allocation: ERR_POOL_CLOSED if
  // it closed the pool; false if it reset the pool (the allocation was
  // freed with everything else: the caller makes it again), else true.
  #survived(resets: number, caller: Caller): boolean {
    if (this.#closed) throw closedError(caller);
    return this.#resets === resets;
  }

  #liveCount(): number {
    return this.#counts.allocs - this.#counts.frees - this.#closedLive;
  }

  // Allocates `size` valid bytes under `serial`: returns the allocator's
  // handle (lib/native/handle.ts).
  #reserve(size: number, zero: boolean, align: number, serial: number, caller: Caller): number {
    if (this.#closed) throw closedError(caller);
    const cache = this.#cache;
    for (;;) {
      // With a block cache, as in #refill(): its memory is used before a new chunk.
      let handle = this.#memory.alloc(size, zero, serial, align, cache === undefined);
      if (handle < 0 && cache !== undefined) {
        handle = this.#retry(cache, handle, (mayMap) => this.#memory.alloc(size, zero, serial, align, mayMap));
      }
      if (handle < 0) throw this.#statusError(handle, `alloc(${size})`, caller);
      if (this.#own) return handle;
      const id = segmentOf(handle);
      const ab = this.#segments[id];
      // Someone else took the segment: the allocation goes back, and the
      // allocator, which places nothing there now, is asked again.
      if (ab === undefined || ab.byteLength !== 0 || !this.#lose(id)) return handle;
      this.#memory.free(handle, size, serial);
    }
  }

  // The ArrayBuffer to view the allocation at `handle` through: its own
  // (guard, secure; the view starts at 0) or its segment's (the view starts
  // at its offset). If none can be made, the allocation goes back.
  #bufferOf(handle: number, size: number, serial: number, caller: Caller): ArrayBuffer {
    const ab = this.#memory.bufferOf(handle, size);
    if (ab !== undefined) return ab;
    // No ArrayBuffer for an allocation just made: it goes back (a failed
    // call changes nothing).
    this.#memory.free(handle, size, serial);
    const why = this.#own ? 'no ArrayBuffer of its own could be made for an allocation' : 'the runtime refused an external ArrayBuffer';
    throw withStack(mapFailed('napi_create_external_arraybuffer', 0, `pool "${this.#name}": ${why}`), caller);
  }

  // An allocation made and never handed out (its view was refused): given
  // back, as if it had not been made.
  #giveBack(handle: number, size: number, serial: number, ab: ArrayBuffer): void {
    if (this.#memory.giveBack(handle, size, serial, ab)) this.#segmentReleased(segmentOf(handle));
  }

  // Checks `buf` for free/retain/release/refCount: returns the handle of
  // its allocation (its serial is serialOf(buf)).
  #locate(buf: ArrayBufferView, caller: Caller): number {
    if (!ArrayBuffer.isView(buf)) {
      throw invalidArgType('buf', 'an instance of Buffer, TypedArray, or DataView', buf, caller);
    }
    this.#checkOpen(caller);
    const serial = serialOf(buf);
    const handle = serial !== undefined ? this.#find(buf, serial) : -1;
    if (handle >= 0) return handle;
    if (this.#memory.isRetired(buf.buffer as ArrayBuffer) && serial !== undefined) throw this.#statusError(NativeStatus.DoubleFree, caller.name, caller);
    throw withStack(new PoolError('ERR_FOREIGN_BUFFER',
      `${caller.name}: this buffer was not handed out by pool "${this.#name}" (a slice of one, or another view of its bytes, is not accepted either)`), caller);
  }

  // Pools with views of their own: check that the allocation can be freed,
  // then detach its ArrayBuffer before the memory goes back.
  #unguard(buf: ArrayBufferView, handle: number, serial: number, caller: Caller): void {
    const count = this.#memory.unguard(buf, handle, serial);
    if (count < 0) throw this.#statusError(count, caller.name, caller);
  }

  // The handle of the allocation `buf` (tagged `serial`) was handed out
  // for, or -1. A view of a segment someone else detached is found by its
  // serial; the block cache then gives that segment's free blocks back.
  #find(buf: ArrayBufferView, serial: number): number {
    const handle = this.#memory.find(buf, serial);
    if (handle >= 0 && !this.#own && (buf.buffer as ArrayBuffer).byteLength === 0) this.#cache?.lose(segmentOf(handle));
    return handle;
  }

  // Segment `id`'s ArrayBuffer was found detached. True when someone else
  // did that (a web byte stream, transfer()), now or before: the allocator
  // places nothing there again (PoolMemory.lose()) and the block cache gives
  // its free blocks back. False when this pool did (the segment went back;
  // the id may name a new one). No event: this may run in the middle of an
  // allocation, and mapped memory does not change.
  #lose(id: number): boolean {
    if (!this.#memory.lose(id)) return false;
    this.#cache?.lose(id);
    return true;
  }

  // Every segment whose ArrayBuffer someone else detached, lost now.
  #loseDetached(): void {
    for (const id of this.#memory.loseDetached()) this.#cache?.lose(id);
  }

  // After trim() and reset(): lose every segment someone else detached,
  // retire every one this pool detached.
  #sweep(): void {
    this.#loseDetached();
    this.#memory.sweep();
    this.#checkPressure();
  }

  // A huge allocation's mapping went back to the OS: forget its segment, and
  // let the pressure levels see the drop (so a later rise fires again).
  // Its mapping may now be a spare: decay spares not reused by then.
  #segmentReleased(id: number): void {
    this.#memory.retire(id);
    this.#checkPressure();
    if (this.#decayTimer === undefined) {
      this.#decayTimer = setTimeout(() => {
        this.#decayTimer = undefined;
        if (!this.#closed) this.#memory.decay();
      }, SPARE_DECAY_MS);
      this.#decayTimer.unref();
    }
  }

  // Called whenever mapped memory may have changed.
  #checkPressure(): void {
    if (this.#pressure.active) this.#pressure.check(this.#memory.mapped());
  }

  #checkOpen(caller: Caller): void {
    if (this.#closed) throw closedError(caller);
  }

  #sizeError(size: unknown, caller: Caller, name = 'size', max = this.#maxSize): Error {
    if (typeof size !== 'number') return invalidArgType(name, 'of type number', size, caller);
    if (name === 'size' && size > this.#maxBytes && size <= MAX_BUFFER && Number.isInteger(size)) {
      return outOfRange(name, `<= maxBytes (${this.#maxBytes})`, size, caller);
    }
    return outOfRange(name, `an integer >= 0 && <= ${max}`, size, caller);
  }

  #statusError(status: number, what: string, caller: Caller): Error {
    return statusError(status, what, caller, this.#describe);
  }

}
