// PoolHandle and BufferHandle: how a shared pool and one of its Buffers
// travel to another thread. Plain objects of numbers and strings, so
// structuredClone() and postMessage() copy them as they are; they carry no
// memory, only names the addon checks:
//
//   PoolHandle    { type: 'mmap-pool:pool', pool, token }
//   BufferHandle  { type: 'mmap-pool:buffer', pool, token, share, check, length }
//
//   pool    the pool's number in this process (1, 2, ...)
//   token   16 hex digits, random per pool: Pool.attach() and adopt()
//           refuse a handle without the right one (ERR_FOREIGN_BUFFER)
//   share   the number of one share(): one reference of one allocation,
//           waiting for its adopt()
//   check   16 hex digits the addon derives from the share number and a
//           secret of the pool: a made-up share is refused
//   length  the Buffer's length (for the reader's information)
//
// Threads: any thread; these are values, not state.
import { invalidArgType, type Caller } from '../errors.js';

/** A shared pool, for Pool.attach() in another thread of the process. */
export interface PoolHandle {
  readonly type: 'mmap-pool:pool';
  readonly pool: number;
  readonly token: string;
}

/** One reference of one Buffer of a shared pool, for pool.adopt() in any attached thread, once. */
export interface BufferHandle {
  readonly type: 'mmap-pool:buffer';
  readonly pool: number;
  readonly token: string;
  readonly share: number;
  readonly check: string;
  readonly length: number;
}

const HEX16 = /^[0-9a-f]{16}$/;

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

function isHex(v: unknown): v is string {
  return typeof v === 'string' && HEX16.test(v);
}

export function poolHandle(pool: number, token: string): PoolHandle {
  return { type: 'mmap-pool:pool', pool, token };
}

export function bufferHandle(pool: number, token: string, share: number, check: string, length: number): BufferHandle {
  return { type: 'mmap-pool:buffer', pool, token, share, check, length };
}

/**
 * `value` as a PoolHandle: its fields read once (a getter runs once) and
 * checked for type only; whether it names a live pool is the addon's to say.
 * @throws TypeError ERR_INVALID_ARG_TYPE
 */
export function readPoolHandle(value: unknown, caller: Caller): PoolHandle {
  if (value === null || typeof value !== 'object') throw invalidArgType('handle', 'a PoolHandle (pool.handle)', value, caller);
  const { type, pool, token } = value as Record<string, unknown>;
  if (type !== 'mmap-pool:pool' || !isId(pool) || !isHex(token)) {
    throw invalidArgType('handle', 'a PoolHandle (pool.handle)', value, caller);
  }
  return poolHandle(pool, token);
}

/**
 * `value` as a BufferHandle, checked for type as readPoolHandle() does.
 * @throws TypeError ERR_INVALID_ARG_TYPE
 */
export function readBufferHandle(value: unknown, caller: Caller): BufferHandle {
  if (value === null || typeof value !== 'object') throw invalidArgType('handle', 'a BufferHandle (pool.share())', value, caller);
  const { type, pool, token, share, check, length } = value as Record<string, unknown>;
  if (type !== 'mmap-pool:buffer' || !isId(pool) || !isHex(token) || !isId(share) || !isHex(check) ||
      typeof length !== 'number') {
    throw invalidArgType('handle', 'a BufferHandle (pool.share())', value, caller);
  }
  return bufferHandle(pool, token, share, check, length);
}
