// Segment sources for the addon: where a pool's chunks and huge allocations
// come from, and how each one's life is tied to the ArrayBuffer JS sees.
//
// Mapped (anonymous / file) segment lifetime:
//
//   Acquire ──► refs = 1 (arena) ──Expose──► refs = 2 (arena + ArrayBuffer)
//        Release (arena done):     detach the ArrayBuffer if it is alive, unmap
//                                  now if nothing in JS can still reach the
//                                  memory, then drop the arena's ref
//        Recycle (huge, kept):     detach the ArrayBuffer, forget it; the
//                                  mapping stays, and the next Expose makes
//                                  a new ArrayBuffer over it
//        ArrayBuffer finalizer:    drop the ArrayBuffer's ref
//        refs reaches 0:           unmap (if not yet) and delete
//
// So memory is unmapped only when no JS view can reach it: after a detach,
// or after the ArrayBuffer was collected. A detach counts only when it was
// made here: an ArrayBuffer found detached by someone else was transferred
// (postMessage moves its memory to another thread, where Node 24 and later
// no longer let the pool forbid it: lib/segment-table.ts), so its memory
// stays mapped until that ArrayBuffer's finalizer. When a pool is collected without
// close() the arena lets go without detaching ("abandon"), and a chunk that
// Buffers still point into stays mapped until its ArrayBuffer's finalizer.
//
// Heap segments are ArrayBuffers made by JS (`new ArrayBuffer(n)`, which
// throws a RangeError instead of aborting the process the way a failed
// napi_create_arraybuffer would); the segment holds a strong reference.
//
// Threads: the JS thread of the segment's environment only (the arena calls
// Acquire and Release from Node-API callbacks, finalizers and the env
// cleanup hook, all on that thread).
#ifndef MMAP_POOL_ADDON_JS_SEGMENTS_H_
#define MMAP_POOL_ADDON_JS_SEGMENTS_H_

#include <node_api.h>

#include <string>
#include <unordered_set>

#include "../alloc/segment.h"
#include "../platform/mapping.h"

namespace mmap_pool {
namespace addon {

struct JsSegment : alloc::Segment {
  platform::Mapping mapping;  // empty for heap segments
  napi_ref buffer_ref = nullptr;  // weak (mapped) or strong (heap) ref to the ArrayBuffer
  bool detached_here = false;     // buffer_ref's ArrayBuffer was detached by this source
  int refs = 1;

  void Unref();
};

class JsSegmentSource : public alloc::SegmentSource {
 public:
  // `heap_factory`: for the heap backing, a JS function (size) => ArrayBuffer.
  // `secure`: lock every mapping in RAM, keep it out of core dumps and put
  // an inaccessible guard page after it.
  // `huge_pages`: map with platform::kMapHugePages (2 MiB-aligned, advised
  // MADV_HUGEPAGE). `prefault`: fault every new mapping's pages in at once
  // (platform::Prefault). Both are hints: never a failure, no-ops for heap.
  JsSegmentSource(napi_env env, platform::Backing backing, std::string dir,
                  bool heap, napi_value heap_factory, bool secure,
                  bool huge_pages, bool prefault);
  ~JsSegmentSource() override;

  alloc::Segment* Acquire(size_t size, alloc::SourceError* err) override;
  // Huge allocations always get a guard page after them.
  alloc::Segment* AcquireHuge(size_t size, alloc::SourceError* err) override;
  void Release(alloc::Segment* segment) override;
  // Anonymous, not secure, not abandoned: detaches the segment's ArrayBuffer
  // (so no view can reach the bytes a later allocation gets). False
  // otherwise, or when the ArrayBuffer cannot be detached.
  bool Recycle(alloc::Segment* segment) override;
  // platform::DiscardLazily over the whole segment (MADV_FREE).
  bool DiscardLazily(alloc::Segment* segment) override;
  size_t Discard(alloc::Segment* segment, size_t offset, size_t len, bool* zeroed) override;
  size_t Granularity() const override { return platform::MapGranularity(); }
  bool ResidentBytes(alloc::Segment* segment, size_t* out) override;

  // The ArrayBuffer over a segment, created on first use. nullptr when the
  // runtime refuses external ArrayBuffers (`refused` set) or on failure.
  napi_value Expose(alloc::Segment* segment, bool* refused);

  // Whether this runtime hands out external ArrayBuffers; false where it
  // returns napi_no_external_buffers_allowed (Electron's V8 sandbox), or
  // where MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS=1 asks tests to pretend so.
  static bool ExternalBuffersAllowed(napi_env env);

  // A new ArrayBuffer over [offset, offset+len) of a segment, for guarded
  // allocations; it keeps the segment mapped until it is detached or
  // collected. nullptr on failure.
  napi_value ExposeRange(alloc::Segment* segment, size_t offset, size_t len);

  // Detaches the ArrayBuffers of every live segment (before a close unmaps
  // any of them, so no view of this pool is attached while memory goes).
  void DetachAll();

  // From now on Release only lets go: no detaching, no JS values touched.
  // For finalizers and env teardown.
  void Abandon() { abandoned_ = true; }
  bool heap() const { return heap_; }
  // Whether the hints are in force: asked for, on mapped memory, and (for
  // huge pages) something the platform can ask the kernel for.
  bool huge_pages() const { return !heap_ && huge_pages_ && platform::HugePageSize() != 0; }
  bool prefault() const { return !heap_ && prefault_; }

 private:
  // Detaches `buffer`, the ArrayBuffer of `seg`: true when no JS view can
  // reach the memory through it any more (detached here, now or before);
  // false when it cannot be detached or someone else detached it.
  bool DetachHere(JsSegment* seg, napi_value buffer);
  alloc::Segment* AcquireHeap(size_t size, alloc::SourceError* err);
  alloc::Segment* AcquireMapped(size_t size, bool guard, alloc::SourceError* err);

  napi_env env_;
  platform::Backing backing_;
  std::string dir_;
  bool heap_;
  bool secure_;
  bool huge_pages_;
  bool prefault_;
  bool abandoned_ = false;
  napi_ref heap_factory_ = nullptr;
  std::unordered_set<JsSegment*> live_;
};

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_JS_SEGMENTS_H_
