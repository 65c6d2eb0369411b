// The views a pool hands out: Buffers built without Buffer.from's checks,
// typed arrays for allocTyped(), and the serial tag every one carries.
import { binding } from './binding.js';
import { invalidArgType, outOfRange, type Caller } from './errors.js';

// A class whose constructor returns the object it is given: a class that
// extends it adds its private fields to that object (a class constructor
// may return another object, and the derived class's fields go onto it).
class Stamp {
  constructor(target: object) {
    return target as Stamp;
  }
}

/**
 * The tags of a typed array from allocTyped(): its allocation's serial and
 * (out of the slot cache) its block id, in private fields as a PoolBuffer
 * keeps its own, so that no copy of its properties carries them.
 */
class ViewTag extends Stamp {
  #slot: number;
  #serial: number;

  /** Tags `view` (`new ViewTag(...)` returns it; once: a second tag of the same view throws). */
  constructor(view: ArrayBufferView, slot: number, serial: number) {
    super(view);
    this.#slot = slot;
    this.#serial = serial;
  }

  static slotOf(v: unknown): number {
    return typeof v === 'object' && v !== null && #slot in v ? v.#slot : -1;
  }

  static serialOf(v: unknown): number | undefined {
    return typeof v === 'object' && v !== null && #serial in v ? v.#serial : undefined;
  }
}

/** Tags a typed array from allocTyped() with its allocation's serial and its slot-cache block id (-1: none). */
export function tagView(view: ArrayBufferView, slot: number, serial: number): void {
  new ViewTag(view, slot, serial);
}

/** The serial of the allocation `view` was handed out for, if it was handed out. */
export function serialOf(view: ArrayBufferView): number | undefined {
  const s = PoolBuffer.serialOf(view);
  return s !== undefined ? s : ViewTag.serialOf(view);
}

/** The slot-cache block id `view` was handed out with, or -1 (not from the cache, or not handed out). */
export function slotOf(view: unknown): number {
  const k = PoolBuffer.slotOf(view);
  return k >= 0 ? k : ViewTag.slotOf(view);
}

/** The largest serial: above it a double no longer counts by ones. */
export const MAX_SERIAL = 2 ** 53 - 1;

// `var`, not `let`: V8 checks a context-held `let` for its temporal dead
// zone at every read and write, which took nextSerial() past the 27 bytes
// of bytecode that V8 inlines without counting them against its budget.
// eslint-disable-next-line no-var
var lastSerial = 0;

/**
 * The serial of a new allocation: 1, 2, 3 ... shared by every pool of this
 * thread (so a serial also tells pools apart). 0 is the slot cache's own.
 * A serial is never reused within 2^53 - 1 allocations of a thread: a V8
 * small integer on the Buffer for the first 2^31, a double after. Past
 * MAX_SERIAL it starts again from 1: at one allocation per 10 ns, after
 * 2.8 years of nothing else.
 */
export function nextSerial(): number {
  // Short, for V8's inlining budget on the hot path (test/inlining.test.ts).
  return (lastSerial = lastSerial < 9007199254740991 ? lastSerial + 1 : 1);  // MAX_SERIAL
}

/**
 * @internal For tests only (not exported by the package): the next
 * nextSerial() returns `last` + 1, so that a test reaches the boundaries
 * (2^30, 2^31, 2^52, the wrap) without 2^52 allocations.
 */
export function setLastSerial(last: number): void {
  lastSerial = last;
}

export interface AllocOptions {
  /** A power of two up to the page size: the Buffer's byteOffset (and address) is a multiple of it. */
  align?: number;
}

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

/**
 * What alloc() returns: a Uint8Array whose prototype chain holds
 * Buffer.prototype, as Node's own FastBuffer does, so it is a Buffer in
 * every way (Buffer.isBuffer, instanceof, every method). Constructing it
 * directly costs about a third of Buffer.from(arrayBuffer, offset, length),
 * which re-checks its arguments.
 *
 * It carries its allocation's serial and its slot-cache block id in private
 * fields: nothing can copy them onto another object (object spread and
 * Object.assign copy symbol-keyed properties), and reading them costs no
 * more than a property. A view made from it by a TypedArray method
 * (subarray, map, ...) is a plain Buffer and has neither.
 *
 * Its prototype is PoolBuffer.prototype, not Buffer.prototype: so Node
 * 20's assert.deepStrictEqual(), which compares prototypes, tells it from a
 * Buffer of the same bytes (Node 22 and later do not; README, "API at a
 * glance"). Node's own FastBuffer with the tags added after construction
 * measured 4-8 ns more per pair (bench/NOTES.md).
 */
export class PoolBuffer extends Uint8Array {
  #slot: number | undefined;
  #serial: number | undefined;

  constructor(buffer: ArrayBuffer, byteOffset?: number, length?: number, slot?: number, serial?: number) {
    super(buffer, byteOffset, length);
    this.#slot = slot;
    this.#serial = serial;
  }

  /** The slot-cache block id of a PoolBuffer handed out from the cache, else -1. */
  static slotOf(v: unknown): number {
    if (typeof v !== 'object' || v === null || !(#slot in v)) return -1;
    const k = v.#slot;
    return k === undefined ? -1 : k;
  }

  /**
   * The slot-cache block id of `v` when it is a PoolBuffer handed out from
   * the cache and still live there: its serial equals serials[id] (one call
   * for free()'s fast path). Else -1.
   */
  static liveSlot(v: unknown, serials: Float64Array): number {
    if (typeof v !== 'object' || v === null || !(#slot in v)) return -1;
    const k = v.#slot;
    // (undefined >= 0 is false: a PoolBuffer not from the cache fails here too.)
    return (k as number) >= 0 && serials[k as number] === v.#serial ? (k as number) : -1;
  }

  /** The serial a PoolBuffer was handed out under (undefined for anything else). */
  static serialOf(v: unknown): number | undefined {
    return typeof v === 'object' && v !== null && #serial in v ? v.#serial : undefined;
  }
}
Object.setPrototypeOf(PoolBuffer.prototype, Buffer.prototype);
// As Node does for its own FastBuffer: `buf.constructor` is Buffer, so
// util.inspect() prints `<Buffer ...>`, and views made by TypedArray methods
// (subarray, slice, map: through Buffer[Symbol.species]) are plain Buffers.
Object.defineProperty(PoolBuffer.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false });

/** The `align` of alloc()'s options, checked; 0 for none. */
export function alignOf(options: AllocOptions, caller: Caller): number {
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options, caller);
  const align = options.align;
  if (align === undefined) return 0;
  if (typeof align !== 'number') throw invalidArgType('options.align', 'of type number', align, caller);
  if (!(Number.isInteger(align) && align >= 1 && align <= binding.pageSize && (align & (align - 1)) === 0)) {
    throw outOfRange('options.align', `a power of two >= 1 && <= ${binding.pageSize} (the page size)`, align, caller);
  }
  return align;
}
