// A slab: a run of pages cut into equal slots of one small size class.
//
//   run in the chunk:  | slot 0 | slot 1 | slot 2 | ... | slot n-1 | waste |
//
//   metadata (heap, outside the mapping):
//     free_stack  slot indices not in use; the top is handed out next (LIFO,
//                 so a slot freed is the first reused, while it is warm)
//     live        one bit per slot: set while the slot is allocated
//     req         the requested size of each live slot (< 28 KiB fits 16 bits)
//     serial      the caller's serial number of each live slot's allocation
//     born        when each live slot was allocated (ArenaOptions::clock, ms)
//
// Alloc pops, free pushes: O(1) both ways. Threads: the owning Arena's mutex.
#ifndef MMAP_POOL_ALLOC_SLAB_H_
#define MMAP_POOL_ALLOC_SLAB_H_

#include <cstdint>
#include <vector>

namespace mmap_pool {
namespace alloc {

struct Chunk;

struct Slab {
  Chunk* chunk;
  uint32_t first_page;
  uint32_t cls;
  uint32_t slot_size;
  uint32_t nslots;
  uint32_t nfree;
  Slab* prev = nullptr;  // in its class's list of slabs with free slots
  Slab* next = nullptr;
  bool listed = false;
  std::vector<uint16_t> free_stack;
  std::vector<uint64_t> live;
  std::vector<uint16_t> req;
  std::vector<uint32_t> serial;
  std::vector<uint32_t> born;

  Slab(Chunk* c, uint32_t first, uint32_t size_class, uint32_t size, uint32_t slots)
      : chunk(c), first_page(first), cls(size_class), slot_size(size),
        nslots(slots), nfree(slots), free_stack(slots), live((slots + 63) / 64),
        req(slots), serial(slots), born(slots) {
    // Slot 0 on top: a fresh slab fills from its start.
    for (uint32_t i = 0; i < slots; i++) free_stack[i] = static_cast<uint16_t>(slots - 1 - i);
  }

  bool IsLive(uint32_t i) const { return (live[i >> 6] >> (i & 63)) & 1; }

  uint32_t Take(uint16_t size, uint32_t serial_number, uint32_t now) {
    uint32_t i = free_stack[--nfree];
    live[i >> 6] |= uint64_t{1} << (i & 63);
    req[i] = size;
    serial[i] = serial_number;
    born[i] = now;
    return i;
  }

  void Put(uint32_t i) {
    live[i >> 6] &= ~(uint64_t{1} << (i & 63));
    free_stack[nfree++] = static_cast<uint16_t>(i);
  }
};

// An intrusive list of the slabs of one class that have a free slot.
struct SlabList {
  Slab* head = nullptr;

  void Push(Slab* s) {
    s->prev = nullptr;
    s->next = head;
    if (head) head->prev = s;
    head = s;
    s->listed = true;
  }
  void Remove(Slab* s) {
    if (s->prev) s->prev->next = s->next; else head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    s->listed = false;
  }
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_SLAB_H_
