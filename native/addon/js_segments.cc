// Threads: JS thread only; see js_segments.h for the lifetime rules.
#include "js_segments.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "segment_mapping.h"

namespace mmap_pool {
namespace addon {

namespace {
// V8 let go of an ArrayBuffer's memory (its backing store).
void FinalizeSegmentBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  static_cast<JsSegment*>(hint)->Unref();
}

// An ArrayBuffer object over the segment was collected.
void FinalizeSegmentObject(napi_env /*env*/, void* data, void* /*hint*/) {
  static_cast<JsSegment*>(data)->Unref();
}

// A failed call may leave a JS exception pending (a RangeError from `new
// ArrayBuffer`); the failure is reported as a status instead, so clear it.
void ClearPendingException(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}
}  // namespace

void JsSegment::Unref() {
  if (--refs > 0) return;
  if (waiting_in) waiting_in->segments.erase(this);
  platform::Unmap(&mapping);
  delete this;
}

JsSegmentSource::JsSegmentSource(napi_env env, platform::Backing backing,
                                 std::string dir, bool heap, napi_value heap_factory,
                                 napi_value heap_retire, bool secure, bool huge_pages, bool prefault,
                                 std::shared_ptr<RetiredRanges> retired)
    : env_(env),
      backing_(backing),
      dir_(std::move(dir)),
      heap_(heap),
      secure_(secure),
      huge_pages_(huge_pages),
      prefault_(prefault),
      retired_(std::move(retired)) {
  if (heap_ && heap_factory != nullptr) napi_create_reference(env_, heap_factory, 1, &heap_factory_);
  if (heap_ && heap_retire != nullptr) napi_create_reference(env_, heap_retire, 1, &heap_retire_);
}

JsSegmentSource::~JsSegmentSource() {
  if (heap_factory_ != nullptr) napi_delete_reference(env_, heap_factory_);
  if (heap_retire_ != nullptr) napi_delete_reference(env_, heap_retire_);
}

// MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS=1: tests pretend the runtime refuses them.
static bool SimulatingNoExternalBuffers() {
  const char* simulate = std::getenv("MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS");
  return simulate != nullptr && std::strcmp(simulate, "1") == 0;
}

bool JsSegmentSource::ExternalBuffersAllowed(napi_env env) {
  if (SimulatingNoExternalBuffers()) return false;
  static uint8_t probe_byte = 0;
  napi_value probe;
  napi_status st = napi_create_external_arraybuffer(env, &probe_byte, 1, nullptr, nullptr, &probe);
  if (st == napi_ok) {
    napi_detach_arraybuffer(env, probe);
    return true;
  }
  ClearPendingException(env);
  return st != napi_no_external_buffers_allowed;
}

alloc::Segment* JsSegmentSource::Acquire(size_t size, alloc::SourceError* err) {
  if (heap_) return AcquireHeap(size, err);
  return AcquireMapped(size, secure_, err);
}

alloc::Segment* JsSegmentSource::AcquireHuge(size_t size, alloc::SourceError* err) {
  if (heap_) return AcquireHeap(size, err);
  return AcquireMapped(size, true, err);
}

// new ArrayBuffer(size) made in JS: a RangeError there is an error here.
alloc::Segment* JsSegmentSource::AcquireHeap(size_t size, alloc::SourceError* err) {
  auto* seg = new JsSegment();
  napi_value factory, global, arg, result;
  void* data = nullptr;
  size_t length = 0;
  bool ok = heap_factory_ != nullptr &&
            napi_get_reference_value(env_, heap_factory_, &factory) == napi_ok &&
            napi_get_global(env_, &global) == napi_ok &&
            napi_create_double(env_, static_cast<double>(size), &arg) == napi_ok &&
            napi_call_function(env_, global, factory, 1, &arg, &result) == napi_ok &&
            napi_get_arraybuffer_info(env_, result, &data, &length) == napi_ok &&
            length == size && data != nullptr &&
            napi_create_reference(env_, result, 1, &seg->buffer_ref) == napi_ok;
  if (!ok) {
    ClearPendingException(env_);
    if (seg->buffer_ref != nullptr) napi_delete_reference(env_, seg->buffer_ref);
    delete seg;
    err->code = ENOMEM;
    err->syscall = "ArrayBuffer";
    return nullptr;
  }
  seg->base = static_cast<uint8_t*>(data);
  seg->size = size;
  live_.insert(seg);
  return seg;
}

// A mapping of `size` usable bytes, followed by an inaccessible guard of one
// map granule when `guard`; locked and kept out of core dumps when secure;
// on a huge-page boundary and advised for huge pages with `huge_pages`; its
// usable bytes faulted in with `prefault` (a secure mapping's mlock has done
// that already).
alloc::Segment* JsSegmentSource::AcquireMapped(size_t size, bool guard, alloc::SourceError* err) {
  auto* seg = new JsSegment();
  const size_t guard_bytes = guard ? platform::MapGranularity() : 0;
  const unsigned flags = huge_pages_ ? platform::kMapHugePages : platform::kMapDefault;
  platform::MapError map_err;
  bool ok = (MapOverWaiting(seg, size + guard_bytes, flags) ||
             platform::Map(backing_, dir_.c_str(), size + guard_bytes, &seg->mapping, &map_err, flags)) &&
            PrepareSegmentMapping(seg->mapping, size, guard_bytes, secure_, prefault_, &map_err);
  if (!ok) {
    platform::Unmap(&seg->mapping);
    delete seg;
    err->code = map_err.code;
    err->syscall = map_err.syscall;
    return nullptr;
  }
  seg->base = seg->mapping.addr;
  seg->size = size;
  live_.insert(seg);
  return seg;
}

bool JsSegmentSource::MapOverWaiting(JsSegment* seg, size_t size, unsigned flags) {
  // A huge-page mapping takes only a range that starts on a huge page.
  const size_t huge = (flags & platform::kMapHugePages) != 0 ? platform::HugePageSize() : 0;
  const uintptr_t align_mask = huge != 0 && size >= huge ? huge - 1 : 0;
  JsSegment* from = nullptr;
  for (JsSegment* w : retired_->segments) {
    if (w->mapping.size < size || (reinterpret_cast<uintptr_t>(w->mapping.addr) & align_mask) != 0) continue;
    // The smallest range that fits, so large ones stay for large requests.
    if (from == nullptr || w->mapping.size < from->mapping.size) from = w;
  }
  if (from == nullptr) return MapOverAdjacent(seg, size, flags, align_mask);
  platform::MapError ignored;
  if (!platform::MapOver(backing_, dir_.c_str(), &from->mapping, size, &seg->mapping, &ignored, flags)) {
    return false;  // a fresh mapping is tried, and reports its own error
  }
  if (from->mapping.addr == nullptr) {
    retired_->segments.erase(from);
    from->waiting_in.reset();
  }
  return true;
}

// No one retired range holds `size`, but neighbours in the address space
// together may: the OS places consecutive mappings side by side, so the
// chunks of an emptied pool, or its spare huge mappings, usually form one
// run. The new mapping takes the front of the first run long enough; each
// range it covers gives up what was taken (to its last ref it unmaps only
// the rest). This is what lets an allocation refused for address space
// (RLIMIT_AS) succeed on the retry after idle chunks and spares went back
// while their ArrayBuffers wait for the collector.
bool JsSegmentSource::MapOverAdjacent(JsSegment* seg, size_t size, unsigned flags, uintptr_t align_mask) {
  std::vector<JsSegment*> ranges(retired_->segments.begin(), retired_->segments.end());
  std::sort(ranges.begin(), ranges.end(),
            [](const JsSegment* a, const JsSegment* b) { return a->mapping.addr < b->mapping.addr; });
  for (size_t i = 0; i < ranges.size(); i++) {
    if ((reinterpret_cast<uintptr_t>(ranges[i]->mapping.addr) & align_mask) != 0) continue;
    size_t total = ranges[i]->mapping.size;
    size_t j = i;
    while (total < size && j + 1 < ranges.size() &&
           ranges[j]->mapping.addr + ranges[j]->mapping.size == ranges[j + 1]->mapping.addr) {
      total += ranges[++j]->mapping.size;
    }
    if (total < size) continue;
    platform::Mapping run = ranges[i]->mapping;
    run.size = total;
    platform::MapError ignored;
    if (!platform::MapOver(backing_, dir_.c_str(), &run, size, &seg->mapping, &ignored, flags)) return false;
    const uint8_t* taken_end = seg->mapping.addr + size;
    for (size_t k = i; k <= j; k++) {
      platform::Mapping& m = ranges[k]->mapping;
      const uint8_t* end = m.addr + m.size;
      if (end <= taken_end) {
        m = platform::Mapping();
        retired_->segments.erase(ranges[k]);
        ranges[k]->waiting_in.reset();
      } else {
        m.size = static_cast<size_t>(end - taken_end);
        m.addr = const_cast<uint8_t*>(taken_end);
      }
    }
    return true;
  }
  return false;
}

bool JsSegmentSource::TrackBuffer(JsSegment* seg, napi_value buffer) {
  seg->refs++;  // the memory finalizer, which the ArrayBuffer already carries
  if (napi_add_finalizer(env_, buffer, seg, FinalizeSegmentObject, nullptr, nullptr) != napi_ok) {
    // Without the object's ref a pending job could outlive the memory:
    // nobody may use this ArrayBuffer.
    napi_detach_arraybuffer(env_, buffer);
    return false;
  }
  seg->refs++;
  return true;
}

napi_value JsSegmentSource::Expose(alloc::Segment* segment, bool* refused) {
  auto* seg = static_cast<JsSegment*>(segment);
  napi_value buffer = nullptr;
  *refused = false;
  if (seg->buffer_ref != nullptr) {
    napi_get_reference_value(env_, seg->buffer_ref, &buffer);
    if (buffer != nullptr) return buffer;
    napi_delete_reference(env_, seg->buffer_ref);  // collected: make a new one
    seg->buffer_ref = nullptr;
  }
  if (heap_) return nullptr;  // a heap segment's buffer is never collected first
  // No probe first (ExternalBuffersAllowed): the call itself says so, and a
  // probe per chunk left a Buffer, its ArrayBuffer and their C++ side as
  // garbage until the next GC (~0.1 MiB for 256 chunks).
  if (SimulatingNoExternalBuffers()) {
    *refused = true;
    return nullptr;
  }
  napi_status st = napi_create_external_arraybuffer(env_, seg->base, seg->size, FinalizeSegmentBuffer,
                                                    seg, &buffer);
  if (st != napi_ok) {
    if (st == napi_no_external_buffers_allowed) {
      ClearPendingException(env_);
      *refused = true;
    }
    return nullptr;
  }
  if (!TrackBuffer(seg, buffer)) return nullptr;
  seg->detached_here = false;
  napi_create_reference(env_, buffer, 0, &seg->buffer_ref);
  return buffer;
}

napi_value JsSegmentSource::ExposeRange(alloc::Segment* segment, size_t offset, size_t len) {
  auto* seg = static_cast<JsSegment*>(segment);
  if (heap_ || offset + len > seg->size) return nullptr;
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env_, seg->base + offset, len, FinalizeSegmentBuffer, seg,
                                       &buffer) != napi_ok) {
    return nullptr;
  }
  if (!TrackBuffer(seg, buffer)) return nullptr;
  return buffer;
}

void JsSegmentSource::Release(alloc::Segment* segment) {
  auto* seg = static_cast<JsSegment*>(segment);
  live_.erase(seg);
  bool reachable = false;  // might a JS view still reach the memory?
  if (seg->buffer_ref != nullptr) {
    if (abandoned_) {
      reachable = !heap_;
    } else {
      napi_value buffer = nullptr;
      napi_get_reference_value(env_, seg->buffer_ref, &buffer);
      if (buffer != nullptr) reachable = !DetachHere(seg, buffer);
    }
    napi_delete_reference(env_, seg->buffer_ref);
    seg->buffer_ref = nullptr;
  }
  // Reachable memory stays mapped and untouched until the last finalizer;
  // memory an ArrayBuffer was made for may still be under a pending job.
  if (!reachable) {
    if (seg->refs > 1) {
      Retire(seg);
    } else {
      platform::Unmap(&seg->mapping);
    }
  }
  seg->Unref();
}

void JsSegmentSource::Retire(JsSegment* seg) {
  if (heap_ || seg->mapping.addr == nullptr) return;
  if (platform::Retire(&seg->mapping)) {
    retired_->segments.insert(seg);
    seg->waiting_in = retired_;
  }
}

bool JsSegmentSource::Recycle(alloc::Segment* segment) {
  auto* seg = static_cast<JsSegment*>(segment);
  if (heap_ || secure_ || abandoned_ || backing_ != platform::Backing::kAnonymous ||
      !platform::HasDiscardLazily()) {
    return false;
  }
  if (seg->buffer_ref != nullptr) {
    napi_value buffer = nullptr;
    napi_get_reference_value(env_, seg->buffer_ref, &buffer);
    // A transferred ArrayBuffer may still be in use elsewhere: no reuse.
    if (buffer != nullptr && !DetachHere(seg, buffer)) return false;
    napi_delete_reference(env_, seg->buffer_ref);
    seg->buffer_ref = nullptr;
  }
  return true;
}

bool JsSegmentSource::DetachHere(JsSegment* seg, napi_value buffer) {
  if (seg->detached_here) return true;
  bool detached = false;
  if (napi_is_detached_arraybuffer(env_, buffer, &detached) != napi_ok || detached) return false;
  // Where the memory cannot be moved, a plain detach: V8 frees it now.
  if (!(heap_ && MoveHeapMemory(buffer)) && napi_detach_arraybuffer(env_, buffer) != napi_ok) {
    return false;
  }
  seg->detached_here = true;
  return true;
}

bool JsSegmentSource::MoveHeapMemory(napi_value buffer) {
  napi_value retire, global, ignored;
  bool detached = false;
  bool pending = false;
  // No JS runs while an exception is pending (a terminating worker); that
  // exception is not ours to clear.
  if (napi_is_exception_pending(env_, &pending) != napi_ok || pending) return false;
  bool ok = heap_retire_ != nullptr &&
            napi_get_reference_value(env_, heap_retire_, &retire) == napi_ok && retire != nullptr &&
            napi_get_global(env_, &global) == napi_ok &&
            napi_call_function(env_, global, retire, 1, &buffer, &ignored) == napi_ok &&
            napi_is_detached_arraybuffer(env_, buffer, &detached) == napi_ok && detached;
  if (!ok) ClearPendingException(env_);
  return ok;
}

bool JsSegmentSource::DiscardLazily(alloc::Segment* segment) {
  auto* seg = static_cast<JsSegment*>(segment);
  return !heap_ && platform::DiscardLazily(seg->mapping, 0, seg->size);
}

bool JsSegmentSource::ResidentBytes(alloc::Segment* segment, size_t* out) {
  if (heap_) return false;  // V8's memory: not ours to ask about
  auto* seg = static_cast<JsSegment*>(segment);
  return platform::ResidentBytes(seg->mapping, seg->size, out);
}

void JsSegmentSource::DetachAll() {
  if (abandoned_) return;
  for (JsSegment* seg : live_) {
    if (seg->buffer_ref == nullptr) continue;
    napi_value buffer = nullptr;
    napi_get_reference_value(env_, seg->buffer_ref, &buffer);
    if (buffer != nullptr) DetachHere(seg, buffer);
  }
}

size_t JsSegmentSource::Discard(alloc::Segment* segment, size_t offset, size_t len,
                                bool* zeroed) {
  if (heap_) {
    *zeroed = false;
    return 0;
  }
  auto* seg = static_cast<JsSegment*>(segment);
  *zeroed = platform::Discard(seg->mapping, offset, len);
  return len;
}

}  // namespace addon
}  // namespace mmap_pool
