// Regressions: allocator bugs the native tests found, each reproduced as it
// was found and fixed since (the slab-longer-than-a-chunk crash, fixed
// earlier, is in arena_test.cc).
//
// Bug 1: kExhausted with room. When no free run fits, AllocRun asks NewChunk,
// whose MakeRoom() gives back the classes' empty slabs (and empty chunks) if
// maxBytes is reached. Freeing an empty slab can coalesce a free run that now fits the
// request, but AllocRun does not look again: the call fails with kExhausted
// (ERR_POOL_EXHAUSTED) and the very same call succeeds when retried.
//
// Bug 2: Stats.classes stops at the class of hugeThreshold, but `align` can
// lift a request past it (to the first class it divides), so the allocation
// is counted in live_allocations and in no class.
#include <string>

#include "alloc/arena.h"
#include "arena_model.h"
#include "check.h"
#include "test_sources.h"

using namespace mmap_pool;

namespace {

alloc::ArenaOptions Opt(size_t page, size_t chunk, size_t huge) {
  alloc::ArenaOptions o;
  o.page_size = page;
  o.chunk_size = chunk;
  o.huge_threshold = huge;
  return o;
}

}  // namespace

TEST("bug 1: at maxBytes, an allocation that fits after MakeRoom released an empty slab succeeds") {
  alloc::ArenaOptions o = Opt(4096, 256 << 10, 256 << 10);
  o.max_bytes = 256 << 10;  // one chunk
  test::MapSource src;
  alloc::Arena arena(o, &src);
  alloc::Handle h;
  alloc::SourceError err;
  // A 28 KiB slab (28 pages) that becomes its class's empty slab, then 16 pages of large run.
  CHECK(arena.Alloc(alloc::kSmallMax, false, 1, &h, &err) == alloc::Status::kOk);
  CHECK(arena.Free({h.segment, h.offset, alloc::kSmallMax, 1}) == alloc::Status::kOk);
  CHECK(arena.Alloc(65536, false, 2, &h, &err) == alloc::Status::kOk);
  // Pages: empty slab 0..27, large 28..43, free 44..63 (20 pages). 96 KiB needs 24.
  alloc::Status first = arena.Alloc(98304, false, 3, &h, &err);
  CHECK_MSG(first == alloc::Status::kOk, std::string("first try: ") + test::StatusName(first));
  if (first != alloc::Status::kOk) {
    alloc::Status again = arena.Alloc(98304, false, 4, &h, &err);
    CHECK_MSG(again == alloc::Status::kOk, std::string("(the retry says ") + test::StatusName(again) + ")");
  }
  // It took the empty slab's pages: the slab is gone, no chunk was added.
  const alloc::Stats s = arena.GetStats();
  CHECK_EQ(s.classes[alloc::ClassIndex(alloc::kSmallMax)].capacity, uint64_t{0});
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(h.offset, size_t{0});
}

TEST("bug 2: Stats.classes counts an allocation that align lifted past hugeThreshold's class") {
  alloc::ArenaOptions o = Opt(16384, 256 << 10, 20000);
  test::MapSource src;
  alloc::Arena arena(o, &src);
  alloc::Handle h;
  alloc::SourceError err;
  // 17000 B at 16 KiB alignment: no small class >= 17000 is a multiple of
  // 16 KiB, so it becomes a 32 KiB large run (class 39); hugeThreshold's class is 36.
  CHECK(arena.Alloc(17000, false, 1, &h, &err, 16384) == alloc::Status::kOk);
  alloc::Stats s = arena.GetStats();
  uint64_t in_classes = 0;
  for (const alloc::ClassStats& c : s.classes) in_classes += c.live;
  CHECK_EQ(in_classes + s.huge_allocations, s.live_allocations);
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
