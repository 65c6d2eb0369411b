// pool.collect(): every byte of a stream (an HTTP request body, a file
// stream, any async iterable of Uint8Array) in one pool Buffer.
//
//   sizeHint known (Content-Length):  one allocation of that size, filled in place
//   otherwise:                        64 KiB, doubled as needed (the old buffer freed)
//   at the end:                       the exact length; a bigger buffer is copied
//                                     once into one of the exact size and freed
//
// Whatever happens (the limit passed, the source failing, an abort), nothing
// stays allocated: every buffer taken is freed before the promise rejects,
// and the source is told to stop (its iterator's return(): a Readable is
// destroyed).
import { invalidArgType, outOfRange, type Caller } from '../errors.js';
import { abortError, moveTo, checkOptions, signalOf, type IoPool } from './io-pool.js';

export interface CollectOptions {
  /** The most bytes accepted; past it, RangeError ERR_OUT_OF_RANGE. Default: the pool's largest allocation. */
  limit?: number;
  /** The bytes expected (say, Content-Length): the first allocation's size. */
  sizeHint?: number;
  /** Aborts the collection: the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

const FIRST = 64 * 1024;

function integerOption(value: unknown, name: string, max: number, caller: Caller): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value, caller);
  if (!(Number.isInteger(value) && value >= 0 && value <= max)) throw outOfRange(name, `an integer >= 0 && <= ${max}`, value, caller);
  return value;
}

export async function collect(pool: IoPool, source: unknown, options: CollectOptions | undefined, maxSize: number, caller: Caller): Promise<Buffer> {
  const iterate = (source as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator];
  if (typeof iterate !== 'function') throw invalidArgType('source', 'a Readable or an async iterable of Uint8Array', source, caller);
  checkOptions(options, caller);
  const limit = integerOption(options?.limit, 'options.limit', maxSize, caller) ?? maxSize;
  const hint = integerOption(options?.sizeHint, 'options.sizeHint', maxSize, caller);
  const signal = signalOf(options?.signal, caller);
  if (signal?.aborted) throw abortError(signal, caller);

  const it = (iterate as () => AsyncIterator<unknown>).call(source);
  const abort = signal === undefined ? undefined : watchAbort(signal, caller);
  let buf: Buffer | undefined;
  let length = 0;
  let done = false;
  try {
    if (hint !== undefined && hint > 0) buf = pool.allocUnsafe(Math.min(hint, limit));
    for (;;) {
      const step = abort === undefined ? await it.next() : await Promise.race([it.next(), abort.aborted]);
      if (step.done === true) {
        done = true;
        break;
      }
      const chunk = step.value;
      if (!(chunk instanceof Uint8Array)) throw invalidArgType('a chunk of source', 'an instance of Uint8Array', chunk, caller);
      const need = length + chunk.length;
      if (need > limit) throw outOfRange('the bytes of source', `<= options.limit (${limit})`, need, caller);
      if (buf === undefined || need > buf.length) buf = grow(pool, buf, length, need, limit);
      buf.set(chunk, length);
      length = need;
    }
    if (buf === undefined) return pool.allocUnsafe(0);
    return buf.length === length ? buf : moveTo(pool, buf, length, length);
  } catch (err) {
    if (buf !== undefined) pool.free(buf);
    throw err;
  } finally {
    abort?.stop();
    if (!done) stopSource(source, it);
  }
}

/** A buffer with room for `need` bytes (at most `limit`): the first (FIRST), or twice `buf` with its `length` bytes moved over. */
function grow(pool: IoPool, buf: Buffer | undefined, length: number, need: number, limit: number): Buffer {
  let size = Math.max(buf === undefined ? FIRST : buf.length * 2, need);
  if (size > limit) size = limit;
  return buf === undefined ? pool.allocUnsafe(size) : moveTo(pool, buf, length, size);
}

/** A promise that rejects with an AbortError when `signal` aborts, to race each read with; stop() stops listening. */
function watchAbort(signal: AbortSignal, caller: Caller): { aborted: Promise<never>; stop(): void } {
  let reject: ((err: Error) => void) | undefined;
  const aborted = new Promise<never>((_, rej) => {
    reject = rej;
  });
  const onAbort = (): void => reject?.(abortError(signal, caller));
  signal.addEventListener('abort', onAbort, { once: true });
  // A rejection nobody awaits must not become an unhandled one.
  aborted.catch(() => {});
  return { aborted, stop: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Tells a source that was not read to its end to stop: a stream is
 * destroyed; an iterator's return() is called and not awaited (an async
 * generator waiting inside next() would only run it after that wait).
 */
function stopSource(source: unknown, it: AsyncIterator<unknown>): void {
  const destroy = (source as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') destroy.call(source);
  if (typeof it.return === 'function') {
    // Its own error on stopping is not what the caller is told about.
    Promise.resolve(it.return()).catch(() => {});
  }
}
