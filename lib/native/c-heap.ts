// The C library's own heap (malloc), which Node allocates from for itself:
// the one place lib/ reaches it, and only on the program's request.
import { binding } from './binding.js';

/** Sets glibc's trim and mmap thresholds (0: leave one as it is); false where the C library has no such settings. */
export function tuneHeap(trimBytes: number, mmapBytes: number): boolean {
  return binding.tuneHeap(trimBytes, mmapBytes);
}
