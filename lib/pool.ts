// Pool: Buffers over mmap-backed memory, freed when the program says so.
//
// Each chunk (and each huge allocation) is one ArrayBuffer, made once by the
// addon and kept here by segment id; alloc() asks the native allocator for a
// (segment, offset) handle and returns Buffer.from(chunk, offset, size).
// Every allocation also gets a serial number, kept by the allocator and
// recorded on the Buffer object under a private symbol. free() finds the
// segment from buf.buffer and hands (segment, offset, length, serial) back to
// the allocator, which checks all four exactly: a stale Buffer whose slot now
// belongs to a newer allocation carries an old serial and is refused with
// ERR_DOUBLE_FREE instead of freeing the new owner.
import { EventEmitter } from 'node:events';
import { markAsUntransferable } from 'node:worker_threads';

import { binding, HANDLE_SPAN, NativeStatus, type NativePool } from './binding.js';
import { invalidArgType, mapFailed, outOfRange, PoolError, unknownEncoding } from './errors.js';
import { track, untrack } from './exit.js';
import { MAX_BUFFER, resolveOptions, type Backing, type PoolOptions } from './options.js';
import { Scope } from './scope.js';
import type { PoolDump, PoolStats } from './stats.js';

const dispose: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');
/** The serial number of the allocation a Buffer was handed out for. */
const kSerial = Symbol('mmap-pool.serial');

type Tagged = ArrayBufferView & { [kSerial]?: number };

type Source = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer | ArrayLike<number>;

export class Pool extends EventEmitter {
  readonly #native: NativePool;
  readonly #name: string;
  readonly #backing: Backing;
  readonly #chunkSize: number;
  readonly #hugeThreshold: number;
  readonly #maxBytes: number;
  readonly #maxSize: number;
  /** ArrayBuffer of each live segment, by id. */
  #segments: (ArrayBuffer | undefined)[] = [];
  /** Segment id of each live segment's ArrayBuffer. */
  readonly #ids = new Map<ArrayBuffer, number>();
  /** ArrayBuffers of segments already given back: their views are stale. */
  readonly #retired = new WeakSet<ArrayBuffer>();
  readonly #exitToken: WeakRef<{ close(): void }>;
  #closed = false;
  #serial = 0;

  /**
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE, RangeError ERR_OUT_OF_RANGE for bad options.
   * Memory is mapped lazily: a backing the OS refuses (say, a `dir` that does
   * not exist) fails on the first allocation, with ERR_MAP_FAILED.
   */
  constructor(options?: PoolOptions) {
    super();
    const o = resolveOptions(options);
    this.#name = o.name;
    this.#backing = o.backing;
    this.#chunkSize = o.chunkSize;
    this.#hugeThreshold = o.hugeThreshold;
    this.#maxBytes = o.maxBytes;
    this.#maxSize = Math.min(o.maxBytes, MAX_BUFFER);
    this.#native = new binding.NativePool({
      backing: o.backing,
      dir: o.dir,
      chunkSize: o.chunkSize,
      hugeThreshold: o.hugeThreshold,
      maxBytes: o.maxBytes,
      heapFactory: (size: number) => new ArrayBuffer(size),
    });
    this.#exitToken = track(this);
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
   * (negative, fractional, NaN, above maxBytes or the Buffer limit), PoolError ERR_POOL_CLOSED,
   * ERR_POOL_EXHAUSTED (maxBytes reached), ERR_MAP_FAILED (the OS refused memory).
   */
  alloc(size: number): Buffer {
    return this.#take(size, true, this.alloc);
  }

  /** Like alloc(), but the contents are unspecified (like Buffer.allocUnsafe). Same errors. */
  allocUnsafe(size: number): Buffer {
    return this.#take(size, false, this.allocUnsafe);
  }

  /**
   * A copy of `value` in pool memory, like Buffer.from(): a string (in
   * `encoding`, default utf8), an ArrayBufferView, an ArrayBuffer or an
   * array(-like) of byte values. Always a copy, never a view of `value`.
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_UNKNOWN_ENCODING, and alloc()'s errors
   */
  from(value: Source, encoding?: BufferEncoding): Buffer {
    if (typeof value === 'string') return this.#fromString(value, encoding);
    if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !isArrayBuffer(value)) {
      // Like Buffer.from: an object standing for a primitive (new String('ab'))
      // is converted first.
      const primitive = (value as { valueOf?: () => unknown }).valueOf?.();
      if (primitive != null && primitive !== value && (typeof primitive === 'string' || typeof primitive === 'object')) {
        return this.from(primitive as Source, encoding);
      }
      const toPrimitive = (value as { [Symbol.toPrimitive]?: (hint: string) => unknown })[Symbol.toPrimitive];
      if (typeof toPrimitive === 'function') {
        const str = toPrimitive.call(value, 'string');
        if (typeof str === 'string') return this.#fromString(str, encoding);
      }
    }
    let bytes: ArrayLike<number>;
    if (ArrayBuffer.isView(value)) {
      bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    } else if (isArrayBuffer(value)) {
      bytes = new Uint8Array(value);
    } else if (value !== null && typeof value === 'object' && typeof (value as ArrayLike<number>).length === 'number') {
      bytes = value as ArrayLike<number>;
    } else {
      throw invalidArgType(
        'value',
        'of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object',
        value,
        this.from,
      );
    }
    const buf = this.#take(bytes.length, false, this.from);
    buf.set(bytes);
    return buf;
  }

  /**
   * Gives the memory of `buf` back now, whatever its reference count. Views
   * of it stay readable but their bytes may belong to a later allocation; a
   * huge allocation's views are detached (length 0).
   * @throws TypeError ERR_INVALID_ARG_TYPE (not a Buffer/TypedArray/DataView), PoolError
   * ERR_DOUBLE_FREE (already freed), ERR_FOREIGN_BUFFER (not from this pool, or a slice), ERR_POOL_CLOSED
   */
  free(buf: ArrayBufferView): void {
    const id = this.#segmentOf(buf, this.free);
    const status = this.#native.free(id, buf.byteOffset, buf.byteLength, (buf as Tagged)[kSerial]!);
    if (status === NativeStatus.SegmentReleased) this.#retire(id);
    else if (status !== NativeStatus.Ok) throw this.#statusError(status, 'free', this.free);
  }

  /** Adds a reference to `buf`; returns the new count. Same errors as free(). */
  retain(buf: ArrayBufferView): number {
    const id = this.#segmentOf(buf, this.retain);
    const count = this.#native.retain(id, buf.byteOffset, buf.byteLength, (buf as Tagged)[kSerial]!);
    if (count < 0) throw this.#statusError(count, 'retain', this.retain);
    return count;
  }

  /** Drops a reference to `buf`; frees it when none is left and then returns true. Same errors as free(). */
  release(buf: ArrayBufferView): boolean {
    const id = this.#segmentOf(buf, this.release);
    const count = this.#native.release(id, buf.byteOffset, buf.byteLength, (buf as Tagged)[kSerial]!);
    if (count < 0) throw this.#statusError(count, 'release', this.release);
    if (count > 0) return false;
    if (this.#segments[id]?.byteLength === 0) this.#retire(id);
    return true;
  }

  /** The reference count of a live allocation (1 unless retained). Same errors as free(). */
  refCount(buf: ArrayBufferView): number {
    const id = this.#segmentOf(buf, this.refCount);
    const count = this.#native.refCount(id, buf.byteOffset, buf.byteLength, (buf as Tagged)[kSerial]!);
    if (count < 0) throw this.#statusError(count, 'refCount', this.refCount);
    return count;
  }

  /** True when `buf` is a live allocation of this pool, the very object handed out (free() would take it). Never throws. */
  owns(buf: unknown): boolean {
    if (this.#closed || !ArrayBuffer.isView(buf)) return false;
    const serial = (buf as Tagged)[kSerial];
    const id = this.#ids.get(buf.buffer as ArrayBuffer);
    return id !== undefined && serial !== undefined &&
      this.#native.refCount(id, buf.byteOffset, buf.byteLength, serial) > 0;
  }

  /** A Scope: allocations made through it are released together by its close() (or `using`). @throws ERR_POOL_CLOSED */
  scope(): Scope {
    this.#checkOpen(this.scope);
    return new Scope(this);
  }

  /**
   * Frees every allocation at once and keeps the chunks mapped. Huge
   * allocations are unmapped and their views detached. @throws ERR_POOL_CLOSED
   */
  reset(): void {
    this.#checkOpen(this.reset);
    this.#native.reset();
    this.#sweep();
  }

  /**
   * Gives free memory back to the OS: unmaps empty chunks (detaching their
   * ArrayBuffers first) and discards the free pages of the others. Returns
   * the bytes given back. @throws ERR_POOL_CLOSED
   */
  trim(): number {
    this.#checkOpen(this.trim);
    const released = this.#native.trim();
    this.#sweep();
    return released;
  }

  /** Counters and per-class figures; cheap enough to call every second. Works after close() too. */
  stats(): PoolStats {
    const n = this.#native.stats();
    return {
      name: this.#name,
      backing: this.#backing,
      closed: this.#closed,
      pageSize: binding.pageSize,
      chunkSize: this.#chunkSize,
      hugeThreshold: this.#hugeThreshold,
      maxBytes: this.#maxBytes,
      ...n,
    };
  }

  /** Every chunk with its runs, every huge mapping and every live allocation, JSON-ready. Works after close() too. */
  dump(): PoolDump {
    const raw = JSON.parse(this.#native.dump()) as Omit<PoolDump, 'name' | 'backing' | 'closed'>;
    return { name: this.#name, backing: this.#backing, closed: this.#closed, ...raw };
  }

  /**
   * Detaches every ArrayBuffer the pool made (old views read as length 0 and
   * their read and write methods throw), then unmaps everything. Temp files
   * were never visible in the file system. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    untrack(this.#exitToken);
    this.#native.close();
    this.#segments = [];
    this.#ids.clear();
  }

  [dispose](): void {
    this.close();
  }

  #take(size: number, zero: boolean, caller: (...args: never[]) => unknown): Buffer {
    if (typeof size !== 'number' || !(size >= 0 && size <= this.#maxSize) || size % 1 !== 0) {
      throw this.#sizeError(size, caller);
    }
    if (this.#closed) throw closedError(caller);
    const serial = (this.#serial = (this.#serial + 1) >>> 0);
    const handle = this.#native.alloc(size, zero, serial);
    if (handle < 0) throw this.#statusError(handle, `alloc(${size})`, caller);
    const id = Math.floor(handle / HANDLE_SPAN);
    const offset = handle - id * HANDLE_SPAN;
    let ab = this.#segments[id];
    // A detached buffer here: its segment was given back to make room, and
    // the id now names a new one.
    if (ab === undefined || ab.byteLength === 0) ab = this.#expose(id, offset, size, serial, caller);
    const buf: Buffer & { [kSerial]?: number } = Buffer.from(ab, offset, size);
    buf[kSerial] = serial;
    return buf;
  }

  #fromString(value: string, encoding: BufferEncoding | undefined): Buffer {
    // Like Buffer.from: a missing or empty encoding means utf8.
    if (typeof encoding !== 'string' || encoding.length === 0) encoding = 'utf8';
    else if (!Buffer.isEncoding(encoding)) throw unknownEncoding(encoding, this.from);
    // byteLength is exact for utf8/utf16le/latin1/ascii, an upper bound for
    // hex and base64 (invalid characters, whitespace): shrink to what decodes.
    const bound = Buffer.byteLength(value, encoding);
    const buf = this.#take(bound, false, this.from);
    const written = buf.write(value, 0, bound, encoding);
    if (written === bound) return buf;
    const exact = this.#take(written, false, this.from);
    buf.copy(exact, 0, 0, written);
    this.free(buf);
    return exact;
  }

  // First use of a segment: get its ArrayBuffer and pin it to this thread.
  #expose(id: number, offset: number, size: number, serial: number, caller: (...args: never[]) => unknown): ArrayBuffer {
    this.#retire(id);
    const ab = this.#native.segment(id);
    if (ab === undefined) {
      this.#native.free(id, offset, size, serial);  // a failed call changes nothing
      const err = mapFailed('napi_create_external_arraybuffer', 0, 'the runtime refused an external ArrayBuffer');
      Error.captureStackTrace(err, caller);
      throw err;
    }
    // A transfer would detach the whole chunk under every other allocation.
    markAsUntransferable(ab);
    this.#segments[id] = ab;
    this.#ids.set(ab, id);
    return ab;
  }

  #segmentOf(buf: ArrayBufferView, caller: (...args: never[]) => unknown): number {
    if (!ArrayBuffer.isView(buf)) {
      throw invalidArgType('buf', 'an instance of Buffer, TypedArray, or DataView', buf, caller);
    }
    this.#checkOpen(caller);
    const ab = buf.buffer as ArrayBuffer;
    const id = this.#ids.get(ab);
    if (id !== undefined && ab.byteLength !== 0 && (buf as Tagged)[kSerial] !== undefined) return id;
    if (id !== undefined && ab.byteLength === 0) this.#retire(id);
    const stale = this.#retired.has(ab) && (buf as Tagged)[kSerial] !== undefined;
    throw this.#statusError(stale ? NativeStatus.DoubleFree : NativeStatus.Foreign, caller.name, caller);
  }

  // A segment the allocator gave back (huge free, trim, reset): forget it.
  #retire(id: number): void {
    const ab = this.#segments[id];
    if (ab === undefined) return;
    this.#segments[id] = undefined;
    this.#ids.delete(ab);
    this.#retired.add(ab);
  }

  // After trim() and reset(): retire every segment whose ArrayBuffer was detached.
  #sweep(): void {
    for (let id = 0; id < this.#segments.length; id++) {
      if (this.#segments[id]?.byteLength === 0) this.#retire(id);
    }
  }

  #checkOpen(caller: (...args: never[]) => unknown): void {
    if (this.#closed) throw closedError(caller);
  }

  #sizeError(size: unknown, caller: (...args: never[]) => unknown): Error {
    if (typeof size !== 'number') return invalidArgType('size', 'of type number', size, caller);
    if (size > this.#maxBytes && size <= MAX_BUFFER && Number.isInteger(size)) {
      return outOfRange('size', `<= maxBytes (${this.#maxBytes})`, size, caller);
    }
    return outOfRange('size', `an integer >= 0 && <= ${this.#maxSize}`, size, caller);
  }

  #statusError(status: number, what: string, caller: (...args: never[]) => unknown): Error {
    let err: Error;
    switch (status) {
      case NativeStatus.DoubleFree:
        err = new PoolError('ERR_DOUBLE_FREE', `${what}: this buffer's memory was already freed`);
        break;
      case NativeStatus.Foreign:
        err = new PoolError('ERR_FOREIGN_BUFFER', `${what}: this buffer was not handed out by pool "${this.#name}" (a slice of one is not accepted either)`);
        break;
      case NativeStatus.Exhausted: {
        const mapped = this.#native.stats().mappedBytes;
        err = new PoolError('ERR_POOL_EXHAUSTED', `${what}: pool "${this.#name}" would pass maxBytes (${mapped} of ${this.#maxBytes} bytes mapped)`);
        break;
      }
      case NativeStatus.MapFailed: {
        const { errno, syscall } = this.#native.lastError();
        err = mapFailed(syscall, errno, `${what}: the OS refused memory for pool "${this.#name}" (backing '${this.#backing}')`);
        break;
      }
      case NativeStatus.Closed:
        return closedError(caller);
      default:
        err = outOfRange('reference count', `< ${2 ** 32 - 1}`, status);
    }
    Error.captureStackTrace(err, caller);
    return err;
  }
}

function isArrayBuffer(value: unknown): value is ArrayBuffer | SharedArrayBuffer {
  return value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer);
}

function closedError(caller: (...args: never[]) => unknown): PoolError {
  const err = new PoolError('ERR_POOL_CLOSED', `${caller.name || 'call'}(): the pool is closed`);
  Error.captureStackTrace(err, caller);
  return err;
}
