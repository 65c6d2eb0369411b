// What stats() and dump() show of a pool's block cache (lib/cache/block-cache.ts).
// To the allocator every block the cache holds is one live allocation; to
// the program a free block in the cache is free memory, and a block handed
// out is the allocation of the Buffer holding it, with that Buffer's size,
// serial and age. These two functions turn the allocator's figures into the
// program's.
import { handleOf } from '../native/handle.js';
import type { NativeDump, SizeClassStats } from '../native/shapes.js';
import { isRunClass } from '../native/size-classes.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { AllocationDump } from './stats.js';

/**
 * Takes the free cached blocks out of the allocator's class rows; returns
 * their bytes (taken out of allocatedBytes, shown as cachedBytes).
 */
export function fixClasses(cache: BlockCache, classes: SizeClassStats[]): number {
  // Per class: the blocks on its stack, and those of its waiting to go back.
  const free = cache.top.slice();
  for (const k of cache.pendingIds()) free[cache.cls[k]]++;
  let freeBytes = 0;
  for (let c = 0; c < free.length; c++) {
    const n = free[c];
    const row = classes[c];
    if (n === 0 || row === undefined) continue;
    row.live -= n;
    // Page-run classes count capacity as their live runs.
    if (isRunClass(cache.classSize[c])) row.capacity -= n;
    freeBytes += n * cache.classSize[c];
  }
  return freeBytes;
}

/**
 * dump() as the program sees it: a cached block handed out shows its own
 * size, serial and age; a free one is left out of the allocations and of
 * its run's live count.
 */
export function fixDump(cache: BlockCache, raw: NativeDump, now: number): void {
  // Every held block by handle: its id when handed out, -1 when free here.
  const held = new Map<number, number>();
  for (let k = 0; k < cache.idCount; k++) {
    if (cache.serial[k] !== 0) held.set(cache.addr[k], k);
  }
  for (const k of cache.freeIds()) held.set(cache.addr[k], -1);
  const out: AllocationDump[] = [];
  for (const a of raw.allocations) {
    const k = a.serial === 0 ? held.get(handleOf(a.segment, a.offset)) : undefined;
    if (k === undefined) {
      out.push(a);
    } else if (k < 0) {
      freeInRun(raw, a);
    } else {
      a.size = cache.size[k];
      a.serial = cache.serial[k];
      a.ageMs = Math.max(0, Math.round(now - cache.born[k]));
      out.push(a);
    }
  }
  raw.allocations = out;
}

// A free cached block is no live allocation of its run.
function freeInRun(raw: NativeDump, a: AllocationDump): void {
  const chunk = raw.chunks.find((ch) => ch.id === a.segment);
  const page = Math.floor(a.offset / raw.pageSize);
  const run = chunk?.runs.find((r) => page >= r.page && page < r.page + r.pages);
  if (run !== undefined && run.kind !== 'free') {
    run.live--;
    if (run.kind === 'large') run.capacity--;
  }
}
