// The addon's side of shared pools: a new one, or another thread's
// attachment to one (native/addon/shared_pool_wrap.h). lib/threads/ decides
// when; PoolMemory (pool-memory.ts) makes every call after that.
//
// Threads: any JS thread; each attachment is then its thread's own.
import { binding, NativeStatus, type NativePoolOptions, type NativeSharedPool } from './binding.js';

/** A new shared pool, attached to this thread; `description` goes to every thread that attaches. */
export function newSharedPool(options: Omit<NativePoolOptions, 'heapFactory' | 'heapRetire'>, description: string): NativeSharedPool {
  return new binding.SharedPool({ ...options, description });
}

/**
 * This thread's attachment to shared pool `pool`, or the NativeStatus that
 * refused it: Closed (the pool ended), Foreign (no pool of this process has
 * that number and token).
 */
export function attachSharedPool(pool: number, token: string): NativeSharedPool | number {
  const native = new binding.SharedPool({ attach: pool, token });
  const status = native.attachStatus();
  return status === NativeStatus.Ok ? native : status;
}

/** What a PoolHandle carries and the creator's options (JSON), of a live attachment. */
export function attachmentInfo(native: NativeSharedPool): { id: number; token: string; description: string } {
  return native.info() as NonNullable<ReturnType<NativeSharedPool['info']>>;
}

/** Ends an attachment no Pool was built on. */
export function endAttachment(native: NativeSharedPool): void {
  native.close();
}
