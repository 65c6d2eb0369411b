// Spare huge mappings (native/alloc/arena.cc: FreeHuge, TakeSpare, Decay,
// ReleaseSpares): a freed huge allocation's segment is kept, when the source
// can recycle it, for the next huge allocation of the same mapped size; at
// most kSpareMax of at most kSpareMaxBytes each, kSpareKeepBytes together;
// Decay hands their pages to the OS lazily; Trim, Close and room under max_bytes release them. The
// source here is MapSource with recycle_enabled (as the addon's anonymous
// source) unless a test says otherwise.
//
// Pool shape (arena_helpers.h): 4 KiB pages, 256 KiB chunks, huge above 64 KiB.
// Huge mappings round up to the platform's granule (Granule, HugeMapped): the
// page on POSIX, 64 KiB on Windows; sizes that must map differently differ by
// whole granules.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arena_helpers.h"

using namespace arena_helpers;

namespace {

constexpr size_t kBig = 128 * 1024;  // a huge allocation: 32 pages

// A pool whose source recycles (keeps spares).
struct SparePool : Pool {
  explicit SparePool(const ArenaOptions& o = Opt()) : Pool(o) { src.recycle_enabled = true; }
};

uint8_t* Base(Arena& a, const Got& g) {
  alloc::Segment* s = a.FindSegment(g.segment);
  return s == nullptr ? nullptr : s->base;
}

bool MappedAddsUp(Arena& a) {
  Stats s = a.GetStats();
  return CHECK_EQ(s.mapped_bytes, s.chunks * kChunk + s.huge_bytes + s.spare_bytes);
}

}  // namespace

TEST("a freed huge allocation is kept as a spare: nothing released, mapped unchanged") {
  SparePool p;
  Got g = Alloc(p.arena, kBig);
  const size_t mapped = p.arena.GetStats().mapped_bytes;
  CHECK_EQ(p.arena.Free(g.ref()), Status::kSegmentReleased);
  Stats s = p.arena.GetStats();
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK_EQ(p.src.recycle_calls, 1u);
  CHECK_EQ(s.mapped_bytes, mapped);
  CHECK_EQ(s.spare_bytes, kBig);
  CHECK_EQ(s.huge_bytes, 0u);
  CHECK_EQ(s.huge_allocations, 0u);
  CHECK_EQ(s.live_allocations, 0u);
  CHECK(p.arena.FindSegment(g.segment) == nullptr);
  MappedAddsUp(p.arena);
}

TEST("the next huge allocation of the same mapped size takes the spare: same memory, no Acquire") {
  SparePool p;
  Got a = Alloc(p.arena, kBig);
  uint8_t* base = Base(p.arena, a);
  p.arena.Free(a.ref());
  const uint64_t acquired = p.src.acquired;
  Got b = Alloc(p.arena, kBig - 100);  // the same 32 pages
  CHECK_EQ(Base(p.arena, b), base);
  CHECK_EQ(b.offset, 0u);
  CHECK_EQ(p.src.acquired, acquired);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.arena.GetStats().huge_bytes, kBig);
  CHECK_EQ(p.arena.Free(b.ref()), Status::kSegmentReleased);
  CHECK_EQ(p.src.bad_releases + p.src.bad_recycles, 0u);
}

TEST("a huge allocation of another size maps its own and leaves the spare") {
  SparePool p;
  Got a = Alloc(p.arena, kBig);
  p.arena.Free(a.ref());
  const uint64_t acquired = p.src.acquired;
  Got b = Alloc(p.arena, 2 * kBig);
  CHECK_EQ(p.src.acquired, acquired + 1);
  CHECK_EQ(p.arena.GetStats().spare_bytes, kBig);
  MappedAddsUp(p.arena);
  p.arena.Free(b.ref());
  CHECK_EQ(p.arena.GetStats().spare_bytes, 3 * kBig);
  // Sizes match exactly: the smaller request takes the smaller spare.
  Got c = Alloc(p.arena, kBig);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 2 * kBig);
  p.arena.Free(c.ref());
}

TEST("a larger spare does not serve a smaller huge allocation") {
  SparePool p;
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());
  const uint64_t acquired = p.src.acquired;
  Got g = Alloc(p.arena, kBig);
  CHECK_EQ(p.src.acquired, acquired + 1);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 2 * kBig);
  CHECK_EQ(p.arena.GetStats().huge_bytes, kBig);
  p.arena.Free(g.ref());
}

TEST("zero=true on a spare clears what the previous owner wrote") {
  SparePool p;
  Got a = Alloc(p.arena, kBig);
  std::memset(Ptr(p.arena, a), 0xab, kBig);
  p.arena.Free(a.ref());
  Got b = Alloc(p.arena, kBig, /*zero=*/true);
  const uint8_t* q = Ptr(p.arena, b);
  size_t nonzero = 0;
  for (size_t i = 0; i < kBig; i++) nonzero += q[i] != 0;
  CHECK_EQ(nonzero, 0u);
}

TEST("one spare past kSpareMax sends the oldest back to the source") {
  CheckGranule();
  SparePool p;
  constexpr size_t kN = alloc::kSpareMax + 1;
  std::vector<Got> g(kN);
  for (size_t i = 0; i < kN; i++) g[i] = Alloc(p.arena, kBig + i * Granule() * 4);
  for (size_t i = 0; i < kN; i++) p.arena.Free(g[i].ref());
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.src.live_segments(), alloc::kSpareMax);
  // The sizes differ, so the bytes kept say which one went: the first freed.
  size_t kept = 0;
  for (size_t i = 1; i < kN; i++) kept += kBig + i * Granule() * 4;
  CHECK_EQ(p.arena.GetStats().spare_bytes, kept);
  MappedAddsUp(p.arena);
}

TEST("a mapping above kSpareMaxBytes is released at once") {
  SparePool p(Opt(kChunk, kHuge));
  Got big = Alloc(p.arena, alloc::kSpareMaxBytes + kPage);
  p.arena.Free(big.ref());
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 0u);
}

TEST("a pool that wipes on free never keeps spares") {
  ArenaOptions o = Opt();
  o.zero_on_free = true;
  SparePool p(o);
  p.arena.Free(Alloc(p.arena, kBig).ref());
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.src.recycle_calls, 0u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
}

TEST("a source that cannot recycle gets the segment released at once, as before") {
  Pool p;  // recycle_enabled = false
  p.arena.Free(Alloc(p.arena, kBig).ref());
  CHECK_EQ(p.src.recycle_calls, 1u);
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 0u);
}

TEST("Decay hands each new spare's pages over once; a spare the source cannot discard is released") {
  SparePool p;
  p.arena.Free(Alloc(p.arena, kBig).ref());
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());
#if defined(_WIN32)
  // Windows has no lazy discard (windows.cc: DiscardLazily and
  // HasDiscardLazily return false): Decay releases anonymous spares too,
  // once each, as it does file-backed ones below.
  CHECK(!platform::HasDiscardLazily());
  CHECK_EQ(p.arena.Decay(), 2u);
  CHECK_EQ(p.src.lazy_discard_calls, 2u);
  CHECK_EQ(p.src.release_calls, 2u);
  CHECK_EQ(p.src.released_bytes, 3 * kBig);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 0u);
  CHECK_EQ(p.arena.Decay(), 0u);  // nothing left
  CHECK_EQ(p.src.lazy_discard_calls, 2u);
  // No spare to serve the next allocation of that size: it maps anew.
  const uint64_t acquired = p.src.acquired;
  Got again = Alloc(p.arena, kBig);
  CHECK_EQ(p.src.acquired, acquired + 1);
  p.arena.Free(again.ref());
#else
  CHECK_EQ(p.arena.Decay(), 2u);
  CHECK_EQ(p.src.lazy_discard_calls, 2u);
  CHECK_EQ(p.arena.Decay(), 0u);  // nothing new since
  CHECK_EQ(p.src.lazy_discard_calls, 2u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 3 * kBig);
  // A decayed spare still serves an allocation of its size.
  Got again = Alloc(p.arena, kBig);
  std::memset(Ptr(p.arena, again), 1, kBig);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 2 * kBig);
  p.arena.Free(again.ref());
#endif

  // File mappings have no lazy discard: Decay releases the spare instead.
  MapSource file(platform::Backing::kFile, TempDir());
  file.recycle_enabled = true;
  {
    Arena arena(Opt(), &file);
    arena.Free(Alloc(arena, kBig).ref());
    CHECK_EQ(arena.GetStats().spare_bytes, kBig);
    CHECK_EQ(arena.Decay(), 1u);
    CHECK_EQ(file.release_calls, 1u);
    CHECK_EQ(arena.GetStats().spare_bytes, 0u);
    CHECK_EQ(arena.GetStats().mapped_bytes, 0u);
  }
}

TEST("Trim releases the spares and counts their bytes") {
  SparePool p;
  Got small = Alloc(p.arena, 100);
  p.arena.Free(Alloc(p.arena, kBig).ref());
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());
  const size_t mapped = p.arena.GetStats().mapped_bytes;
  CHECK(p.arena.Trim() >= 3 * kBig);
  CHECK_EQ(p.src.release_calls, 2u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, mapped - 3 * kBig);
  p.arena.Free(small.ref());
}

TEST("under max_bytes a spare goes back to make room for a chunk or another huge size") {
  SparePool p(Opt(kChunk, kHuge, 2 * kChunk));  // room for 512 KiB
  p.arena.Free(Alloc(p.arena, 3 * kBig).ref());  // a 384 KiB spare
  CHECK_EQ(p.arena.GetStats().spare_bytes, 3 * kBig);
  Got s = Alloc(p.arena, 100);  // a chunk: 384 + 256 > 512, so the spare goes
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK_EQ(p.src.release_calls, 1u);
  p.arena.Free(Alloc(p.arena, kBig).ref());  // a 128 KiB spare
  Got h = Alloc(p.arena, 2 * kBig);  // 256 + 128 + 256 > 512: the spare goes
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  CHECK(p.arena.GetStats().mapped_bytes <= 2 * kChunk);
  p.arena.Free(h.ref());
  p.arena.Free(s.ref());
}

TEST("under max_bytes the same size reuses its spare, and a call that fails anyway keeps the spares") {
  SparePool p(Opt(kChunk, kHuge, 2 * kChunk));
  Got live = Alloc(p.arena, 2 * kBig);           // 256 KiB
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());   // a 256 KiB spare: 512 mapped
  Stats before = p.arena.GetStats();
  CHECK_EQ(TryAlloc(p.arena, 3 * kBig), Status::kExhausted);  // 256 + 384 > 512 even without it
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.release_calls, 0u);
  Got again = Alloc(p.arena, 2 * kBig);           // no new mapping needed
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 2 * kChunk);
  p.arena.Free(again.ref());
  p.arena.Free(live.ref());
}

TEST("Close and destroying the arena release every spare exactly once") {
  SparePool p;
  p.arena.Free(Alloc(p.arena, kBig).ref());
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());
  p.arena.Close();
  CHECK_EQ(p.src.live_segments(), 0u);
  CHECK_EQ(p.src.bad_releases, 0u);
  CHECK_EQ(p.arena.Decay(), 0u);
  {
    MapSource src;
    src.recycle_enabled = true;
    {
      Arena arena(Opt(), &src);
      arena.Free(Alloc(arena, kBig).ref());
    }
    CHECK_EQ(src.live_segments(), 0u);
    CHECK_EQ(src.release_calls, 1u);
    CHECK_EQ(src.bad_releases, 0u);
  }
}

TEST("a stale ref to a freed huge allocation is refused after its spare was reused, and the new owner keeps it") {
  SparePool p;
  Got old = Alloc(p.arena, kBig);
  p.arena.Free(old.ref());
  Got fresh = Alloc(p.arena, kBig);
  CHECK_EQ(fresh.segment, old.segment);  // ids are reused lowest first
  std::memset(Ptr(p.arena, fresh), 7, kBig);
  Stats before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free(old.ref()), Status::kDoubleFree);
  uint32_t count = 0;
  CHECK_EQ(p.arena.Retain(old.ref(), &count), Status::kDoubleFree);
  Unchanged(p.arena, before);
  CHECK_EQ(Ptr(p.arena, fresh)[kBig - 1], 7);
  CHECK_EQ(p.arena.RefCount(fresh.ref(), &count), Status::kOk);
  CHECK_EQ(count, 1u);
}

TEST("GetStats and Dump show the spares") {
  SparePool p;
  Got s = Alloc(p.arena, 100);
  p.arena.Free(Alloc(p.arena, kBig).ref());
  MappedAddsUp(p.arena);
  const alloc::ArenaDump d = p.arena.Dump();
  CHECK_EQ(d.spare_bytes, size_t{kBig});
  CHECK_EQ(d.huge.size(), size_t{0});
  p.arena.Free(s.ref());
}

TEST("random huge allocs, frees, decays and trims keep every live allocation's bytes and the counts exact") {
  SparePool p(Opt(kChunk, kHuge, 64 * kChunk));  // 16 MiB cap: maxBytes paths too
  struct Live {
    Got g;
    uint8_t fill;
  };
  std::vector<Live> live;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const size_t sizes[] = {kHuge + 64, kBig, kBig + kPage, 3 * kBig, 8 * kBig};  // all huge, less 32
  size_t exhausted = 0, reused = 0;
  for (int op = 0; op < 20000; op++) {
    const uint64_t r = next() % 100;
    if (r < 50 || live.empty()) {
      const size_t size = sizes[next() % 5] - (next() % 3) * 16;
      const size_t spare_before = p.arena.GetStats().spare_bytes;
      Handle h;
      alloc::SourceError err;
      const uint32_t serial = next_serial++;
      const bool zero = (next() & 1) != 0;
      Status st = p.arena.Alloc(size, zero, serial, &h, &err);
      if (st == Status::kExhausted) {
        exhausted++;
        continue;
      }
      if (!CHECK_EQ(st, Status::kOk)) break;
      if (p.arena.GetStats().spare_bytes < spare_before) reused++;
      Got g{h.segment, h.offset, size, serial};
      uint8_t* q = Ptr(p.arena, g);
      if (zero) CHECK(q[0] == 0 && q[size / 2] == 0 && q[size - 1] == 0);
      const uint8_t fill = static_cast<uint8_t>(1 + next() % 250);
      q[0] = q[size / 2] = q[size - 1] = fill;
      live.push_back({g, fill});
    } else if (r < 90) {
      const size_t i = next() % live.size();
      const Live l = live[i];
      const uint8_t* q = Ptr(p.arena, l.g);
      CHECK(q != nullptr && q[0] == l.fill && q[l.g.size / 2] == l.fill && q[l.g.size - 1] == l.fill);
      CHECK_EQ(p.arena.Free(l.g.ref()), Status::kSegmentReleased);
      CHECK_EQ(p.arena.Free(l.g.ref()), Status::kForeign);  // its id names no segment now
      live[i] = live.back();
      live.pop_back();
    } else if (r < 97) {
      p.arena.Decay();
    } else {
      p.arena.Trim();
      CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
    }
    Stats s = p.arena.GetStats();
    if (!CHECK_EQ(s.huge_allocations, live.size()) || !MappedAddsUp(p.arena)) break;
    CHECK(s.mapped_bytes <= 64 * kChunk);
    CHECK_EQ(p.src.live_bytes, s.mapped_bytes);
    CHECK(p.src.live_segments() - s.huge_allocations - s.chunks <= alloc::kSpareMax);
  }
  CHECK(reused > 100);
  CHECK(exhausted > 0);
  for (const Live& l : live) p.arena.Free(l.g.ref());
  CHECK_EQ(p.src.bad_releases + p.src.bad_recycles + p.src.bad_discards, 0u);
}

// ---- more edges: stale refs, which spare, Reset, refcounts, exact accounting ----------

namespace {

// The accounting with spares: mapped bytes add up, equal what the source
// holds, MappedInUseBytes leaves the spares out, and the dump says spareBytes.
void Balanced(SparePool& p) {
  const Stats s = p.arena.GetStats();
  MappedAddsUp(p.arena);
  CHECK_EQ(s.mapped_bytes, p.src.live_bytes);
  CHECK_EQ(p.arena.MappedBytes(), s.mapped_bytes);
  CHECK_EQ(p.arena.MappedInUseBytes(), s.mapped_bytes - s.spare_bytes);
  CHECK_EQ(p.arena.Dump().spare_bytes, s.spare_bytes);
  CHECK_EQ(p.src.bad_releases + p.src.bad_recycles, 0u);
}

bool AllBytes(const uint8_t* q, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++) {
    if (q[i] != v) return false;
  }
  return q != nullptr;
}

}  // namespace

TEST("a stale ref to a huge allocation whose mapping is still a spare returns kForeign and keeps the spare") {
  SparePool p;
  Got h = Alloc(p.arena, kBig);
  uint8_t* base = Base(p.arena, h);
  p.arena.Free(h.ref());
  const Stats before = p.arena.GetStats();
  uint32_t count = 77;
  CHECK_EQ(p.arena.Free(h.ref()), Status::kForeign);  // its id names no segment now
  CHECK_EQ(p.arena.Release(h.ref(), &count), Status::kForeign);
  CHECK_EQ(p.arena.Retain(h.ref(), &count), Status::kForeign);
  CHECK_EQ(p.arena.RefCount(h.ref(), &count), Status::kForeign);
  CHECK_EQ(count, 77u);
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, kBig);
  Got n = Alloc(p.arena, kBig);
  CHECK_EQ(Base(p.arena, n), base);  // the spare is still whole and still there
  Balanced(p);
}

TEST("a stale ref whose id went to another allocation while its spare went to another id is refused") {
  SparePool p;
  Got x = Alloc(p.arena, 2 * kBig);  // id 0
  Got h = Alloc(p.arena, kBig);      // id 1
  CHECK_EQ(x.segment, 0u);
  CHECK_EQ(h.segment, 1u);
  uint8_t* hbase = Base(p.arena, h);
  p.arena.Free(h.ref());
  p.arena.Free(x.ref());
  Got n = Alloc(p.arena, kBig);  // h's mapping, under the lowest free id: 0 (x's old one)
  CHECK_EQ(n.segment, 0u);
  CHECK_EQ(Base(p.arena, n), hbase);
  std::memset(Ptr(p.arena, n), 0x3c, kBig);
  Stats before = p.arena.GetStats();
  uint32_t count = 77;
  CHECK_EQ(p.arena.Free(h.ref()), Status::kForeign);     // id 1 names nothing
  CHECK_EQ(p.arena.Retain(h.ref(), &count), Status::kForeign);
  CHECK_EQ(p.arena.Free(x.ref()), Status::kDoubleFree);  // id 0: huge, another serial
  CHECK_EQ(p.arena.Release(x.ref(), &count), Status::kDoubleFree);
  CHECK_EQ(count, 77u);
  Unchanged(p.arena, before);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 2 * kBig);  // x's mapping, untouched
  // A chunk takes id 1, a slab at offset 0: h's stale ref now meets a live slot.
  Got s = Alloc(p.arena, 100);
  CHECK_EQ(s.segment, 1u);
  CHECK_EQ(s.offset, 0u);
  before = p.arena.GetStats();
  CHECK_EQ(p.arena.Free(h.ref()), Status::kDoubleFree);
  Unchanged(p.arena, before);
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK(AllBytes(Ptr(p.arena, n), kBig, 0x3c));
  CHECK_EQ(p.arena.Free(n.ref()), Status::kSegmentReleased);
  CHECK_EQ(p.arena.Free(s.ref()), Status::kOk);
  Balanced(p);
}

TEST("of two spares of one size the newest is taken first") {
  SparePool p;
  Got a = Alloc(p.arena, kBig), b = Alloc(p.arena, kBig);
  uint8_t* abase = Base(p.arena, a);
  uint8_t* bbase = Base(p.arena, b);
  p.arena.Free(a.ref());
  p.arena.Free(b.ref());
  Got n = Alloc(p.arena, kBig);
  CHECK_EQ(Base(p.arena, n), bbase);
  Got m = Alloc(p.arena, kBig);
  CHECK_EQ(Base(p.arena, m), abase);
  CHECK_EQ(p.src.acquired, 2u);
  Balanced(p);
}

TEST("zero=false on a spare gets the same memory, writable to its end") {
  SparePool p;
  Got a = Alloc(p.arena, kBig);
  uint8_t* base = Base(p.arena, a);
  p.arena.Free(a.ref());
  Got b = Alloc(p.arena, kBig, /*zero=*/false);
  CHECK_EQ(Base(p.arena, b), base);
  CHECK_EQ(p.src.acquired, 1u);
  std::memset(Ptr(p.arena, b), 0x11, kBig);
  Balanced(p);
}

TEST("releasing the last reference to a huge allocation keeps its mapping as a spare") {
  SparePool p;
  Got h = Alloc(p.arena, kBig);
  uint32_t count = 0;
  CHECK_EQ(p.arena.Retain(h.ref(), &count), Status::kOk);
  CHECK_EQ(p.arena.Release(h.ref(), &count), Status::kOk);
  CHECK_EQ(count, 1u);
  CHECK_EQ(p.arena.Release(h.ref(), &count), Status::kSegmentReleased);
  CHECK_EQ(count, 0u);
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, kBig);
  Got n = Alloc(p.arena, kBig);  // the reused mapping starts at one reference
  CHECK_EQ(p.arena.RefCount(n.ref(), &count), Status::kOk);
  CHECK_EQ(count, 1u);
  Balanced(p);
}

TEST("the spare past kSpareMax releases exactly the oldest segment; the others still serve their sizes") {
  CheckGranule();
  SparePool p;
  constexpr size_t kN = alloc::kSpareMax + 1;
  std::vector<Got> g(kN);
  std::vector<uint8_t*> bases(kN);
  for (size_t i = 0; i < kN; i++) {
    g[i] = Alloc(p.arena, kBig + i * Granule());
    bases[i] = Base(p.arena, g[i]);
  }
  for (size_t i = 0; i + 1 < kN; i++) p.arena.Free(g[i].ref());
  CHECK_EQ(p.src.release_calls, 0u);
  p.arena.Free(g[kN - 1].ref());
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.src.released_bytes, kBig);  // the sizes differ: this one is g[0]'s
  Balanced(p);
  for (size_t i = kN - 1; i >= 1; i--) {
    Got n = Alloc(p.arena, kBig + i * Granule());
    CHECK_EQ(Base(p.arena, n), bases[i]);
  }
  CHECK_EQ(p.src.acquired, kN);
  Alloc(p.arena, kBig);  // g[0]'s size maps anew
  CHECK_EQ(p.src.acquired, kN + 1);
  Balanced(p);
}

TEST("spares past kSpareKeepBytes together send the oldest back, whatever their number") {
  SparePool p;
  // Mappings of 1/8 of the byte bound: the ninth freed passes it.
  constexpr size_t kSize = alloc::kSpareKeepBytes / 8;
  static_assert(kSize <= alloc::kSpareMaxBytes && 9 <= alloc::kSpareMax, "the bytes bind first");
  std::vector<Got> g(9);
  for (size_t i = 0; i < 9; i++) g[i] = Alloc(p.arena, kSize);
  for (size_t i = 0; i < 8; i++) p.arena.Free(g[i].ref());
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, alloc::kSpareKeepBytes);
  p.arena.Free(g[8].ref());
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, alloc::kSpareKeepBytes);
  MappedAddsUp(p.arena);
  Balanced(p);
}

TEST("a mapping of exactly kSpareMaxBytes is kept; one above is not even offered to Recycle") {
  SparePool p;
  p.arena.Free(Alloc(p.arena, alloc::kSpareMaxBytes + 1).ref());
  CHECK_EQ(p.src.recycle_calls, 0u);
  CHECK_EQ(p.src.release_calls, 1u);
  p.arena.Free(Alloc(p.arena, alloc::kSpareMaxBytes).ref());
  CHECK_EQ(p.src.recycle_calls, 1u);
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, alloc::kSpareMaxBytes);
  Balanced(p);
}

TEST("Reset releases the live huge allocations and keeps the spares") {
  SparePool p;
  Got live = Alloc(p.arena, 2 * kBig);
  Got kept = Alloc(p.arena, kBig);
  uint8_t* spare = Base(p.arena, kept);
  p.arena.Free(kept.ref());
  p.arena.Reset();
  CHECK_EQ(p.src.release_calls, 1u);  // the live one
  const Stats s = p.arena.GetStats();
  CHECK_EQ(s.huge_allocations, 0u);
  CHECK_EQ(s.spare_bytes, kBig);
  CHECK_EQ(s.mapped_bytes, kBig);
  Balanced(p);
  Got n = Alloc(p.arena, kBig);
  CHECK_EQ(Base(p.arena, n), spare);
  (void)live;
}

TEST("Trim returns exactly the spares' bytes when nothing else is free") {
  SparePool p;
  Got small = Alloc(p.arena, 100);  // its chunk stays; its untouched pages are not discarded
  p.arena.Free(Alloc(p.arena, kBig).ref());
  p.arena.Free(Alloc(p.arena, 2 * kBig).ref());
  CHECK_EQ(p.arena.Trim(), 3 * kBig);
  CHECK_EQ(p.src.released_bytes, 3 * kBig);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, kChunk);
  CHECK_EQ(p.arena.Trim(), 0u);
  Balanced(p);
  p.arena.Free(small.ref());
}

TEST("under max_bytes a spare stays while there is room beside it") {
  SparePool p(Opt(kChunk, kHuge, 2 * kChunk));  // 512 KiB
  p.arena.Free(Alloc(p.arena, kBig).ref());      // a 128 KiB spare
  Got h = Alloc(p.arena, 2 * kBig);              // 128 + 256 <= 512
  CHECK_EQ(p.src.release_calls, 0u);
  CHECK_EQ(p.arena.GetStats().spare_bytes, kBig);
  Got s = Alloc(p.arena, 100);                   // + 256 > 512: now the spare goes
  CHECK_EQ(p.src.release_calls, 1u);
  CHECK_EQ(p.src.released_bytes, kBig);
  CHECK_EQ(p.arena.GetStats().spare_bytes, 0u);
  Balanced(p);
  p.arena.Free(h.ref());
  p.arena.Free(s.ref());
}

TEST("at max_bytes the empty chunks go back first, and the spares stay when that makes the room") {
  CheckGranule();
  const size_t spare = HugeMapped(300000);        // 303104 B with 4 KiB pages (74 of them)
  SparePool p(Opt(kChunk, kChunk, 2 * kChunk + spare));
  Got a[4];
  for (Got& g : a) g = Alloc(p.arena, 65536);     // chunk 0 full
  p.arena.Free(Alloc(p.arena, 300000).ref());     // the spare
  Got s = Alloc(p.arena, 100);                    // chunk 1, a one-page slab
  CHECK_EQ(s.segment, 1u);                        // the huge one's freed id
  CHECK_EQ(p.arena.Free(s.ref()), Status::kOk);   // chunk 1 empty but for its kept empty slab
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 2 * kChunk + spare);
  // 64 pages fit no free run; a new chunk fits once chunk 1 is gone.
  Got big = Alloc(p.arena, kChunk);
  CHECK_EQ(p.src.release_calls, 1u);              // chunk 1, not the spare
  CHECK_EQ(p.src.released_bytes, kChunk);
  CHECK_EQ(p.arena.GetStats().spare_bytes, spare);
  CHECK_EQ(p.arena.GetStats().mapped_bytes, 2 * kChunk + spare);
  Balanced(p);
  (void)big;
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
