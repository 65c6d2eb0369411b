// The errors for the allocator's negative statuses (alloc::Status in
// native/alloc/arena.h), worded for the pool they came from.
import { NativeStatus } from './binding.js';
import { closedError, mapFailed, outOfRange, PoolError, withStack, type Caller } from '../errors.js';
import type { Backing } from '../options.js';

/** What an error message says about its pool. */
export interface PoolDescription {
  name: string;
  backing: Backing;
  secure: boolean;
  maxBytes: number;
  mappedBytes(): number;
  lastError(): { errno: number; syscall: string };
}

/** The error for a negative status of the allocator; `what` names the call. */
export function statusError(status: number, what: string, caller: Caller, pool: PoolDescription): Error {
  switch (status) {
    // The allocator sees Foreign only for a view the pool accepted: a tagged
    // view over its memory, exactly as handed out. When the allocator no
    // longer recognises it, the allocation was freed and its memory laid out
    // anew: a stale Buffer, not a foreign one.
    case NativeStatus.Foreign:
    case NativeStatus.DoubleFree:
      return withStack(new PoolError('ERR_DOUBLE_FREE', `${what}: this buffer's memory was already freed`), caller);
    case NativeStatus.Exhausted:
      return withStack(new PoolError('ERR_POOL_EXHAUSTED',
        `${what}: pool "${pool.name}" would pass maxBytes (${pool.mappedBytes()} of ${pool.maxBytes} bytes mapped)`), caller);
    case NativeStatus.MapFailed: {
      const { errno, syscall } = pool.lastError();
      return withStack(mapFailed(syscall, errno,
        `${what}: the OS refused memory for pool "${pool.name}" (backing '${pool.backing}'${pool.secure ? ', secure' : ''})`), caller);
    }
    case NativeStatus.Closed:
      return closedError(caller);
    default:
      return withStack(outOfRange('reference count', `< ${2 ** 32 - 1}`, status), caller);
  }
}
