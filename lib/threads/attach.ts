// Shared pools: the attachment a Pool object of this thread is built on.
// `new Pool({ shared: true })` makes a pool (sharedNative()); Pool.attach()
// attaches to one (attach()) and builds the Pool with the options its
// creator gave, which travel inside the addon, never in the handle, so a
// handle cannot change them.
//
// Threads: any JS thread; an attachment belongs to the thread that made it
// (lib/native/pool-memory.ts says what each thread keeps of its own).
import { NativeStatus, type NativePoolOptions, type NativeSharedPool } from '../native/binding.js';
import { attachmentInfo, attachSharedPool, endAttachment, newSharedPool } from '../native/shared.js';
import { closedError, PoolError, withStack, type Caller } from '../errors.js';
import type { PoolOptions, ResolvedOptions } from '../options.js';
import { poolHandle, readPoolHandle, type PoolHandle } from './handles.js';

// The attachment attach() made, for the Pool constructor it calls next
// (one JS thread: nothing runs in between that could take it).
let pending: NativeSharedPool | undefined;

// The options an attaching thread builds its Pool with (JSON has no
// Infinity: an unbounded maxBytes travels as null).
function describe(o: ResolvedOptions): string {
  const options: PoolOptions = {
    backing: o.backing, dir: o.dir, chunkSize: o.chunkSize, hugeThreshold: o.hugeThreshold,
    name: o.name, guard: o.guard, secure: o.secure, hugePages: o.hugePages, prefault: o.prefault,
    leakDetection: o.leakDetection, thresholds: { warning: o.warning, critical: o.critical },
    cooldownMs: o.cooldownMs, shared: true,
  };
  return JSON.stringify({ ...options, maxBytes: o.maxBytes === Infinity ? null : o.maxBytes });
}

/**
 * The native side of a shared Pool being built: the attachment attach()
 * made, or a new pool.
 */
export function sharedNative(o: ResolvedOptions, native: Omit<NativePoolOptions, 'heapFactory' | 'heapRetire'>): NativeSharedPool {
  const attached = pending;
  pending = undefined;
  return attached ?? newSharedPool(native, describe(o));
}

/**
 * A Pool of this thread over the shared pool `value` names, built by `make`
 * from its creator's options.
 * @throws TypeError ERR_INVALID_ARG_TYPE (not a PoolHandle), PoolError ERR_POOL_CLOSED (the pool
 * ended: every attachment closed), ERR_FOREIGN_BUFFER (no pool of this process has that handle)
 */
export function attach<P>(value: unknown, make: (options: PoolOptions) => P, caller: Caller): P {
  const h = readPoolHandle(value, caller);
  const native = attachSharedPool(h.pool, h.token);
  if (typeof native === 'number') {
    if (native === NativeStatus.Closed) throw closedError(caller);
    throw withStack(new PoolError('ERR_FOREIGN_BUFFER',
      `${caller.name}: this handle names no shared pool of this process (it was made elsewhere, or altered)`), caller);
  }
  const { maxBytes, ...rest } = JSON.parse(attachmentInfo(native).description) as PoolOptions & { maxBytes: number | null };
  pending = native;
  try {
    return make({ ...rest, maxBytes: maxBytes ?? Infinity });
  } catch (err) {
    endAttachment(native);
    throw err;
  } finally {
    pending = undefined;
  }
}

// Each attachment's PoolHandle, made once: its id and token never change,
// and asking the addon builds an object with the pool's whole description
// (share() and adopt() read them at every call).
const handles = new WeakMap<NativeSharedPool, PoolHandle>();

/** The PoolHandle of a shared pool's attachment: the same object each time (a caller that gives it out copies it). */
export function handleOf(native: NativeSharedPool): Readonly<PoolHandle> {
  let h = handles.get(native);
  if (h === undefined) {
    const info = attachmentInfo(native);
    h = poolHandle(info.id, info.token);
    handles.set(native, h);
  }
  return h;
}
