// pool.handle, share() and adopt() of a shared pool: the attachment's
// PoolHandle, a Buffer's reference turned into a BufferHandle, and a
// BufferHandle turned into this thread's Buffer over the same bytes.
// shareBuffer() and adoptBuffer() are Pool.share() and adopt(): they work on
// the pool's References (lib/alloc/references.ts), which finds the Buffer's
// allocation and counts it, and return values; they call nothing above them.
//
// A Buffer from this thread's block cache is promoted before it is shared
// (promote()): the allocator renames its block from the cache's serial to
// a new serial unique in the pool, which the Buffer takes too (its own came
// from this thread's counter, which another thread's may match), with the
// references the cache counted, and the cache forgets it; from then on
// every thread frees it through the allocator, and the cache never hands
// that block out again (docs/design.md, "Per-thread caches").
//
// Threads: the calling thread's attachment (PoolMemory); the handle may
// come from any thread of the process.
import { Buffer } from 'node:buffer';

import { NativeStatus, type NativeSharedPool } from '../native/binding.js';
import { offsetOf, segmentOf } from '../native/handle.js';
import type { PoolMemory } from '../native/pool-memory.js';
import { statusError, type PoolDescription } from '../native/status.js';
import { blockOf, PoolBuffer, retag, serialOf, soleBlock, unsole } from '../buffers/pool-buffer.js';
import { TRACKED } from '../cache/block-table.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { Counts } from '../observe/counts.js';
import type { LeakTracker } from '../observe/leaks.js';
import { FigureCounts } from './figures.js';
import { closedError, invalidState, mapFailed, PoolError, withStack, type Caller } from '../errors.js';
import { handleOf } from './attach.js';
import { bufferHandle, poolHandle, readBufferHandle, type BufferHandle, type PoolHandle } from './handles.js';

/** What shareBuffer() and adoptBuffer() use of a pool: its References (lib/alloc/references.ts). */
export interface Holdings {
  readonly memory: PoolMemory;
  /** The block cache: undefined for guard and secure pools, and once closed. */
  readonly cache: BlockCache | undefined;
  /** Where the allocations the cache does not hand out are counted. */
  readonly counts: Counts;
  readonly leaks: LeakTracker | undefined;
  readonly pool: PoolDescription;
  readonly closed: boolean;
  /** The allocator's handle of the allocation `buf` was handed out for. @throws free()'s errors */
  locate(buf: ArrayBufferView, caller: Caller): number;
}

/**
 * Pool.share(): a BufferHandle for one more reference of `buf`.
 * @throws Error ERR_INVALID_STATE (not a shared pool), and retain()'s errors
 */
export function shareBuffer(held: Holdings, buf: ArrayBufferView, caller: Caller): BufferHandle {
  const memory = held.memory;
  attachmentOf(memory, held.pool.name, caller);
  promote(memory, held.cache, held.counts, buf, held.pool, caller);
  const handle = held.locate(buf, caller);
  const serial = serialOf(buf) as number;
  const h = share(memory, handle, memory.lengthOf(buf, handle, serial), serial, held.pool, caller);
  unsole(buf);  // another reference is out now
  return h;
}

/**
 * Pool.adopt(): this thread's Buffer over the allocation a BufferHandle
 * names, tracked. A reference, not an allocation: the pool counts it where
 * it was made.
 * @throws adopt()'s errors, Error ERR_INVALID_STATE (not a shared pool)
 */
export function adoptBuffer(held: Holdings, value: unknown, caller: Caller): Buffer {
  attachmentOf(held.memory, held.pool.name, caller);
  if (held.closed) throw closedError(caller);
  const { buf, size, serial } = adopt(held.memory, value, held.pool, caller);
  if (held.leaks !== undefined) held.leaks.allocated(buf, size, serial, caller);
  return buf;
}

/**
 * This thread's attachment, for a call only shared pools take.
 * @throws Error ERR_INVALID_STATE (a pool made without `shared: true`)
 */
function attachmentOf(memory: PoolMemory, name: string, caller: Caller): NativeSharedPool {
  const shared = memory.shared;
  if (shared === undefined) throw invalidState(`${caller.name}: pool "${name}" is not shared (new Pool({ shared: true }))`, caller);
  return shared;
}

// What errors of the `handle` getter name as the call that failed.
function handleGetter(): void {}
Object.defineProperty(handleGetter, 'name', { value: 'handle' });

/**
 * Pool.handle: the PoolHandle of this thread's attachment.
 * @throws Error ERR_INVALID_STATE (not a shared pool), PoolError ERR_POOL_CLOSED
 */
export function poolHandleOf(memory: PoolMemory, name: string, closed: boolean): PoolHandle {
  const shared = attachmentOf(memory, name, handleGetter);
  if (closed) throw closedError(handleGetter);
  const { pool, token } = handleOf(shared);
  return poolHandle(pool, token);  // the program's own copy
}

/**
 * When `buf` is a live Buffer of this thread's block cache: its block
 * leaves the cache and becomes an allocation of its own in the allocator
 * (its serial, its size, its reference count), counted in `other` instead
 * of the cache's counts. Anything else is left to share() to judge.
 * @throws retain()'s error for a count that cannot grow; the allocator's
 * refusal otherwise (none is expected: the cache's tables said it lives)
 */
function promote(memory: PoolMemory, cache: BlockCache | undefined, other: Counts, buf: ArrayBufferView, pool: PoolDescription, caller: Caller): void {
  if (cache === undefined || !ArrayBuffer.isView(buf)) return;
  const k = blockOf(buf);
  const serial = serialOf(buf);
  if (k < 0 || serial === undefined || cache.serial[k] !== serial) return;
  // share() adds one: the allocator's Retain refuses a full count the same way.
  if (cache.refs[k] === 0xffffffff) throw statusError(NativeStatus.CountFull, 'share', caller, pool);
  const at = cache.addr[k];
  const size = cache.size[k];
  const fresh = memory.serial();
  const st = memory.promote(at, cache.classSize[cache.cls[k]], fresh, size, cache.refs[k]);
  if (st !== NativeStatus.Ok) throw statusError(st, 'share', caller, pool);
  retag(buf, fresh);
  if ((cache.flags[k] & TRACKED) !== 0 && cache.leaks !== undefined) {
    cache.leaks.freedSerial(serial);
    cache.leaks.track(buf, size, fresh, caller);
  }
  cache.forget(k);
  cache.counts.frees++;
  cache.counts.used -= size;
  other.count(size);
  if (other instanceof FigureCounts) other.moved++;
}

/**
 * A BufferHandle for one more reference of the allocation at `handle`.
 * @throws retain()'s errors
 */
function share(memory: PoolMemory, handle: number, length: number, serial: number, pool: PoolDescription, caller: Caller): BufferHandle {
  const r = memory.share(handle, length, serial);
  if (typeof r === 'number') throw statusError(r, 'share', caller, pool);
  const { pool: id, token } = handleOf(memory.shared as NativeSharedPool);
  return bufferHandle(id, token, r[0], r[1], length);
}

/**
 * This thread's Buffer over the allocation `value` names, with the
 * reference share() added; its size and serial, for the pool's counts.
 * @throws TypeError ERR_INVALID_ARG_TYPE, PoolError ERR_DOUBLE_FREE, ERR_FOREIGN_BUFFER,
 * ERR_POOL_CLOSED, ERR_MAP_FAILED (no ArrayBuffer could be made: the reference goes back)
 */
function adopt(memory: PoolMemory, value: unknown, pool: PoolDescription, caller: Caller): { buf: Buffer; size: number; serial: number } {
  const h = readBufferHandle(value, caller);
  const { pool: id, token } = handleOf(memory.shared as NativeSharedPool);
  const r = h.pool === id && h.token === token ? memory.adopt(h.share, h.check) : NativeStatus.Foreign;
  if (r === NativeStatus.Foreign) {
    throw withStack(new PoolError('ERR_FOREIGN_BUFFER', `${caller.name}: this handle was not made by share() of pool "${pool.name}"`), caller);
  }
  if (typeof r === 'number') throw statusError(r, caller.name, caller, pool);
  const [at, size, serial, refs] = r;
  const ab = memory.bufferOf(at, size);
  if (ab === undefined) {
    memory.release(at, size, serial);
    throw withStack(mapFailed('napi_create_external_arraybuffer', 0, `pool "${pool.name}": no ArrayBuffer could be made for an adopted Buffer`), caller);
  }
  // The only reference: no other thread can reach it, so its free may wait
  // for a batch (lib/native/free-batch.ts).
  const block = refs === 1 && !memory.own ? soleBlock(segmentOf(at)) : -1;
  const buf = new PoolBuffer(ab, memory.own ? 0 : offsetOf(at), size, block, serial) as unknown as Buffer;
  return { buf, size, serial };
}
