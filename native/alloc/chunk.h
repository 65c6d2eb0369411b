// A chunk: one mapped segment (default 4 MiB) cut into pages, and the page
// map that says which run of pages each page belongs to.
//
//   chunk (mapped, user data only)
//   +--------+--------+--------+--------+--------+--------+--------+-----
//   | page 0 | page 1 | page 2 | page 3 | page 4 | page 5 | page 6 | ...
//   +--------+--------+--------+--------+--------+--------+--------+-----
//   |<-- slab run (class 48 B) ->|<- large run (40 KiB) ->|<- free run ...
//   | slot0 slot1 slot2 ...     |  one allocation         |
//
//   page map (heap, never in the mapping, so a write past a Buffer cannot
//   reach it): one PageMeta per page
//     used runs: every page has used = 1 and head = first page of its run;
//                the head page also holds kind, class, pages, req; every
//                page of a slab run holds `slab`, so a free finds its slab
//                from the page it lands in without a second lookup
//     free runs: every page has used = 0; the first and the last page hold
//                `pages`, so a freed neighbour can merge in O(1)
//
//   busy: the runs holding a live allocation (large runs, slabs that are
//   not empty). At 0 the chunk is idle and sits in the Arena's ChunkList.
//
//   lost: someone else took the chunk's memory (a web byte stream or
//   ArrayBuffer.prototype.transfer() detached its ArrayBuffer): nothing is
//   placed in it again. Its free runs are not indexed, its slabs are in no
//   class list, it is never idle; its live allocations can still be freed,
//   and the last one's free releases it (Arena::Lose).
//
// Free runs of all chunks are indexed by the Arena (best fit, lowest chunk id
// and page first, the top chunk last), not here. Threads: guarded by the
// owning Arena's mutex.
#ifndef MMAP_POOL_ALLOC_CHUNK_H_
#define MMAP_POOL_ALLOC_CHUNK_H_

#include <cstdint>
#include <vector>

#include "segment.h"

namespace mmap_pool {
namespace alloc {

struct Slab;

enum class RunKind : uint8_t { kFree = 0, kSlab = 1, kLarge = 2 };

struct PageMeta {
  uint64_t serial = 0;  // head of a large run: the allocation's serial number
  uint32_t head = 0;    // used page: first page of its run
  uint32_t pages = 0;   // head page of any run, last page of a free run: run length
  uint32_t req = 0;     // head of a large run: the requested size in bytes
  uint32_t born = 0;    // head of a large run: when it was allocated (ms)
  uint8_t used = 0;     // 1 while the page is part of a slab or large run
  RunKind kind = RunKind::kFree;  // head page: what the run is
  uint8_t cls = 0;      // head page of a used run: its size class
  uint8_t dirty = 0;    // written since mapped or since a zeroing discard
  uint8_t resident = 0; // touched since mapped or last discard
  Slab* slab = nullptr; // every page of a slab run (null on any other page)
};

struct Chunk {
  Segment* segment = nullptr;
  uint32_t npages = 0;
  uint32_t free_pages = 0;
  uint32_t busy = 0;    // runs holding a live allocation: large runs, slabs not empty
  bool idle = false;    // busy == 0 and in the arena's idle list (ChunkList)
  bool lost = false;    // taken out of placement for good (Arena::Lose)
  Chunk* idle_prev = nullptr;
  Chunk* idle_next = nullptr;
  std::vector<PageMeta> pages;

  Chunk(Segment* seg, uint32_t page_count)
      : segment(seg), npages(page_count), free_pages(page_count), pages(page_count) {
    SetFreeBounds(0, page_count);
  }
  uint32_t id() const { return segment->id; }
  bool empty() const { return free_pages == npages; }

  // Records [first, first+n) as one free run: boundary lengths only.
  void SetFreeBounds(uint32_t first, uint32_t n) {
    pages[first].pages = n;
    pages[first + n - 1].pages = n;
  }

  // Marks [first, first+n) as one used run of `kind` and class `cls`.
  // Callers that zero-fill read `dirty` before this sets it.
  void MarkUsed(uint32_t first, uint32_t n, RunKind kind, uint8_t cls) {
    for (uint32_t p = first; p < first + n; p++) {
      PageMeta& m = pages[p];
      m.used = 1;
      m.head = first;
      m.resident = 1;
      m.dirty = 1;  // assume the owner writes it
    }
    PageMeta& h = pages[first];
    h.pages = n;
    h.kind = kind;
    h.cls = cls;
    free_pages -= n;
  }

  // Points every page of the slab run [first, first+n) at its slab.
  void SetSlab(uint32_t first, uint32_t n, Slab* slab) {
    for (uint32_t p = first; p < first + n; p++) pages[p].slab = slab;
  }

  // Marks [first, first+n) free (the caller merges and indexes the run).
  void MarkFree(uint32_t first, uint32_t n) {
    for (uint32_t p = first; p < first + n; p++) {
      pages[p].used = 0;
      pages[p].kind = RunKind::kFree;
      pages[p].slab = nullptr;
    }
    free_pages += n;
  }
};

// The arena's idle chunks, in the order they became idle (intrusive, so
// a chunk going idle and busy again allocates nothing).
struct ChunkList {
  Chunk* head = nullptr;
  Chunk* tail = nullptr;

  void PushBack(Chunk* c) {
    c->idle = true;
    c->idle_prev = tail;
    c->idle_next = nullptr;
    if (tail != nullptr) tail->idle_next = c; else head = c;
    tail = c;
  }
  void Remove(Chunk* c) {
    if (c->idle_prev != nullptr) c->idle_prev->idle_next = c->idle_next; else head = c->idle_next;
    if (c->idle_next != nullptr) c->idle_next->idle_prev = c->idle_prev; else tail = c->idle_prev;
    c->idle_prev = c->idle_next = nullptr;
    c->idle = false;
  }
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_CHUNK_H_
