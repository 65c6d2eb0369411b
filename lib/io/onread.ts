// pool.onread(size, callback): the `onread` option of net.Socket
// (net.connect({ onread }), new net.Socket({ onread })), reading into pool
// memory. Node calls `buffer()` for the buffer of the next read (once when
// the socket gets its handle, then after every read), reads into it, and
// calls `callback(nread, buf)` with it; the callback owns `buf` (free or
// release it) and may keep it, because every read lands in a fresh Buffer.
//
//   buffer()  -> a new pool Buffer of `size`, the one the next read fills (pending)
//   read      -> callback(nread, pending): handed over; buffer() makes the next
//   close     -> the pending Buffer, never filled, is freed (reader.release())
//
// The socket reads into the pending Buffer's memory until it closes, so that
// Buffer is freed only when the socket has closed: on its 'close' event
// (registered at the first read, where the callback learns its socket) or
// by reader.release(), which a program calls on 'close' of a socket that
// may close before its first read.
//
// A Buffer the pool cannot make (ERR_POOL_EXHAUSTED, ERR_POOL_CLOSED, ...)
// is not thrown into Node's read path, where it would be an uncaught
// exception: buffer() hands Node a one-byte Buffer of its own instead, and
// the read that lands there destroys the socket with the pool's error (its
// 'error' event), so the program never receives memory the pool did not make.
import type { Socket } from 'node:net';

import { invalidArgType, outOfRange, type Caller } from '../errors.js';
import type { IoPool } from './io-pool.js';

export interface PoolReader {
  /** For net.Socket's `onread.buffer`: the Buffer the next read fills. */
  buffer: () => Buffer;
  /** For net.Socket's `onread.callback`: hands the filled Buffer to the program's callback; false pauses the socket. */
  callback: (this: Socket, nread: number, buf: Uint8Array) => boolean;
  /** Frees the Buffer the next read would have filled; call it once the socket has closed. Idempotent. */
  release(): void;
}

export function onread(pool: IoPool, size: unknown, callback: unknown, maxSize: number, caller: Caller): PoolReader {
  if (typeof size !== 'number') throw invalidArgType('size', 'of type number', size, caller);
  if (!(Number.isInteger(size) && size >= 1 && size <= maxSize)) throw outOfRange('size', `an integer >= 1 && <= ${maxSize}`, size, caller);
  if (typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback, caller);
  const user = callback as (nread: number, buf: Buffer) => boolean | void;
  let pending: Buffer | undefined;
  let failure: unknown;
  let stand: Buffer | undefined;
  let watched = false;
  const release = (): void => {
    const buf = pending;
    pending = undefined;
    if (buf === undefined) return;
    try {
      pool.free(buf);
    } catch {
      // The pool was closed (its memory has gone back already).
    }
  };
  return {
    buffer(): Buffer {
      try {
        pending = pool.allocUnsafe(size);
        return pending;
      } catch (err) {
        failure = err;
        stand = Buffer.alloc(1);
        return stand;
      }
    },
    callback(this: Socket, nread: number, buf: Uint8Array): boolean {
      if (!watched && this !== undefined && typeof this.once === 'function') {
        watched = true;
        this.once('close', release);
      }
      if (buf === stand) {
        this.destroy(failure as Error);
        return false;
      }
      if (buf === pending) pending = undefined;
      return user.call(this, nread, buf as Buffer) !== false;
    },
    release,
  };
}
