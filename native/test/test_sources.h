// SegmentSources for the native tests: the addon's JsSegmentSource without
// Node. MapSource maps each segment with native/platform (anonymous or file
// backing) and counts every call, so a test can assert how often the arena
// acquired, released and discarded, and that no segment is released twice or
// left behind. FailingSource is a MapSource that refuses after N acquisitions;
// FailCalls makes the next N calls fail, whatever came before.
//
// Threads: the Arena calls its source with the arena mutex held, so the
// counters need no lock of their own; read them only while no other thread
// is inside the arena (or under the same happens-before, e.g. after join()).
#ifndef MMAP_POOL_TEST_TEST_SOURCES_H_
#define MMAP_POOL_TEST_TEST_SOURCES_H_

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "alloc/segment.h"
#include "platform/mapping.h"

namespace mmap_pool {
namespace test {

// The directory for file-backed test mappings: /tmp on POSIX; on Windows
// %TEMP% (else %TMP%), as "/tmp" there names \tmp on the current drive
// (which Wine happens to map to the host's /tmp).
inline std::string TempDir() {
#if defined(_WIN32)
  for (const char* name : {"TEMP", "TMP"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return v;
  }
#endif
  return "/tmp";
}

struct MapSegment : alloc::Segment {
  platform::Mapping mapping;
};

class MapSource : public alloc::SegmentSource {
 public:
  explicit MapSource(platform::Backing backing = platform::Backing::kAnonymous,
                     std::string dir = TempDir())
      : backing_(backing), dir_(std::move(dir)) {}

  ~MapSource() override {
    // A test that forgot to destroy or close its Arena first would leak
    // mappings here; make that loud rather than silent.
    if (!live_.empty()) {
      std::fprintf(stderr, "MapSource: %zu segment(s) never released\n", live_.size());
      std::abort();
    }
  }

  alloc::Segment* Acquire(size_t size, alloc::SourceError* err) override {
    acquire_calls++;
    if (fail_calls_ > 0 || (fail_after_ >= 0 && acquired >= static_cast<uint64_t>(fail_after_))) {
      if (fail_calls_ > 0) fail_calls_--;
      failed_acquires++;
      err->code = fail_code_;
      err->syscall = "test-acquire";
      return nullptr;
    }
    auto* seg = new MapSegment();
    platform::MapError map_err;
    if (!platform::Map(backing_, dir_.c_str(), size, &seg->mapping, &map_err)) {
      delete seg;
      failed_acquires++;
      err->code = map_err.code;
      err->syscall = map_err.syscall;
      return nullptr;
    }
    seg->base = seg->mapping.addr;
    seg->size = size;
    live_.insert(seg);
    acquired++;
    acquired_bytes += size;
    live_bytes += size;
    return seg;
  }

  // Huge segments: with `guard_huge`, mapped one granule longer with that
  // last granule made inaccessible (as the addon does), so a write past the
  // end faults; the Segment's size is still exactly `size`.
  alloc::Segment* AcquireHuge(size_t size, alloc::SourceError* err) override {
    huge_acquire_calls++;
    if (!guard_huge) return Acquire(size, err);
    alloc::Segment* s = Acquire(size + Granularity(), err);
    if (s == nullptr) return nullptr;
    auto* seg = static_cast<MapSegment*>(s);
    platform::MapError map_err;
    if (!platform::ProtectNone(seg->mapping, size, Granularity(), &map_err)) {
      bad_guards++;
    }
    seg->size = size;
    acquired_bytes -= Granularity();
    live_bytes -= Granularity();
    return seg;
  }

  void Release(alloc::Segment* segment) override {
    release_calls++;
    auto* seg = static_cast<MapSegment*>(segment);
    if (live_.erase(seg) == 0) {
      bad_releases++;  // released twice, or never acquired here: do not touch it
      return;
    }
    released_bytes += seg->size;
    live_bytes -= seg->size;
    platform::Unmap(&seg->mapping);
    delete seg;
  }

  size_t Discard(alloc::Segment* segment, size_t offset, size_t len, bool* zeroed) override {
    discard_calls++;
    auto* seg = static_cast<MapSegment*>(segment);
    if (live_.count(seg) == 0 || offset + len > seg->size || len == 0) bad_discards++;
    if (!discard_enabled) {
      *zeroed = false;
      return 0;
    }
    *zeroed = platform::Discard(seg->mapping, offset, len);
    discarded_bytes += len;
    return len;
  }

  // With `recycle_enabled`, as the addon's anonymous source: freed huge
  // segments may be kept, and DiscardLazily hands their pages to the OS
  // (platform::DiscardLazily; false for file backing, as in the addon).
  bool Recycle(alloc::Segment* segment) override {
    recycle_calls++;
    if (live_.count(static_cast<MapSegment*>(segment)) == 0) bad_recycles++;
    return recycle_enabled;
  }

  bool DiscardLazily(alloc::Segment* segment) override {
    lazy_discard_calls++;
    auto* seg = static_cast<MapSegment*>(segment);
    if (live_.count(seg) == 0) bad_recycles++;
    return platform::DiscardLazily(seg->mapping, 0, seg->size);
  }

  size_t Granularity() const override { return platform::MapGranularity(); }

  // From now on, Acquire fails (with `code`) once `n` segments have been
  // acquired in total; n < 0 turns failing off.
  void FailAfter(int64_t n, int code = ENOMEM) {
    fail_after_ = n;
    fail_code_ = code;
  }
  // Only the next acquisition fails (until Disarm or FailAfter(-1)).
  void FailNext(int code) { FailAfter(static_cast<int64_t>(acquired), code); }
  void Disarm() {
    fail_after_ = -1;
    fail_calls_ = 0;
  }
  // The next `n` Acquire calls fail with `code`, whatever came before; the
  // ones after them map (unless FailAfter says otherwise): an OS that
  // refuses until the arena gives something back.
  void FailCalls(uint64_t n, int code = ENOMEM) {
    fail_calls_ = n;
    fail_code_ = code;
  }

  size_t live_segments() const { return live_.size(); }
  bool owns(const alloc::Segment* s) const {
    return live_.count(const_cast<MapSegment*>(static_cast<const MapSegment*>(s))) != 0;
  }

  uint64_t acquire_calls = 0;     // including failed ones (and those for huge segments)
  uint64_t huge_acquire_calls = 0;
  uint64_t bad_guards = 0;        // a guard page could not be protected
  uint64_t acquired = 0;          // successful acquisitions
  uint64_t failed_acquires = 0;
  uint64_t release_calls = 0;
  uint64_t bad_releases = 0;      // Release of a segment not live here
  uint64_t discard_calls = 0;
  uint64_t recycle_calls = 0;
  uint64_t lazy_discard_calls = 0;
  uint64_t bad_recycles = 0;      // Recycle or DiscardLazily of a segment not live here
  uint64_t bad_discards = 0;      // Discard outside a live segment, or empty
  size_t acquired_bytes = 0;
  size_t released_bytes = 0;
  size_t live_bytes = 0;
  size_t discarded_bytes = 0;
  bool discard_enabled = true;    // false: act like a heap source (gives back nothing)
  bool guard_huge = false;        // huge segments get an inaccessible page after them
  bool recycle_enabled = false;   // true: freed huge segments may be kept as spares

 private:
  platform::Backing backing_;
  std::string dir_;
  int64_t fail_after_ = -1;
  uint64_t fail_calls_ = 0;
  int fail_code_ = ENOMEM;
  std::set<MapSegment*> live_;
};

// The failing source the brief asks for: maps normally for the first `n`
// acquisitions, then returns nullptr with `code` as the error.
class FailingSource : public MapSource {
 public:
  explicit FailingSource(int64_t n, int code = ENOMEM) { FailAfter(n, code); }
};

}  // namespace test
}  // namespace mmap_pool

#endif  // MMAP_POOL_TEST_TEST_SOURCES_H_
