// Segment sources for the addon: where a pool's chunks and huge allocations
// come from, and how each one's life is tied to the ArrayBuffer JS sees.
//
// Mapped (anonymous / file) segment lifetime:
//
//   Acquire ──► refs = 1 (arena) ──Expose──► refs = 3 (arena + the
//        ArrayBuffer's memory + the ArrayBuffer object; ExposeRange: +2 each)
//        Release (arena done):     detach the ArrayBuffer if it is alive;
//                                  then, if nothing in JS can still reach the
//                                  memory: unmap now when no ArrayBuffer over
//                                  it remains, else retire it (below); then
//                                  drop the arena's ref
//        Recycle (huge, kept):     detach the ArrayBuffer, forget it; the
//                                  mapping stays, and the next Expose makes
//                                  a new ArrayBuffer over it
//        memory finalizer:         (V8 let go of the backing store) drop a ref
//        object finalizer:         (the ArrayBuffer object was collected) drop a ref
//        refs reaches 0:           unmap what is left and delete
//
// Why two refs per ArrayBuffer, and why retire: a job in Node's thread pool
// (zlib, crypto, fs) holds a raw pointer into the memory, and Node keeps
// the job's view, hence its ArrayBuffer object, alive until the job's
// callback, while a detach lets V8 drop the backing store (the memory
// finalizer) at once. So after a detach the memory is retired
// (platform::Retire): its pages, and a file's blocks, go back now, fresh
// zero pages take their place, and the addresses are unmapped only when
// both finalizers of every ArrayBuffer over it have run. Freeing, trim() and
// close() under a pending job thus cost the job its bytes, never the
// process. Retired ranges wait in a list shared by every pool of the
// environment (RetiredRanges), and a new mapping of any of them takes its
// addresses from the smallest one large enough before it asks the OS for
// more (platform::MapOver), so address space stays bounded however late
// the collector comes, and many pools opened and closed in turn reuse the
// same few ranges; the retired segment keeps (and at its last ref unmaps)
// only what was not taken. A late write by a job whose memory was freed
// under it then lands in a newer allocation's bytes, possibly another
// pool's: garbage, as when a freed slot inside a chunk is handed out again,
// never a fault. Memory that no ArrayBuffer was ever made for is unmapped
// at once.
//
// A detach counts only when it was
// made here: an ArrayBuffer found detached by someone else was transferred
// (postMessage moves its memory to another thread, where Node 24 and later
// no longer let the pool forbid it: lib/native/segment-table.ts), so its memory
// stays mapped and untouched until the last ArrayBuffer finalizer. When a
// pool is collected without close() the arena lets go without detaching
// ("abandon"), and a chunk that Buffers still point into stays mapped until
// then too.
//
// Heap segments are ArrayBuffers made by JS (`new ArrayBuffer(n)`, which
// throws a RangeError instead of aborting the process the way a failed
// napi_create_arraybuffer would); the segment holds a strong reference.
// Detaching one would free V8's memory under a pending job, so instead JS
// moves the memory to a new ArrayBuffer (`heapRetire`: a transfer, which
// detaches the old one) and keeps that alive until the old ArrayBuffer
// object is collected.
//
// Threads: the JS thread of the segment's environment only (the arena calls
// Acquire and Release from Node-API callbacks, finalizers and the env
// cleanup hook, all on that thread).
#ifndef MMAP_POOL_ADDON_JS_SEGMENTS_H_
#define MMAP_POOL_ADDON_JS_SEGMENTS_H_

#include <node_api.h>

#include <memory>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "../alloc/segment.h"
#include "../platform/mapping.h"

namespace mmap_pool {
namespace addon {

struct JsSegment;

// Retired segments of one environment whose addresses a new mapping may
// take. Shared by the environment's sources and the segments in it, which
// may outlive every source.
struct RetiredRanges {
  std::unordered_set<JsSegment*> segments;
};

struct JsSegment : alloc::Segment {
  platform::Mapping mapping;  // empty for heap segments
  napi_ref buffer_ref = nullptr;  // weak (mapped) or strong (heap) ref to the ArrayBuffer
  bool detached_here = false;     // buffer_ref's ArrayBuffer was detached by this source
  int refs = 1;
  // The list that holds this retired segment while it has addresses to give.
  std::shared_ptr<RetiredRanges> waiting_in;

  void Unref();
};

class JsSegmentSource : public alloc::SegmentSource {
 public:
  // `heap_factory`: for the heap backing, a JS function (size) => ArrayBuffer.
  // `heap_retire`: for the heap backing, a JS function (ArrayBuffer) => void
  // that moves the memory to a new ArrayBuffer (detaching the old one) and
  // keeps it until the old one is collected; it must not call the pool.
  // `retired`: the environment's list of retired ranges.
  // `secure`: lock every mapping in RAM, keep it out of core dumps and put
  // an inaccessible guard page after it.
  // `huge_pages`: map with platform::kMapHugePages (2 MiB-aligned, advised
  // MADV_HUGEPAGE). `prefault`: fault every new mapping's pages in at once
  // (platform::Prefault). Both are hints: never a failure, no-ops for heap.
  JsSegmentSource(napi_env env, platform::Backing backing, std::string dir,
                  bool heap, napi_value heap_factory, napi_value heap_retire, bool secure,
                  bool huge_pages, bool prefault, std::shared_ptr<RetiredRanges> retired);
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
  // Whether the hints are in force: asked for, on mapped memory, and (for
  // huge pages) something the platform can ask the kernel for.
  bool huge_pages() const { return !heap_ && huge_pages_ && platform::HugePageSize() != 0; }
  bool prefault() const { return !heap_ && prefault_; }

 private:
  // Detaches `buffer`, the ArrayBuffer of `seg`: true when no JS view can
  // reach the memory through it any more (detached here, now or before);
  // false when it cannot be detached or someone else detached it.
  bool DetachHere(JsSegment* seg, napi_value buffer);
  // Heap: the memory of `buffer` moved to an ArrayBuffer JS keeps until
  // `buffer` is collected; true when `buffer` is detached now.
  bool MoveHeapMemory(napi_value buffer);
  // Adds the two refs of a new ArrayBuffer over `seg` (memory and object
  // finalizer); false, with `buffer` detached, if the object finalizer
  // cannot be added.
  bool TrackBuffer(JsSegment* seg, napi_value buffer);
  // The memory of a released segment that a JS ArrayBuffer may still reach:
  // fresh pages now, unmapped at the last ref, reusable meanwhile.
  void Retire(JsSegment* seg);
  // Maps `size` bytes into `seg->mapping` over a waiting retired range;
  // false when none is large enough or the mapping failed.
  bool MapOverWaiting(JsSegment* seg, size_t size, unsigned flags);
  // MapOverWaiting() over a run of retired ranges that adjoin in the address space.
  bool MapOverAdjacent(JsSegment* seg, size_t size, unsigned flags, uintptr_t align_mask);
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
  napi_ref heap_retire_ = nullptr;
  std::unordered_set<JsSegment*> live_;
  std::shared_ptr<RetiredRanges> retired_;
};

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_JS_SEGMENTS_H_
