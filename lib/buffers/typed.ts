// The typed arrays of allocTyped(): element sizes read from the built-in
// constructors and the check of what a constructor returned.
import { serialOf } from './pool-buffer.js';

/** Any TypedArray constructor (Uint8Array, Float64Array, BigInt64Array, ...). */
export interface TypedArrayConstructor<T extends ArrayBufferView> {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

export const TypedArray = Object.getPrototypeOf(Uint8Array) as object;

/** The element size of each built-in TypedArray constructor (Float16Array where the runtime has one). */
const ELEMENT_SIZE = new Map<unknown, number>([
  [Int8Array, 1], [Uint8Array, 1], [Uint8ClampedArray, 1], [Int16Array, 2], [Uint16Array, 2],
  [Int32Array, 4], [Uint32Array, 4], [Float32Array, 4], [Float64Array, 8], [BigInt64Array, 8], [BigUint64Array, 8],
]);
const Float16 = (globalThis as { Float16Array?: unknown }).Float16Array;
if (typeof Float16 === 'function') ELEMENT_SIZE.set(Float16, 2);

/**
 * The element size of the built-in TypedArray `Type` is or extends (found
 * in its prototype chain), or 0 when it is no TypedArray constructor. A
 * subclass's own BYTES_PER_ELEMENT is never read: it can say anything.
 */
export function elementSize(Type: unknown): number {
  if (typeof Type !== 'function' || !(Type.prototype instanceof (TypedArray as new () => object))) return 0;
  // Bounded: a Proxy's getPrototypeOf trap can make the chain endless.
  let p: unknown = Type;
  for (let depth = 0; depth < 256 && typeof p === 'function'; depth++) {
    const n = ELEMENT_SIZE.get(p);
    if (n !== undefined) return n;
    p = Object.getPrototypeOf(p);
  }
  return 0;
}

// The built-in getters of every typed array: a subclass may override its own.
function getter(key: string | symbol): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor((TypedArray as { prototype: object }).prototype, key)?.get as (this: unknown) => unknown;
}
const nameOf = getter(Symbol.toStringTag);
const bufferOf = getter('buffer');
const byteOffsetOf = getter('byteOffset');
const lengthOf = getter('length');
const byteLengthOf = getter('byteLength');

/**
 * Whether `view` is a typed array over exactly `size` bytes of `ab` at
 * `offset`, with `length` elements, that no pool handed out before: what
 * allocTyped() accepts from a constructor (a subclass's may return any
 * object, or ignore its arguments).
 */
export function isFreshView(view: unknown, ab: ArrayBuffer, offset: number, length: number, size: number): boolean {
  return nameOf.call(view) !== undefined && bufferOf.call(view) === ab && byteOffsetOf.call(view) === offset &&
    lengthOf.call(view) === length && byteLengthOf.call(view) === size && serialOf(view as ArrayBufferView) === undefined;
}

