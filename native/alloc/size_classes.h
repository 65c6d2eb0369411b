// Size classes: a 16 B quantum, then four classes per doubling (as jemalloc
// and Netty do), so rounding never wastes more than 20% of a request.
//
//   index:  0   1   2   3 |  4   5   6   7 |  8   9  10  11 | ... | 36     37     38     | 39 ...
//   size:  16  32  48  64 | 80  96 112 128 | 160 192 224 256 | ... | 20480  24576  28672  | 32768 ...
//          ^ quantum      ^ group 64..128, step 16            step = group base / 4
//
// Classes up to kSmallMax (28 KiB, index 38) are "small": carved from slabs.
// Larger classes are "large": a run of whole pages each. The table goes on up
// to the chunk size; anything above the pool's huge threshold is mapped on
// its own and has no class.
#ifndef MMAP_POOL_ALLOC_SIZE_CLASSES_H_
#define MMAP_POOL_ALLOC_SIZE_CLASSES_H_

#include <cstddef>
#include <cstdint>
#ifdef _MSC_VER
#include <intrin.h>
#endif

namespace mmap_pool {
namespace alloc {

constexpr size_t kQuantum = 16;
constexpr size_t kSmallMax = 28 * 1024;
constexpr uint32_t kSmallClasses = 39;  // indices 0 .. 38
constexpr uint32_t kMaxClasses = 128;   // enough for sizes up to 2^36

// floor(log2(x)) for x > 0.
inline uint32_t Log2Floor(uint64_t x) {
#ifdef _MSC_VER
  unsigned long index;
  _BitScanReverse64(&index, x);
  return static_cast<uint32_t>(index);
#else
  return 63 - static_cast<uint32_t>(__builtin_clzll(x));
#endif
}

// The class index for a request of `size` bytes (size 0 uses class 0).
inline uint32_t ClassIndex(size_t size) {
  if (size <= 64) return size == 0 ? 0 : static_cast<uint32_t>((size - 1) >> 4);
  size_t x = size - 1;
  uint32_t lg = Log2Floor(x);  // x >= 64, so lg >= 6
  return 4 + (lg - 6) * 4 + static_cast<uint32_t>((x >> (lg - 2)) & 3);
}

// The size of class `index`: the largest request that rounds to it.
inline size_t ClassSize(uint32_t index) {
  if (index < 4) return (index + 1) * kQuantum;
  uint32_t group = (index - 4) / 4;
  uint32_t step = (index - 4) % 4;
  return (size_t{64} << group) + (step + 1) * (size_t{16} << group);
}

inline bool IsSmallClass(uint32_t index) { return index < kSmallClasses; }

// How many pages a slab of a small class spans: the fewest pages (at most
// `max_pages`, itself at most 32) that hold at least four slots and waste
// under 1/64 of the slab, else the least wasteful size that holds a slot.
// A slab must fit in a chunk, so callers pass the chunk's page count.
uint32_t SlabPages(uint32_t index, size_t page_size, uint32_t max_pages = 32);

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_SIZE_CLASSES_H_
