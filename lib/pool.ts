// Pool: Buffers over mmap-backed memory, freed when the program says so.
// The public class: it checks arguments, takes the fast path when it can,
// and hands every other case to a part below it (docs/design.md, "lib/:
// the TypeScript side"):
//
//   Pool ──> BlockCache (lib/cache/)   alloc/free of sizes up to 64 KiB, no native call
//     ├────> SlowPath (lib/alloc/)     every other allocation, through the allocator
//     ├────> References (lib/alloc/)   every other free, retain, release, refCount, owns
//     ├────> PoolFigures (lib/observe/) stats(), dump(), the exit line
//     └────> lib/io/, lib/threads/   collect, readFile, onread; attach, share, adopt
//
// What the program holds (used, live, peak, totals) is counted in one Counts
// (lib/observe/counts.ts) that the cache and the slow path share.
//
// Threads: the JS thread that made the pool only. A shared pool
// (`shared: true`, Pool.attach()) is one allocator for every thread of the
// process; each thread's Pool is that thread's attachment, with views and
// a block cache of its own (lib/threads/, docs/threads.md).
import type { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';

import { backingFor, pageSize } from './native/runtime.js';
import { fromSource, type Source } from './buffers/convert.js';
import { closedError, invalidArgType, type Caller } from './errors.js';
import { track, untrack } from './exit.js';
import { LeakTracker, type LeakDetection } from './observe/leaks.js';
import { monitor as startMonitor, type Monitor, type MonitorOptions } from './observe/monitor.js';
import { PressureWatch } from './observe/pressure.js';
import { alignOf, MAX_BUFFER, resolveOptions, sizeError, type AllocOptions, type PoolOptions, type ResolvedOptions } from './options.js';
import { Scope } from './scope.js';
import type { PoolDump, PoolStats } from './observe/stats.js';
import { PoolBuffer } from './buffers/pool-buffer.js';
import { elementSize, type TypedArrayConstructor } from './buffers/typed.js';
import { dispose } from './dispose.js';
import type { BlockCache } from './cache/block-cache.js';
import { SlowPath } from './alloc/slow-path.js';
import type { References } from './alloc/references.js';
import { allocTyped } from './alloc/typed.js';
import { PoolFigures } from './observe/pool-figures.js';
import { Counts } from './observe/counts.js';
import { collect, type CollectOptions } from './io/collect.js';
import { readFile, type ReadFileOptions } from './io/read-file.js';
import { onread, type PoolReader } from './io/onread.js';
import { releaseAfter } from './io/release-after.js';
import { attach } from './threads/attach.js';
import type { BufferHandle, PoolHandle } from './threads/handles.js';
import { adoptBuffer, poolHandleOf, shareBuffer } from './threads/share.js';

// free()'s fast path reads PoolBuffer through a module constant: an imported
// binding is a property of the other module's exports object, read at every use.
const Buf = PoolBuffer;

export class Pool extends EventEmitter {
  /** Every allocation and free the block cache does not serve. */
  readonly #slow: SlowPath;
  /** free(), retain(), release(), refCount() and owns() of all but the fast path. */
  readonly #refs: References;
  /** The options in force (backing: as asked; stats().backing says what it is). */
  readonly #o: ResolvedOptions;
  readonly #maxSize: number;
  readonly #exitToken: WeakRef<{ close(): void }>;
  #closed = false;
  /** Free blocks of the classes up to 64 KiB; undefined for guard and secure pools, and once closed. */
  #cache: BlockCache | undefined;
  /** What the program holds, counted at every allocation and free; shared with the block cache (lib/observe/counts.ts). */
  readonly #counts = new Counts();
  /** stats(), dump(), the exit line and the monitor's samples. */
  readonly #figures: PoolFigures;

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
    const backing = backingFor(o.name, o.backing, o.guard, o.secure, o.shared);
    this.#o = o;
    this.#maxSize = Math.min(o.maxBytes, MAX_BUFFER);
    const leaks = o.leakDetection === 'disabled' ? undefined
      : new LeakTracker(o.leakDetection, o.name, (report) => this.emit('leak', report));
    const pressure = new PressureWatch(o.name, o.maxBytes, o.warning, o.critical, o.cooldownMs,
      (event) => this.emit('pressure', event));
    this.#slow = new SlowPath(o, backing, this.#counts, leaks, pressure);
    this.#cache = this.#slow.cache;
    this.#refs = this.#slow.refs;
    this.#figures = new PoolFigures(this.#slow.memory, this.#counts, o, backing, leaks);
    this.#exitToken = track(this);
  }

  /** The `leakDetection` option in force. */
  get leakDetection(): LeakDetection {
    return this.#o.leakDetection;
  }

  /** The `name` option. */
  get name(): string {
    return this.#o.name;
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
      throw sizeError(length, this.allocTyped, this.#o.maxBytes, 'length', Math.floor(this.#maxSize / unit));
    }
    return allocTyped(this.#slow, this.#cache, Type, length, length * unit, unit, this.allocTyped);
  }

  /**
   * A copy of `value` in pool memory, like Buffer.from(): a string (in
   * `encoding`, default utf8), an ArrayBufferView, an ArrayBuffer or an
   * array(-like) of byte values. Always a copy, never a view of `value`.
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_UNKNOWN_ENCODING, and alloc()'s errors
   */
  from(value: Source, encoding?: BufferEncoding): Buffer {
    const make = (size: number): Buffer => this.#buffer(size, false, undefined, this.from);
    return fromSource(value, encoding, this.#o.maxBytes, make, (buf) => this.free(buf), this.from);
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
    this.#refs.free(buf, this.free);
  }

  /** Adds a reference to `buf`; returns the new count. Same errors as free(). */
  retain(buf: ArrayBufferView): number {
    return this.#refs.retain(buf, this.retain);
  }

  /** Drops a reference to `buf`; frees it when none is left and then returns true. Same errors as free(). */
  release(buf: ArrayBufferView): boolean {
    return this.#refs.release(buf, this.release, this.free);
  }

  /** The reference count of a live allocation (1 unless retained). Same errors as free(). */
  refCount(buf: ArrayBufferView): number {
    return this.#refs.refCount(buf, this.refCount);
  }

  /** True when `buf` is a live allocation of this pool, the very object handed out (free() would take it). Never throws. */
  owns(buf: unknown): boolean {
    return this.#refs.owns(buf);
  }

  /**
   * A shared pool's handle (`shared: true`): a small plain object that
   * postMessage() and structuredClone() copy, for Pool.attach() in another
   * thread of this process (docs/threads.md).
   * @throws Error ERR_INVALID_STATE (not a shared pool), PoolError ERR_POOL_CLOSED
   */
  get handle(): PoolHandle {
    return poolHandleOf(this.#slow.memory, this.#o.name, this.#closed);
  }

  /**
   * This thread's Pool over the shared pool `handle` names (pool.handle of
   * any thread), with the options its creator gave: the same memory and
   * allocator, views of this thread's own. Its close(), or this thread's
   * end, ends this thread's attachment; the memory goes back when the last
   * attachment ends.
   * @throws TypeError ERR_INVALID_ARG_TYPE (not a PoolHandle), PoolError ERR_POOL_CLOSED (every
   * attachment has ended), ERR_FOREIGN_BUFFER (a handle no pool of this process made)
   */
  static attach(handle: PoolHandle): Pool {
    return attach(handle, (options) => new Pool(options), Pool.attach);
  }

  /**
   * A handle for one more reference of `buf` (a live allocation of this
   * shared pool), which another thread turns into a Buffer over the same
   * bytes with adopt(), once. The reference is the receiver's: it frees
   * the memory with free() or its last release(), in its own thread.
   * @throws Error ERR_INVALID_STATE (not a shared pool), and retain()'s errors
   */
  share(buf: ArrayBufferView): BufferHandle {
    return shareBuffer(this.#refs, buf, this.share);
  }

  /**
   * A Buffer over the bytes a share() in any thread handed over (no copy),
   * carrying the reference that share() added: free or release it here.
   * @throws TypeError ERR_INVALID_ARG_TYPE (not a BufferHandle), Error ERR_INVALID_STATE (not a
   * shared pool), PoolError ERR_DOUBLE_FREE (adopted already, or its memory was freed since),
   * ERR_FOREIGN_BUFFER (a handle of another pool, or made up), ERR_POOL_CLOSED
   */
  adopt(handle: BufferHandle): Buffer {
    return adoptBuffer(this.#refs, handle, this.adopt);
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
    this.#slow.reset();
  }

  /**
   * Gives free memory back to the OS: empty chunks go (their ArrayBuffers
   * detached first; their addresses stay reserved until the collector has
   * taken every view, docs/safety.md) and the free pages of the others are
   * discarded. Returns the bytes given back. @throws ERR_POOL_CLOSED
   */
  trim(): number {
    this.#checkOpen(this.trim);
    return this.#slow.trim();
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
    return startMonitor(this, options, () => this.#figures.usedBytes());
  }

  /** @internal For the process-exit hook: one line when allocations are still held. */
  exitReport(): string | undefined {
    return this.#closed ? undefined : this.#figures.exitReport();
  }

  /** Counters and per-class figures; cheap enough to call every second. Works after close() too. */
  stats(): PoolStats {
    return this.#figures.stats(this.#cache, this.#closed);
  }

  /** Every chunk with its runs, every huge mapping and every live allocation, JSON-ready. Works after close() too. */
  dump(): PoolDump {
    return this.#figures.dump(this.#cache, this.#closed);
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
    this.#slow.close();
    this.#cache = undefined;
    this.#counts.closeAll();
  }

  [dispose](): void {
    this.close();
  }

  // Every allocation of a Buffer but the common one, which alloc() and
  // allocUnsafe() take from the cache themselves.
  #buffer(size: number, zero: boolean, options: AllocOptions | undefined, caller: Caller): Buffer {
    // Before any memory is taken: the getter of `align` is user code.
    const align = options === undefined ? 0 : alignOf(options, pageSize, caller);
    // A size the block cache serves (every cached block starts at a
    // multiple of 16) is valid as it is.
    const cached = align <= 16 && this.#cache !== undefined && this.#cache.serves(size);
    if (!cached && (typeof size !== 'number' || !(size >= 0 && size <= this.#maxSize) || size % 1 !== 0)) {
      throw sizeError(size, caller, this.#o.maxBytes);
    }
    return this.#slow.allocate(size, zero, align, caller);
  }

  #checkOpen(caller: Caller): void {
    if (this.#closed) throw closedError(caller);
  }
}
