// Slabs (native/alloc/slab.h): the multiply-and-shift Divider that turns an
// offset into a slot index on the free path (exact for every offset of every
// small class's slab at 4, 16 and 64 KiB pages), the LIFO free list threaded
// through SlotMeta, and the slot cap for pages so large that the 16 B class
// would need more slots than a 16-bit index names; and the SlabHeap that
// keeps a class's slabs with room, lowest first, against a std::set.
#include "alloc/slab.h"

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "alloc/arena.h"
#include "alloc/size_classes.h"
#include "check.h"
#include "test_sources.h"

using namespace mmap_pool;
using alloc::Divider;
using alloc::Slab;

namespace {

// The first n (below limit) where Divider(d, limit) is wrong, or limit.
uint64_t FirstWrong(uint32_t d, uint64_t limit) {
  const Divider div(d, limit);
  for (uint64_t n = 0; n < limit; n++) {
    if (div.Div(n) != n / d) return n;
  }
  return limit;
}

}  // namespace

TEST("Divider is exact for every offset in every small class's slab at 4, 16, 64 KiB pages") {
  for (size_t page : {size_t{4096}, size_t{16384}, size_t{65536}}) {
    for (uint32_t c = 0; c < alloc::kSmallClasses; c++) {
      const uint32_t d = static_cast<uint32_t>(alloc::ClassSize(c));
      const uint64_t limit = alloc::SlabPages(c, page) * page;
      const uint64_t wrong = FirstWrong(d, limit);
      CHECK_MSG(wrong == limit, "page " + std::to_string(page) + ", class size " +
                                    std::to_string(d) + ": wrong at " + std::to_string(wrong));
    }
  }
}

TEST("Divider is exact up to a 1 GiB limit at the quotient boundaries of odd and even divisors") {
  const uint64_t limit = uint64_t{1} << 30;
  for (uint32_t d : {1u, 3u, 16u, 48u, 80u, 4095u, 20480u, 28672u, 65535u, 65536u}) {
    const Divider div(d, limit);
    // A multiple of d and the offsets either side of it are where a rounding
    // error would show.
    const uint64_t step = d < 4096 ? uint64_t{d} * 997 : d;
    uint64_t wrong = limit;
    for (uint64_t m = 0; m < limit && wrong == limit; m += step) {
      for (uint64_t n : {m, m + 1, m + d - 1, m + d}) {
        if (n < limit && div.Div(n) != n / d) wrong = n;
      }
    }
    if (div.Div(limit - 1) != (limit - 1) / d) wrong = limit - 1;
    CHECK_MSG(wrong == limit, "d " + std::to_string(d) + ": wrong at " + std::to_string(wrong));
  }
}

TEST("a fresh slab hands out slots 0, 1, 2, ... and a freed slot is the next one taken") {
  Slab& s = *Slab::Create(nullptr, nullptr, 0, 0, 0, 0, 64, 5, 4096);
  CHECK_EQ(s.nfree, 5u);
  for (uint32_t i = 0; i < 3; i++) CHECK_EQ(s.Take(10, 100 + i, 7), i);
  CHECK(s.IsLive(0));
  CHECK(s.IsLive(2));
  CHECK(!s.IsLive(3));
  CHECK_EQ(s.meta(1).serial, 101u);
  CHECK_EQ(s.meta(1).req, 10u);
  CHECK_EQ(s.meta(1).born, 7u);
  s.Put(1);
  s.Put(0);
  CHECK(!s.IsLive(0));
  CHECK(!s.IsLive(1));
  CHECK_EQ(s.nfree, 4u);
  CHECK_EQ(s.Take(1, 1, 0), 0u);  // last freed, first reused
  CHECK_EQ(s.Take(1, 1, 0), 1u);
  CHECK_EQ(s.Take(1, 1, 0), 3u);  // then the never-used ones, in order
  CHECK_EQ(s.Take(1, 1, 0), 4u);
  CHECK_EQ(s.nfree, 0u);
  Slab::Destroy(&s);
}

TEST("a slab of 65535 slots (the cap) keeps every slot apart from the live marker") {
  const uint32_t n = alloc::kMaxSlabSlots;
  Slab& s = *Slab::Create(nullptr, nullptr, 0, 0, 0, 0, 16, n, uint64_t{n} * 16);
  uint32_t taken_in_order = 0, live = 0;
  for (uint32_t i = 0; i < n; i++) taken_in_order += s.Take(16, i, 0) == i;
  for (uint32_t i = 0; i < n; i++) live += s.IsLive(i);
  CHECK_EQ(taken_in_order, n);
  CHECK_EQ(live, n);
  CHECK_EQ(s.nfree, 0u);
  s.Put(n - 1);
  CHECK(!s.IsLive(n - 1));
  CHECK_EQ(s.Take(16, 0, 0), n - 1);
  Slab::Destroy(&s);
}

TEST("with 1 MiB pages a 16 B slab stops at 65535 slots and its tail is refused as foreign") {
  const size_t mib = size_t{1} << 20;
  alloc::ArenaOptions o;
  o.page_size = mib;
  o.chunk_size = 4 * mib;
  o.huge_threshold = mib;
  test::MapSource src;
  alloc::Arena arena(o, &src);
  alloc::SourceError err;
  alloc::Handle h;
  uint32_t first_segment = 0, in_place = 0;
  for (uint32_t i = 0; i < alloc::kMaxSlabSlots; i++) {
    if (arena.Alloc(16, false, i + 1, &h, &err) != alloc::Status::kOk) break;
    if (i == 0) first_segment = h.segment;
    in_place += h.segment == first_segment && h.offset == size_t{i} * 16;
  }
  CHECK_EQ(in_place, alloc::kMaxSlabSlots);
  // The last slot the page could hold is not a slot.
  const size_t tail = size_t{alloc::kMaxSlabSlots} * 16;
  CHECK_EQ(arena.Free({first_segment, tail, 16, 1}), alloc::Status::kForeign);
  // The next one comes from a new slab.
  CHECK_EQ(arena.Alloc(16, false, 1u << 20, &h, &err), alloc::Status::kOk);
  CHECK(h.segment != first_segment || h.offset >= mib);
  const alloc::Stats s = arena.GetStats();
  CHECK_EQ(s.classes[0].capacity, uint64_t{2} * alloc::kMaxSlabSlots);
  CHECK_EQ(s.live_allocations, uint64_t{alloc::kMaxSlabSlots} + 1);
  CHECK_EQ(arena.Free({first_segment, 0, 16, 1}), alloc::Status::kOk);
  arena.Close();
}

TEST("SlabHeap hands out the lowest slab first through 200k random inserts, removals and pops") {
  // Slabs without memory: only their order (segment id, first page) counts.
  std::vector<Slab*> slabs;
  for (uint32_t i = 0; i < 512; i++) {
    slabs.push_back(Slab::Create(nullptr, nullptr, 0, (i * 37) % 61, (i * 101) % 1024, 0, 16, 4, 64));
  }
  alloc::SlabHeap heap;
  std::set<std::pair<uint64_t, Slab*>> model;
  uint64_t state = 12345, bad = 0;
  auto next = [&state]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (int op = 0; op < 200000; op++) {
    Slab* s = slabs[next() % slabs.size()];
    const bool in = model.count({s->order, s}) != 0;
    const uint32_t what = next() % 3;
    if (!in && what != 2) {
      heap.Insert(s);
      model.insert({s->order, s});
    } else if (in && what == 0) {
      heap.Remove(s);
      model.erase({s->order, s});
    } else {
      Slab* min = heap.PopMin();
      Slab* want = model.empty() ? nullptr : model.begin()->second;
      // Equal orders may come in either order.
      if (min != want && (min == nullptr || want == nullptr || min->order != want->order)) bad++;
      if (min != nullptr) model.erase({min->order, min});
    }
    if ((heap.root == nullptr) != model.empty()) bad++;
  }
  while (Slab* min = heap.PopMin()) {
    if (model.empty() || min->order != model.begin()->first) bad++;
    if (!model.empty()) model.erase({min->order, min});
  }
  CHECK_EQ(bad, uint64_t{0});
  CHECK(model.empty());
  for (Slab* s : slabs) Slab::Destroy(s);
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
