// What Pool.from() accepts, turned into bytes the way Buffer.from() does it,
// and copied into a Buffer the pool makes (fromSource()).
import { Buffer } from 'node:buffer';

import { invalidArgType, unknownEncoding, type Caller } from '../errors.js';
import { MAX_BUFFER, sizeError } from '../options.js';

export type Source = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer | ArrayLike<number>;

export function isArrayBuffer(value: unknown): value is ArrayBuffer | SharedArrayBuffer {
  return value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer);
}

/**
 * A string to encode, bytes to copy, or the items of an array(-like),
 * each a byte value once converted (by ToNumber: valueOf, getters).
 */
export type Converted = { text: string; encoding: BufferEncoding } | { bytes: Uint8Array } | { items: ArrayLike<unknown> };

/**
 * The items of an array(-like) as bytes, converted (ToNumber: valueOf,
 * getters, all user code) before any memory is taken, so that a throw
 * leaves the pool as it was.
 * @throws TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE for a bad length (a pool of `maxBytes`)
 */
export function bytesOf(items: ArrayLike<unknown>, maxBytes: number, caller: Caller): Uint8Array {
  const n = items.length;
  if (typeof n !== 'number' || !(n >= 0 && n <= Math.min(maxBytes, MAX_BUFFER)) || n % 1 !== 0) throw sizeError(n, caller, maxBytes);
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = items[i] as number;
  return bytes;
}

/**
 * @throws TypeError ERR_INVALID_ARG_TYPE (nothing Buffer.from would take), ERR_UNKNOWN_ENCODING
 */
export function convert(value: Source, encoding: unknown, caller: (...args: never[]) => unknown): Converted {
  if (typeof value === 'string') {
    // Like Buffer.from: a missing or empty encoding means utf8.
    if (typeof encoding !== 'string' || encoding.length === 0) return { text: value, encoding: 'utf8' };
    if (!Buffer.isEncoding(encoding)) throw unknownEncoding(encoding, caller);
    return { text: value, encoding };
  }
  if (ArrayBuffer.isView(value)) return { bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  if (isArrayBuffer(value)) return { bytes: new Uint8Array(value) };
  if (value !== null && typeof value === 'object') {
    // An object standing for a primitive (new String('ab')) is converted first.
    const primitive = (value as { valueOf?: () => unknown }).valueOf?.();
    if (primitive != null && primitive !== value && (typeof primitive === 'string' || typeof primitive === 'object')) {
      return convert(primitive as Source, encoding, caller);
    }
    const toPrimitive = (value as { [Symbol.toPrimitive]?: (hint: string) => unknown })[Symbol.toPrimitive];
    if (typeof toPrimitive === 'function') {
      const text = toPrimitive.call(value, 'string');
      if (typeof text === 'string') return convert(text, encoding, caller);
    }
    if (typeof (value as ArrayLike<number>).length === 'number') return { items: value as ArrayLike<unknown> };
  }
  throw invalidArgType(
    'value',
    'of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object',
    value,
    caller,
  );
}

/**
 * Pool.from(): `value` converted (all user code runs first), then copied
 * into a Buffer of exactly its length made by `make` (which may run a
 * 'pressure' listener); `free` gives back a Buffer made too large.
 */
export function fromSource(value: Source, encoding: unknown, maxBytes: number, make: (size: number) => Buffer, free: (buf: Buffer) => void, caller: Caller): Buffer {
  const c = convert(value, encoding, caller);
  if (!('text' in c)) {
    const bytes = 'bytes' in c ? c.bytes : bytesOf(c.items, maxBytes, caller);
    const buf = make(bytes.length);
    buf.set(bytes);
    return buf;
  }
  // byteLength is exact for utf8/utf16le/latin1/ascii, an upper bound for
  // hex and base64 (invalid characters, whitespace): shrink to what decodes.
  const bound = Buffer.byteLength(c.text, c.encoding);
  const buf = make(bound);
  const written = buf.write(c.text, 0, bound, c.encoding);
  if (written === bound) return buf;
  // Copied out and freed first: the exact allocation may run a 'pressure'
  // listener, and nothing of this call's may be pending then.
  const bytes = new Uint8Array(buf.subarray(0, written));
  free(buf);
  const exact = make(written);
  exact.set(bytes);
  return exact;
}
