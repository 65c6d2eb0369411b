// ObjectPool: reusable JS objects, kept idle between uses (a small cousin of
// Apache Commons Pool and Netty's Recycler). It has nothing to do with mapped
// memory: it pools objects on the V8 heap, to save the cost of building them.
//
// Every object the pool hands out is remembered twice: weakly for life, in
// #known (so a second release() is told apart from a foreign object), and
// strongly while it is out, in #inUse, with the serial number of the
// acquire() that handed it out. A Lease remembers that serial, so disposing a
// lease whose object was released by hand and handed out again to someone
// else cannot take it back from its new holder.
import { dispose } from './dispose.js';
import { invalidArgType, invalidReturnValue, outOfRange, PoolError, type Caller } from './errors.js';



export interface ObjectPoolOptions<T extends object> {
  /** How many idle objects are kept for reuse; a positive integer or Infinity. Default: Infinity. */
  max?: number;
  /** Called by release() with each object given back, to make it fit for reuse. */
  reset?: (obj: T) => void;
  /** Label in stats() and error messages. Default: 'default'. */
  name?: string;
}

export interface ObjectPoolStats {
  /** The `name` option. */
  name: string;
  /** Objects kept for reuse now. */
  idle: number;
  /** Objects handed out and not yet released. */
  inUse: number;
  /** Objects made by the factory, ever. */
  created: number;
  /** acquire() (and lease()) calls that handed an object out, ever. */
  acquired: number;
  /** Successful release() calls (and lease disposals), ever. */
  released: number;
  /**
   * Objects the pool let go of, ever: released while `max` were idle, released
   * after close(), whose reset() threw, or idle at close(). At any time
   * `created === idle + inUse + dropped`.
   */
  dropped: number;
  /** The `max` option. */
  max: number;
}

/** One object on loan from an ObjectPool; `using` gives it back at the end of the block. */
export interface Lease<T extends object> extends Disposable {
  /** The object on loan. */
  readonly value: T;
  /**
   * Releases `value` to the pool, the first time only: a second call does
   * nothing, and so does a call after `value` was given back with
   * pool.release() (even if the pool has since handed it out again).
   * @throws whatever the pool's `reset` throws (the object is dropped, see ObjectPool.release())
   */
  [Symbol.dispose](): void;
}

export class ObjectPool<T extends object> {
  readonly #factory: () => T;
  readonly #reset: ((obj: T) => void) | undefined;
  readonly #max: number;
  readonly #name: string;
  /** Idle objects; the last one pushed is the next one handed out (LIFO: the one most likely still in cache). */
  #idle: T[] = [];
  /** Objects out now, each with the serial number of the acquire() that handed it out. */
  readonly #inUse = new Map<T, number>();
  /** Every object this pool ever handed out. */
  readonly #known = new WeakSet<T>();
  #closed = false;
  #serial = 0;
  #created = 0;
  #acquired = 0;
  #released = 0;
  #dropped = 0;

  /**
   * A pool of objects made by `factory()` when none is idle.
   * @throws TypeError ERR_INVALID_ARG_TYPE (factory, options.reset not a function; options not an
   * object; options.max not a number; options.name not a string), RangeError ERR_OUT_OF_RANGE
   * (options.max not a positive integer or Infinity)
   */
  constructor(factory: () => T, options?: ObjectPoolOptions<T>) {
    if (typeof factory !== 'function') throw invalidArgType('factory', 'of type function', factory);
    if (options === undefined) options = {};
    if (options === null || typeof options !== 'object') {
      throw invalidArgType('options', 'of type object', options);
    }
    const max = options.max === undefined ? Infinity : options.max;
    if (typeof max !== 'number') throw invalidArgType('options.max', 'of type number', max);
    if (!(max === Infinity || (Number.isSafeInteger(max) && max > 0))) {
      throw outOfRange('options.max', 'an integer > 0, or Infinity', max);
    }
    const reset = options.reset;
    if (reset !== undefined && typeof reset !== 'function') {
      throw invalidArgType('options.reset', 'of type function', reset);
    }
    const name = options.name ?? 'default';
    if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
    this.#factory = factory;
    this.#reset = reset;
    this.#max = max;
    this.#name = name;
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
   * An object for the caller's use until it calls release(): the idle object
   * released last, or, when none is idle, a new one from the factory. An
   * error from the factory propagates and changes nothing.
   * @throws PoolError ERR_POOL_CLOSED; TypeError ERR_INVALID_RETURN_VALUE (the factory returned a
   * non-object, or an object this pool has out now)
   */
  acquire(): T {
    return this.#acquire(this.acquire);
  }

  /**
   * Gives `obj` back: calls `reset(obj)` if there is one, then keeps `obj`
   * idle for reuse if fewer than `max` objects are idle, else drops it (the
   * pool forgets it; the garbage collector takes it).
   *
   * After close() this is still allowed for objects that were out: they are
   * reset and dropped, without error.
   *
   * If `reset` throws, `obj` is dropped rather than kept, it counts as
   * released (releasing it again is ERR_DOUBLE_FREE), and the error propagates.
   * @throws TypeError ERR_INVALID_ARG_TYPE (obj not an object); PoolError ERR_DOUBLE_FREE (obj came
   * from this pool and was already released), ERR_FOREIGN_BUFFER (obj never came from this pool;
   * the code is named for buffers, and means "not handed out by this pool" here too);
   * whatever `reset` throws
   */
  release(obj: T): void {
    this.#release(obj, this.release);
  }

  /**
   * acquire(), wrapped so that `using lease = pool.lease()` releases
   * `lease.value` at the end of the block, however the block ends.
   * @throws acquire()'s errors
   */
  lease(): Lease<T> {
    const value = this.#acquire(this.lease);
    const serial = this.#serial;
    let done = false;
    return {
      value,
      [dispose]: () => {
        if (done) return;
        done = true;
        // Given back by hand already: it is idle, dropped, or someone else's now.
        if (this.#inUse.get(value) !== serial) return;
        this.#release(value, this.lease);
      },
    };
  }

  /** Counters, as of now; works after close() too. Never throws. */
  stats(): ObjectPoolStats {
    return {
      name: this.#name,
      idle: this.#idle.length,
      inUse: this.#inUse.size,
      created: this.#created,
      acquired: this.#acquired,
      released: this.#released,
      dropped: this.#dropped,
      max: this.#max,
    };
  }

  /**
   * Drops every idle object; from now on acquire() and lease() throw
   * ERR_POOL_CLOSED. Objects still out may be released as before: they are
   * reset and dropped, without error. Idempotent. Never throws.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropped += this.#idle.length;
    this.#idle = [];
  }

  /** Same as close(), for `using pool = new ObjectPool(...)`. */
  [dispose](): void {
    this.close();
  }

  #acquire(caller: Caller): T {
    if (this.#closed) {
      const err = new PoolError('ERR_POOL_CLOSED', `${caller.name}(): object pool "${this.#name}" is closed`);
      Error.captureStackTrace(err, caller);
      throw err;
    }
    let obj = this.#idle.pop();
    if (obj === undefined) {
      obj = this.#factory();
      if (!isObject(obj)) throw invalidReturnValue('an object', 'factory', obj, caller);
      // A factory that hands back an object now out would give two callers the same object.
      if (this.#inUse.has(obj)) throw invalidReturnValue('a new object (not one this pool has out)', 'factory', obj, caller);
      this.#created++;
      this.#known.add(obj);
    }
    this.#inUse.set(obj, ++this.#serial);
    this.#acquired++;
    return obj;
  }

  #release(obj: T, caller: Caller): void {
    if (!isObject(obj)) throw invalidArgType('obj', 'of type object', obj, caller);
    if (!this.#inUse.delete(obj)) {
      const err = this.#known.has(obj)
        ? new PoolError('ERR_DOUBLE_FREE', `${caller.name}(): this object was already released to object pool "${this.#name}"`)
        : new PoolError('ERR_FOREIGN_BUFFER', `${caller.name}(): this object was not handed out by object pool "${this.#name}"`);
      Error.captureStackTrace(err, caller);
      throw err;
    }
    this.#released++;
    if (this.#reset !== undefined) {
      try {
        this.#reset(obj);
      } catch (err) {
        this.#dropped++;
        throw err;
      }
    }
    // Checked after reset(), which may have used the pool itself.
    if (!this.#closed && this.#idle.length < this.#max) this.#idle.push(obj);
    else this.#dropped++;
  }
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}
