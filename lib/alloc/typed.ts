// Typed allocation: allocTyped()'s TypedArray of `length` elements over
// pool memory, from the block cache when it serves the size, else from the
// allocator through the SlowPath, aligned to the element size either way.
//
// Type's constructor is user code that runs with the memory taken: it may
// throw (the memory goes back and its error is thrown), return another
// object (ERR_INVALID_ARG_TYPE), or close or reset the pool (see SlowPath
// survived()). Tags and counts come only once the view is checked.
//
// Threads: the pool's JS thread only, like the pool.
import { Buffer } from 'node:buffer';

import { offsetOf } from '../native/handle.js';
import { invalidArgType, type Caller } from '../errors.js';
import { tagView } from '../buffers/pool-buffer.js';
import { isFreshView, type TypedArrayConstructor } from '../buffers/typed.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { SlowPath } from './slow-path.js';

/**
 * A zero-filled `Type` of `length` elements (`size` bytes, `unit` each;
 * checked by the caller) for allocTyped(), whose caller is `caller`.
 * `cache` is the pool's block cache, if it has one.
 */
export function allocTyped<T extends ArrayBufferView>(slow: SlowPath, cache: BlockCache | undefined, Type: TypedArrayConstructor<T>,
  length: number, size: number, unit: number, caller: Caller): T {
  for (let quiet = false; ; quiet = true) {
    const resets = slow.resets;
    const exposures = slow.memory.exposures;
    const view = cache !== undefined && cache.serves(size)
      ? fromCache(slow, cache, Type, length, size, resets, caller)
      : fromAllocator(slow, Type, length, size, unit, resets, caller);
    // undefined: a reset() in Type's constructor freed the memory under it
    // (whether the constructor then threw or not): again.
    if (view !== undefined && (quiet || slow.memory.exposures === exposures || slow.settle(resets, caller))) return view;
  }
}

// A size the block cache serves: undefined when Type's constructor reset
// the pool (the caller starts again).
function fromCache<T extends ArrayBufferView>(slow: SlowPath, cache: BlockCache, Type: TypedArrayConstructor<T>,
  length: number, size: number, resets: number, caller: Caller): T | undefined {
  let k: number;
  let ab: ArrayBuffer;
  for (;;) {
    k = cache.claim(size);
    if (k < 0) {
      slow.refill(cache, size, caller);
      continue;
    }
    ab = slow.segments[cache.seg[k]] as ArrayBuffer;
    if (ab.byteLength !== 0) break;
    // Someone else took the segment (a web byte stream): another block.
    cache.drop(k, new TypeError('Cannot perform Construct on a detached ArrayBuffer'));
  }
  const offset = cache.off[k];
  const serial = cache.serial[k];
  new Uint8Array(ab, offset, size).fill(0);
  let view: T;
  try {
    view = construct(Type, ab, offset, length, size, caller);
  } catch (err) {
    // Unless close() or reset() in the constructor took the block already
    // (and, likely, made it throw: its buffer may be detached).
    if (!slow.survived(resets, caller)) return undefined;
    cache.unclaim(k);
    throw err;
  }
  if (!slow.survived(resets, caller)) return undefined;
  tagView(view, k, serial);
  cache.counts.count(size);  // (a shared pool counts the cache's apart: lib/threads/figures.ts)
  cache.track(k, view, caller);
  return view;
}

// Any other size, or a pool without a block cache: undefined when Type's
// constructor reset the pool.
function fromAllocator<T extends ArrayBufferView>(slow: SlowPath, Type: TypedArrayConstructor<T>,
  length: number, size: number, unit: number, resets: number, caller: Caller): T | undefined {
  const serial = slow.memory.serial();
  const handle = slow.reserve(size, true, unit, serial, caller);
  const ab = slow.bufferOf(handle, size, serial, caller);
  const offset = slow.own ? 0 : offsetOf(handle);
  let view: T;
  try {
    view = construct(Type, ab, offset, length, size, caller);
  } catch (err) {
    // Unless close() or reset() in the constructor took the memory already.
    if (!slow.survived(resets, caller)) return undefined;
    slow.giveBack(handle, size, serial, ab);
    throw err;
  }
  if (!slow.survived(resets, caller)) return undefined;
  return slow.handOut(view, size, serial, caller);
}

// `new Type(ab, offset, length)`, checked: a subclass's constructor may
// return any object, or a view of something else. For Buffer itself,
// Buffer.from (not the deprecated `new Buffer`).
function construct<T extends ArrayBufferView>(Type: TypedArrayConstructor<T>, ab: ArrayBuffer, offset: number,
  length: number, size: number, caller: Caller): T {
  const view = (Type as unknown) === Buffer ? Buffer.from(ab, offset, length) as unknown as T : new Type(ab, offset, length);
  if (!isFreshView(view, ab, offset, length, size)) {
    throw invalidArgType('Type', 'a TypedArray constructor whose instances are new views of the buffer, byteOffset and length it is given', Type, caller);
  }
  return view;
}
