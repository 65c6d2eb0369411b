// Scope: a group of allocations that go back to the pool together, with
// close() or `using` (like Java's Arena.ofConfined()).
import { PoolError } from './errors.js';
import { dispose } from './dispose.js';

/** What a Scope needs from its pool. */
export interface ScopeOwner {
  readonly closed: boolean;
  alloc(size: number): Buffer;
  allocUnsafe(size: number): Buffer;
  from(value: string | ArrayBufferView | ArrayBuffer | ArrayLike<number>, encoding?: BufferEncoding): Buffer;
  release(buf: ArrayBufferView): boolean;
}


export class Scope {
  readonly #pool: ScopeOwner;
  #buffers: Buffer[] = [];
  #closed = false;

  /** @internal Made by Pool.scope(). */
  constructor(pool: ScopeOwner) {
    this.#pool = pool;
  }

  /** True once close() has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Like Pool.alloc(); the buffer is released when the scope closes. @throws ERR_POOL_CLOSED if the scope or pool is closed, and Pool.alloc()'s errors */
  alloc(size: number): Buffer {
    return this.#keep(this.#pool.alloc.bind(this.#pool), size);
  }

  /** Like Pool.allocUnsafe(); released when the scope closes. */
  allocUnsafe(size: number): Buffer {
    return this.#keep(this.#pool.allocUnsafe.bind(this.#pool), size);
  }

  /** Like Pool.from(); released when the scope closes. */
  from(value: string | ArrayBufferView | ArrayBuffer | ArrayLike<number>, encoding?: BufferEncoding): Buffer {
    this.#checkOpen();
    const buf = this.#pool.from(value, encoding);
    this.#buffers.push(buf);
    return buf;
  }

  /**
   * Releases one reference to every buffer this scope handed out (so a
   * buffer someone retain()ed lives on until they release it). Buffers
   * already freed one by one are skipped. Idempotent, and quiet when the
   * pool closed first.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const buffers = this.#buffers;
    this.#buffers = [];
    if (this.#pool.closed) return;
    for (const buf of buffers) {
      try {
        this.#pool.release(buf);
      } catch (err) {
        if ((err as PoolError).code !== 'ERR_DOUBLE_FREE') throw err;
      }
    }
  }

  [dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new PoolError('ERR_POOL_CLOSED', 'This scope is closed');
  }

  #keep(make: (size: number) => Buffer, size: number): Buffer {
    this.#checkOpen();
    const buf = make(size);
    this.#buffers.push(buf);
    return buf;
  }
}
