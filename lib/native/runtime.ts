// What lib/ reads of the addon beyond one pool's memory: the page size, the
// allocator's size classes, and whether this runtime accepts external
// ArrayBuffers (Electron's V8 sandbox does not), with the backing a pool
// gets then.
//
// Threads: read on any JS thread; claimOnce() is one flag per process, kept
// in the addon.
import { binding } from './binding.js';
import { mapFailed } from '../errors.js';
import type { Backing } from '../options.js';

/** The OS page size in bytes. */
export const pageSize: number = binding.pageSize;

/** The allocator's class sizes, ascending. */
export const classSizes: readonly number[] = binding.classSizes;

/**
 * The backing a pool named `name` gets for `backing`: the same, or 'heap'
 * where the runtime refuses external ArrayBuffers (said once per process
 * with a warning, code MMAP_POOL_FALLBACK).
 * @throws PoolError ERR_MAP_FAILED when `guard`, `secure` or `shared` asks for external ArrayBuffers there
 */
export function backingFor(name: string, backing: Backing, guard: boolean, secure: boolean, shared = false): Backing {
  if (backing === 'heap' || binding.externalBuffersAllowed()) return backing;
  if (guard || secure || shared) {
    throw mapFailed('napi_create_external_arraybuffer', 0,
      `pool "${name}": this runtime refuses external ArrayBuffers, which ${guard ? 'guard' : secure ? 'secure' : 'shared'}: true needs`);
  }
  // Once per process, not per thread: the flag lives in the addon.
  if (binding.claimOnce('fallback-warning')) {
    process.emitWarning(
      `This runtime refuses external ArrayBuffers; mmap-pool pools use V8 heap memory instead of '${backing}' (stats().backing says 'heap')`,
      { code: 'MMAP_POOL_FALLBACK' },
    );
  }
  return 'heap';
}
