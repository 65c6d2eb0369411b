// The allocator's size classes as lib/ needs to tell them apart
// (native/alloc/size_classes.h).
import { binding } from './binding.js';

/** True for a class served by runs of whole pages (one allocation per run), false for a slab class. */
export function isRunClass(size: number): boolean {
  return size > binding.smallMax;
}
