// Helpers shared by the Arena tests (arena_test.cc, spare_test.cc): a
// source and an arena over it, allocations named as a caller names them,
// and readers of the dump. The pool shape of the tests: 4 KiB pages,
// 256 KiB chunks (64 pages), a 64 KiB huge threshold. Huge mappings are
// rounded up to the platform's map granularity instead (Granule): the page
// on POSIX, the 64 KiB allocation granularity on Windows.
//
// Threads: the main thread only (TEST bodies).
#ifndef MMAP_POOL_TEST_ARENA_HELPERS_H_
#define MMAP_POOL_TEST_ARENA_HELPERS_H_

#include <string>

#include "alloc/arena.h"
#include "arena_model.h"
#include "check.h"
#include "test_sources.h"

namespace arena_helpers {

using namespace mmap_pool;
using alloc::Arena;
using alloc::ArenaOptions;
using alloc::Handle;
using alloc::Stats;
using alloc::Status;
using test::MapSource;
using test::TempDir;

constexpr size_t kPage = 4096;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kHuge = 64 * 1024;
constexpr uint32_t kNoSegment = UINT32_MAX;

// The unit a huge allocation's own mapping is rounded up to: MapSource's
// Granularity(), platform::MapGranularity().
inline size_t Granule() { return platform::MapGranularity(); }

// The bytes a huge allocation of `n` bytes maps: `n` rounded up to the
// granule (70000 maps 73728 with 4 KiB pages, 131072 with 64 KiB).
inline size_t HugeMapped(size_t n) { return (n + Granule() - 1) / Granule() * Granule(); }

// Pins the granule the tests' figures assume, so that they cannot follow a
// wrong one: the page on POSIX (mapping.h), 4 KiB here; on Windows the
// 64 KiB allocation granularity (windows.cc: dwAllocationGranularity).
inline bool CheckGranule() {
#if defined(_WIN32)
  return CHECK_EQ(Granule(), size_t{64} << 10);
#else
  return CHECK_EQ(Granule(), kPage);
#endif
}

inline ArenaOptions Opt(size_t chunk = kChunk, size_t huge = kHuge, size_t max = SIZE_MAX) {
  ArenaOptions o;
  o.page_size = kPage;
  o.chunk_size = chunk;
  o.huge_threshold = huge;
  o.max_bytes = max;
  return o;
}

// A source and an arena over it; the arena goes first.
struct Pool {
  MapSource src;
  Arena arena;
  explicit Pool(const ArenaOptions& o = Opt(),
                platform::Backing b = platform::Backing::kAnonymous)
      : src(b, TempDir()), arena(o, &src) {}
};

// One allocation as a caller names it: where, how long, under which serial.
struct Got {
  uint32_t segment = kNoSegment;
  size_t offset = 0;
  size_t size = 0;
  uint32_t serial = 0;
  Arena::Ref ref() const { return {segment, offset, size, serial}; }
  // Another (offset, length) in the same segment, under the same serial.
  Arena::Ref Slice(size_t off, size_t len) const { return {segment, off, len, serial}; }
};

inline uint32_t next_serial = 1;

inline Got Alloc(Arena& a, size_t size, bool zero = false, size_t align = 0) {
  Handle h;
  alloc::SourceError err;
  Got g;
  g.serial = next_serial++;
  Status st = a.Alloc(size, zero, g.serial, &h, &err, align);
  if (CHECK_MSG(st == Status::kOk, "Alloc(" + std::to_string(size) + "): " + test::StatusName(st))) {
    g.segment = h.segment;
    g.offset = h.offset;
    g.size = size;
  }
  return g;
}

// Alloc's status alone, for calls that must be refused.
inline Status TryAlloc(Arena& a, size_t size, bool zero = false, size_t align = 0,
                alloc::SourceError* err = nullptr) {
  Handle h;
  alloc::SourceError ignored;
  return a.Alloc(size, zero, next_serial++, &h, err != nullptr ? err : &ignored, align);
}

// Alloc as the block cache's refill calls it: never mapping a new chunk.
inline Status AllocNoMap(Arena& a, size_t size, Got* got = nullptr) {
  Handle h;
  alloc::SourceError err;
  const uint32_t serial = next_serial++;
  const Status st = a.Alloc(size, false, serial, &h, &err, 0, /*may_map=*/false);
  if (got != nullptr && st == Status::kOk) *got = Got{h.segment, h.offset, size, serial};
  return st;
}

inline uint8_t* Ptr(Arena& a, const Got& h) {
  alloc::Segment* s = a.FindSegment(h.segment);
  return s == nullptr ? nullptr : s->base + h.offset;
}

inline bool Unchanged(Arena& a, const Stats& before) {
  std::string diff;
  const bool same = test::SameStats(before, a.GetStats(), &diff);
  return CHECK_MSG(same, "Stats changed: " + diff);
}

// The runs of chunk `index` in the dump as "kind:page+pages" words.
inline std::string Runs(Arena& a, size_t index = 0) {
  const alloc::ArenaDump d = a.Dump();
  if (d.chunks.size() <= index) return "<no chunk>";
  std::string out;
  for (const alloc::RunDump& r : d.chunks[index].runs) {
    if (!out.empty()) out += ' ';
    out += std::string(test::RunKindName(r.kind)) + ":" + std::to_string(r.page) + "+" + std::to_string(r.pages);
  }
  return out;
}


}  // namespace arena_helpers

#endif  // MMAP_POOL_TEST_ARENA_HELPERS_H_
