// pool.releaseAfter(stream, buf): one reference of `buf` goes back when the
// stream is done with it, in every way a stream can be done: finished,
// errored, destroyed or closed (stream.finished() fires for each). A write
// callback (`res.end(buf, cb)`) does not fire when the client has gone; this
// does.
//
// An http.ServerResponse takes a shorter way: it emits 'close' once, when
// the response is complete or its connection went first, and is destroyed
// from then on; one 'close' listener costs less than finished()'s set,
// which showed at 1 KiB responses (docs/services.md, "An HTTP server").
import { ServerResponse } from 'node:http';
import { finished } from 'node:stream';

import { invalidArgType, type Caller } from '../errors.js';
import type { IoPool } from './io-pool.js';

export function releaseAfter(pool: IoPool, stream: unknown, buf: ArrayBufferView, caller: Caller): void {
  if (typeof stream !== 'object' || stream === null || typeof (stream as NodeJS.EventEmitter).on !== 'function') {
    throw invalidArgType('stream', 'an instance of Stream', stream, caller);
  }
  if (!ArrayBuffer.isView(buf)) throw invalidArgType('buf', 'an instance of Buffer, TypedArray, or DataView', buf, caller);
  // Checked now, so that a Buffer the pool does not know fails here and not
  // later, in a callback, where nobody could catch it.
  pool.refCount(buf);
  const done = (): void => release(pool, buf);
  if (stream instanceof ServerResponse) {
    if (stream.destroyed) process.nextTick(done);
    else stream.once('close', done);
    return;
  }
  finished(stream as NodeJS.ReadableStream, done);
}

function release(pool: IoPool, buf: ArrayBufferView): void {
  try {
    pool.release(buf);
  } catch (err) {
    // Never an uncaught exception from here. A closed pool has given
    // everything back already; anything else (the program freed the
    // Buffer itself) is its mistake, reported without ending the process.
    if ((err as { code?: unknown }).code !== 'ERR_POOL_CLOSED') {
      process.emitWarning(`releaseAfter: ${(err as Error).message}`, { code: 'MMAP_POOL_RELEASE_AFTER' });
    }
  }
}
