// Arena bookkeeping (native/alloc/arena.cc, arena_maintenance.cc), with
// exact expectations: where small / large / huge allocations land (lowest
// slab with room, best fit off the top chunk), every refused free, counters
// after a known sequence, the one empty slab a class keeps, free-run
// coalescing, idle chunks kept and given back, reset, trim, close, maxBytes,
// source failure and reference counts.
//
// Unless a test says otherwise the pool has 4 KiB pages, 256 KiB chunks
// (64 pages) and a 64 KiB huge threshold: small <= 28 KiB, large 28 KiB+1 ..
// 64 KiB, huge above. A huge allocation's mapping is rounded up to the
// platform's map granularity (HugeMapped, arena_helpers.h): the 4 KiB page
// on POSIX, the 64 KiB allocation granularity on Windows, where the tests
// also run (scripts/test-native-wine.sh).
#include "alloc/arena.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <winerror.h>
#endif

#include "arena_helpers.h"
#include "arena_model.h"
#include "check.h"
#include "test_sources.h"

using namespace mmap_pool;
using alloc::Arena;
using alloc::Handle;
using alloc::ArenaOptions;
using alloc::Stats;
using alloc::Status;
using test::FailingSource;
using test::MapSource;

using namespace arena_helpers;

// ---- where allocations land ---------------------------------------------------

TEST("small allocations of one class fill a slab from its start, one class size apart") {
  Pool p;
  // 48 B class: one-page slabs of 85 slots (4080 B, 16 B waste).
  const uint32_t slots = 85;
  for (uint32_t i = 0; i < slots; i++) {
    Got h = Alloc(p.arena, 40);
    CHECK_EQ(h.segment, 0u);
    CHECK_EQ(h.offset, size_t{i} * 48);
  }
  Got next = Alloc(p.arena, 48);  // the first slab is full: a new one on page 1
  CHECK_EQ(next.offset, kPage);
  Got other = Alloc(p.arena, 100);  // 112 B class: its own slab on page 2
  CHECK_EQ(other.offset, 2 * kPage);
  Got other2 = Alloc(p.arena, 112);
  CHECK_EQ(other2.offset, 2 * kPage + 112);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.classes[2].live, uint64_t{86});
  CHECK_EQ(s.classes[2].capacity, uint64_t{170});
  CHECK_EQ(s.classes[6].live, uint64_t{2});
  CHECK_EQ(s.classes[6].capacity, uint64_t{36});  // 4096 / 112
  CHECK_EQ(s.used_bytes, size_t{85 * 40 + 48 + 100 + 112});
  CHECK_EQ(s.allocated_bytes, size_t{86 * 48 + 2 * 112});
  CHECK_EQ(Runs(p.arena), std::string("slab:0+1 slab:1+1 slab:2+1 free:3+61"));
}

TEST("a 28 KiB allocation is small: a 28-page slab of four slots") {
  Pool p;
  Got a = Alloc(p.arena, alloc::kSmallMax);
  Got b = Alloc(p.arena, alloc::kSmallMax - 100);
  CHECK_EQ(a.offset, size_t{0});
  CHECK_EQ(b.offset, alloc::kSmallMax);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.classes[38].capacity, uint64_t{4});
  CHECK_EQ(Runs(p.arena), std::string("slab:0+28 free:28+36"));
}

// Slab runs of class `cls` in the dump, in address order, as "page:live/capacity".
std::string SlabsOf(Arena& a, size_t class_size) {
  std::string out;
  for (const alloc::ChunkDump& c : a.Dump().chunks) {
    for (const alloc::RunDump& r : c.runs) {
      if (r.kind != alloc::RunDump::Kind::kSlab || r.class_size != class_size) continue;
      if (!out.empty()) out += ' ';
      out += std::to_string(c.id) + "/" + std::to_string(r.page) + ":" + std::to_string(r.live) + "/" +
             std::to_string(r.capacity);
    }
  }
  return out;
}

TEST("a small allocation takes a slot from the lowest slab of its class with room") {
  Pool p;
  // 1 KiB class: one-page slabs of 4 slots. Three full slabs, pages 0..2.
  Got g[12];
  for (Got& h : g) h = Alloc(p.arena, 1024);
  CHECK_EQ(SlabsOf(p.arena, 1024), std::string("0/0:4/4 0/1:4/4 0/2:4/4"));
  // Room in the top slab, then in the bottom one: the bottom one is used first.
  CHECK_EQ(p.arena.Free(g[9].ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(g[10].ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(g[1].ref()), Status::kOk);
  Got a = Alloc(p.arena, 1000);
  CHECK_EQ(a.offset, g[1].offset);
  // Then the middle one, which just got room, before the top one that had it first.
  CHECK_EQ(p.arena.Free(g[5].ref()), Status::kOk);
  Got b = Alloc(p.arena, 1000);
  CHECK_EQ(b.offset, g[5].offset);
  Got c = Alloc(p.arena, 1000), d = Alloc(p.arena, 1000);
  CHECK_EQ(c.offset / kPage, size_t{2});
  CHECK_EQ(d.offset / kPage, size_t{2});
  CHECK_EQ(SlabsOf(p.arena, 1024), std::string("0/0:4/4 0/1:4/4 0/2:4/4"));
  // All full: the next slab is new, on page 3.
  Got e = Alloc(p.arena, 1000);
  CHECK_EQ(e.offset, 3 * kPage);
}

TEST("the lowest slab with room is found among many (the heap after removals)") {
  Pool p(Opt(kChunk * 4, kHuge));
  // 2 KiB class: two-page slabs of 4 slots. 100 slabs, all full.
  std::vector<Got> g;
  for (int i = 0; i < 400; i++) g.push_back(Alloc(p.arena, 2048));
  // Give every odd slab one free slot, from the top down, and empty slab 10
  // (kept: the class's one empty slab).
  for (int s = 99; s >= 1; s -= 2) CHECK_EQ(p.arena.Free(g[s * 4 + 1].ref()), Status::kOk);
  for (int i = 40; i < 44; i++) CHECK_EQ(p.arena.Free(g[i].ref()), Status::kOk);
  // Allocations now fill slabs 1, 3, 5, 7, 9, then 10 (empty), then 11, 13, ...
  const int order[] = {1, 3, 5, 7, 9, 10, 10, 10, 10, 11, 13};
  for (int s : order) {
    Got h = Alloc(p.arena, 2000);
    CHECK_EQ(h.offset / (2 * kPage), size_t(s));
  }
}

TEST("large allocations are page-aligned runs of their class size, best fit lowest first") {
  Pool p;
  Got a = Alloc(p.arena, alloc::kSmallMax + 1);  // class 32 KiB: 8 pages
  Got b = Alloc(p.arena, 40000);                 // class 40 KiB: 10 pages
  Got c = Alloc(p.arena, kHuge);                 // exactly the threshold: still large, 16 pages
  CHECK_EQ(a.segment, 0u);
  CHECK_EQ(a.offset, size_t{0});
  CHECK_EQ(b.offset, 8 * kPage);
  CHECK_EQ(c.offset, 18 * kPage);
  for (const Got& h : {a, b, c}) CHECK_EQ(h.offset % kPage, size_t{0});
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.allocated_bytes, size_t{32768 + 40960 + 65536});
  CHECK_EQ(s.used_bytes, size_t{28673 + 40000 + 65536});
  CHECK_EQ(s.huge_allocations, uint64_t{0});
  CHECK_EQ(s.classes[alloc::ClassIndex(40000)].live, uint64_t{1});
  CHECK_EQ(s.classes[alloc::ClassIndex(40000)].capacity, uint64_t{1});
  CHECK_EQ(Runs(p.arena), std::string("large:0+8 large:8+10 large:18+16 free:34+30"));
  // Freeing b leaves a 10-page hole; a 36000-byte request (also the 40 KiB
  // class, 10 pages) fits it exactly and goes there, not to the larger tail.
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 40000)), Status::kOk);
  Got d = Alloc(p.arena, 36000);
  CHECK_EQ(d.offset, 8 * kPage);
}

TEST("an allocation above hugeThreshold gets a zeroed segment of its own at offset 0") {
  Pool p;
  Got h = Alloc(p.arena, kHuge + 1, true);
  CHECK_EQ(h.offset, size_t{0});
  alloc::Segment* seg = p.arena.FindSegment(h.segment);
  if (!CHECK(seg != nullptr)) return;
  CheckGranule();
  CHECK_EQ(seg->size, HugeMapped(kHuge + 1));  // rounded up to the granule: 69632 with 4 KiB pages
  CHECK_EQ(p.src.acquired, uint64_t{1});
  bool zero = true;
  for (size_t i = 0; i < kHuge + 1; i++) zero &= seg->base[i] == 0;
  CHECK(zero);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.huge_allocations, uint64_t{1});
  CHECK_EQ(s.huge_bytes, HugeMapped(kHuge + 1));
  CHECK_EQ(s.mapped_bytes, HugeMapped(kHuge + 1));
  CHECK_EQ(s.chunks, uint64_t{0});
  CHECK_EQ(s.allocated_bytes, HugeMapped(kHuge + 1));
  CHECK_EQ(s.used_bytes, kHuge + 1);
  CHECK_EQ(p.arena.Free(h.Slice(0, kHuge + 1)), Status::kSegmentReleased);
  CHECK_EQ(p.src.release_calls, uint64_t{1});
  CHECK(p.arena.FindSegment(h.segment) == nullptr);
  s = p.arena.GetStats();
  CHECK_EQ(s.mapped_bytes, size_t{0});
  CHECK_EQ(s.huge_bytes, size_t{0});
  CHECK_EQ(s.live_allocations, uint64_t{0});
}

TEST("size 0 allocations are distinct 16-byte slots, freed with length 0") {
  Pool p;
  Got a = Alloc(p.arena, 0), b = Alloc(p.arena, 0), c = Alloc(p.arena, 0);
  CHECK_EQ(a.offset, size_t{0});
  CHECK_EQ(b.offset, size_t{16});
  CHECK_EQ(c.offset, size_t{32});
  CHECK_EQ(p.arena.GetStats().allocated_bytes, size_t{48});
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 1)), Status::kForeign);
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 0)), Status::kOk);
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 0)), Status::kDoubleFree);
}

TEST("segment ids are reused lowest first") {
  Pool p;
  Got h0 = Alloc(p.arena, kHuge + 1), h1 = Alloc(p.arena, kHuge + 1);
  CHECK_EQ(h0.segment, 0u);
  CHECK_EQ(h1.segment, 1u);
  CHECK_EQ(p.arena.Free(h0.Slice(0, kHuge + 1)), Status::kSegmentReleased);
  Got c = Alloc(p.arena, 16);  // a chunk takes the freed id 0
  CHECK_EQ(c.segment, 0u);
  CHECK_EQ(p.arena.FindSegment(0)->size, kChunk);
}

TEST("20..28 KiB allocations in a 64 KiB-chunk pool get slabs that fit the chunk") {
  // Regression (fixed in 7d661cb): SlabPages asked for 20-28 pages, more than
  // the 16 of a 64 KiB chunk, and AllocRun dereferenced free_runs_.end().
  // A 64 KiB chunk with the default hugeThreshold (min(1 MiB, chunkSize)) is
  // what `new Pool({ chunkSize: 65536 })` makes.
  Pool p(Opt(64 << 10, 64 << 10));
  Got a = Alloc(p.arena, 20000), b = Alloc(p.arena, alloc::kSmallMax), c = Alloc(p.arena, 24000);
  for (const Got& g : {a, b, c}) {
    CHECK_LE(g.offset + g.size, size_t{64} << 10);
    std::memset(Ptr(p.arena, g), 1, g.size);
  }
  CHECK_EQ(p.arena.Free(b.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(c.ref()), Status::kOk);
}

TEST("with 64 KiB pages and 64 KiB chunks every small class fits its one-page chunk") {
  ArenaOptions o = Opt(64 << 10, 64 << 10);
  o.page_size = 64 << 10;
  Pool p(o);
  for (uint32_t c = 0; c < alloc::kSmallClasses; c++) {
    Got g = Alloc(p.arena, alloc::ClassSize(c));
    if (g.segment == kNoSegment) break;
    std::memset(Ptr(p.arena, g), 2, g.size);
  }
  const Stats s = p.arena.GetStats();
  CHECK_EQ(s.live_allocations, uint64_t{alloc::kSmallClasses});
  CHECK_EQ(s.chunks, uint64_t{alloc::kSmallClasses});  // one single-page slab per chunk
}

// ---- refused frees ------------------------------------------------------------

TEST("free() of a slice or with a wrong length returns kForeign and changes nothing") {
  Pool p;
  Got s = Alloc(p.arena, 40);
  Got l = Alloc(p.arena, 40000);
  Got h = Alloc(p.arena, 100000);
  const Stats before = p.arena.GetStats();
  // small
  CHECK_EQ(p.arena.Free(s.Slice(s.offset + 1, 39)), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset + 1, 40)), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset + 16, 24)), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 39)), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 41)), Status::kForeign);
  // large: inside the first page, in a later page of the run, wrong length
  CHECK_EQ(p.arena.Free(l.Slice(l.offset + 1, 39999)), Status::kForeign);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset + kPage, 40000 - kPage)), Status::kForeign);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 40001)), Status::kForeign);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 39999)), Status::kForeign);
  // huge
  CHECK_EQ(p.arena.Free(h.Slice(1, 99999)), Status::kForeign);
  CHECK_EQ(p.arena.Free(h.Slice(0, 100001)), Status::kForeign);
  CHECK_EQ(p.arena.Free(h.Slice(0, 99999)), Status::kForeign);
  // Retain / Release / RefCount check the same way and touch no count.
  uint32_t count = 99;
  CHECK_EQ(p.arena.Retain(s.Slice(s.offset + 1, 39), &count), Status::kForeign);
  CHECK_EQ(p.arena.Release(l.Slice(l.offset, 1), &count), Status::kForeign);
  CHECK_EQ(p.arena.RefCount(h.Slice(0, 1), &count), Status::kForeign);
  CHECK_EQ(count, 99u);
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.release_calls, uint64_t{0});
  // The real ones still free.
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 40)), Status::kOk);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 40000)), Status::kOk);
  CHECK_EQ(p.arena.Free(h.Slice(0, 100000)), Status::kSegmentReleased);
}

TEST("a second free() returns kDoubleFree (small and large) and changes nothing") {
  Pool p;
  Got keep = Alloc(p.arena, 40);
  Got s = Alloc(p.arena, 40);
  Got l = Alloc(p.arena, 40000);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 40)), Status::kOk);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 40000)), Status::kOk);
  const Stats before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 40)), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 40000)), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset + kPage, 1)), Status::kDoubleFree);  // anywhere in the freed run
  uint32_t count = 0;
  CHECK_EQ(p.arena.Release(s.Slice(s.offset, 40), &count), Status::kDoubleFree);
  CHECK_EQ(p.arena.RefCount(l.Slice(l.offset, 40000), &count), Status::kDoubleFree);
  Unchanged(p.arena, before);
  // An emptied slab's slots (kept as its class's empty slab) are still "not allocated".
  CHECK_EQ(p.arena.Free(keep.Slice(keep.offset, 40)), Status::kOk);
  CHECK_EQ(p.arena.Free(keep.Slice(keep.offset, 40)), Status::kDoubleFree);
}

TEST("a second free() of a huge allocation returns kForeign: its segment is gone") {
  Pool p;
  Got h = Alloc(p.arena, 100000);
  CHECK_EQ(p.arena.Free(h.Slice(0, 100000)), Status::kSegmentReleased);
  const Stats before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free(h.Slice(0, 100000)), Status::kForeign);
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.release_calls, uint64_t{1});
}

TEST("free() of an offset in a free run or a slab's unused tail is refused") {
  Pool p;
  Got s = Alloc(p.arena, 48);  // a 48 B slab on page 0: 85 slots, bytes 4080..4095 unused
  const Stats before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free(s.Slice(kChunk - kPage, 16)), Status::kDoubleFree);  // never allocated
  CHECK_EQ(p.arena.Free(s.Slice(5 * kPage + 48, 48)), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(s.Slice(85 * 48, 0)), Status::kForeign);  // the slab's waste
  CHECK_EQ(p.arena.Free(s.Slice(96, 48)), Status::kDoubleFree);   // a free slot
  Unchanged(p.arena, before);
}

TEST("free() of an unknown segment id or past a chunk's end returns kForeign") {
  Pool p;
  Got s = Alloc(p.arena, 48);
  const Stats before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free({999, 0, 48, s.serial}), Status::kForeign);
  CHECK_EQ(p.arena.Free({1, 0, 48, s.serial}), Status::kForeign);
  CHECK_EQ(p.arena.Free({UINT32_MAX, 0, 0, 0}), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(kChunk, 48)), Status::kForeign);
  CHECK_EQ(p.arena.Free(s.Slice(SIZE_MAX, 48)), Status::kForeign);
  Unchanged(p.arena, before);
}

// ---- counters -----------------------------------------------------------------

TEST("Stats are exact after a known sequence") {
  Pool p;
  Got a = Alloc(p.arena, 1);       // class 16 B, slab on page 0
  Got b = Alloc(p.arena, 100);     // class 112 B, slab on page 1
  Got c = Alloc(p.arena, 30000);   // large 32 KiB, pages 2..9
  Got d = Alloc(p.arena, 70000);   // huge, HugeMapped(70000) B mapped
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 100)), Status::kOk);  // its slab stays as the empty one
  (void)a;
  (void)c;
  (void)d;
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.live_allocations, uint64_t{3});
  CHECK_EQ(s.total_allocations, uint64_t{4});
  CHECK_EQ(s.total_frees, uint64_t{1});
  CHECK_EQ(s.used_bytes, size_t{1 + 30000 + 70000});
  CHECK_EQ(s.allocated_bytes, size_t{16 + 32768} + HugeMapped(70000));
  CHECK_EQ(s.peak_used_bytes, size_t{1 + 100 + 30000 + 70000});
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(s.huge_allocations, uint64_t{1});
  CHECK_EQ(s.huge_bytes, HugeMapped(70000));
  CHECK_EQ(s.mapped_bytes, kChunk + HugeMapped(70000));
  CHECK_EQ(s.free_bytes, (64 - 10) * kPage);
  CHECK_EQ(s.classes.size(), size_t{alloc::ClassIndex(kHuge) + 1});
  CHECK_EQ(s.classes[0].size, size_t{16});
  CHECK_EQ(s.classes[0].live, uint64_t{1});
  CHECK_EQ(s.classes[0].capacity, uint64_t{256});
  CHECK_EQ(s.classes[6].live, uint64_t{0});
  CHECK_EQ(s.classes[6].capacity, uint64_t{36});
  CHECK_EQ(s.classes[39].size, size_t{32768});
  CHECK_EQ(s.classes[39].live, uint64_t{1});
  CHECK_EQ(s.classes[39].capacity, uint64_t{1});
  CHECK_EQ(p.src.acquired, uint64_t{2});
}

// ---- slabs ----------------------------------------------------------------------

TEST("a class keeps one empty slab; of two, the higher one's run is released") {
  Pool p;
  Got hs[86];
  for (Got& h : hs) h = Alloc(p.arena, 48);  // slab A (page 0) full, slab B (page 1) has one
  CHECK_EQ(hs[85].offset, kPage);
  CHECK_EQ(p.arena.GetStats().classes[2].capacity, uint64_t{170});
  CHECK_EQ(p.arena.Free(hs[85].Slice(hs[85].offset, 48)), Status::kOk);  // B empty: kept
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.classes[2].capacity, uint64_t{170});
  CHECK_EQ(s.free_bytes, 62 * kPage);
  CHECK_EQ(Runs(p.arena), std::string("slab:0+1 slab:1+1 free:2+62"));
  for (int i = 0; i < 85; i++) CHECK_EQ(p.arena.Free(hs[i].Slice(hs[i].offset, 48)), Status::kOk);
  s = p.arena.GetStats();  // A empty too: A, the lower, is kept and B's run is freed
  CHECK_EQ(s.classes[2].capacity, uint64_t{85});
  CHECK_EQ(s.classes[2].live, uint64_t{0});
  CHECK_EQ(s.free_bytes, 63 * kPage);
  CHECK_EQ(Runs(p.arena), std::string("slab:0+1 free:1+63"));
  Got again = Alloc(p.arena, 48);  // served from the kept slab (its last freed slot), no new run
  CHECK_EQ(again.offset, size_t{84 * 48});
  CHECK_EQ(p.arena.GetStats().free_bytes, 63 * kPage);
  CHECK_EQ(p.arena.Free(again.Slice(again.offset, 48)), Status::kOk);
  // Trim lets the empty slab go, then the chunk, which is empty.
  CHECK_EQ(p.arena.Trim(), kChunk);
  s = p.arena.GetStats();
  CHECK_EQ(s.classes[2].capacity, uint64_t{0});
  CHECK_EQ(s.chunks, uint64_t{0});
  CHECK_EQ(s.mapped_bytes, size_t{0});
  CHECK_EQ(p.src.release_calls, uint64_t{1});
}

// ---- free runs ------------------------------------------------------------------

TEST("freeing runs A and C, then B, coalesces the chunk into one free run") {
  // Huge threshold = chunk size, so a whole-chunk large run is possible.
  Pool p(Opt(kChunk, kChunk));
  Got a = Alloc(p.arena, 65536), b = Alloc(p.arena, 65536), c = Alloc(p.arena, 65536);
  CHECK_EQ(a.offset, size_t{0});
  CHECK_EQ(b.offset, size_t{65536});
  CHECK_EQ(c.offset, size_t{131072});
  CHECK_EQ(Runs(p.arena), std::string("large:0+16 large:16+16 large:32+16 free:48+16"));
  CHECK_EQ(p.arena.Free(a.Slice(a.offset, 65536)), Status::kOk);
  CHECK_EQ(p.arena.Free(c.Slice(c.offset, 65536)), Status::kOk);
  CHECK_EQ(Runs(p.arena), std::string("free:0+16 large:16+16 free:32+32"));
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 65536)), Status::kOk);
  CHECK_EQ(Runs(p.arena), std::string("free:0+64"));
  CHECK_EQ(p.arena.GetStats().free_bytes, kChunk);
  // The proof that it is one run: a whole-chunk allocation fits without a new chunk.
  Got whole = Alloc(p.arena, kChunk);
  CHECK_EQ(whole.segment, a.segment);
  CHECK_EQ(whole.offset, size_t{0});
  CHECK_EQ(p.src.acquired, uint64_t{1});
  CHECK_EQ(Runs(p.arena), std::string("large:0+64"));
}

TEST("a freed run merges with the free run on its left and on its right") {
  Pool p(Opt(kChunk, kChunk));
  Got r[4];
  for (Got& h : r) h = Alloc(p.arena, 32768);  // 8 pages each
  CHECK_EQ(p.arena.Free(r[1].Slice(r[1].offset, 32768)), Status::kOk);
  CHECK_EQ(p.arena.Free(r[2].Slice(r[2].offset, 32768)), Status::kOk);  // merges left
  CHECK_EQ(Runs(p.arena), std::string("large:0+8 free:8+16 large:24+8 free:32+32"));
  CHECK_EQ(p.arena.Free(r[3].Slice(r[3].offset, 32768)), Status::kOk);  // merges both sides
  CHECK_EQ(Runs(p.arena), std::string("large:0+8 free:8+56"));
  CHECK_EQ(p.arena.Free(r[0].Slice(r[0].offset, 32768)), Status::kOk);
  CHECK_EQ(Runs(p.arena), std::string("free:0+64"));
}

TEST("a run goes to the best fit in the lower chunks; the top chunk only when none fits there") {
  Pool p(Opt(kChunk, kChunk));
  Got a = Alloc(p.arena, 40960);   // 10 pages, chunk 0 pages 0..9
  Got b = Alloc(p.arena, 196608);  // 48 pages, 10..57; 58..63 free
  Got c = Alloc(p.arena, 229376);  // 56 pages: chunk 1, the top one, 0..55; 56..63 free
  CHECK_EQ(b.segment, a.segment);
  CHECK(c.segment != a.segment);
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  // 8 pages: an exact fit at the top chunk's end, but chunk 0's 10-page hole comes first.
  Got d = Alloc(p.arena, 32768);
  CHECK_EQ(d.segment, a.segment);
  CHECK_EQ(d.offset, size_t{0});
  // 10 pages fit nowhere: chunk 2 is mapped and becomes the top chunk, so
  // chunk 1's runs now come before it.
  Got e = Alloc(p.arena, 40960);
  CHECK(e.segment != a.segment && e.segment != c.segment);
  CHECK_EQ(e.offset, size_t{0});
  Got f = Alloc(p.arena, 32768);
  CHECK_EQ(f.segment, c.segment);
  CHECK_EQ(f.offset, 56 * kPage);
  // Chunk 2 goes (trimmed when idle): chunk 1 is the top chunk again.
  CHECK_EQ(p.arena.Free(e.ref()), Status::kOk);
  CHECK_EQ(p.arena.Trim() >= kChunk, true);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
  CHECK_EQ(p.arena.Free(d.ref()), Status::kOk);  // chunk 0: 0..9 free again
  CHECK_EQ(p.arena.Free(f.ref()), Status::kOk);  // chunk 1: an exact 8-page fit at 56
  Got g = Alloc(p.arena, 32768);  // 8 pages: chunk 0 still, not the top chunk's exact fit
  CHECK_EQ(g.segment, a.segment);
  CHECK_EQ(g.offset, size_t{0});
}

// ---- idle chunks ------------------------------------------------------------------

namespace {
// Huge allocations: counted by the idle-chunk clock, never placed in a chunk.
void AllocHuge(Pool& p, int n, size_t size = kHuge + 1) {
  for (int i = 0; i < n; i++) {
    Got h = Alloc(p.arena, size);
    CHECK_EQ(p.arena.Free(h.ref()), Status::kSegmentReleased);
  }
}
}  // namespace

TEST("a chunk left without allocations stays mapped until twice the chunk size is allocated elsewhere") {
  static_assert(alloc::kIdleKeepChunks == 2, "the test counts two chunks' worth");
  Pool p;
  Got full[4];
  for (Got& g : full) g = Alloc(p.arena, kHuge);  // 16 pages each: chunk 0 is full
  Got x = Alloc(p.arena, 100);                    // a slab in chunk 1
  CHECK(x.segment != full[0].segment);
  CHECK_EQ(p.arena.Free(x.ref()), Status::kOk);   // chunk 1 is idle: kept
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
  const uint64_t releases = p.src.release_calls;
  AllocHuge(p, 7);  // 7 x (64 KiB + 1) < 512 KiB
  CHECK_EQ(p.src.release_calls, releases + 7);
  CHECK(p.arena.FindSegment(x.segment) != nullptr);
  // Needed again: the count starts over.
  Got y = Alloc(p.arena, 100);
  CHECK_EQ(y.segment, x.segment);
  CHECK_EQ(p.arena.Free(y.ref()), Status::kOk);
  AllocHuge(p, 3, 131072);
  CHECK(p.arena.FindSegment(x.segment) != nullptr);
  AllocHuge(p, 1, 131072);  // now exactly 512 KiB: chunk 1 goes, with its empty slab
  CHECK(p.arena.FindSegment(x.segment) == nullptr);
  CHECK_EQ(p.src.release_calls, releases + 7 + 4 + 1);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(s.classes[alloc::ClassIndex(100)].capacity, uint64_t{0});
  CHECK_EQ(s.mapped_bytes, kChunk);
}

TEST("the only chunk is never given back for being idle, and a free never gives a chunk back") {
  Pool p;
  Got a = Alloc(p.arena, 100), b = Alloc(p.arena, 40000);
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(b.ref()), Status::kOk);
  AllocHuge(p, 64);
  CHECK(p.arena.FindSegment(a.segment) != nullptr);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{1});
  // Two idle chunks: both stay until the clock runs out, then the one idle longest goes.
  Got fill[4];
  for (Got& g : fill) g = Alloc(p.arena, kHuge);   // chunk 0 full
  Got c = Alloc(p.arena, kHuge);                   // chunk 1
  for (Got& g : fill) CHECK_EQ(p.arena.Free(g.ref()), Status::kOk);  // chunk 0 idle
  CHECK_EQ(p.arena.Free(c.ref()), Status::kOk);    // chunk 1 idle
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
  AllocHuge(p, 8);
  CHECK(p.arena.FindSegment(fill[0].segment) == nullptr);
  CHECK(p.arena.FindSegment(c.segment) != nullptr);
  AllocHuge(p, 64);  // the last chunk stays
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{1});
}

TEST("a burst that needs the idle chunks again maps nothing new") {
  Pool p;
  for (int round = 0; round < 5; round++) {
    std::vector<Got> g;
    for (int i = 0; i < 16; i++) g.push_back(Alloc(p.arena, kHuge));  // four chunks' worth
    for (const Got& h : g) CHECK_EQ(p.arena.Free(h.ref()), Status::kOk);
  }
  CHECK_EQ(p.src.acquired, uint64_t{4});
  CHECK_EQ(p.src.release_calls, uint64_t{0});
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{4});
}

TEST("AgeIdle ages the idle chunks as the arena's own allocations do, and banks nothing") {
  static_assert(alloc::kIdleKeepChunks == 2, "the test counts two chunks' worth");
  Pool p;
  p.arena.AgeIdle(10 * kChunk);  // nothing idle: no credit for later
  Got full[4];
  for (Got& g : full) g = Alloc(p.arena, kHuge);  // chunk 0 is full
  Got x = Alloc(p.arena, 100);                    // a slab in chunk 1
  CHECK_EQ(p.arena.Free(x.ref()), Status::kOk);   // chunk 1 is idle: kept
  p.arena.AgeIdle(2 * kChunk - 1);
  CHECK(p.arena.FindSegment(x.segment) != nullptr);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
  p.arena.AgeIdle(1);  // two chunks' worth: chunk 1 goes, with its empty slab
  CHECK(p.arena.FindSegment(x.segment) == nullptr);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(s.mapped_bytes, kChunk);
  CHECK_EQ(s.classes[alloc::ClassIndex(100)].capacity, uint64_t{0});
  p.arena.AgeIdle(10 * kChunk);  // the last chunk stays, idle or not
  for (Got& g : full) CHECK_EQ(p.arena.Free(g.ref()), Status::kOk);
  p.arena.AgeIdle(10 * kChunk);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{1});
  p.arena.Close();
  p.arena.AgeIdle(kChunk);  // closed: nothing to do, nothing to crash on
}

// ---- may_map false (the block cache's refill) ------------------------------------

TEST("may_map false: an allocation that needs a new chunk gets kNeedsChunk and changes nothing") {
  Pool p;
  Got full[4];
  for (Got& g : full) g = Alloc(p.arena, kHuge);  // chunk 0 is full
  const Stats before = p.arena.GetStats();
  const uint64_t acquired = p.src.acquired;
  CHECK_EQ(AllocNoMap(p.arena, 100), Status::kNeedsChunk);    // a slab
  CHECK_EQ(AllocNoMap(p.arena, 40000), Status::kNeedsChunk);  // a large run
  CHECK_EQ(p.src.acquired, acquired);
  Unchanged(p.arena, before);
  Got big;  // huge allocations map as ever: they never come from a chunk
  CHECK_EQ(AllocNoMap(p.arena, kHuge + 1, &big), Status::kOk);
  CHECK_EQ(p.arena.Free(big.ref()), Status::kSegmentReleased);
  CHECK_EQ(p.arena.Free(full[1].ref()), Status::kOk);  // room in chunk 0 again
  Got in;
  CHECK_EQ(AllocNoMap(p.arena, 100, &in), Status::kOk);
  CHECK_EQ(in.segment, full[0].segment);
  CHECK_EQ(in.offset, 16 * kPage);  // where full[1] was
  Got mapped = Alloc(p.arena, kHuge);  // 16 pages, 15 free: may_map true maps a new chunk
  CHECK(mapped.segment != full[0].segment);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
}

TEST("AllocEach and FreeEach: a batch under one lock hold, stopping at the first failure with its status") {
  Pool p;
  Handle made[8];
  mmap_pool::alloc::SourceError err;
  Status st = Status::kOk;
  CHECK_EQ(p.arena.AllocEach(kHuge, 7, 8, false, made, &err, &st), 0u);  // no chunk yet, none may be mapped
  CHECK_EQ(st, Status::kNeedsChunk);
  CHECK_EQ(p.arena.AllocEach(kHuge, 7, 3, true, made, &err, &st), 3u);  // a chunk mapped: it holds four
  CHECK_EQ(st, Status::kOk);
  CHECK_EQ(p.arena.AllocEach(kHuge, 7, 3, false, made + 3, &err, &st), 1u);  // the fourth, then a new chunk is needed
  CHECK_EQ(st, Status::kNeedsChunk);
  CHECK_EQ(p.arena.GetStats().live_allocations, uint64_t{4});
  CHECK_EQ(p.arena.AllocEach(100, 9, 3, true, made + 4, &err, &st), 3u);
  CHECK_EQ(st, Status::kOk);
  Arena::Ref refs[8];
  for (int i = 0; i < 7; i++) refs[i] = {made[i].segment, made[i].offset, i < 4 ? kHuge : 100, uint64_t(i < 4 ? 7 : 9)};
  refs[7] = refs[0];  // freed twice in one batch: the second is refused, nothing else changes
  Status out[8];
  p.arena.FreeEach(refs, 8, out);
  for (int i = 0; i < 7; i++) CHECK_EQ(out[i], Status::kOk);
  CHECK_EQ(out[7], Status::kDoubleFree);
  CHECK_EQ(p.arena.GetStats().live_allocations, uint64_t{0});
}

TEST("may_map false gives back the classes' empty slabs first; may_map true keeps them and maps") {
  // Chunk 0, full: a 48 B slab (page 0), a 112 B slab (page 1), three
  // 16-page runs (pages 2..49), a 56 KiB run (pages 50..63).
  for (bool may_map : {false, true}) {
    Pool p;
    Got a = Alloc(p.arena, 48);
    Got b = Alloc(p.arena, 100);
    Got runs[3];
    for (Got& g : runs) g = Alloc(p.arena, kHuge);
    Got tail = Alloc(p.arena, 56 * 1024);
    CHECK_EQ(Runs(p.arena), std::string("slab:0+1 slab:1+1 large:2+16 large:18+16 large:34+16 large:50+14"));
    CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);  // the 48 B class keeps its empty slab
    CHECK_EQ(p.arena.GetStats().classes[alloc::ClassIndex(48)].capacity, uint64_t{85});
    Got c;
    if (may_map) {
      c = Alloc(p.arena, 16);
      CHECK(c.segment != a.segment);  // a new chunk; the empty slab stays
      CHECK_EQ(p.arena.GetStats().classes[alloc::ClassIndex(48)].capacity, uint64_t{85});
      CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
    } else {
      CHECK_EQ(AllocNoMap(p.arena, 16, &c), Status::kOk);  // a one-page slab, on page 0
      CHECK_EQ(c.segment, a.segment);
      CHECK_EQ(c.offset, size_t{0});
      CHECK_EQ(p.arena.GetStats().classes[alloc::ClassIndex(48)].capacity, uint64_t{0});
      CHECK_EQ(p.arena.GetStats().chunks, uint64_t{1});
      CHECK_EQ(p.src.acquired, uint64_t{1});
    }
    (void)b;
    (void)tail;
  }
}

// ---- reset, trim, close ---------------------------------------------------------

TEST("Reset frees every allocation, keeps the chunks and releases huge mappings") {
  Pool p;
  Got s1 = Alloc(p.arena, 10), s2 = Alloc(p.arena, 2000), s3 = Alloc(p.arena, 20000);
  Got l = Alloc(p.arena, 50000);
  Got h1 = Alloc(p.arena, 70000), h2 = Alloc(p.arena, 300000);
  uint32_t count = 0;
  CHECK_EQ(p.arena.Retain(s1.Slice(s1.offset, 10), &count), Status::kOk);
  const Stats before = p.arena.GetStats();
  const uint64_t acquired = p.src.acquired;
  p.arena.Reset();
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.live_allocations, uint64_t{0});
  CHECK_EQ(s.used_bytes, size_t{0});
  CHECK_EQ(s.allocated_bytes, size_t{0});
  CHECK_EQ(s.total_frees, uint64_t{6});
  CHECK_EQ(s.total_allocations, uint64_t{6});
  CHECK_EQ(s.peak_used_bytes, before.peak_used_bytes);
  CHECK_EQ(s.chunks, before.chunks);
  CHECK_EQ(s.huge_allocations, uint64_t{0});
  CHECK_EQ(s.huge_bytes, size_t{0});
  CHECK_EQ(s.mapped_bytes, size_t{s.chunks} * kChunk);
  CHECK_EQ(s.free_bytes, size_t{s.chunks} * kChunk);
  for (const alloc::ClassStats& cs : s.classes) {
    CHECK_EQ(cs.live, uint64_t{0});
    CHECK_EQ(cs.capacity, uint64_t{0});
  }
  CHECK_EQ(p.src.release_calls, uint64_t{2});  // the two huge mappings
  CHECK(p.arena.FindSegment(h1.segment) == nullptr);
  CHECK(p.arena.FindSegment(s1.segment) != nullptr);
  // Old handles are gone.
  CHECK_EQ(p.arena.Free(s2.Slice(s2.offset, 2000)), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 50000)), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(h2.Slice(0, 300000)), Status::kForeign);
  CHECK_EQ(p.arena.RefCount(s1.Slice(s1.offset, 10), &count), Status::kDoubleFree);
  (void)s3;
  // The kept chunk serves the next allocation, and reference counts start over.
  Got n = Alloc(p.arena, 10);
  CHECK_EQ(n.segment, s1.segment);
  CHECK_EQ(n.offset, size_t{0});
  CHECK_EQ(p.src.acquired, acquired);
  CHECK_EQ(p.arena.RefCount(n.Slice(n.offset, 10), &count), Status::kOk);
  CHECK_EQ(count, 1u);
  CHECK_EQ(Runs(p.arena), std::string("slab:0+1 free:1+63"));
}

TEST("Trim releases empty chunks to the source, discards free pages, and returns the bytes") {
  Pool p;
  Got a[4];
  for (Got& h : a) h = Alloc(p.arena, 65536);  // chunk 0 full: 4 runs of 16 pages
  Got b = Alloc(p.arena, 65536);               // chunk 1
  CHECK_EQ(b.segment, 1u);
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{2});
  uint8_t* a1 = Ptr(p.arena, a[1]);
  std::memset(a1, 0xA5, 65536);
  CHECK_EQ(p.arena.Free(b.Slice(b.offset, 65536)), Status::kOk);        // chunk 1 empty
  CHECK_EQ(p.arena.Free(a[1].Slice(a[1].offset, 65536)), Status::kOk);  // pages 16..31 free, resident
  CHECK_EQ(p.src.release_calls, uint64_t{0});
  const size_t got = p.arena.Trim();
  CHECK_EQ(got, kChunk + 65536);
  CHECK_EQ(p.src.release_calls, uint64_t{1});
  CHECK_EQ(p.src.released_bytes, kChunk);
  CHECK_EQ(p.src.discard_calls, uint64_t{1});
  CHECK_EQ(p.src.discarded_bytes, size_t{65536});
  CHECK(p.arena.FindSegment(1) == nullptr);
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(s.mapped_bytes, kChunk);
  CHECK_EQ(s.free_bytes, size_t{65536});
  bool zero = true;
#if !defined(_WIN32)
  // anonymous: the discarded pages read back as zeros
  for (size_t i = 0; i < 65536; i++) zero &= a1[i] == 0;
  CHECK(zero);
#endif
  // Nothing is left to give back.
  CHECK_EQ(p.arena.Trim(), size_t{0});
  CHECK_EQ(p.src.discard_calls, uint64_t{1});
  CHECK_EQ(p.src.release_calls, uint64_t{1});
  // The hole is reused.
  Got c = Alloc(p.arena, 65536, true);
  CHECK_EQ(c.segment, 0u);
  CHECK_EQ(c.offset, size_t{65536});
#if defined(_WIN32)
  // Windows' Discard does not zero (DiscardVirtualMemory or MEM_RESET; it
  // returns false), and the old bytes may still be there (they are under
  // Wine): the arena must have kept the pages dirty and cleared them now.
  CHECK_EQ(Ptr(p.arena, c), a1);
  for (size_t i = 0; i < 65536; i++) zero &= a1[i] == 0;
  CHECK(zero);
#endif
}

TEST("Trim of a pool with nothing free returns 0 and calls nothing") {
  Pool p;
  CHECK_EQ(p.arena.Trim(), size_t{0});
  Got a[4];
  for (Got& h : a) h = Alloc(p.arena, 65536);
  CHECK_EQ(p.arena.Trim(), size_t{0});
  CHECK_EQ(p.src.discard_calls, uint64_t{0});
  CHECK_EQ(p.src.release_calls, uint64_t{0});
}

TEST("Trim does not discard free pages that were never touched") {
  Pool p;
  Got a = Alloc(p.arena, 65536);  // pages 0..15 used; 16..63 free and never touched
  CHECK_EQ(p.arena.Trim(), size_t{0});
  CHECK_EQ(p.src.discard_calls, uint64_t{0});
  CHECK_EQ(p.arena.Free(a.Slice(a.offset, 65536)), Status::kOk);
  CHECK_EQ(p.arena.Trim(), kChunk);  // empty: released whole, nothing discarded
  CHECK_EQ(p.src.discard_calls, uint64_t{0});
}

TEST("Alloc with zero=true clears a reused slot and a reused run") {
  Pool p;
  Got keep = Alloc(p.arena, 48);
  Got s = Alloc(p.arena, 48);
  std::memset(Ptr(p.arena, s), 0xEE, 48);
  CHECK_EQ(p.arena.Free(s.Slice(s.offset, 48)), Status::kOk);
  Got s2 = Alloc(p.arena, 48, true);
  CHECK_EQ(s2.offset, s.offset);  // LIFO: the same slot
  bool zero = true;
  for (size_t i = 0; i < 48; i++) zero &= Ptr(p.arena, s2)[i] == 0;
  CHECK(zero);
  Got l = Alloc(p.arena, 40000);
  std::memset(Ptr(p.arena, l), 0xEE, 40000);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 40000)), Status::kOk);
  Got l2 = Alloc(p.arena, 40000, true);
  CHECK_EQ(l2.offset, l.offset);
  zero = true;
  for (size_t i = 0; i < 40000; i++) zero &= Ptr(p.arena, l2)[i] == 0;
  CHECK(zero);
  (void)keep;
}

TEST("zero=true after Trim clears pages a file-backed discard did not zero") {
  // Discard of shared file pages keeps their contents (zeroed = false), so the
  // arena must still treat them as dirty.
  Pool p(Opt(), platform::Backing::kFile);
  Got keep = Alloc(p.arena, 65536);
  Got l = Alloc(p.arena, 65536);
  std::memset(Ptr(p.arena, l), 0x3C, 65536);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 65536)), Status::kOk);
  CHECK_EQ(p.arena.Trim(), size_t{65536});
  CHECK_EQ(p.src.discard_calls, uint64_t{1});
  Got l2 = Alloc(p.arena, 65536, true);
  CHECK_EQ(l2.offset, l.offset);
  bool zero = true;
  for (size_t i = 0; i < 65536; i++) zero &= Ptr(p.arena, l2)[i] == 0;
  CHECK(zero);
  (void)keep;
}

TEST("zero=true with a source that cannot discard still clears dirty pages") {
  Pool p;
  p.src.discard_enabled = false;
  Got keep = Alloc(p.arena, 65536);
  Got l = Alloc(p.arena, 65536);
  std::memset(Ptr(p.arena, l), 0x77, 65536);
  CHECK_EQ(p.arena.Free(l.Slice(l.offset, 65536)), Status::kOk);
  CHECK_EQ(p.arena.Trim(), size_t{0});
  Got l2 = Alloc(p.arena, 65536, true);
  bool zero = true;
  for (size_t i = 0; i < 65536; i++) zero &= Ptr(p.arena, l2)[i] == 0;
  CHECK(zero);
  (void)keep;
}

TEST("Close releases every segment exactly once and later calls return kClosed") {
  MapSource src;
  {
    Arena arena(Opt(), &src);
    Got s = Alloc(arena, 100);
    Got l = Alloc(arena, 40000);
    Got h1 = Alloc(arena, 70000), h2 = Alloc(arena, 80000);
    (void)l;
    (void)h2;
    CHECK_EQ(src.live_segments(), size_t{3});
    arena.Close();
    CHECK(arena.closed());
    CHECK_EQ(src.live_segments(), size_t{0});
    CHECK_EQ(src.release_calls, uint64_t{3});
    CHECK_EQ(src.bad_releases, uint64_t{0});
    alloc::SourceError err;
    uint32_t count = 5;
    CHECK_EQ(TryAlloc(arena, 16, false, 0, &err), Status::kClosed);
    CHECK_EQ(TryAlloc(arena, 70000, false, 0, &err), Status::kClosed);
    CHECK_EQ(arena.Free(s.Slice(s.offset, 100)), Status::kClosed);
    CHECK_EQ(arena.Free(h1.Slice(0, 70000)), Status::kClosed);
    CHECK_EQ(arena.Retain(s.Slice(s.offset, 100), &count), Status::kClosed);
    CHECK_EQ(arena.Release(s.Slice(s.offset, 100), &count), Status::kClosed);
    CHECK_EQ(arena.RefCount(s.Slice(s.offset, 100), &count), Status::kClosed);
    CHECK_EQ(count, 5u);
    CHECK(arena.FindSegment(s.segment) == nullptr);
    CHECK_EQ(arena.Trim(), size_t{0});
    arena.Reset();
    arena.Close();
    Stats st = arena.GetStats();
    CHECK_EQ(st.mapped_bytes, size_t{0});
    CHECK_EQ(st.chunks, uint64_t{0});
    CHECK_EQ(st.live_allocations, uint64_t{0});
    CHECK_EQ(st.total_allocations, uint64_t{4});
    const alloc::ArenaDump d = arena.Dump();
    CHECK_EQ(d.chunks.size(), size_t{0});
    CHECK_EQ(d.allocations.size(), size_t{0});
  }  // ~Arena after Close: nothing more
  CHECK_EQ(src.release_calls, uint64_t{3});
  CHECK_EQ(src.acquire_calls, uint64_t{3});
}

TEST("destroying an open Arena releases every segment exactly once") {
  MapSource src;
  {
    Arena arena(Opt(), &src);
    Alloc(arena, 100);
    Alloc(arena, 70000);
  }
  CHECK_EQ(src.live_segments(), size_t{0});
  CHECK_EQ(src.release_calls, uint64_t{2});
  CHECK_EQ(src.bad_releases, uint64_t{0});
}

// ---- limits and failures --------------------------------------------------------

TEST("past maxBytes Alloc returns kExhausted and changes nothing") {
  Pool p(Opt(kChunk, kHuge, 2 * kChunk));
  Got a[4];
  for (Got& h : a) h = Alloc(p.arena, 65536);  // chunk 0 full, 256 KiB mapped
  alloc::SourceError err;
  Stats before = p.arena.GetStats();
  CHECK_EQ(TryAlloc(p.arena, 270000, false, 0, &err), Status::kExhausted);  // 264 KiB more: over
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.acquire_calls, uint64_t{1});
  Got big = Alloc(p.arena, 200000);  // 196 KiB more (256 with a 64 KiB granule): fits (452 or 512 of 512)
  before = p.arena.GetStats();
  CHECK_EQ(before.mapped_bytes, kChunk + HugeMapped(200000));
  CHECK_EQ(TryAlloc(p.arena, 65536, false, 0, &err), Status::kExhausted);  // a new chunk would pass it
  CHECK_EQ(TryAlloc(p.arena, 16, true, 0, &err), Status::kExhausted);      // so would a new slab
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.acquire_calls, uint64_t{2});
  CHECK_EQ(TryAlloc(p.arena, 2 * kChunk + 1, false, 0, &err), Status::kTooLarge);
  Unchanged(p.arena, before);
  CHECK_EQ(p.arena.Free(big.Slice(0, 200000)), Status::kSegmentReleased);
  Got fits = Alloc(p.arena, 65536);  // now a second chunk fits exactly
  CHECK_EQ(fits.segment, 1u);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 2 * kChunk);
}

TEST("a failing source gives kMapFailed with its error code and changes nothing") {
  FailingSource src(1, EMFILE);  // one segment, then refusals
  Arena arena(Opt(), &src);
  Got s = Alloc(arena, 16);  // the one chunk
  alloc::SourceError err;
  Stats before = arena.GetStats();
  CHECK_EQ(TryAlloc(arena, 70000, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(err.code, EMFILE);
  CHECK_EQ(std::string(err.syscall), std::string("test-acquire"));
  Unchanged(arena, before);
  Got l[3];
  for (Got& x : l) x = Alloc(arena, 65536);  // pages 1..48: no new chunk needed
  before = arena.GetStats();
  err = alloc::SourceError();
  CHECK_EQ(TryAlloc(arena, 65536, false, 0, &err), Status::kMapFailed);  // needs chunk 2
  CHECK_EQ(err.code, EMFILE);
  Unchanged(arena, before);
  CHECK_EQ(src.acquired, uint64_t{1});
  CHECK_EQ(src.acquire_calls, uint64_t{3});
  src.FailAfter(-1);  // the OS recovers
  Got ok = Alloc(arena, 65536);
  CHECK_EQ(ok.segment, 1u);
  (void)s;
}

TEST("an OS mapping failure passes errno and the syscall through") {
  MapSource src(platform::Backing::kFile, "/nonexistent/mmap-pool-test");
  Arena arena(Opt(), &src);
  alloc::SourceError err;
  // Windows reports GetLastError() and the API that failed: the temp file in
  // a missing directory is refused by CreateFileW (windows.cc).
#if defined(_WIN32)
  const int kNoDir = ERROR_PATH_NOT_FOUND;
  const std::string kCall = "CreateFileW";
#else
  const int kNoDir = ENOENT;
  const std::string kCall = "open";
#endif
  CHECK_EQ(TryAlloc(arena, 16, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(err.code, kNoDir);
  CHECK_EQ(std::string(err.syscall), kCall);
  CHECK_EQ(TryAlloc(arena, 70000, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(err.code, kNoDir);
  Stats s = arena.GetStats();
  CHECK_EQ(s.mapped_bytes, size_t{0});
  CHECK_EQ(s.total_allocations, uint64_t{0});
}

// ---- a refusing source: give back, ask again --------------------------------------

namespace {
// A pool whose source keeps spares, holding: chunk 0 full of four live
// 64 KiB allocations (each filled with its own byte), chunk 1 idle (its
// four allocations freed), and one 128 KiB spare.
struct HeldPool : Pool {
  Got live[4];
  HeldPool() {
    src.recycle_enabled = true;
    for (Got& g : live) g = Alloc(arena, kHuge);
    Got idle[4];
    for (Got& g : idle) g = Alloc(arena, kHuge);
    for (const Got& g : idle) CHECK_EQ(arena.Free(g.ref()), Status::kOk);
    Got spare = Alloc(arena, 128 * 1024);
    CHECK_EQ(arena.Free(spare.ref()), Status::kSegmentReleased);
    for (size_t i = 0; i < 4; i++) std::memset(Ptr(arena, live[i]), 0xA0 + int(i), kHuge);
    Stats s = arena.GetStats();
    CHECK_EQ(s.chunks, uint64_t{2});
    CHECK_EQ(s.spare_bytes, HugeMapped(128 * 1024));
  }
  bool LiveIntact() {
    bool ok = true;
    for (size_t i = 0; i < 4; i++) {
      const uint8_t* q = Ptr(arena, live[i]);
      for (size_t k = 0; k < kHuge; k++) ok &= q[k] == 0xA0 + int(i);
    }
    return CHECK(ok);
  }
};
}  // namespace

TEST("a refused huge mapping gives back the spare and the idle chunk, asks once more and succeeds") {
  HeldPool p;
  const uint64_t calls = p.src.acquire_calls, releases = p.src.release_calls;
  p.src.FailCalls(1, ENOMEM);  // the OS refuses until something goes back
  Got h = Alloc(p.arena, 200000);
  CHECK_EQ(p.src.acquire_calls, calls + 2);
  CHECK_EQ(p.src.failed_acquires, uint64_t{1});
  CHECK_EQ(p.src.release_calls, releases + 2);  // the spare and chunk 1
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.spare_bytes, size_t{0});
  CHECK_EQ(s.chunks, uint64_t{1});
  CHECK_EQ(s.mapped_bytes, kChunk + HugeMapped(200000));
  CHECK_EQ(s.live_allocations, uint64_t{5});
  CHECK_EQ(s.used_bytes, 4 * kHuge + 200000);
  CHECK(Ptr(p.arena, h) != nullptr);
  p.LiveIntact();
}

TEST("a refused chunk gives back the spare, asks once more, and the new chunk holds the allocation") {
  HeldPool p;
  Got more[4];
  for (Got& g : more) g = Alloc(p.arena, kHuge);  // chunk 1 full again: no run left anywhere
  const uint64_t calls = p.src.acquire_calls, releases = p.src.release_calls;
  p.src.FailCalls(1, ENOMEM);
  Got l = Alloc(p.arena, 40000);
  CHECK_EQ(p.src.acquire_calls, calls + 2);
  CHECK_EQ(p.src.release_calls, releases + 1);  // the spare
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.spare_bytes, size_t{0});
  CHECK_EQ(s.chunks, uint64_t{3});
  CHECK_EQ(s.mapped_bytes, 3 * kChunk);
  CHECK_EQ(l.offset, size_t{0});
  p.LiveIntact();
}

TEST("a source that refuses again gives kMapFailed with its last error; no allocation changed") {
  HeldPool p;
  const uint64_t calls = p.src.acquire_calls, releases = p.src.release_calls;
  Stats before = p.arena.GetStats();
  p.src.FailCalls(1, ENOMEM);
  p.src.FailAfter(static_cast<int64_t>(p.src.acquired), EMFILE);  // and every call after it
  alloc::SourceError err;
  CHECK_EQ(TryAlloc(p.arena, 200000, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(err.code, EMFILE);  // the second answer
  CHECK_EQ(std::string(err.syscall), std::string("test-acquire"));
  CHECK_EQ(p.src.acquire_calls, calls + 2);
  CHECK_EQ(p.src.release_calls, releases + 2);
  // What no allocation used went back, as after Trim(); nothing else moved.
  Stats expect = before;
  expect.mapped_bytes = kChunk;
  expect.chunks = 1;
  expect.spare_bytes = 0;
  expect.free_bytes = 0;
  Unchanged(p.arena, expect);
  p.LiveIntact();
  // Nothing left to give back: one question, one refusal, nothing changes.
  before = p.arena.GetStats();
  err = alloc::SourceError();
  CHECK_EQ(TryAlloc(p.arena, 200000, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(TryAlloc(p.arena, 40000, false, 0, &err), Status::kMapFailed);
  CHECK_EQ(err.code, EMFILE);
  CHECK_EQ(p.src.acquire_calls, calls + 4);
  Unchanged(p.arena, before);
  p.src.Disarm();  // the OS recovers
  Alloc(p.arena, 200000);
  p.LiveIntact();
}

// ---- reference counts -----------------------------------------------------------

TEST("Retain, Release and RefCount count references; releasing the last one frees") {
  Pool p;
  Got a = Alloc(p.arena, 100);
  uint32_t n = 0;
  CHECK_EQ(p.arena.RefCount(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 1u);
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 2u);
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 3u);
  CHECK_EQ(p.arena.RefCount(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 3u);
  CHECK_EQ(p.arena.Release(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 2u);
  CHECK_EQ(p.arena.Release(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 1u);
  CHECK_EQ(p.arena.GetStats().live_allocations, uint64_t{1});
  CHECK_EQ(p.arena.Release(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 0u);
  CHECK_EQ(p.arena.GetStats().live_allocations, uint64_t{0});
  CHECK_EQ(p.arena.RefCount(a.Slice(a.offset, 100), &n), Status::kDoubleFree);
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kDoubleFree);
}

TEST("Free ignores the reference count, and a new allocation in the slot starts at 1") {
  Pool p;
  Got a = Alloc(p.arena, 100);
  uint32_t n = 0;
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(p.arena.Free(a.Slice(a.offset, 100)), Status::kOk);
  CHECK_EQ(p.arena.RefCount(a.Slice(a.offset, 100), &n), Status::kDoubleFree);
  Got b = Alloc(p.arena, 100);
  CHECK_EQ(b.offset, a.offset);
  CHECK_EQ(p.arena.RefCount(b.Slice(b.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 1u);
}

TEST("releasing the last reference to a huge allocation releases its segment") {
  Pool p;
  Got h = Alloc(p.arena, 100000);
  uint32_t n = 0;
  CHECK_EQ(p.arena.Retain(h.Slice(0, 100000), &n), Status::kOk);
  CHECK_EQ(n, 2u);
  CHECK_EQ(p.arena.Release(h.Slice(0, 100000), &n), Status::kOk);
  CHECK_EQ(n, 1u);
  CHECK_EQ(p.src.release_calls, uint64_t{0});
  CHECK_EQ(p.arena.Release(h.Slice(0, 100000), &n), Status::kSegmentReleased);
  CHECK_EQ(n, 0u);
  CHECK_EQ(p.src.release_calls, uint64_t{1});
  CHECK_EQ(p.arena.GetStats().huge_allocations, uint64_t{0});
}

TEST("reference counts of two allocations are independent") {
  Pool p;
  Got a = Alloc(p.arena, 100), b = Alloc(p.arena, 100), l = Alloc(p.arena, 40000);
  uint32_t n = 0;
  CHECK_EQ(p.arena.Retain(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(p.arena.Retain(l.Slice(l.offset, 40000), &n), Status::kOk);
  CHECK_EQ(p.arena.Retain(l.Slice(l.offset, 40000), &n), Status::kOk);
  CHECK_EQ(p.arena.RefCount(b.Slice(b.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 1u);
  CHECK_EQ(p.arena.RefCount(a.Slice(a.offset, 100), &n), Status::kOk);
  CHECK_EQ(n, 2u);
  CHECK_EQ(p.arena.RefCount(l.Slice(l.offset, 40000), &n), Status::kOk);
  CHECK_EQ(n, 3u);
}

// ---- serials ----------------------------------------------------------------------

TEST("a stale handle to a reused slot returns kDoubleFree and leaves the new owner alone") {
  Pool p;
  Got keep = Alloc(p.arena, 100);  // keeps the slab from being its class's empty one
  Got old_small = Alloc(p.arena, 100);
  Got old_large = Alloc(p.arena, 40000);
  CHECK_EQ(p.arena.Free(old_small.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(old_large.ref()), Status::kOk);
  Got new_small = Alloc(p.arena, 100);  // LIFO: the same slot
  Got new_large = Alloc(p.arena, 40000);  // best fit: the same run
  CHECK_EQ(new_small.offset, old_small.offset);
  CHECK_EQ(new_large.offset, old_large.offset);
  const Stats before = p.arena.GetStats();
  uint32_t n = 9;
  CHECK_EQ(p.arena.Free(old_small.ref()), Status::kDoubleFree);
  CHECK_EQ(p.arena.Free(old_large.ref()), Status::kDoubleFree);
  CHECK_EQ(p.arena.Retain(old_small.ref(), &n), Status::kDoubleFree);
  CHECK_EQ(p.arena.Release(old_large.ref(), &n), Status::kDoubleFree);
  CHECK_EQ(p.arena.RefCount(old_small.ref(), &n), Status::kDoubleFree);
  CHECK_EQ(n, 9u);
  Unchanged(p.arena, before);
  CHECK_EQ(p.arena.Free(new_small.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(new_large.ref()), Status::kOk);
  (void)keep;
}

TEST("a stale handle to a huge allocation whose segment id was reused returns kDoubleFree") {
  Pool p;
  Got old_huge = Alloc(p.arena, 100000);
  CHECK_EQ(p.arena.Free(old_huge.ref()), Status::kSegmentReleased);
  Got new_huge = Alloc(p.arena, 100000);
  CHECK_EQ(new_huge.segment, old_huge.segment);  // lowest free id
  CHECK_EQ(p.arena.Free(old_huge.ref()), Status::kDoubleFree);
  CHECK_EQ(p.src.release_calls, uint64_t{1});
  CHECK_EQ(p.arena.Free(new_huge.ref()), Status::kSegmentReleased);
}

TEST("the right place and length under another serial returns kDoubleFree, a slice still kForeign") {
  Pool p;
  Got s = Alloc(p.arena, 100), l = Alloc(p.arena, 40000), h = Alloc(p.arena, 100000);
  const Stats before = p.arena.GetStats();
  for (const Got& g : {s, l, h}) {
    Arena::Ref wrong = g.ref();
    wrong.serial += 1000;
    CHECK_EQ(p.arena.Free(wrong), Status::kDoubleFree);
    wrong.offset += 1;  // not the allocation's start: foreign whatever the serial
    CHECK_EQ(p.arena.Free(wrong), Status::kForeign);
  }
  Unchanged(p.arena, before);
}

// ---- alignment ----------------------------------------------------------------------

TEST("align picks the first class whose size it divides, so every slot is aligned") {
  Pool p;
  Got a = Alloc(p.arena, 100, false, 64);  // 112 is not a multiple of 64: class 128
  Got b = Alloc(p.arena, 100, false, 64);
  CHECK_EQ(b.offset - a.offset, size_t{128});
  CHECK_EQ(a.offset % 64, size_t{0});
  CHECK_EQ(b.offset % 64, size_t{0});
  Got c = Alloc(p.arena, 100, false, 4096);  // class 4096
  Got d = Alloc(p.arena, 100, false, 4096);
  CHECK_EQ(c.offset % 4096, size_t{0});
  CHECK_EQ(d.offset - c.offset, size_t{4096});
  Got e = Alloc(p.arena, 100, false, 16);  // the quantum: no change, class 112
  Got f = Alloc(p.arena, 100);
  CHECK_EQ(f.offset - e.offset, size_t{112});
  Stats s = p.arena.GetStats();
  CHECK_EQ(s.classes[alloc::ClassIndex(128)].live, uint64_t{2});
  CHECK_EQ(s.classes[alloc::ClassIndex(4096)].live, uint64_t{2});
  CHECK_EQ(s.allocated_bytes, size_t{2 * 128 + 2 * 4096 + 2 * 112});
  CHECK_EQ(s.used_bytes, size_t{600});
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(c.ref()), Status::kOk);
}

TEST("align above the page size returns kBadAlign and changes nothing") {
  Pool p;
  Alloc(p.arena, 16);
  const Stats before = p.arena.GetStats();
  CHECK_EQ(TryAlloc(p.arena, 100, false, 2 * kPage), Status::kBadAlign);
  CHECK_EQ(TryAlloc(p.arena, 100000, false, 2 * kPage), Status::kBadAlign);
  Unchanged(p.arena, before);
  Got g = Alloc(p.arena, 40000, false, kPage);  // large runs are page-aligned anyway
  CHECK_EQ(g.offset % kPage, size_t{0});
}

TEST("align can lift a small request into a large run") {
  // No small class above 16 KiB is a multiple of 16 KiB: 20000 bytes at
  // 16 KiB alignment go to the 32 KiB class, a large run on 16 KiB pages.
  ArenaOptions o = Opt(kChunk, kHuge);
  o.page_size = 16384;
  Pool p(o);
  Got g = Alloc(p.arena, 20000, false, 16384);
  CHECK_EQ(g.offset % 16384, size_t{0});
  CHECK_EQ(p.arena.GetStats().allocated_bytes, size_t{32768});
  CHECK_EQ(Runs(p.arena), std::string("large:0+2 free:2+14"));
  CHECK_EQ(p.arena.Free(g.ref()), Status::kOk);
}

// ---- zero_on_free -----------------------------------------------------------------

TEST("zero_on_free wipes a freed slot and a freed run, and Reset wipes the chunks") {
  ArenaOptions o = Opt();
  o.zero_on_free = true;
  Pool p(o);
  Got keep = Alloc(p.arena, 100);
  Got s = Alloc(p.arena, 100);
  Got l = Alloc(p.arena, 40000);
  uint8_t* sp = Ptr(p.arena, s);
  uint8_t* lp = Ptr(p.arena, l);
  std::memset(sp, 0xAB, 100);
  std::memset(lp, 0xCD, 40000);
  std::memset(Ptr(p.arena, keep), 0xEF, 100);
  CHECK_EQ(p.arena.Free(s.ref()), Status::kOk);
  uint32_t n = 0;
  CHECK_EQ(p.arena.Release(l.ref(), &n), Status::kOk);
  bool zero = true;
  for (size_t i = 0; i < 100; i++) zero &= sp[i] == 0;
  for (size_t i = 0; i < 40000; i++) zero &= lp[i] == 0;
  CHECK(zero);
  uint8_t* kp = Ptr(p.arena, keep);
  CHECK_EQ(kp[0], 0xEF);  // a live neighbour is untouched
  p.arena.Reset();
  zero = true;
  for (size_t i = 0; i < 100; i++) zero &= kp[i] == 0;
  CHECK(zero);
}

// ---- making room under maxBytes -------------------------------------------------------

TEST("at maxBytes Alloc gives back empty slabs and empty chunks before it fails") {
  Pool p(Opt(kChunk, kHuge, kChunk));  // room for one chunk only
  Got s = Alloc(p.arena, 100);
  CHECK_EQ(p.arena.Free(s.ref()), Status::kOk);  // its slab is kept empty: the chunk is not empty
  CHECK_EQ(p.arena.GetStats().chunks, uint64_t{1});
  Got h = Alloc(p.arena, 100000);  // needs 100 KiB more than the cap allows, unless the chunk goes
  CHECK_EQ(h.offset, size_t{0});
  Stats st = p.arena.GetStats();
  CHECK_EQ(st.chunks, uint64_t{0});
  CHECK_EQ(st.mapped_bytes, HugeMapped(100000));
  CHECK_EQ(st.classes[alloc::ClassIndex(100)].capacity, uint64_t{0});
  CHECK_EQ(p.src.release_calls, uint64_t{1});
}

// ---- the dump -------------------------------------------------------------------

TEST("Dump lists the pool's shape and every allocation") {
  Pool p;
  Got s = Alloc(p.arena, 100), l = Alloc(p.arena, 40000), h = Alloc(p.arena, 70000);
  const alloc::ArenaDump d = p.arena.Dump();
  CHECK_EQ(d.page_size, size_t{4096});
  CHECK_EQ(d.chunk_size, size_t{kChunk});
  CHECK_EQ(d.huge_threshold, size_t{kHuge});
  if (!CHECK_EQ(d.allocations.size(), size_t{3})) return;
  int found = 0;
  for (const alloc::AllocationDump& a : d.allocations) {
    if (a.segment == s.segment && a.offset == s.offset) {
      found += CHECK_EQ(a.size, size_t{100}) && CHECK_EQ(a.class_size, size_t{112});
    } else if (a.segment == l.segment && a.offset == l.offset) {
      found += CHECK_EQ(a.size, size_t{40000}) && CHECK_EQ(a.class_size, size_t{40960});
    } else if (a.segment == h.segment && a.offset == 0) {
      found += CHECK_EQ(a.size, size_t{70000}) && CHECK_EQ(a.class_size, size_t{0});  // huge: no class
    }
  }
  CHECK_EQ(found, 3);
  if (CHECK_EQ(d.huge.size(), size_t{1})) {
    CHECK_EQ(d.huge[0].mapped_bytes, size_t(HugeMapped(70000)));
  }
  CHECK_EQ(Runs(p.arena), std::string("slab:0+1 large:1+10 free:11+53"));
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }

TEST("a lost chunk is never placed in again; its allocations are found by serial and freed, and the last free releases it") {
  Pool p;
  Got a = Alloc(p.arena, 40);
  Got b = Alloc(p.arena, 40);
  Got l = Alloc(p.arena, 40000);
  const uint32_t lost = a.segment;
  CHECK_EQ(l.segment, lost);
  CHECK(p.arena.Lose(lost) == Arena::Lost::kNow);
  CHECK(p.arena.Lose(lost) == Arena::Lost::kBefore);
  CHECK(p.arena.Lose(kNoSegment) == Arena::Lost::kNo);
  // Nothing new lands in it, not even in its slab's free slots.
  Got c = Alloc(p.arena, 40);
  Got d = Alloc(p.arena, 40000);
  CHECK(c.segment != lost);
  CHECK(d.segment != lost);
  size_t off = 0, len = 0;
  CHECK(p.arena.FindLost(lost, l.serial, &off, &len));
  CHECK_EQ(off, l.offset);
  CHECK_EQ(len, size_t{40000});
  CHECK(p.arena.FindLost(lost, b.serial, &off, &len));
  CHECK_EQ(off, b.offset);
  CHECK_EQ(len, size_t{40});
  CHECK(!p.arena.FindLost(lost, c.serial, &off, &len));
  CHECK(!p.arena.FindLost(c.segment, c.serial, &off, &len));  // not a lost segment
  CHECK(!p.arena.FindLost(lost, 0, &off, &len));              // the block cache's serial
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  Got e = Alloc(p.arena, 40);
  CHECK(e.segment != lost);  // a's slot is not reused
  p.arena.Trim();  // the other chunk's free pages: discarded now
  CHECK_EQ(p.arena.Free(l.ref()), Status::kOk);
  CHECK_EQ(p.arena.Free(l.ref()), Status::kDoubleFree);
  // Trim discards no page of the lost chunk (its memory is someone else's now).
  const uint64_t discards = p.src.discard_calls;
  p.arena.Trim();
  CHECK_EQ(p.src.discard_calls, discards);
  const uint64_t releases = p.src.release_calls;
  CHECK_EQ(p.arena.Free(b.ref()), Status::kOk);  // the last one
  CHECK_EQ(p.src.release_calls, releases + 1);
  CHECK(p.arena.FindSegment(lost) == nullptr);
  const Stats s = p.arena.GetStats();
  CHECK_EQ(s.live_allocations, uint64_t{3});
  CHECK_EQ(s.chunks, uint64_t{1});
}

TEST("a lost chunk with nothing live goes at once; Reset releases a lost chunk with its allocations") {
  Pool p;
  Got a = Alloc(p.arena, 40);
  CHECK_EQ(p.arena.Free(a.ref()), Status::kOk);
  uint64_t releases = p.src.release_calls;
  CHECK(p.arena.Lose(a.segment) == Arena::Lost::kNow);
  CHECK_EQ(p.src.release_calls, releases + 1);
  Got b = Alloc(p.arena, 40);
  Got l = Alloc(p.arena, 40000);
  CHECK(p.arena.Lose(b.segment) == Arena::Lost::kNow);
  Got c = Alloc(p.arena, 40);
  CHECK(c.segment != b.segment);
  releases = p.src.release_calls;
  p.arena.Reset();
  CHECK_EQ(p.src.release_calls, releases + 1);
  CHECK(p.arena.FindSegment(b.segment) == nullptr);
  CHECK_EQ(p.arena.Free(l.ref()), Status::kForeign);
  const Stats s = p.arena.GetStats();
  CHECK_EQ(s.live_allocations, uint64_t{0});
  CHECK_EQ(s.chunks, uint64_t{1});
  Got d = Alloc(p.arena, 40000);
  CHECK_EQ(p.arena.Free(d.ref()), Status::kOk);
}
