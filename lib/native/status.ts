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
    // ERR_DOUBLE_FREE for Foreign is deliberate. lib/ passes the allocator
    // only a view it accepted (tagged by this pool, whole, as handed out),
    // so Foreign never means "not this pool's": the view's (segment,
    // offset, length) is no live allocation any more, because the memory
    // was freed and laid out anew (a slab's slot now part of a large run),
    // or a freed huge allocation's segment id names no segment. Either way
    // the Buffer is stale: the user freed it already.
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
    // lib/ checks size and align before it calls the allocator: these two
    // say the same as those checks would, should one ever let a value by.
    case NativeStatus.TooLarge:
      return withStack(outOfRange('size', `<= maxBytes (${pool.maxBytes})`, what), caller);
    case NativeStatus.BadAlign:
      return withStack(outOfRange('options.align', 'a power of two <= the page size', what), caller);
    case NativeStatus.CountFull:
    default:
      return withStack(outOfRange('reference count', `< ${2 ** 32 - 1}`, status), caller);
  }
}
