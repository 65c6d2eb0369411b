#include "size_classes.h"

namespace mmap_pool {
namespace alloc {

uint32_t SlabPages(uint32_t index, size_t page_size, uint32_t max_pages) {
  const size_t size = ClassSize(index);
  const uint32_t kMaxPages = max_pages < 32 ? max_pages : 32;
  uint32_t best = 1;
  size_t best_waste_num = page_size, best_waste_den = 1;  // waste / slab bytes
  for (uint32_t pages = 1; pages <= kMaxPages; pages++) {
    size_t bytes = pages * page_size;
    size_t slots = bytes / size;
    if (slots == 0) continue;
    size_t waste = bytes - slots * size;
    if (slots >= 4 && waste * 64 <= bytes) return pages;
    // Keep the least wasteful candidate (compare waste/bytes as fractions).
    if (waste * best_waste_den < best_waste_num * bytes) {
      best = pages;
      best_waste_num = waste;
      best_waste_den = bytes;
    }
  }
  return best;
}

}  // namespace alloc
}  // namespace mmap_pool
