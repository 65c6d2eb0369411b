// Arena: the allocator behind one pool. It knows nothing of Node.
//
//   Arena
//   ├── segments_[id]   every live segment by id (ids are reused, lowest first)
//   │     ├── chunk     chunkSize bytes, pages in runs (chunk.h)
//   │     │     ├── slab run   slots of one small class (slab.h)  size <= 28 KiB
//   │     │     ├── large run  one allocation of whole pages      size <= hugeThreshold
//   │     │     └── free run   indexed in free_runs_
//   │     └── huge      a mapping of its own for one allocation  size >  hugeThreshold
//   ├── classes_[c]     per small class: its slabs with a free slot, lowest first
//   │                   (cur + avail), and at most one empty slab among them
//   ├── free_runs_      free runs of all chunks by (in top chunk, pages, chunk id, first page)
//   ├── idle_           chunks with no live allocation, longest idle first
//   ├── spare_          mappings of freed huge allocations, kept for reuse
//   └── refs_           reference counts above 1, by (segment id, offset)
//
// Placement keeps memory at the low end, so that the highest chunk empties
// and can go back when the pool shrinks (docs/design.md, "Placement"):
//   small   the slot comes from the class's lowest slab with room, by
//           (chunk id, first page), as jemalloc picks its lowest non-full
//           slab; a new slab only when no slab of the class has room. Of two
//           empty slabs of a class the higher one's run is freed at once.
//   runs    (slabs, large allocations) best fit: the shortest free run that
//           holds it, lowest chunk and page among equals, and in the top
//           chunk (the highest id) only when no other chunk has one.
//           A caller that caches free blocks in front of the arena asks
//           with may_map false first: the classes' empty slabs go back
//           (their pages, merged, may hold the run), and only then does it
//           give its cached blocks back and let the arena map a new chunk.
//   chunks  a chunk whose last live allocation is freed is idle: it stays
//           mapped (so a burst that comes back maps nothing), until the arena
//           has allocated kIdleKeepChunks chunks' worth of bytes (its own
//           allocations, and what a cache in front of it reports it
//           handed out: AgeIdle) without needing any idle chunk; then the
//           one idle longest goes back, with the empty slabs in it, unless
//           it is the only chunk. Its
//           ArrayBuffer is detached then, so a stale view of memory freed in
//           it reads as length 0 from that moment (as after trim()). When
//           the source refuses a mapping, every empty chunk goes back at
//           once, with the spares, before it is asked again (Alloc).
//
// An allocation is named by (segment id, byte offset); the caller holds its
// own view of the segment (the addon: an ArrayBuffer) and of the allocation. The caller also gives every
// allocation a serial number, stored with it and recorded on the Buffer, so a
// stale Buffer whose slot now belongs to a newer allocation is told apart
// from that allocation. Every check of (segment, offset, length, serial)
// against the metadata is exact:
//   offset in memory that is not allocated              -> kDoubleFree
//   exactly a live allocation, but another serial       -> kDoubleFree (stale)
//   inside a live allocation but not exactly it         -> kForeign
//
// All metadata lives on the C++ heap; the mapped memory holds user bytes only.
//
// Threads: every public method takes the arena's mutex; any thread may call.
// The SegmentSource is called with that mutex held.
#ifndef MMAP_POOL_ALLOC_ARENA_H_
#define MMAP_POOL_ALLOC_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "chunk.h"
#include "mutex.h"
#include "segment.h"
#include "size_classes.h"
#include "slab.h"

namespace mmap_pool {
namespace alloc {

// What the calls return; each status means one thing.
enum class Status : int32_t {
  kOk = 0,
  kSegmentReleased = 1,  // ok, and the allocation's segment was released
  kDoubleFree = -1,      // no live allocation there, or one under another serial
  kForeign = -2,         // no segment by that id, or inside an allocation but not exactly it
  kExhausted = -3,       // would pass max_bytes
  kMapFailed = -4,       // the source refused a mapping (SourceError says why)
  kClosed = -5,          // after Close()
  kTooLarge = -6,        // Alloc: a size no mapping of this arena can ever hold (over max_bytes)
  kNeedsChunk = -7,      // Alloc(..., may_map = false): no mapped chunk has room
  kBadAlign = -8,        // Alloc: align above the page size
  kCountFull = -9,       // Retain: the reference count is at UINT32_MAX
};

// A freed huge allocation's mapping of at most kSpareMaxBytes is kept, if
// the source can recycle it, for the next huge allocation of the same mapped
// size: faulting fresh pages in is most of what a huge allocation costs
// (docs/design.md, "Huge allocations and spares"). Decay() hands the
// pages of spares that were not reused to the OS lazily (MADV_FREE); the
// addon calls it 100 ms after a huge free. 32 MiB is glibc's largest mmap
// threshold: above it malloc, and so Buffer, maps fresh memory every time
// too. At most kSpareMax (ArenaOptions::spare_max) are kept, of at most
// kSpareKeepBytes together, the oldest released first: a service answering
// 32 requests at once with 8 MiB bodies frees them in bursts, and with fewer
// spares most of its huge allocations fault fresh pages in
// (docs/design.md). Trim, Close, room under max_bytes and a refusal of the
// source release them.
constexpr size_t kSpareMaxBytes = size_t{32} << 20;
constexpr size_t kSpareMax = 32;
constexpr size_t kSpareKeepBytes = size_t{256} << 20;

struct ArenaOptions {
  size_t chunk_size = size_t{4} << 20;   // power of two, a multiple of page_size
  size_t huge_threshold = size_t{1} << 20;  // <= chunk_size
  size_t max_bytes = SIZE_MAX;           // cap on mapped bytes
  size_t page_size = 4096;               // power of two
  bool zero_on_free = false;             // secure pools: wipe memory when it is freed
  size_t spare_max = kSpareMax;          // spares kept at most (tests lower it)
  uint32_t (*clock)() = nullptr;         // ms, for allocation ages in dumps; none: ages 0
};

// An idle chunk (no live allocation in it) goes back to the source once the
// arena has allocated this many chunks' worth of bytes (requested sizes, huge
// ones included) without needing an idle chunk. Two, not one: a burst that
// needs the idle chunks again fills one chunk before it reaches the next.
constexpr uint64_t kIdleKeepChunks = 2;

struct ClassStats {
  size_t size;
  uint64_t live;
  uint64_t capacity;
};

// The figures of Stats, each written down once here as X(type, member):
// Stats declares its members from these lists, and a caller that reports
// the figures elsewhere walks MMAP_POOL_STATS_FIGURES, so that what it
// reports is what the arena has.
// (Block comments only: a line comment would swallow the continuation.)
#define MMAP_POOL_STATS_FIGURES(X)                                               \
  X(size_t, mapped_bytes)      /* chunks, huge mappings and spares */           \
  X(size_t, allocated_bytes)   /* live allocations rounded to classes / pages */ \
  X(uint64_t, chunks)                                                           \
  X(uint64_t, huge_allocations)                                                 \
  X(size_t, huge_bytes)        /* mapped for huge allocations */                \
  X(size_t, spare_bytes)       /* mapped, kept from freed huge allocations */   \
  X(size_t, free_bytes)        /* in free runs of chunks */

// What the arena itself has handed out, by its own count. A caller with a
// cache of blocks in front of the arena hands out what the arena counts as
// one live allocation many times, and counts what its program holds itself:
// these are for callers without one, and for the arena's tests.
#define MMAP_POOL_STATS_ARENA_COUNTS(X)                                          \
  X(size_t, used_bytes)        /* sum of requested sizes */                     \
  X(size_t, peak_used_bytes)                                                    \
  X(uint64_t, live_allocations)                                                 \
  X(uint64_t, total_allocations)                                                \
  X(uint64_t, total_frees)

struct Stats {
#define MMAP_POOL_STATS_MEMBER(type, member) type member = 0;
  MMAP_POOL_STATS_FIGURES(MMAP_POOL_STATS_MEMBER)
  MMAP_POOL_STATS_ARENA_COUNTS(MMAP_POOL_STATS_MEMBER)
#undef MMAP_POOL_STATS_MEMBER
  size_t resident_bytes = 0;   // of mapped memory, in RAM now (when resident_known)
  bool resident_known = false;
  std::vector<ClassStats> classes;  // class 0 .. the class of hugeThreshold
};

// Dump(): the arena's layout as plain data, for a caller to show as it
// likes (the addon makes the objects of NativePool.dump() from it).
struct RunDump {
  enum class Kind { kFree, kSlab, kLarge };
  uint32_t page = 0;       // first page in its chunk
  uint32_t pages = 0;
  Kind kind = Kind::kFree;
  size_t class_size = 0;   // slab, large: the class's size
  uint32_t live = 0;       // slab: live slots; large: 1
  uint32_t capacity = 0;   // slab: its slots; large: 1
};

struct ChunkDump {
  uint32_t id = 0;
  size_t size = 0;
  uint32_t free_pages = 0;
  std::vector<RunDump> runs;  // in page order, tiling the chunk
};

struct HugeDump {
  uint32_t id = 0;
  size_t size = 0;          // requested
  size_t mapped_bytes = 0;
};

struct AllocationDump {
  uint32_t segment = 0;
  size_t offset = 0;
  size_t size = 0;          // requested
  size_t class_size = 0;    // 0 for a huge allocation
  uint64_t serial = 0;
  uint32_t age_ms = 0;      // by ArenaOptions::clock (0 without one); wraps after 49 days
};

struct ArenaDump {
  size_t page_size = 0;
  size_t chunk_size = 0;
  size_t huge_threshold = 0;
  size_t spare_bytes = 0;
  std::vector<ChunkDump> chunks;        // by id
  std::vector<HugeDump> huge;           // by id
  std::vector<AllocationDump> allocations;  // by segment id, then offset
};

struct Handle {
  uint32_t segment = 0;
  size_t offset = 0;
};

class Arena {
 public:
  Arena(const ArenaOptions& options, SegmentSource* source);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // The caller's name for one allocation: (segment, offset, length, serial).
  struct Ref {
    uint32_t segment;
    size_t offset;
    size_t length;
    uint64_t serial;
  };

  // Allocates `size` bytes under the caller's `serial`; zero-fills them when
  // `zero`. kExhausted when max_bytes would be passed (after giving back
  // empty chunks), kMapFailed (with the source's last `err`) when the
  // source refuses: a refusal first makes the arena give back its spares,
  // empty slabs and empty chunks (GiveBackUnused) and, if that handed the
  // source anything, ask it once more.
  // `align` (a power of two up to the page size; 0 = no demand) picks the
  // smallest class whose slots all start at a multiple of it. With
  // `may_map` false, an allocation that would need a new chunk gives back
  // the classes' empty slabs and looks again, then fails with kNeedsChunk
  // (no allocation changes): a caller with a cache of free blocks then gives
  // them back and asks again. Huge allocations map as ever.
  Status Alloc(size_t size, bool zero, uint64_t serial, Handle* out, SourceError* err,
               size_t align = 0, bool may_map = true);
  // Alloc() of up to `count` blocks of `size` (not zeroed, no alignment
  // asked) under `serial`, under one hold of the lock: a block cache's
  // refill. Returns how many were made, into out[0..n); `*st` is the status
  // of the one that failed, kOk when all `count` were made.
  uint32_t AllocEach(size_t size, uint64_t serial, uint32_t count, bool may_map, Handle* out, SourceError* err,
                     Status* st);
  Status Free(const Ref& ref);
  // Free() of each of refs[0..n) under one hold of the lock (a thread's
  // batch of deferred frees); out[i] is the status of refs[i].
  void FreeEach(const Ref* refs, size_t n, Status* out);
  Status Retain(const Ref& ref, uint32_t* count);
  // Drops one reference; frees at zero (count 0, status kOk/kSegmentReleased).
  Status Release(const Ref& ref, uint32_t* count);
  Status RefCount(const Ref& ref, uint32_t* count);

  // The caller handed out about `bytes` from a cache of its own, which the arena
  // never sees: they age the idle chunks as the arena's own allocations do
  // (a cache in front of the arena would otherwise keep an idle chunk mapped
  // for many times longer than kIdleKeepChunks means).
  void AgeIdle(size_t bytes);
  void Reset();        // frees every allocation, keeps the chunks
  // Hands the pages of the spares kept since the last Decay to the OS lazily
  // (source DiscardLazily); a spare the source cannot do that for is
  // released. Returns the spares decayed or released.
  size_t Decay();
  size_t Trim();       // releases empty chunks, discards free pages; bytes given back
  void Close();        // releases every segment; later calls give kClosed
  bool closed() const { return closed_; }

  Stats GetStats();
  size_t MappedBytes();  // cheaper than GetStats() for a single figure
  // Mapped bytes less the spares: what stands between the pool and
  // max_bytes, since spares are given back before an allocation would fail.
  size_t MappedInUseBytes();
  ArenaDump Dump();  // chunks, runs, huge mappings, live allocations
  // The segment with this id, or nullptr. The pointer stays valid until the
  // segment is released (Free of a huge allocation, Trim, Reset, Close).
  Segment* FindSegment(uint32_t id);

  // Frees every live allocation whose serial `pick` chooses (`pick` is
  // called with the arena's mutex held and must not call the arena):
  // a shared pool frees an ended attachment's cached blocks this way, or
  // every allocation but the other attachments' cached blocks (reset).
  // Returns how many it freed. A walk of every live allocation: rare calls only.
  size_t FreeWhere(const std::function<bool(uint64_t serial)>& pick);
  // The live allocation `ref` under a new name: serial `serial`, requested
  // size `length` (in the same class or run: a cached block handed out
  // for a smaller size) and reference count `count` (1 or more). A shared
  // pool's cached block leaves its cache this way when it is shared.
  // Statuses as Free (kDoubleFree, kForeign, kClosed); kTooLarge when
  // `length` does not fit where the allocation is, or count is 0.
  Status Rename(const Ref& ref, uint64_t serial, size_t length, uint32_t count);

  // Segment `id`'s memory was taken by someone else (the addon saw its
  // ArrayBuffer detached, not by the source): nothing is placed in it
  // again. A chunk's free runs leave the index and its slabs the class
  // lists; its live allocations stay counted and can be freed (Free,
  // Release, by the same Ref), and the free of the last one releases it
  // (the source keeps the memory mapped for its new owner). A huge segment
  // is one allocation, freed as ever. False when there is no such segment.
  enum class Lost { kNo, kNow, kBefore };  // no such segment; lost by this call; lost already
  Lost Lose(uint32_t id);
  // The live allocation of a lost segment `id` under `serial` (not the slot
  // cache's 0): its offset and requested size, found by a scan (its views
  // are detached and no longer say where they were). False when none is.
  bool FindLost(uint32_t id, uint64_t serial, size_t* offset, size_t* length);

 private:
  struct Record {
    Segment* segment = nullptr;
    Chunk* chunk = nullptr;  // null for a huge segment
    size_t huge_req = 0;     // huge: the requested size
    uint64_t huge_serial = 0;
    uint32_t huge_born = 0;
    bool lost = false;       // Lose(): someone else holds its memory
  };
  // A class's slabs with a free slot are `cur`, the lowest by Slab::order,
  // and `avail`, the others; full slabs are in neither. At most one slab of
  // a class is empty: `empty`, kept to save the next allocation a new run.
  struct ClassState {
    Slab* cur = nullptr;     // allocations come from here; null: no slab has room
    SlabHeap avail;          // the other slabs with a free slot, lowest first
    Slab* empty = nullptr;   // the class's empty slab (in cur or avail), if any
    uint32_t slab_pages = 0;
    uint32_t slab_slots = 0;
    uint64_t live = 0;
    uint64_t capacity = 0;
  };
  // A free run in the index, ordered by (in the top chunk, pages, chunk id,
  // first page): the top chunk's runs after every other chunk's, then best
  // fit, lowest chunk and page first. Packed into two integers, because the
  // comparisons are most of what a set lookup costs.
  struct FreeRunKey {
    uint64_t hi;     // bit 63: in the top chunk; bits 32..62: pages; 0..31: chunk id
    uint32_t first;  // first page
    FreeRunKey(bool top, uint32_t pages, uint32_t id, uint32_t first_page)
        : hi((uint64_t{top} << 63) | (uint64_t{pages} << 32) | id), first(first_page) {}
    bool top() const { return (hi >> 63) != 0; }
    uint32_t pages() const { return static_cast<uint32_t>(hi >> 32) & 0x7FFFFFFFu; }
    uint32_t id() const { return static_cast<uint32_t>(hi); }
    bool operator<(const FreeRunKey& o) const { return hi < o.hi || (hi == o.hi && first < o.first); }
  };

  // Where an allocation lives, after Locate() has checked it.
  struct Located {
    Record* record = nullptr;
    Slab* slab = nullptr;
    uint32_t slot = 0;
    uint32_t first_page = 0;
  };

  Status AllocSmall(uint32_t cls, size_t size, bool zero, uint64_t serial, Handle* out,
                    SourceError* err, bool may_map);
  Status AllocLarge(uint32_t cls, size_t size, bool zero, uint64_t serial, Handle* out,
                    SourceError* err, bool may_map);
  Status AllocHuge(size_t size, bool zero, uint64_t serial, Handle* out, SourceError* err);
  Segment* TakeSpare(size_t mapped);
  void FreeHuge(uint32_t id);
  void ReleaseSpare(size_t i);
  size_t ReleaseSpares();
  bool MakeRoom(size_t bytes);
  size_t GiveBackUnused();
  void AgeIdleChunks(size_t size);
  Slab* NewSlab(uint32_t cls, bool may_map, SourceError* err, Status* st);
  std::set<FreeRunKey>::iterator FindRun(uint32_t pages);
  bool AllocRun(uint32_t pages, bool may_map, Chunk** chunk, uint32_t* first, SourceError* err,
                Status* st);
  Chunk* NewChunk(SourceError* err, Status* st);
  void FreeRun(Chunk* chunk, uint32_t first, uint32_t pages);
  FreeRunKey RunKey(uint32_t id, uint32_t first, uint32_t pages) const {
    return FreeRunKey(id == top_chunk_, pages, id, first);
  }
  void SetTopChunk(uint32_t id);
  void RekeyRuns(Chunk* chunk);
  void ReleaseSlab(Slab* slab);
  void ChunkIdle(Chunk* chunk);
  void ChunkReused(Chunk* chunk);
  void ReleaseIdleChunk(Chunk* chunk);
  void ReleaseSegment(uint32_t id);
  void ReleaseLost(Chunk* chunk);
  uint32_t NewId(Segment* segment);

  // Every live allocation, by segment id then offset. The caller holds mu_.
  void ListLive(std::vector<Ref>* out) const;
  Status Locate(const Ref& ref, Located* at);
  Status FreeLocated(const Located& at);
  Status FreeHeld(const Ref& ref);  // Free(), the caller holding mu_
  Status AllocHeld(size_t size, bool zero, uint64_t serial, Handle* out, SourceError* err, size_t align,
                   bool may_map);  // Alloc(), the caller holding mu_
  void FreeSlot(Slab* slab, uint32_t slot);
  void SlabReused(Slab* slab);
  void SlabGotRoom(Slab* slab);
  void SlabEmptied(Slab* slab);
  void Unlist(Slab* slab);
  uint32_t ReleaseEmptySlabs();
  size_t ReleaseEmptyChunks();
  void CountAlloc(size_t req);
  void CountFree(size_t req);
  uint64_t LiveAllocations() const;
  size_t AllocatedBytes() const;
  uint32_t Now() const { return opt_.clock != nullptr ? opt_.clock() : 0; }

  const ArenaOptions opt_;
  const uint32_t page_shift_;     // log2(page_size): pages by shift, not divide
  SegmentSource* const source_;
  Mutex mu_;                      // mutex.h: std::mutex, minus the calls into libc
  bool closed_ = false;
  std::vector<Record> records_;   // by segment id
  std::set<uint32_t> free_ids_;     // released ids, reused lowest first
  std::set<FreeRunKey> free_runs_;
  uint32_t top_chunk_ = UINT32_MAX;  // the highest chunk id; UINT32_MAX: no chunk
  ChunkList idle_;                // chunks without a live allocation, longest idle first
  uint64_t idle_bytes_ = 0;       // bytes allocated since an idle chunk was last needed
  ClassState classes_[kMaxClasses];
  uint32_t huge_class_limit_;     // classes above this index are never used
  std::unordered_map<uint64_t, uint32_t> refs_;
  struct Spare {
    Segment* segment;
    bool decayed;  // its pages were handed to the OS lazily (Decay)
  };
  std::vector<Spare> spare_;      // kept huge mappings (no id), oldest first
  // Counters. live_allocations, allocated_bytes and classes are not kept
  // here but filled by GetStats (from classes_ and the huge counts).
  Stats s_;
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_ARENA_H_
