// What the I/O helpers need of a pool: its public allocation methods only.
// They sit on top of Pool's public API, as a program's own code would.
import { invalidArgType, type Caller } from '../errors.js';

export interface IoPool {
  allocUnsafe(size: number): Buffer;
  free(buf: ArrayBufferView): void;
  release(buf: ArrayBufferView): boolean;
  refCount(buf: ArrayBufferView): number;
}

/**
 * `buf`'s first `length` bytes in a new pool Buffer of `size`, `buf` freed.
 * If the new Buffer cannot be made, `buf` is left as it was (the caller
 * frees it with everything else it holds).
 */
export function moveTo(pool: IoPool, buf: Buffer, length: number, size: number): Buffer {
  const to = pool.allocUnsafe(size);
  buf.copy(to, 0, 0, length);
  pool.free(buf);
  return to;
}

/** An AbortError as Node's own APIs reject with (name 'AbortError', code 'ABORT_ERR', the signal's reason as cause). */
export function abortError(signal: AbortSignal, caller: Caller): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  Error.captureStackTrace(err, caller);
  return err;
}

/** Checks an options argument: an object or undefined. */
export function checkOptions(options: unknown, caller: Caller): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw invalidArgType('options', 'of type object', options, caller);
}

/** `options.signal`, checked: an AbortSignal or undefined. */
export function signalOf(signal: unknown, caller: Caller): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (typeof signal !== 'object' || signal === null || !('aborted' in signal) || typeof (signal as AbortSignal).addEventListener !== 'function') {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal, caller);
  }
  return signal as AbortSignal;
}
