// Threads: JS thread only; see js_segments.h for the lifetime rules.
#include "js_segments.h"

#include <cerrno>

namespace mmap_pool {
namespace addon {

namespace {
void FinalizeSegmentBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  static_cast<JsSegment*>(hint)->Unref();
}
}  // namespace

void JsSegment::Unref() {
  if (--refs > 0) return;
  platform::Unmap(&mapping);
  delete this;
}

JsSegmentSource::JsSegmentSource(napi_env env, platform::Backing backing,
                                 std::string dir, bool heap, napi_value heap_factory)
    : env_(env), backing_(backing), dir_(std::move(dir)), heap_(heap) {
  if (heap_ && heap_factory != nullptr) napi_create_reference(env_, heap_factory, 1, &heap_factory_);
}

JsSegmentSource::~JsSegmentSource() {
  if (heap_factory_ != nullptr) napi_delete_reference(env_, heap_factory_);
}

alloc::Segment* JsSegmentSource::Acquire(size_t size, alloc::SourceError* err) {
  auto* seg = new JsSegment();
  if (heap_) {
    // new ArrayBuffer(size) in JS: a RangeError there is an error here.
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
      bool pending = false;
      napi_is_exception_pending(env_, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env_, &ignored);
      }
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
  platform::MapError map_err;
  if (!platform::Map(backing_, dir_.c_str(), size, &seg->mapping, &map_err)) {
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

napi_value JsSegmentSource::Expose(alloc::Segment* segment) {
  auto* seg = static_cast<JsSegment*>(segment);
  napi_value buffer = nullptr;
  if (seg->buffer_ref != nullptr) {
    napi_get_reference_value(env_, seg->buffer_ref, &buffer);
    if (buffer != nullptr) return buffer;
    napi_delete_reference(env_, seg->buffer_ref);  // collected: make a new one
    seg->buffer_ref = nullptr;
  }
  if (heap_) return nullptr;  // a heap segment's buffer is never collected first
  if (napi_create_external_arraybuffer(env_, seg->base, seg->size, FinalizeSegmentBuffer,
                                       seg, &buffer) != napi_ok) {
    return nullptr;
  }
  seg->refs++;
  napi_create_reference(env_, buffer, 0, &seg->buffer_ref);
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
      if (buffer != nullptr) {
        reachable = napi_detach_arraybuffer(env_, buffer) != napi_ok;
      }
    }
    napi_delete_reference(env_, seg->buffer_ref);
    seg->buffer_ref = nullptr;
  }
  // Reachable memory stays mapped until its ArrayBuffer's finalizer.
  if (!reachable) platform::Unmap(&seg->mapping);
  seg->Unref();
}

void JsSegmentSource::DetachAll() {
  if (abandoned_) return;
  for (JsSegment* seg : live_) {
    if (seg->buffer_ref == nullptr) continue;
    napi_value buffer = nullptr;
    napi_get_reference_value(env_, seg->buffer_ref, &buffer);
    if (buffer != nullptr) napi_detach_arraybuffer(env_, buffer);
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
