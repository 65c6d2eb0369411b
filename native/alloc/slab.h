// A slab: a run of pages cut into equal slots of one small size class.
//
//   run in the chunk:  | slot 0 | slot 1 | slot 2 | ... | slot n-1 | waste |
//
//   metadata (heap, outside the mapping): the Slab and, right after it in
//   the same heap block, one 16-byte SlotMeta per slot, so an alloc or a
//   free touches one line of slot metadata (not five arrays) and a slab
//   costs one heap allocation:
//
//     | Slab | SlotMeta 0 | SlotMeta 1 | ... | SlotMeta n-1 |
//
//   SlotMeta
//     serial      live: the caller's serial number of the allocation
//     born        live: when it was allocated (ArenaOptions::clock, ms)
//     req         live: the requested size (< 28 KiB fits 16 bits)
//     next        kLive while allocated; free: the next free slot
//   Slab::free_head  the first free slot (valid while nfree > 0). The free
//                 slots form a LIFO list through `next`: a slot freed is the
//                 first reused, while it is warm; a fresh slab fills from 0.
//
// Alloc pops, free pushes: O(1) both ways. Slot indices fit 16 bits with
// kLive kept out, so a slab has at most kMaxSlabSlots slots.
//
// A class's slabs with room are ordered by Slab::order, (segment id, first
// page): the Arena allocates from the lowest (its current slab) and keeps
// the others in a SlabHeap, so that low slabs fill and high ones empty.
// Threads: the owning Arena's mutex.
#ifndef MMAP_POOL_ALLOC_SLAB_H_
#define MMAP_POOL_ALLOC_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <new>

namespace mmap_pool {
namespace alloc {

struct Chunk;

struct SlotMeta {
  uint64_t serial;  // 53 bits used (the JS client's serials): never reused within a process's life
  uint32_t born;
  uint16_t req;
  uint16_t next;
};

constexpr uint16_t kLive = 0xFFFF;
constexpr uint32_t kMaxSlabSlots = 0xFFFF;  // indices 0 .. 0xFFFE

// Exact floor(n / d) for every n < limit by a multiply and a shift, because a
// divide (on the free path, for the slot of an offset) costs as much as the
// rest of the lookup. With k = bits(limit) + bits(d) and m = ceil(2^k / d),
// m * d = 2^k + e with 0 <= e < d, so n * m / 2^k = n / d + n * e / (d * 2^k)
// and n * e < limit * d <= 2^k keeps the error below 1/d: the floor is exact.
// n * m < 2^(2 * bits(limit) + 1) fits 64 bits for limit <= 2^31 (a slab is
// at most one chunk, at most 1 GiB).
struct Divider {
  uint64_t mul = 1;
  uint32_t shift = 0;

  Divider() = default;
  Divider(uint32_t d, uint64_t limit) {
    uint32_t k = Bits(limit) + Bits(d);
    mul = ((uint64_t{1} << k) + d - 1) / d;
    shift = k;
  }
  uint64_t Div(uint64_t n) const { return (n * mul) >> shift; }

 private:
  static uint32_t Bits(uint64_t x) {  // ceil(log2(x)), x >= 1
    uint32_t b = 0;
    while ((uint64_t{1} << b) < x) b++;
    return b;
  }
};

struct Slab {
  // free_head and nfree, both written by every Take and Put, are not
  // neighbours: g++ merged their stores into one 8-byte store, and the next
  // Take reading half of it back stalled store forwarding (a small pair went
  // from 23 to 31 ns).
  uint32_t free_head = 0;
  uint32_t slot_size;
  Divider slot_of;      // offset in the run -> slot index
  uint32_t nslots;
  uint32_t nfree;
  Chunk* chunk;
  uint8_t* base;        // the slab's first byte in the mapping
  size_t run_offset;    // that byte's offset in the chunk
  uint32_t segment_id;  // the chunk's, kept here for the alloc path
  uint32_t first_page;
  uint32_t cls;
  uint64_t order;       // (segment id << 32) | first page: the lowest is used first
  // Links in its class's SlabHeap while it has a free slot and is not the
  // class's current slab; unused otherwise.
  Slab* heap_prev = nullptr;   // the previous sibling, or the parent of a first child
  Slab* heap_next = nullptr;   // the next sibling
  Slab* heap_child = nullptr;  // the first child

  // Slot i's metadata, right after this struct (no pointer to load).
  SlotMeta& meta(uint32_t i) { return reinterpret_cast<SlotMeta*>(this + 1)[i]; }
  const SlotMeta& meta(uint32_t i) const {
    return reinterpret_cast<const SlotMeta*>(this + 1)[i];
  }

  // A slab and its slot metadata in one heap block; free it with Destroy().
  static Slab* Create(Chunk* c, uint8_t* run_base, size_t offset, uint32_t id, uint32_t first,
                      uint32_t size_class, uint32_t size, uint32_t slot_count,
                      size_t run_bytes) {
    void* block = ::operator new(sizeof(Slab) + size_t{slot_count} * sizeof(SlotMeta));
    return new (block)
        Slab(c, run_base, offset, id, first, size_class, size, slot_count, run_bytes);
  }
  static void Destroy(Slab* s) {
    s->~Slab();
    ::operator delete(s);
  }

  bool IsLive(uint32_t i) const { return meta(i).next == kLive; }

  // Pops the first free slot; the caller checked nfree > 0.
  uint32_t Take(uint16_t size, uint64_t serial_number, uint32_t now) {
    uint32_t i = free_head;
    SlotMeta& m = meta(i);
    free_head = m.next;
    nfree--;
    m = SlotMeta{serial_number, now, size, kLive};
    return i;
  }

  void Put(uint32_t i) {
    meta(i).next = static_cast<uint16_t>(free_head);
    free_head = i;
    nfree++;
  }

 private:
  Slab(Chunk* c, uint8_t* run_base, size_t offset, uint32_t id, uint32_t first,
       uint32_t size_class, uint32_t size, uint32_t slot_count, size_t run_bytes)
      : slot_size(size), slot_of(size, run_bytes), nslots(slot_count), nfree(slot_count),
        chunk(c), base(run_base), run_offset(offset), segment_id(id), first_page(first),
        cls(size_class), order((uint64_t{id} << 32) | first) {
    static_assert(sizeof(Slab) % alignof(SlotMeta) == 0, "SlotMeta right after a Slab");
    SlotMeta* slots = reinterpret_cast<SlotMeta*>(this + 1);
    for (uint32_t i = 0; i < slot_count; i++) {
      new (&slots[i]) SlotMeta{0, 0, 0, static_cast<uint16_t>(i + 1 < slot_count ? i + 1 : 0)};
    }
  }
  ~Slab() = default;
};

// The slabs of one class that have a free slot (but its current slab), as
// a min-heap by `order`: a pairing heap (Fredman, Sedgewick, Sleator and
// Tarjan 1986; jemalloc's ph.h keeps its non-full slabs the same way),
// intrusive, so no operation allocates. Insert is O(1); PopMin and Remove
// are O(log n) amortized. Each node's children form a list through
// heap_next, whose first member points back at the parent.
struct SlabHeap {
  Slab* root = nullptr;

  void Insert(Slab* s) {
    s->heap_prev = s->heap_next = s->heap_child = nullptr;
    root = root == nullptr ? s : Meld(root, s);
  }

  // The lowest slab, taken out; nullptr when there is none.
  Slab* PopMin() {
    Slab* min = root;
    if (min != nullptr) {
      root = MergePairs(min->heap_child);
      min->heap_child = nullptr;
    }
    return min;
  }

  // Takes `s`, which is in this heap, out.
  void Remove(Slab* s) {
    if (s == root) {
      PopMin();
      return;
    }
    if (s->heap_prev->heap_child == s) {
      s->heap_prev->heap_child = s->heap_next;
    } else {
      s->heap_prev->heap_next = s->heap_next;
    }
    if (s->heap_next != nullptr) s->heap_next->heap_prev = s->heap_prev;
    Slab* rest = MergePairs(s->heap_child);
    s->heap_prev = s->heap_next = s->heap_child = nullptr;
    if (rest != nullptr) root = Meld(root, rest);
  }

 private:
  // Two heap roots (no parent, no siblings) as one; returns its root.
  static Slab* Meld(Slab* a, Slab* b) {
    if (b->order < a->order) {
      Slab* t = a;
      a = b;
      b = t;
    }
    b->heap_prev = a;
    b->heap_next = a->heap_child;
    if (a->heap_child != nullptr) a->heap_child->heap_prev = b;
    a->heap_child = b;
    return a;
  }

  // A list of siblings as one heap: meld them in pairs left to right, then
  // the pairs right to left (the two-pass variant that gives the bounds).
  static Slab* MergePairs(Slab* first) {
    if (first == nullptr) return nullptr;
    Slab* pairs = nullptr;  // melded pairs, the last first, through heap_next
    for (Slab* a = first; a != nullptr;) {
      Slab* b = a->heap_next;
      Slab* after = b != nullptr ? b->heap_next : nullptr;
      a->heap_prev = a->heap_next = nullptr;
      Slab* m = a;
      if (b != nullptr) {
        b->heap_prev = b->heap_next = nullptr;
        m = Meld(a, b);
      }
      m->heap_next = pairs;
      pairs = m;
      a = after;
    }
    Slab* top = pairs;
    pairs = pairs->heap_next;
    top->heap_next = nullptr;
    while (pairs != nullptr) {
      Slab* n = pairs->heap_next;
      pairs->heap_next = nullptr;
      top = Meld(top, pairs);
      pairs = n;
    }
    return top;
  }
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_SLAB_H_
