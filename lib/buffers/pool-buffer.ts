// The Buffer subclass a pool hands out, and the tags (serial, block id) that
// every view a pool hands out carries in private fields.
import { FREED_SERIAL } from './serials.js';

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
 * (out of the block cache) its block id, in private fields as a PoolBuffer
 * keeps its own, so that no copy of its properties carries them.
 */
class ViewTag extends Stamp {
  #block: number;
  #serial: number;

  /** Tags `view` (`new ViewTag(...)` returns it; once: a second tag of the same view throws). */
  constructor(view: ArrayBufferView, block: number, serial: number) {
    super(view);
    this.#block = block;
    this.#serial = serial;
  }

  static blockOf(v: unknown): number {
    return typeof v === 'object' && v !== null && #block in v ? v.#block : -1;
  }

  static serialOf(v: unknown): number | undefined {
    return typeof v === 'object' && v !== null && #serial in v ? v.#serial : undefined;
  }

  static retag(v: unknown, serial: number): boolean {
    if (typeof v !== 'object' || v === null || !(#serial in v)) return false;
    v.#serial = serial;
    return true;
  }
}

/**
 * The block id of a Buffer adopt() made as its allocation's only reference
 * (no other thread holds one, no handle is out) in segment `segment`:
 * -2 - segment. Its free() may be deferred (lib/native/free-batch.ts),
 * which then needs no lookup of the segment. A retain() or share()
 * through it ends that (unsole()).
 */
export function soleBlock(segment: number): number {
  return -2 - segment;
}

/** What takes the free of a Buffer marked by soleBlock(): PoolMemory.deferFree(). */
export interface SoleFrees {
  /** True when the free of the allocation `view` (in `segment`, under `serial`) is deferred. */
  deferFree(view: ArrayBufferView, segment: number, serial: number): boolean;
}

/**
 * When `view` is a Buffer marked by soleBlock() and `batch` defers its free:
 * the view is tagged FREED_SERIAL (every later call with it is a double
 * free) and its serial returned. Else -1, with nothing changed.
 */
export function deferSole(view: unknown, batch: SoleFrees): number {
  return PoolBuffer.deferSole(view, batch);
}

/** `view` may now share its allocation with another reference: its free() is never deferred. */
export function unsole(view: unknown): void {
  PoolBuffer.unsole(view);
}

/** Tags a typed array from allocTyped() with its allocation's serial and its block-cache block id (-1: none). */
export function tagView(view: ArrayBufferView, block: number, serial: number): void {
  new ViewTag(view, block, serial);
}

/**
 * `view`'s allocation under a new serial: a shared pool's block leaving
 * its thread's cache takes one unique in the pool (lib/threads/share.ts).
 */
export function retag(view: ArrayBufferView, serial: number): void {
  if (!PoolBuffer.retag(view, serial)) ViewTag.retag(view, serial);
}

/** The serial of the allocation `view` was handed out for, if it was handed out. */
export function serialOf(view: ArrayBufferView): number | undefined {
  const s = PoolBuffer.serialOf(view);
  return s !== undefined ? s : ViewTag.serialOf(view);
}

/** The block-cache block id `view` was handed out with, or -1 (not from the cache, or not handed out). */
export function blockOf(view: unknown): number {
  const k = PoolBuffer.blockOf(view);
  return k >= 0 ? k : ViewTag.blockOf(view);
}


/**
 * What alloc() returns: a Uint8Array whose prototype chain holds
 * Buffer.prototype, as Node's own FastBuffer does, so it is a Buffer in
 * every way (Buffer.isBuffer, instanceof, every method). Constructing it
 * directly costs about a third of Buffer.from(arrayBuffer, offset, length),
 * which re-checks its arguments.
 *
 * It carries its allocation's serial and its block-cache block id in private
 * fields: nothing can copy them onto another object (object spread and
 * Object.assign copy symbol-keyed properties), and reading them costs no
 * more than a property. A view made from it by a TypedArray method
 * (subarray, map, ...) is a plain Buffer and has neither.
 *
 * Its prototype is PoolBuffer.prototype, not Buffer.prototype: so Node
 * 20's assert.deepStrictEqual(), which compares prototypes, tells it from a
 * Buffer of the same bytes (Node 22 and later do not; README, "API at a
 * glance"). Node's own FastBuffer with the tags added after construction
 * measured 4-8 ns more per pair (docs/design.md, "Serials and stale Buffers").
 */
export class PoolBuffer extends Uint8Array {
  #block: number | undefined;
  #serial: number | undefined;

  constructor(buffer: ArrayBuffer, byteOffset?: number, length?: number, block?: number, serial?: number) {
    super(buffer, byteOffset, length);
    this.#block = block;
    this.#serial = serial;
  }

  /** The block-cache block id of a PoolBuffer handed out from the cache, else -1. */
  static blockOf(v: unknown): number {
    if (typeof v !== 'object' || v === null || !(#block in v)) return -1;
    const k = v.#block;
    return k === undefined ? -1 : k;
  }

  /**
   * The block-cache block id of `v` when it is a PoolBuffer handed out from
   * the cache and still live there: its serial equals serials[id] (one call
   * for free()'s fast path). Else -1.
   */
  static liveBlock(v: unknown, serials: Float64Array): number {
    if (typeof v !== 'object' || v === null || !(#block in v)) return -1;
    const k = v.#block;
    // (undefined >= 0 is false: a PoolBuffer not from the cache fails here too.)
    return (k as number) >= 0 && serials[k as number] === v.#serial ? (k as number) : -1;
  }

  /** The serial a PoolBuffer was handed out under (undefined for anything else). */
  static serialOf(v: unknown): number | undefined {
    return typeof v === 'object' && v !== null && #serial in v ? v.#serial : undefined;
  }

  /**
   * @internal The free of a Buffer marked by soleBlock(), if `batch` takes
   * it (deferFree(view, segment, serial)): then the view is tagged
   * FREED_SERIAL and its serial returned; else -1, with nothing changed.
   * One function, so that the tags are read once on free()'s path.
   */
  static deferSole(v: unknown, batch: SoleFrees): number {
    if (typeof v !== 'object' || v === null || !(#block in v)) return -1;
    const k = v.#block as number;
    const serial = v.#serial as number;
    if (!(k <= -2) || !batch.deferFree(v as unknown as PoolBuffer, -2 - k, serial)) return -1;
    v.#serial = FREED_SERIAL;
    return serial;
  }

  /** @internal A Buffer marked by soleBlock() is no longer its allocation's only reference: -1, like any other not from the cache. */
  static unsole(v: unknown): void {
    if (typeof v === 'object' && v !== null && #block in v && (v.#block as number) <= -2) v.#block = -1;
  }

  /** @internal A new serial for the allocation (retag()); false for anything but a PoolBuffer. */
  static retag(v: unknown, serial: number): boolean {
    if (typeof v !== 'object' || v === null || !(#serial in v)) return false;
    v.#serial = serial;
    return true;
  }
}
Object.setPrototypeOf(PoolBuffer.prototype, Buffer.prototype);
// As Node does for its own FastBuffer: `buf.constructor` is Buffer, so
// util.inspect() prints `<Buffer ...>`, and views made by TypedArray methods
// (subarray, slice, map: through Buffer[Symbol.species]) are plain Buffers.
Object.defineProperty(PoolBuffer.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false });
