// A reference model of an Arena, shared by the randomized model test and the
// libFuzzer harness: every operation is applied to the real Arena and to a
// plain std::map of live allocations, and the two must agree exactly.
//
// What is checked, after every operation:
//   - the status, handle and count each call returns, against what the model
//     predicts (kExhausted / kMapFailed only where they can happen, and then
//     with nothing changed at all, but for the empty memory that MakeRoom or
//     a refusal of the source gives back: every spare, empty slab and empty
//     chunk, after which the source is asked once more);
//   - a new allocation lies inside a live segment the source handed out, is
//     aligned (quantum / page / offset 0), overlaps no live allocation (by
//     class-rounded extent) and, when asked, reads as zeros;
//   - Stats: live count, used / allocated / peak bytes, totals, huge counts,
//     mapped bytes = chunks * chunkSize + huge bytes + spare bytes = what
//     the source holds, per-class live counts;
//   - which calls give a segment back: a free only a huge one; an Alloc one
//     idle chunk exactly when the arena's rule says so (the model keeps the
//     idle chunks and the bytes allocated since one was needed, NoteFreed /
//     IdleAfterAlloc), or, when maxBytes is tight, every empty chunk;
//   - spares, when the source recycles (MapSource::recycle_enabled, read at
//     each free, so a driver may flip it): a freed huge mapping of at most
//     kSpareMaxBytes is kept (not in a zero_on_free pool), the oldest going
//     back past spare_max (HugeFreed); a huge request takes the newest spare
//     of its mapped size, the very segment, with no Acquire; MakeRoom gives
//     every spare back only when that is what makes the room, and then maps
//     (SparesAfterAlloc); Trim and Close give them all back, Decay hands each
//     new one to DiscardLazily once or releases it where that cannot work
//     (file backing); Reset keeps them;
// and at checkpoints (CheckAll): every live allocation's bytes still hold its
// pattern, and Dump describes exactly the model's allocations
// inside well-formed chunks (runs tile each chunk, free runs are coalesced,
// slab geometry matches SlabPages).
//
// Where in a chunk an allocation lands (lowest slab, best fit off the top
// chunk) is not predicted here: arena_test.cc checks the placement policy
// with exact expectations.
//
// Each method returns false at the first disagreement and error() says what;
// the caller decides whether that is a CHECK failure or an abort().
//
// Every allocation's serial is its pattern tag, so serials are unique and a
// stale handle (an old serial) is told apart from the slot's new owner.
//
// A once-known bug the model can be told to tolerate (regression_test.cc):
//   tolerate_exhausted_with_room: Alloc answers kExhausted / kMapFailed after
//   MakeRoom() released empty slabs that, coalesced, would have held it.
//   Fixed; off by default, so the model fails on it.
//
// Threads: single-threaded; one model drives one arena.
#ifndef MMAP_POOL_TEST_ARENA_MODEL_H_
#define MMAP_POOL_TEST_ARENA_MODEL_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "alloc/arena.h"
#include "test_sources.h"

namespace mmap_pool {
namespace test {

inline const char* StatusName(alloc::Status s) {
  switch (s) {
    case alloc::Status::kOk: return "kOk";
    case alloc::Status::kSegmentReleased: return "kSegmentReleased";
    case alloc::Status::kDoubleFree: return "kDoubleFree";
    case alloc::Status::kForeign: return "kForeign";
    case alloc::Status::kExhausted: return "kExhausted";
    case alloc::Status::kMapFailed: return "kMapFailed";
    case alloc::Status::kClosed: return "kClosed";
    case alloc::Status::kTooLarge: return "kTooLarge";
    case alloc::Status::kNeedsChunk: return "kNeedsChunk";
    case alloc::Status::kBadAlign: return "kBadAlign";
    case alloc::Status::kCountFull: return "kCountFull";
  }
  return "<unknown status>";
}

inline const char* RunKindName(alloc::RunDump::Kind k) {
  switch (k) {
    case alloc::RunDump::Kind::kFree: return "free";
    case alloc::RunDump::Kind::kSlab: return "slab";
    case alloc::RunDump::Kind::kLarge: return "large";
  }
  return "<unknown kind>";
}

// Field-by-field equality of two Stats, with the first difference named.
inline bool SameStats(const alloc::Stats& a, const alloc::Stats& b, std::string* diff) {
#define MMAP_POOL_SAME(f)                                                          \
  if (a.f != b.f) {                                                                \
    *diff = std::string(#f) + ": " + std::to_string(a.f) + " vs " + std::to_string(b.f); \
    return false;                                                                  \
  }
#define MMAP_POOL_SAME_FIELD(type, member) MMAP_POOL_SAME(member)
  MMAP_POOL_STATS_FIGURES(MMAP_POOL_SAME_FIELD)
  MMAP_POOL_STATS_ARENA_COUNTS(MMAP_POOL_SAME_FIELD)
#undef MMAP_POOL_SAME_FIELD
  MMAP_POOL_SAME(classes.size())
#undef MMAP_POOL_SAME
  for (size_t c = 0; c < a.classes.size(); c++) {
    if (a.classes[c].size != b.classes[c].size || a.classes[c].live != b.classes[c].live ||
        a.classes[c].capacity != b.classes[c].capacity) {
      *diff = "classes[" + std::to_string(c) + "]";
      return false;
    }
  }
  return true;
}

// The byte at index i of the allocation tagged `tag`.
inline uint8_t PatternByte(uint32_t tag, size_t i) {
  return static_cast<uint8_t>((i * 0x9D) ^ (i >> 8) ^ (tag * 0x3B) ^ (tag >> 5) ^ 0x5A);
}

class ArenaModel {
 public:
  static constexpr int kFailCode = 28;  // ENOSPC: what an armed source failure reports

  ArenaModel(alloc::Arena* arena, MapSource* source, const alloc::ArenaOptions& opt)
      : a_(arena), src_(source), opt_(opt), gran_(source->Granularity()) {}

  enum class Kind { kSmall, kLarge, kHuge };
  struct Expect {
    Kind kind;
    uint32_t cls;    // size class; unused for huge
    size_t rounded;  // bytes the allocation occupies (and Stats.allocated_bytes counts)
  };

  // Where a request lands: `align` (a power of two <= the page size, or 0)
  // moves a small request up to the first class whose size it divides.
  Expect Classify(size_t size, size_t align = 0) const {
    if (size > opt_.huge_threshold) return {Kind::kHuge, 0, RoundUp(size, gran_)};
    uint32_t cls = alloc::ClassIndex(size);
    while (align > alloc::kQuantum && alloc::IsSmallClass(cls) && alloc::ClassSize(cls) % align != 0) cls++;
    if (alloc::IsSmallClass(cls)) return {Kind::kSmall, cls, alloc::ClassSize(cls)};
    return {Kind::kLarge, cls, RoundUp(alloc::ClassSize(cls), opt_.page_size)};
  }

  bool tolerate_exhausted_with_room = false;  // see the file comment
  uint64_t exhausted_with_room() const { return exhausted_with_room_; }
  uint64_t idle_releases() const { return idle_releases_; }  // idle chunks given back by Alloc

  const std::string& error() const { return error_; }
  size_t live() const { return live_.size(); }
  size_t used() const { return used_; }
  uint64_t ops() const { return ops_; }

  // Alloc(size, zero, serial, align). With `fail_acquire`, the source
  // refuses the one acquisition this call might make; kMapFailed must then
  // carry its code.
  bool Alloc(size_t size, bool zero, bool fail_acquire = false, size_t align = 0) {
    ops_++;
    const alloc::Stats before = a_->GetStats();
    const uint64_t acquire_calls = src_->acquire_calls, releases = src_->release_calls;
    const Expect e = Classify(size, align);
    const uint32_t tag = next_tag_;
    const uint64_t acquired = src_->acquired, failed = src_->failed_acquires;
    const size_t released_bytes = src_->released_bytes;
    // What a refusal of the source would make the arena give back before it
    // asks again (GiveBackUnused): the spares, and the chunks without a live
    // allocation (idle, or holding only empty slabs, or emptied by Reset).
    const bool had_unused = !spares_.empty() || before.chunks > UsedChunks();
    // A huge request takes the newest spare of its mapped size, if any, and
    // then neither makes room nor maps.
    const int take = e.kind == Kind::kHuge && size <= opt_.max_bytes && align <= opt_.page_size
                         ? NewestSpare(e.rounded) : -1;
    if (fail_acquire) src_->FailNext(kFailCode);
    alloc::Handle h;
    alloc::SourceError err;
    err.code = -1;
    const alloc::Status st = a_->Alloc(size, zero, tag, &h, &err, align);
    if (fail_acquire) src_->Disarm();
    const std::string what = "Alloc(" + std::to_string(size) + (align ? ", align " + std::to_string(align) : "") + ")";
    // The source refused (with fail_acquire it refuses every Acquire of the
    // call): the arena gave back every spare, empty slab and empty chunk,
    // and asked once more if that gave the source anything.
    const bool refused = src_->failed_acquires != failed;

    if (size > opt_.max_bytes || align > opt_.page_size) {
      const alloc::Status want = size > opt_.max_bytes ? alloc::Status::kTooLarge : alloc::Status::kBadAlign;
      if (st != want) return Fail(what + " above maxBytes / page: " + StatusName(st));
      return Refused(before, acquire_calls, 0, what);
    }
    // Mapping `need` more bytes would pass maxBytes: MakeRoom() may give
    // back empty slabs and empty chunks, even when the call then fails.
    const size_t need = e.kind == Kind::kHuge ? e.rounded : opt_.chunk_size;
    // (Counted with the spares, as MakeRoom counts; a spare taken makes no room.)
    const bool tight = take < 0 && before.mapped_bytes + need > opt_.max_bytes;
    // The spares: one taken (take >= 0), or all given back by MakeRoom, or
    // all kept; checked against what the source saw.
    size_t spare_releases = 0;
    if (!SparesAfterAlloc(e, st, take, tight, refused, need, acquire_calls, acquired, releases,
                          released_bytes, what, &spare_releases)) {
      return false;
    }
    // A refused call ages nothing; when tight, MakeRoom() gave back every
    // empty chunk, the idle ones among them, and so does a refusal.
    if (st != alloc::Status::kOk) {
      if (!tight && !refused && src_->release_calls != releases) {
        return Fail(what + ": released a segment with room to spare");
      }
      if (tight || refused) idle_.clear();
    }
    if (st == alloc::Status::kExhausted) {
      if (!tight) return Fail(what + ": kExhausted with room for " + std::to_string(need) + " more bytes");
      // Room there is none even without the spares (MakeRoom would have given them back).
      const alloc::Stats now = a_->GetStats();
      if (now.mapped_bytes - now.spare_bytes + need <= opt_.max_bytes) {
        return Fail(what + ": kExhausted although there is room now" +
                    (now.spare_bytes != 0 ? " (once the spares go)" : ""));
      }
      if (e.kind != Kind::kHuge && !NoRoomForChunkAlloc(before, e, what + " (kExhausted)")) return false;
      return Refused(before, acquire_calls, need, what + " (kExhausted)");
    }
    if (st == alloc::Status::kMapFailed) {
      if (!fail_acquire) return Fail(what + ": kMapFailed with a working source");
      if (err.code != kFailCode || std::string(err.syscall) != "test-acquire") {
        return Fail(what + ": kMapFailed lost the source's error (code " +
                    std::to_string(err.code) + ", syscall '" + err.syscall + "')");
      }
      // Asked once, and once more when the refusal made the arena give
      // something back (when tight, MakeRoom may have given it all already).
      const uint64_t asked = src_->acquire_calls - acquire_calls;
      const bool again = src_->release_calls != releases && (tight || had_unused);
      if (tight ? (asked == 0 || asked > 2 || (asked == 2 && !again)) : asked != (had_unused ? 2u : 1u)) {
        return Fail(what + ": kMapFailed after " + std::to_string(asked) + " Acquire calls" +
                    (had_unused ? " (with spares or empty chunks to give back)" : ""));
      }
      if (e.kind != Kind::kHuge && !NoRoomForChunkAlloc(before, e, what + " (kMapFailed)")) return false;
      return Refused(before, src_->acquire_calls, need, what + " (kMapFailed)", spare_releases != 0, true);
    }
    if (st != alloc::Status::kOk) return Fail(what + ": " + StatusName(st));
    // A chunk allocation may still succeed after a refusal: the empty slabs
    // given back made a run that holds it.
    if (fail_acquire && src_->acquire_calls != acquire_calls &&
        !(refused && e.kind != Kind::kHuge && src_->acquire_calls == acquire_calls + 1)) {
      return Fail(what + ": kOk although the (failing) source was asked for memory");
    }
    if (e.kind == Kind::kHuge && tight && a_->GetStats().mapped_bytes > opt_.max_bytes) {
      return Fail(what + ": mapped past maxBytes");
    }
    if (!IdleAfterAlloc(before, size, e, h.segment, tight, refused, acquire_calls, releases + spare_releases, what)) {
      return false;
    }

    // Where did it land?
    alloc::Segment* seg = a_->FindSegment(h.segment);
    if (seg == nullptr) return Fail(what + ": handle names no live segment");
    if (take >= 0) {
      if (seg != spares_[take].seg) return Fail(what + ": not the newest spare of its size");
      spare_bytes_ -= spares_[take].size;
      spares_.erase(spares_.begin() + take);
      spares_reused_++;
    }
    if (!src_->owns(seg)) return Fail(what + ": handle names no live segment");
    const Key key(h.segment, h.offset);
    if (live_.count(key) != 0) return Fail(what + ": handed out a live allocation again");
    if (e.kind == Kind::kHuge) {
      if (h.offset != 0 || seg->size != e.rounded) return Fail(what + ": huge not a whole mapping");
    } else {
      if (seg->size != opt_.chunk_size) return Fail(what + ": not in a chunk");
      if (h.offset + e.rounded > seg->size) return Fail(what + ": runs past its chunk");
      if (h.offset % alloc::kQuantum != 0) return Fail(what + ": offset not quantum-aligned");
      if (e.kind == Kind::kLarge && h.offset % opt_.page_size != 0) {
        return Fail(what + ": large offset not page-aligned");
      }
      if (align != 0 && h.offset % align != 0) return Fail(what + ": offset " + std::to_string(h.offset) + " not aligned");
    }
    if (!NoOverlap(key, e.kind == Kind::kHuge ? seg->size : e.rounded, what)) return false;
    uint8_t* p = seg->base + h.offset;
    if (zero) {
      for (size_t i = 0; i < size; i++) {
        if (p[i] != 0) return Fail(what + " zero=true: byte " + std::to_string(i) + " is not 0");
      }
    }
    next_tag_++;
    for (size_t i = 0; i < size; i++) p[i] = PatternByte(tag, i);

    Live& l = live_[key];
    l.size = size;
    l.e = e;
    l.tag = tag;
    l.seg = seg;
    l.index = order_.size();
    order_.push_back(key);
    total_allocs_++;
    used_ += size;
    allocated_ += e.rounded;
    if (used_ > peak_) peak_ = used_;
    if (e.kind == Kind::kHuge) {
      huge_count_++;
      huge_bytes_ += e.rounded;
    } else {
      class_live_[e.cls]++;
    }
    return CheckStats(what);
  }

  // Frees the live allocation number `pick % live()` (no-op when none).
  bool Free(size_t pick) {
    ops_++;
    if (live_.empty()) return true;
    const Key key = order_[pick % order_.size()];
    const Live l = live_[key];
    const std::string what = Name("Free", key, l.size);
    if (!Intact(key, l, what)) return false;
    const uint64_t releases = src_->release_calls, recycles = src_->recycle_calls;
    const size_t released_bytes = src_->released_bytes;
    const alloc::Status st = a_->Free(RefOf(key, l));
    const bool huge = l.e.kind == Kind::kHuge;
    if (st != (huge ? alloc::Status::kSegmentReleased : alloc::Status::kOk)) {
      return Fail(what + ": " + StatusName(st));
    }
    if (!huge && src_->release_calls != releases) {
      return Fail(what + ": " + std::to_string(src_->release_calls - releases) + " Release calls");
    }
    if (huge && a_->FindSegment(key.first) != nullptr) return Fail(what + ": huge segment still found");
    if (huge && !HugeFreed(l, releases, released_bytes, recycles, what)) return false;
    Forget(key);
    if (!huge) NoteFreed(key.first);
    if (!huge && !WipedIfSecure(key, l.size, what)) return false;
    return CheckStats(what);
  }

  // Retain (or Release) of live allocation `pick`; a Release of the last
  // reference frees it.
  bool RetainOrRelease(size_t pick, bool retain) {
    ops_++;
    if (live_.empty()) return true;
    const Key key = order_[pick % order_.size()];
    Live& l = live_[key];
    const std::string what = Name(retain ? "Retain" : "Release", key, l.size);
    uint32_t count = 12345;
    if (retain) {
      const alloc::Status st = a_->Retain(RefOf(key, l), &count);
      if (st != alloc::Status::kOk || count != l.refs + 1) {
        return Fail(what + ": " + StatusName(st) + ", count " + std::to_string(count));
      }
      l.refs++;
    } else {
      if (l.refs == 1 && !Intact(key, l, what)) return false;
      const uint64_t releases = src_->release_calls, recycles = src_->recycle_calls;
      const size_t released_bytes = src_->released_bytes;
      const alloc::Status st = a_->Release(RefOf(key, l), &count);
      const bool frees = l.refs == 1;
      const bool huge = l.e.kind == Kind::kHuge;
      const alloc::Status want =
          frees && huge ? alloc::Status::kSegmentReleased : alloc::Status::kOk;
      if (st != want || count != l.refs - 1) {
        return Fail(what + ": " + StatusName(st) + ", count " + std::to_string(count) +
                    " (refs were " + std::to_string(l.refs) + ")");
      }
      if (!(frees && huge) && src_->release_calls != releases) {
        return Fail(what + ": unexpected Release calls to the source");
      }
      if (frees && huge && !HugeFreed(l, releases, released_bytes, recycles, what)) return false;
      if (frees) {
        const size_t size = l.size;
        Forget(key);
        if (!huge) NoteFreed(key.first);
        if (!huge && !WipedIfSecure(key, size, what)) return false;
        return CheckStats(what);
      }
      l.refs--;
    }
    count = 0;
    const alloc::Status st = a_->RefCount(RefOf(key, l), &count);
    if (st != alloc::Status::kOk || count != l.refs) {
      return Fail(what + ": RefCount says " + std::to_string(count) + " not " + std::to_string(l.refs));
    }
    return CheckStats(what);
  }

  // A free that must be refused, with nothing changed:
  //   how 0: a slice (offset + 1)                  -> kForeign
  //   how 1: the right offset, length + 1          -> kForeign
  //   how 2: a handle freed earlier (stale)        -> kDoubleFree when its slot is
  //          live again (under a newer serial), else kDoubleFree or kForeign
  //   how 3: an unknown segment id                 -> kForeign
  //   how 4: an offset past the segment end        -> kForeign
  //   how 5: Retain / RefCount of a slice          -> kForeign
  //   how 6: a live allocation with a wrong serial -> kDoubleFree
  bool BadFree(size_t pick, int how) {
    ops_++;
    const alloc::Stats before = a_->GetStats();
    const uint64_t acquire_calls = src_->acquire_calls, releases = src_->release_calls;
    alloc::Arena::Ref ref{0, 0, 0, 0};
    alloc::Status want = alloc::Status::kForeign;
    bool stale_either = false;
    if (how == 2) {
      if (freed_.empty()) return true;
      const Freed& f = freed_[pick % freed_.size()];
      ref = {f.segment, f.offset, f.size, f.serial};
      auto it = live_.find(Key(f.segment, f.offset));
      if (it != live_.end()) {
        want = alloc::Status::kDoubleFree;  // same place, newer owner
      } else {
        stale_either = true;
      }
    } else if (how == 3) {
      ref = {0x00ABCDEFu, 0, 1, 1};
    } else {
      if (live_.empty()) return true;
      const Key key = order_[pick % order_.size()];
      const Live& l = live_[key];
      ref = RefOf(key, l);
      if (how == 0 || how == 5) {
        ref.offset += 1;
        if (ref.length > 0) ref.length -= 1;
      } else if (how == 1) {
        ref.length += 1;
      } else if (how == 4) {
        ref.offset = (l.e.kind == Kind::kHuge ? l.e.rounded : opt_.chunk_size) + alloc::kQuantum;
        ref.length = 0;
      } else {
        ref.serial = l.tag + 0x80000000u;
        want = alloc::Status::kDoubleFree;
      }
    }
    alloc::Status st;
    uint32_t count = 777;
    if (how == 5) {
      st = pick % 2 ? a_->Retain(ref, &count) : a_->RefCount(ref, &count);
    } else {
      st = pick % 2 ? a_->Free(ref) : a_->Release(ref, &count);
    }
    const std::string what =
        Name("BadFree#" + std::to_string(how), Key(ref.segment, ref.offset), ref.length);
    const bool ok = stale_either ? (st == alloc::Status::kDoubleFree || st == alloc::Status::kForeign)
                                 : st == want;
    if (!ok) return Fail(what + ": " + StatusName(st) + (stale_either ? "" : std::string(", want ") + StatusName(want)));
    if (count != 777) return Fail(what + ": a refused call wrote its count");
    if (src_->release_calls != releases) return Fail(what + ": released a segment");
    return Refused(before, acquire_calls, 0, what);
  }

  bool Reset() {
    ops_++;
    const alloc::Stats before = a_->GetStats();
    const uint64_t releases = src_->release_calls, acquires = src_->acquire_calls;
    a_->Reset();
    if (src_->release_calls != releases + huge_count_) return Fail("Reset: huge segments not released once each");
    if (src_->acquire_calls != acquires) return Fail("Reset: acquired memory");
    for (const auto& kv : live_) {
      if (kv.second.e.kind != Kind::kHuge) continue;
      if (a_->FindSegment(kv.first.first) != nullptr) return Fail("Reset: huge segment still found");
    }
    std::vector<std::pair<Key, size_t>> wiped;
    for (const auto& kv : live_) {
      if (kv.second.e.kind != Kind::kHuge) wiped.emplace_back(kv.first, kv.second.size);
    }
    std::vector<Key> keys(order_);
    for (const Key& k : keys) Forget(k);  // counts each as a free, as Reset does
    idle_.clear();  // every chunk is empty and stays mapped, none counts as idle
    for (const auto& w : wiped) {
      if (!WipedIfSecure(w.first, w.second, "Reset")) return false;
    }
    const alloc::Stats s = a_->GetStats();
    if (s.chunks != before.chunks) return Fail("Reset: chunk count changed");
    if (s.free_bytes != s.chunks * opt_.chunk_size) return Fail("Reset: chunks not wholly free");
    return CheckStats("Reset");
  }

  bool Trim() {
    ops_++;
    const size_t released_before = src_->released_bytes, discarded_before = src_->discarded_bytes;
    const uint64_t acquires = src_->acquire_calls;
    const uint64_t releases = src_->release_calls;
    const size_t got = a_->Trim();
    const size_t want = (src_->released_bytes - released_before) +
                        (src_->discarded_bytes - discarded_before);
    if (got != want) {
      return Fail("Trim returned " + std::to_string(got) + ", the source got back " + std::to_string(want));
    }
    // Every spare goes back (and counts among the bytes returned), besides
    // whole chunks.
    const uint64_t chunk_releases = src_->release_calls - releases;
    if (chunk_releases < spares_.size() ||
        src_->released_bytes - released_before !=
            (chunk_releases - spares_.size()) * opt_.chunk_size + spare_bytes_) {
      return Fail("Trim: " + std::to_string(src_->release_calls - releases) + " segments of " +
                  std::to_string(src_->released_bytes - released_before) + " bytes released; " +
                  std::to_string(spares_.size()) + " spares of " + std::to_string(spare_bytes_) +
                  " bytes were kept");
    }
    spares_given_back_ += spares_.size();
    spares_.clear();
    spare_bytes_ = 0;
    if (src_->acquire_calls != acquires) return Fail("Trim acquired memory");
    // What stays mapped: exactly the chunks some live allocation is in.
    std::set<uint32_t> used_chunks;
    for (const auto& kv : live_) {
      if (kv.second.e.kind != Kind::kHuge) used_chunks.insert(kv.first.first);
    }
    const alloc::Stats s = a_->GetStats();
    if (s.chunks != used_chunks.size()) {
      return Fail("Trim left " + std::to_string(s.chunks) + " chunks; " +
                  std::to_string(used_chunks.size()) + " hold allocations");
    }
    idle_.clear();  // the idle chunks were empty chunks
    const size_t again = a_->Trim();
    if (again != 0) return Fail("a second Trim gave back " + std::to_string(again) + " bytes");
    return CheckStats("Trim");
  }

  // Decay: each spare not decayed yet is handed to the source's
  // DiscardLazily once; one the source cannot do that for (file backing, no
  // MADV_FREE) is released instead. Returns how many were handled.
  bool Decay() {
    ops_++;
    const uint64_t releases = src_->release_calls, lazy = src_->lazy_discard_calls, acquires = src_->acquire_calls;
    const size_t released_bytes = src_->released_bytes;
    size_t want = 0, gone = 0, gone_bytes = 0;
    std::vector<Spare> kept;
    for (Spare& sp : spares_) {
      if (!sp.decayed) {
        want++;
        if (!CanDiscardLazily(sp.seg)) {
          gone++;
          gone_bytes += sp.size;
          continue;
        }
        sp.decayed = true;
      }
      kept.push_back(sp);
    }
    const size_t got = a_->Decay();
    if (got != want) return Fail("Decay handled " + std::to_string(got) + " spares, model " + std::to_string(want));
    if (src_->lazy_discard_calls - lazy != want) return Fail("Decay: DiscardLazily calls");
    if (src_->release_calls - releases != gone || src_->released_bytes - released_bytes != gone_bytes) {
      return Fail("Decay released " + std::to_string(src_->release_calls - releases) + " segments, model " +
                  std::to_string(gone));
    }
    if (src_->acquire_calls != acquires) return Fail("Decay acquired memory");
    spares_ = kept;
    spare_bytes_ -= gone_bytes;
    spares_decayed_ += want - gone;
    spares_given_back_ += gone;
    if (a_->Decay() != 0) return Fail("a second Decay did something");
    return CheckStats("Decay");
  }

  // Spares kept, reused, evicted (the fifth freed), given back (MakeRoom,
  // Trim, Decay, Close) and decayed, over the run.
  uint64_t spares_kept() const { return spares_kept_; }
  uint64_t spares_reused() const { return spares_reused_; }
  uint64_t spares_evicted() const { return spares_evicted_; }
  uint64_t spares_given_back() const { return spares_given_back_; }
  uint64_t spares_decayed() const { return spares_decayed_; }
  uint64_t spares_for_room() const { return spares_for_room_; }  // given back by MakeRoom

  // Stats against the model; cheap enough for every operation.
  bool CheckStats(const std::string& after) {
    const alloc::Stats s = a_->GetStats();
    const std::string at = " after " + after;
#define MMAP_POOL_EXPECT(field, value)                                                    \
  if (static_cast<uint64_t>(s.field) != static_cast<uint64_t>(value)) {                   \
    return Fail("Stats." #field " = " + std::to_string(s.field) + ", model " +            \
                std::to_string(value) + at);                                              \
  }
    MMAP_POOL_EXPECT(live_allocations, live_.size())
    MMAP_POOL_EXPECT(used_bytes, used_)
    MMAP_POOL_EXPECT(allocated_bytes, allocated_)
    MMAP_POOL_EXPECT(peak_used_bytes, peak_)
    MMAP_POOL_EXPECT(total_allocations, total_allocs_)
    MMAP_POOL_EXPECT(total_frees, total_frees_)
    MMAP_POOL_EXPECT(huge_allocations, huge_count_)
    MMAP_POOL_EXPECT(huge_bytes, huge_bytes_)
    MMAP_POOL_EXPECT(spare_bytes, spare_bytes_)
    MMAP_POOL_EXPECT(mapped_bytes, s.chunks * opt_.chunk_size + huge_bytes_ + spare_bytes_)
    MMAP_POOL_EXPECT(mapped_bytes, src_->live_bytes)
    MMAP_POOL_EXPECT(mapped_bytes, a_->MappedBytes())
    MMAP_POOL_EXPECT(mapped_bytes - s.spare_bytes, a_->MappedInUseBytes())
    MMAP_POOL_EXPECT(chunks + s.huge_allocations + spares_.size(), src_->live_segments())
#undef MMAP_POOL_EXPECT
    if (spares_.size() > opt_.spare_max || spare_bytes_ > alloc::kSpareKeepBytes) return Fail("the model keeps more than kSpareMax spares or kSpareKeepBytes" + at);
    if (s.mapped_bytes > opt_.max_bytes) return Fail("mapped past maxBytes" + at);
    if (s.free_bytes % opt_.page_size != 0 ||
        s.free_bytes + (allocated_ - huge_bytes_) > s.chunks * opt_.chunk_size) {
      return Fail("Stats.free_bytes " + std::to_string(s.free_bytes) + " impossible" + at);
    }
    // Class 0 .. the class of hugeThreshold -- or, once known bug 2 is fixed,
    // up to the first large class, which `align` can reach whatever the threshold.
    const size_t nclasses = s.classes.size();
    const size_t by_threshold = std::min<size_t>(alloc::ClassIndex(opt_.huge_threshold) + 1, alloc::kMaxClasses);
    const size_t by_align = std::max<size_t>(by_threshold, alloc::kSmallClasses + 1);
    if (nclasses != by_threshold && nclasses != by_align) return Fail("Stats.classes has the wrong length" + at);
    for (uint32_t c = 0; c < nclasses; c++) {
      const alloc::ClassStats& cs = s.classes[c];
      const std::string name = "class " + std::to_string(c);
      if (cs.size != alloc::ClassSize(c)) return Fail(name + " size" + at);
      if (cs.live != class_live_[c]) {
        return Fail(name + " live " + std::to_string(cs.live) + ", model " + std::to_string(class_live_[c]) + at);
      }
      if (alloc::IsSmallClass(c)) {
        const size_t per_slab = SlabPagesOf(c) * opt_.page_size / alloc::ClassSize(c);
        if (cs.capacity < cs.live || cs.capacity % per_slab != 0) return Fail(name + " capacity" + at);
      } else if (cs.capacity != cs.live) {
        return Fail(name + " capacity != live" + at);
      }
    }
    if (src_->bad_releases != 0) return Fail("a segment was released twice" + at);
    if (src_->bad_recycles != 0) return Fail("Recycle / DiscardLazily of a segment not live" + at);
    if (src_->bad_discards != 0) return Fail("Discard outside a live segment" + at);
    return true;
  }

  // Everything: stats, every allocation's bytes and bounds, and the dump.
  bool CheckAll() {
    if (!CheckStats("checkpoint")) return false;
    uint32_t seg_id = UINT32_MAX;
    size_t end = 0;
    for (const auto& kv : live_) {
      const Key& k = kv.first;
      const Live& l = kv.second;
      const std::string what = Name("live", k, l.size);
      if (!Intact(k, l, what)) return false;
      if (k.first == seg_id && k.second < end) return Fail(what + ": overlaps the allocation before it");
      seg_id = k.first;
      end = k.second + (l.e.kind == Kind::kHuge ? SIZE_MAX / 2 : l.e.rounded);
    }
    return CheckDump();
  }

  // Dump against the model (see the file comment).
  bool CheckDump() {
    const alloc::ArenaDump root = a_->Dump();
    const alloc::Stats s = a_->GetStats();
    const int64_t ps = static_cast<int64_t>(opt_.page_size);
    if (root.page_size != opt_.page_size || root.chunk_size != opt_.chunk_size ||
        root.huge_threshold != opt_.huge_threshold) {
      return Fail("dump: page_size / chunk_size / huge_threshold wrong");
    }
    if (root.spare_bytes != spare_bytes_) {
      return Fail("dump: spare_bytes " + std::to_string(root.spare_bytes) + ", model " +
                  std::to_string(spare_bytes_));
    }
    if (root.chunks.size() != s.chunks) return Fail("dump: chunk count differs from Stats");
    if (root.huge.size() != s.huge_allocations) return Fail("dump: huge count differs from Stats");
    if (root.allocations.size() != live_.size()) {
      return Fail("dump lists " + std::to_string(root.allocations.size()) + " allocations, model " +
                  std::to_string(live_.size()));
    }
    struct Run {
      int64_t page, pages, cls_size, capacity, live;
      std::string kind;
      int64_t seen = 0;
    };
    std::map<uint32_t, std::vector<Run>> runs_of;  // chunk id -> runs in page order
    const int64_t npages = static_cast<int64_t>(opt_.chunk_size) / ps;
    int64_t free_pages_total = 0;
    for (const alloc::ChunkDump& c : root.chunks) {
      const uint32_t id = c.id;
      const std::string where = "dump chunk " + std::to_string(id);
      alloc::Segment* seg = a_->FindSegment(id);
      if (seg == nullptr || !src_->owns(seg)) return Fail(where + ": no such segment");
      if (c.size != opt_.chunk_size) return Fail(where + ": size");
      if (runs_of.count(static_cast<uint32_t>(id))) return Fail(where + ": listed twice");
      std::vector<Run>& runs = runs_of[static_cast<uint32_t>(id)];
      if (c.runs.empty()) return Fail(where + ": no runs");
      int64_t next = 0, free_pages = 0;
      bool prev_free = false;
      for (const alloc::RunDump& r : c.runs) {
        Run run{r.page, r.pages, static_cast<int64_t>(r.class_size), r.capacity, r.live, RunKindName(r.kind)};
        const std::string rw = where + " run at page " + std::to_string(run.page);
        if (run.page != next || run.pages <= 0) return Fail(rw + ": runs do not tile the chunk");
        next += run.pages;
        if (run.kind == "free") {
          if (prev_free) return Fail(rw + ": two free runs side by side (not coalesced)");
          free_pages += run.pages;
        } else if (run.kind == "slab") {
          const uint32_t cls = alloc::ClassIndex(static_cast<size_t>(run.cls_size));
          if (!alloc::IsSmallClass(cls) || alloc::ClassSize(cls) != static_cast<size_t>(run.cls_size) ||
              run.pages != SlabPagesOf(cls) ||
              run.capacity != run.pages * ps / run.cls_size || run.live < 0 || run.live > run.capacity) {
            return Fail(rw + ": slab geometry");
          }
        } else if (run.kind == "large") {
          const uint32_t cls = alloc::ClassIndex(static_cast<size_t>(run.cls_size));
          if (alloc::IsSmallClass(cls) || alloc::ClassSize(cls) != static_cast<size_t>(run.cls_size) ||
              run.pages * ps != static_cast<int64_t>(RoundUp(alloc::ClassSize(cls), opt_.page_size)) ||
              run.live != 1 || run.capacity != 1) {
            return Fail(rw + ": large run geometry");
          }
        } else {
          return Fail(rw + ": kind '" + run.kind + "'");
        }
        prev_free = run.kind == "free";
        runs.push_back(run);
      }
      if (next != npages) return Fail(where + ": runs cover " + std::to_string(next) + " pages");
      if (c.free_pages != free_pages) return Fail(where + ": free_pages");
      free_pages_total += free_pages;
    }
    if (static_cast<size_t>(free_pages_total * ps) != s.free_bytes) return Fail("dump: free pages != Stats.free_bytes");
    std::set<Key> seen;
    for (const alloc::AllocationDump& al : root.allocations) {
      const Key k(al.segment, al.offset);
      const int64_t size = static_cast<int64_t>(al.size);
      const std::string where = Name("dump allocation", k, static_cast<size_t>(size));
      auto it = live_.find(k);
      if (it == live_.end() || static_cast<int64_t>(it->second.size) != size) return Fail(where + ": not in the model");
      if (!seen.insert(k).second) return Fail(where + ": listed twice");
      const Live& l = it->second;
      if (l.e.kind == Kind::kHuge) {
        if (al.class_size != 0) return Fail(where + ": huge with a class_size");
        continue;
      }
      if (al.class_size != alloc::ClassSize(l.e.cls)) return Fail(where + ": class_size");
      auto rit = runs_of.find(k.first);
      if (rit == runs_of.end()) return Fail(where + ": its chunk is not listed");
      const int64_t page = static_cast<int64_t>(k.second) / ps;
      Run* run = nullptr;
      for (Run& r : rit->second) {
        if (page >= r.page && page < r.page + r.pages) run = &r;
      }
      if (run == nullptr || run->cls_size != static_cast<int64_t>(alloc::ClassSize(l.e.cls))) {
        return Fail(where + ": not inside a run of its class");
      }
      const int64_t rel = static_cast<int64_t>(k.second) - run->page * ps;
      if (run->kind == "large" ? rel != 0 : (run->kind != "slab" || rel % run->cls_size != 0)) {
        return Fail(where + ": not at a slot boundary of its run");
      }
      run->seen++;
    }
    for (const auto& kv : runs_of) {
      for (const Run& r : kv.second) {
        if (r.kind != "free" && r.seen != r.live) {
          return Fail("dump chunk " + std::to_string(kv.first) + " run at page " + std::to_string(r.page) +
                      ": live " + std::to_string(r.live) + " but " + std::to_string(r.seen) + " allocations");
        }
      }
    }
    for (const alloc::HugeDump& hv : root.huge) {
      const Key k(hv.id, 0);
      auto it = live_.find(k);
      if (it == live_.end() || it->second.e.kind != Kind::kHuge || hv.size != it->second.size ||
          hv.mapped_bytes != it->second.e.rounded) {
        return Fail("dump huge " + std::to_string(k.first) + ": not the model's");
      }
    }
    return true;
  }

  // Close: every segment goes back exactly once; afterwards every call is
  // kClosed (or a no-op) and nothing reaches the source.
  bool Close() {
    ops_++;
    const uint64_t releases = src_->release_calls;
    const size_t segments = src_->live_segments();
    a_->Close();
    if (src_->live_segments() != 0) return Fail("Close left segments mapped");
    if (src_->release_calls != releases + segments || src_->bad_releases != 0) {
      return Fail("Close did not release each segment exactly once");
    }
    const uint64_t acquires = src_->acquire_calls, releases_after = src_->release_calls;
    alloc::Handle h;
    alloc::SourceError err;
    uint32_t count = 0;
    if (a_->Alloc(16, false, 1, &h, &err) != alloc::Status::kClosed) return Fail("Alloc after Close");
    if (a_->Alloc(opt_.huge_threshold + 1, false, 1, &h, &err) != alloc::Status::kClosed) {
      return Fail("huge Alloc after Close");
    }
    for (const auto& kv : live_) {
      const Key& k = kv.first;
      const alloc::Arena::Ref ref = RefOf(k, kv.second);
      if (a_->Free(ref) != alloc::Status::kClosed || a_->Retain(ref, &count) != alloc::Status::kClosed ||
          a_->Release(ref, &count) != alloc::Status::kClosed ||
          a_->RefCount(ref, &count) != alloc::Status::kClosed) {
        return Fail(Name("after Close", k, ref.length) + ": not kClosed");
      }
      if (a_->FindSegment(k.first) != nullptr) return Fail("FindSegment after Close");
    }
    if (a_->Trim() != 0) return Fail("Trim after Close gave bytes back");
    if (a_->Decay() != 0) return Fail("Decay after Close did something");
    a_->Reset();
    a_->Close();
    if (src_->acquire_calls != acquires || src_->release_calls != releases_after) {
      return Fail("the source was called after Close");
    }
    const alloc::Stats s = a_->GetStats();
    if (s.live_allocations != 0 || s.used_bytes != 0 || s.allocated_bytes != 0 || s.mapped_bytes != 0 ||
        s.chunks != 0 || s.huge_allocations != 0 || s.huge_bytes != 0 || s.spare_bytes != 0) {
      return Fail("Stats after Close are not empty");
    }
    if (!a_->closed()) return Fail("closed() is false after Close");
    live_.clear();
    order_.clear();
    idle_.clear();
    spares_given_back_ += spares_.size();
    spares_.clear();
    spare_bytes_ = 0;
    return true;
  }

 private:
  using Key = std::pair<uint32_t, size_t>;  // (segment id, offset)
  struct Live {
    size_t size = 0;
    Expect e{Kind::kSmall, 0, 0};
    uint32_t tag = 0;
    uint32_t refs = 1;
    size_t index = 0;  // in order_
    alloc::Segment* seg = nullptr;  // its segment (for a huge one: kept as a spare when freed)
  };
  // A freed huge allocation's mapping the arena keeps (arena.h, spare_).
  struct Spare {
    alloc::Segment* seg;
    size_t size;
    bool decayed;
  };
  struct Freed {
    uint32_t segment;
    size_t offset, size;
    uint32_t serial;
  };

  static size_t RoundUp(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

  static std::string Name(const std::string& op, const Key& k, size_t size) {
    return op + "(segment " + std::to_string(k.first) + ", offset " + std::to_string(k.second) +
           ", length " + std::to_string(size) + ")";
  }

  bool Fail(const std::string& msg) {
    if (error_.empty()) error_ = "op " + std::to_string(ops_) + ": " + msg;
    return false;
  }

  // A slab's pages in this arena: capped at the chunk's page count.
  uint32_t SlabPagesOf(uint32_t cls) const {
    return alloc::SlabPages(cls, opt_.page_size, static_cast<uint32_t>(opt_.chunk_size / opt_.page_size));
  }

  alloc::Arena::Ref RefOf(const Key& k, const Live& l) const {
    return alloc::Arena::Ref{k.first, k.second, l.size, l.tag};
  }

  // Chunks some live allocation is in.
  size_t UsedChunks() const {
    std::set<uint32_t> used;
    for (const auto& kv : live_) {
      if (kv.second.e.kind != Kind::kHuge) used.insert(kv.first.first);
    }
    return used.size();
  }

  // The newest spare of `mapped` bytes, or -1.
  int NewestSpare(size_t mapped) const {
    for (size_t i = spares_.size(); i-- > 0;) {
      if (spares_[i].size == mapped) return static_cast<int>(i);
    }
    return -1;
  }

  // Whether the source's DiscardLazily works on this (live) segment:
  // anonymous memory where the platform has MADV_FREE.
  static bool CanDiscardLazily(alloc::Segment* seg) {
    return platform::HasDiscardLazily() &&
           static_cast<MapSegment*>(seg)->mapping.backing == platform::Backing::kAnonymous;
  }

  // The spares after an Alloc (status `st`), against what the arena and the
  // source say. A huge request with a spare of its mapped size (take >= 0)
  // takes the newest: no Acquire. Otherwise only MakeRoom gives spares back,
  // all of them at once, and only when that makes the room: the request is
  // `tight`, the mapped bytes MakeRoom saw (the spares in, the empty chunks
  // gone) plus `need` pass maxBytes, and an Acquire follows. Whatever else
  // went back to the source is whole chunks. Sets *spare_releases to the
  // Release calls that were spares; drops them from the model.
  bool SparesAfterAlloc(const Expect& e, alloc::Status st, int take, bool tight, bool refused,
                        size_t need, uint64_t acquire_calls, uint64_t acquired, uint64_t releases,
                        size_t released_bytes, const std::string& what, size_t* spare_releases) {
    *spare_releases = 0;
    const alloc::Stats s = a_->GetStats();
    const uint64_t released = src_->release_calls - releases;
    const size_t bytes_back = src_->released_bytes - released_bytes;
    const bool ok = st == alloc::Status::kOk;
    if (take >= 0) {
      if (!ok) return Fail(what + ": " + StatusName(st) + " although a spare of its size was kept");
      if (src_->acquire_calls != acquire_calls) return Fail(what + ": mapped anew although a spare of its size was kept");
      if (s.spare_bytes != spare_bytes_ - spares_[take].size) {
        return Fail(what + ": spare bytes " + std::to_string(s.spare_bytes) + " after taking a spare, model " +
                    std::to_string(spare_bytes_ - spares_[take].size));
      }
    } else if (e.kind == Kind::kHuge && ok && src_->acquire_calls != acquire_calls + 1) {
      return Fail(what + ": huge allocation without exactly one Acquire");
    }
    if (refused && s.spare_bytes != 0) return Fail(what + ": the source refused and the spares stayed");
    bool went = false;
    if (take < 0 && s.spare_bytes != spare_bytes_) {
      if (s.spare_bytes != 0) {
        return Fail(what + ": spare bytes " + std::to_string(s.spare_bytes) + ", model " +
                    std::to_string(spare_bytes_) + " (kept) or 0 (given back)");
      }
      went = true;
      if (!tight && !refused) return Fail(what + ": gave the spares back with room to spare");
      const uint64_t asked = src_->acquire_calls - acquire_calls;
      if (asked == 0 || asked > (refused ? 2u : 1u)) {
        return Fail(what + ": gave the spares back, then asked the source " + std::to_string(asked) + " times");
      }
      const size_t fresh = src_->acquired != acquired ? need : 0;  // the new segment, if it came
      if (!refused && s.mapped_bytes - fresh + spare_bytes_ + need <= opt_.max_bytes) {
        return Fail(what + ": gave the spares back although there was room beside them");
      }
    }
    const size_t spare_n = went ? spares_.size() : 0, spare_b = went ? spare_bytes_ : 0;
    if (released < spare_n || bytes_back != (released - spare_n) * opt_.chunk_size + spare_b) {
      return Fail(what + ": " + std::to_string(released) + " segments of " + std::to_string(bytes_back) +
                  " bytes released; model: whole chunks" +
                  (went ? " and " + std::to_string(spare_n) + " spares of " + std::to_string(spare_b) + " bytes"
                        : std::string()));
    }
    if (went) {
      *spare_releases = spare_n;
      spares_given_back_ += spare_n;
      spares_for_room_ += spare_n;
      spares_.clear();
      spare_bytes_ = 0;
    }
    return true;
  }

  // A huge allocation was just freed (its Live is `l`): its mapping is kept
  // as the newest spare when the source recycles it -- never with
  // zero_on_free, never above kSpareMaxBytes (the source is not even asked
  // then) -- and past kSpareMax spares or kSpareKeepBytes the oldest spares
  // go back; else it goes back at once.
  bool HugeFreed(const Live& l, uint64_t releases, size_t released_bytes, uint64_t recycles,
                 const std::string& what) {
    const bool asked = !opt_.zero_on_free && l.e.rounded <= alloc::kSpareMaxBytes;
    if (src_->recycle_calls - recycles != (asked ? 1u : 0u)) {
      return Fail(what + ": Recycle asked " + std::to_string(src_->recycle_calls - recycles) + " times");
    }
    uint64_t want = 1;
    size_t want_bytes = l.e.rounded;
    if (asked && src_->recycle_enabled) {
      spares_.push_back({l.seg, l.e.rounded, false});
      spare_bytes_ += l.e.rounded;
      spares_kept_++;
      want = 0;
      want_bytes = 0;
      while (spares_.size() > opt_.spare_max || spare_bytes_ > alloc::kSpareKeepBytes) {
        want++;
        want_bytes += spares_.front().size;
        spare_bytes_ -= spares_.front().size;
        spares_.erase(spares_.begin());
        spares_evicted_++;
      }
    }
    if (src_->release_calls - releases != want || src_->released_bytes - released_bytes != want_bytes) {
      return Fail(what + ": " + std::to_string(src_->release_calls - releases) + " Release calls of " +
                  std::to_string(src_->released_bytes - released_bytes) + " bytes, model " +
                  std::to_string(want) + " of " + std::to_string(want_bytes) + " (spares " +
                  std::to_string(spares_.size()) + ")");
    }
    return true;
  }

  // After a refused call: nothing changed, except that an allocation needing
  // `need` more mapped bytes past maxBytes (need > 0) may have made MakeRoom()
  // give back every empty slab and empty chunk first, and so does a refusal
  // of the source (`gave_back`: GiveBackUnused).
  // With `spares_went`, MakeRoom or the refusal gave back every spare too.
  bool Refused(const alloc::Stats& before, uint64_t acquire_calls, size_t need, const std::string& what,
               bool spares_went = false, bool gave_back = false) {
    if (src_->acquire_calls != acquire_calls) return Fail(what + ": unexpected Acquire calls");
    const alloc::Stats s = a_->GetStats();
    std::string diff;
    if (SameStats(before, s, &diff)) return CheckStats(what);
    if (!gave_back && (need == 0 || before.mapped_bytes + need <= opt_.max_bytes)) {
      return Fail(what + " changed Stats: " + diff);
    }
    // MakeRoom ran: the allocations are untouched, only empty memory went.
    alloc::Stats expect = before;
    expect.mapped_bytes = s.mapped_bytes;
    expect.chunks = s.chunks;
    expect.free_bytes = s.free_bytes;
    if (spares_went) expect.spare_bytes = 0;
    for (size_t c = 0; c < expect.classes.size() && c < s.classes.size(); c++) {
      expect.classes[c].capacity = s.classes[c].capacity;
      if (s.classes[c].capacity > before.classes[c].capacity) return Fail(what + ": a class grew");
    }
    if (!SameStats(expect, s, &diff)) return Fail(what + " changed Stats beyond MakeRoom: " + diff);
    if (s.chunks > before.chunks ||
        s.mapped_bytes != before.mapped_bytes - (before.chunks - s.chunks) * opt_.chunk_size -
                              (spares_went ? before.spare_bytes : 0)) {
      return Fail(what + ": MakeRoom's chunk accounting");
    }
    if (s.chunks != UsedChunks()) return Fail(what + ": MakeRoom left an empty chunk mapped");
    return CheckStats(what);
  }

  // A chunk allocation refused for want of a new chunk: its class has no free
  // slot (nor empty slab) and no free run is long enough -- checked after the
  // call. If MakeRoom freed empty slabs into a run that fits, that is the
  // known bug (tolerated when tolerate_exhausted_with_room).
  bool NoRoomForChunkAlloc(const alloc::Stats& before, const Expect& e, const std::string& what) {
    const alloc::Stats s = a_->GetStats();
    // (Stats.classes may stop short of an align-lifted class: known bug 2.)
    if (e.kind == Kind::kSmall && e.cls < s.classes.size() &&
        s.classes[e.cls].capacity > s.classes[e.cls].live) {
      return Fail(what + " although its class has a free slot");
    }
    const size_t need_pages =
        e.kind == Kind::kSmall ? SlabPagesOf(e.cls) : e.rounded / opt_.page_size;
    const int64_t longest = LongestFreeRun();
    if (static_cast<size_t>(longest) < need_pages) return true;
    std::string diff;
    const bool made_room = !SameStats(before, s, &diff);
    if (made_room && tolerate_exhausted_with_room) {
      exhausted_with_room_++;
      return true;
    }
    return Fail(what + " although a free run of " + std::to_string(longest) + " pages fits " +
                std::to_string(need_pages) + (made_room ? " (after MakeRoom released empty slabs)" : ""));
  }

  // The longest free run in any chunk, in pages.
  int64_t LongestFreeRun() {
    int64_t longest = 0;
    for (const alloc::ChunkDump& c : a_->Dump().chunks) {
      for (const alloc::RunDump& r : c.runs) {
        if (r.kind == alloc::RunDump::Kind::kFree && r.pages > longest) longest = r.pages;
      }
    }
    return longest;
  }

  // With zero_on_free, the bytes of a freed chunk allocation read as zeros.
  bool WipedIfSecure(const Key& k, size_t size, const std::string& what) {
    if (!opt_.zero_on_free) return true;
    alloc::Segment* seg = a_->FindSegment(k.first);
    if (seg == nullptr) return true;  // the chunk itself went
    const uint8_t* p = seg->base + k.second;
    for (size_t i = 0; i < size; i++) {
      if (p[i] != 0) return Fail(what + ": zero_on_free left byte " + std::to_string(i) + " set");
    }
    return true;
  }

  // The allocation's segment is live and its bytes hold its pattern.
  bool Intact(const Key& k, const Live& l, const std::string& what) {
    alloc::Segment* seg = a_->FindSegment(k.first);
    if (seg == nullptr || !src_->owns(seg)) return Fail(what + ": segment gone");
    if (k.second + l.size > seg->size) return Fail(what + ": past its segment");
    const uint8_t* p = seg->base + k.second;
    for (size_t i = 0; i < l.size; i++) {
      if (p[i] != PatternByte(l.tag, i)) {
        return Fail(what + ": byte " + std::to_string(i) + " overwritten");
      }
    }
    return true;
  }

  // [off, off + extent) of segment k.first meets no live allocation.
  bool NoOverlap(const Key& k, size_t extent, const std::string& what) {
    auto next = live_.lower_bound(k);
    if (next != live_.end() && next->first.first == k.first && next->first.second < k.second + extent) {
      return Fail(what + ": overlaps the live allocation at offset " + std::to_string(next->first.second));
    }
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      const Live& p = prev->second;
      const size_t pend = p.e.kind == Kind::kHuge ? SIZE_MAX : prev->first.second + p.e.rounded;
      if (prev->first.first == k.first && pend > k.second) {
        return Fail(what + ": overlaps the live allocation at offset " + std::to_string(prev->first.second));
      }
    }
    return true;
  }

  // Idle chunks (arena.h): a chunk whose last live allocation was freed joins
  // idle_, the longest idle first; a chunk that gets an allocation leaves it
  // and the bytes counted since an idle chunk was last needed start again
  // from 0 (as they do when the list was empty). After every successful
  // Alloc while some chunk is idle the request's size is counted, and at
  // kIdleKeepChunks chunks' worth the longest idle chunk goes back (unless
  // it is the only chunk).
  void NoteFreed(uint32_t chunk) {
    auto it = live_.lower_bound(Key(chunk, 0));
    if (it != live_.end() && it->first.first == chunk) return;  // still busy
    if (idle_.empty()) idle_bytes_ = 0;
    idle_.push_back(chunk);
  }

  // The idle chunks after a successful Alloc of `size` into `segment`, and
  // the one Release call the arena must (or must not) have made for them.
  bool IdleAfterAlloc(const alloc::Stats& before, size_t size, const Expect& e, uint32_t segment, bool tight,
                      bool refused, uint64_t acquire_calls, uint64_t releases, const std::string& what) {
    const uint64_t released = src_->release_calls - releases;
    if (refused) {
      // The source refused: every empty chunk went back, so none is idle,
      // and the run that held the allocation was in a chunk in use.
      if (a_->GetStats().chunks != UsedChunks()) {
        return Fail(what + ": an empty chunk stayed mapped after the source refused");
      }
      idle_.clear();
      return true;
    }
    if (tight && (e.kind == Kind::kHuge || released >= 2 || (released == 1 && idle_.size() <= 1))) {
      // MakeRoom() ran (a huge one always does when tight), gave back every
      // empty chunk and so left no chunk idle; a chunk mapped after it is busy.
      if (!idle_.empty() && released < idle_.size()) return Fail(what + ": MakeRoom kept an idle chunk");
      idle_.clear();
      return true;
    }
    if (e.kind != Kind::kHuge) {
      auto it = std::find(idle_.begin(), idle_.end(), segment);
      if (it != idle_.end()) {
        idle_.erase(it);
        idle_bytes_ = 0;
      }
    }
    uint64_t want = 0;
    if (!idle_.empty()) {
      idle_bytes_ += size;
      const uint64_t chunks = before.chunks + (e.kind != Kind::kHuge && src_->acquire_calls != acquire_calls ? 1 : 0);
      if (idle_bytes_ >= alloc::kIdleKeepChunks * opt_.chunk_size && chunks >= 2) {
        const uint32_t gone = idle_.front();
        idle_.erase(idle_.begin());
        idle_bytes_ = 0;
        want = 1;
        idle_releases_++;
        if (a_->FindSegment(gone) != nullptr) {
          return Fail(what + ": idle chunk " + std::to_string(gone) + " not given back after " +
                      std::to_string(alloc::kIdleKeepChunks) + " chunks' worth of allocations");
        }
      }
    }
    if (released != want) {
      return Fail(what + ": " + std::to_string(released) + " segments released, model " + std::to_string(want) +
                  " (idle chunks " + std::to_string(idle_.size()) + ", bytes since one was needed " +
                  std::to_string(idle_bytes_) + ")");
    }
    return true;
  }

  // Drops `k` from the model as freed.
  void Forget(const Key& k) {
    auto it = live_.find(k);
    const Live l = it->second;
    live_.erase(it);
    const Key last = order_.back();
    order_[l.index] = last;
    order_.pop_back();
    if (last != k) live_[last].index = l.index;
    total_frees_++;
    used_ -= l.size;
    allocated_ -= l.e.rounded;
    if (l.e.kind == Kind::kHuge) {
      huge_count_--;
      huge_bytes_ -= l.e.rounded;
    } else {
      class_live_[l.e.cls]--;
    }
    Freed f{k.first, k.second, l.size, l.tag};
    if (freed_.size() < 64) {
      freed_.push_back(f);
    } else {
      freed_[freed_next_++ % freed_.size()] = f;
    }
  }

  alloc::Arena* a_;
  MapSource* src_;
  const alloc::ArenaOptions opt_;
  const size_t gran_;
  std::map<Key, Live> live_;
  std::vector<Key> order_;      // live keys, for picking one at random
  std::vector<Freed> freed_;    // recently freed handles, for stale frees
  size_t freed_next_ = 0;
  uint32_t next_tag_ = 1;
  uint64_t ops_ = 0;
  uint64_t total_allocs_ = 0, total_frees_ = 0;
  size_t used_ = 0, allocated_ = 0, peak_ = 0;
  uint64_t huge_count_ = 0;
  size_t huge_bytes_ = 0;
  uint64_t class_live_[alloc::kMaxClasses] = {};
  uint64_t exhausted_with_room_ = 0;
  std::vector<uint32_t> idle_;  // idle chunk ids, longest idle first (NoteFreed)
  uint64_t idle_bytes_ = 0;
  uint64_t idle_releases_ = 0;
  std::vector<Spare> spares_;   // kept mappings, oldest first (HugeFreed)
  size_t spare_bytes_ = 0;
  uint64_t spares_kept_ = 0, spares_reused_ = 0, spares_evicted_ = 0, spares_given_back_ = 0,
           spares_decayed_ = 0, spares_for_room_ = 0;
  std::string error_;
};

}  // namespace test
}  // namespace mmap_pool

#endif  // MMAP_POOL_TEST_ARENA_MODEL_H_
