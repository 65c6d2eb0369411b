// Segments: the blocks of memory an Arena carves up (chunks) or hands out
// whole (huge allocations), and the source they come from.
//
// The Arena never maps memory itself. It asks a SegmentSource, which the
// embedder provides: the addon maps memory through native/platform (and ties
// each segment's life to the JS ArrayBuffer over it), or borrows V8 heap
// ArrayBuffers for the 'heap' backing; the C++ tests use plain mappings.
//
// Threads: the Arena calls its source with its own mutex held, on whatever
// thread called the Arena.
#ifndef MMAP_POOL_ALLOC_SEGMENT_H_
#define MMAP_POOL_ALLOC_SEGMENT_H_

#include <cstddef>
#include <cstdint>

namespace mmap_pool {
namespace alloc {

struct Segment {
  uint8_t* base = nullptr;  // first byte; stays valid until Release()
  size_t size = 0;          // bytes usable from base
  uint32_t id = 0;          // set by the Arena: unique among its live segments
  virtual ~Segment() = default;
};

struct SourceError {
  int code = 0;             // errno / GetLastError(); 0 when not an OS error
  const char* syscall = "";
};

class SegmentSource {
 public:
  virtual ~SegmentSource() = default;
  // New zero-filled memory of exactly `size` bytes (a multiple of
  // Granularity()). nullptr on failure, with `err` filled.
  virtual Segment* Acquire(size_t size, SourceError* err) = 0;
  // Memory for one huge allocation. Sources may add an inaccessible guard
  // page after it; by default the same as Acquire.
  virtual Segment* AcquireHuge(size_t size, SourceError* err) { return Acquire(size, err); }
  // The arena is done with the segment: no allocation lives in it any more.
  virtual void Release(Segment* segment) = 0;
  // The arena would keep this freed huge segment for a later huge allocation
  // of the same size: cut off everything that could still reach its bytes,
  // keeping the mapping. False when the source cannot (then the arena
  // Releases it). By default false.
  virtual bool Recycle(Segment* /*segment*/) { return false; }
  // Let the OS take a kept segment's pages whenever it needs the memory,
  // keeping the mapping; its contents are then unspecified. False where the
  // source cannot (then the arena Releases it). By default false.
  virtual bool DiscardLazily(Segment* /*segment*/) { return false; }
  // Return the pages of [offset, offset+len) to the OS, keeping them usable.
  // Returns the bytes given back (0 where the source cannot) and sets
  // `zeroed` when the range now reads as zeros.
  virtual size_t Discard(Segment* segment, size_t offset, size_t len,
                         bool* zeroed) = 0;
  // Bytes of the segment resident in RAM now; false where unknown.
  virtual bool ResidentBytes(Segment* /*segment*/, size_t* /*out*/) { return false; }
  // What segment sizes are rounded up to.
  virtual size_t Granularity() const = 0;
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_SEGMENT_H_
