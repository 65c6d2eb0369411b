// Threads: JS thread only; see js_segments.h for the lifetime rules.
#include "js_segments.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mmap_pool {
namespace addon {

namespace {
void FinalizeSegmentBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  static_cast<JsSegment*>(hint)->Unref();
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
  platform::Unmap(&mapping);
  delete this;
}

JsSegmentSource::JsSegmentSource(napi_env env, platform::Backing backing,
                                 std::string dir, bool heap, napi_value heap_factory,
                                 bool secure, bool huge_pages, bool prefault)
    : env_(env),
      backing_(backing),
      dir_(std::move(dir)),
      heap_(heap),
      secure_(secure),
      huge_pages_(huge_pages),
      prefault_(prefault) {
  if (heap_ && heap_factory != nullptr) napi_create_reference(env_, heap_factory, 1, &heap_factory_);
}

JsSegmentSource::~JsSegmentSource() {
  if (heap_factory_ != nullptr) napi_delete_reference(env_, heap_factory_);
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
  bool ok = platform::Map(backing_, dir_.c_str(), size + guard_bytes, &seg->mapping, &map_err, flags) &&
            (guard_bytes == 0 || platform::ProtectNone(seg->mapping, size, guard_bytes, &map_err)) &&
            (!secure_ || platform::Lock(seg->mapping, 0, size, &map_err));
  if (!ok) {
    platform::Unmap(&seg->mapping);
    delete seg;
    err->code = map_err.code;
    err->syscall = map_err.syscall;
    return nullptr;
  }
  if (secure_) platform::ExcludeFromDumps(seg->mapping, 0, size);
  if (prefault_ && !secure_) platform::Prefault(seg->mapping, 0, size);
  seg->base = seg->mapping.addr;
  seg->size = size;
  live_.insert(seg);
  return seg;
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
  seg->refs++;
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
  seg->refs++;
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
  // Reachable memory stays mapped until its ArrayBuffer's finalizer.
  if (!reachable) platform::Unmap(&seg->mapping);
  seg->Unref();
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
  if (napi_detach_arraybuffer(env_, buffer) != napi_ok) return false;
  seg->detached_here = true;
  return true;
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
