// tuneMalloc(): an opt-in for services whose large buffers live in pools.
// Why: once they leave malloc, glibc's heap holds only Node's own short-lived
// buffers (the HTTP parser's body chunks, socket reads); its top is free
// again after almost every request, and glibc gives it back to the OS at
// once and faults it in again for the next request. docs/services.md has
// the measurements. Process-wide, so the library never does it on its own.
import { invalidArgType, outOfRange } from './errors.js';
import { tuneHeap } from './native/c-heap.js';

export interface TuneMallocOptions {
  /**
   * Free bytes glibc keeps at the top of its heap before it gives any back to
   * the OS (M_TRIM_THRESHOLD; glibc's default starts at 128 KiB). An integer
   * from 1 to 2^31 - 1.
   */
  trimThreshold?: number;
  /**
   * Requests of this many bytes and more get a mapping of their own, smaller
   * ones come from the heap (M_MMAP_THRESHOLD; glibc's default starts at
   * 128 KiB). An integer from 1 to 32 MiB.
   */
  mmapThreshold?: number;
}

const MAX_TRIM = 2 ** 31 - 1;
const MAX_MMAP = 32 * 1024 * 1024;

function checked(options: TuneMallocOptions, name: 'trimThreshold' | 'mmapThreshold', max: number): number {
  const v: unknown = options[name];
  if (v === undefined) return 0;
  if (typeof v !== 'number') throw invalidArgType(`options.${name}`, 'of type number', v, tuneMalloc);
  if (!Number.isInteger(v) || v < 1 || v > max) throw outOfRange(`options.${name}`, `an integer from 1 to ${max}`, v, tuneMalloc);
  return v;
}

/**
 * Sets how the C library's allocator (glibc's malloc, which Node itself
 * allocates from) keeps its free memory, for the whole process. Returns
 * true when the settings were made, false where the C library has no such
 * settings (macOS, Windows, musl): there it changes nothing. Settings left
 * out stay as they are; glibc stops adjusting either threshold on its own
 * once this is called. The same as starting the process with
 * `GLIBC_TUNABLES=glibc.malloc.trim_threshold=...:glibc.malloc.mmap_threshold=...`.
 *
 * Throws TypeError ERR_INVALID_ARG_TYPE (options not an object, a setting
 * not a number) or RangeError ERR_OUT_OF_RANGE (a setting out of range),
 * and then changes nothing.
 */
export function tuneMalloc(options: TuneMallocOptions): boolean {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options, tuneMalloc);
  const trim = checked(options, 'trimThreshold', MAX_TRIM);
  const mmap = checked(options, 'mmapThreshold', MAX_MMAP);
  return tuneHeap(trim, mmap);
}
