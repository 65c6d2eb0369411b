// Shared pools: one allocator that every JS thread (environment) of the
// process uses at once. This file knows nothing of Node (native/test runs it
// alone, under TSan and ASan); shared_pool_wrap.h is its Node-API side, one
// SharedPoolWrap per environment attached.
//
//   registry (process-wide, one mutex, never freed)
//     live    pool id -> shared_ptr<SharedPool>   pools with an attachment
//     ended   pool id -> token                     a handle to one: closed;
//                                                  a wrong token: foreign
//   SharedPool
//     arena         alloc::Arena (its own mutex: any thread may call)
//     source        SharedSource: mappings whose refs count across threads
//     token         random 64 bits: Attach() refuses a handle without it
//     attachments   environments attached; the last Detach() closes the arena
//     shares        share id -> (segment, offset, length, serial): each holds
//                   one reference of its allocation until Adopt() takes it
//     serials       handed out in blocks (TakeSerials): unique in the pool
//                   across threads, so a stale view never matches a newer
//                   allocation made in another thread
//     members       member id -> (Figures, cache serial): one per attachment.
//                   Figures: 16 doubles its JS thread writes (lib/threads/
//                   figures.ts) and Totals() sums; the cache serial is the
//                   serial every block of that attachment's block cache
//                   carries in the arena, so that its end can free them
//                   (Leave) and a reset() spares other threads' caches
//     retired       the figures of the members that left, folded
//
// A segment's life (SharedSegment): the arena holds one ref from Acquire to
// Release; every environment that shows the segment to JS pins it (Pin: one
// ref for its table entry) and adds two per ArrayBuffer over it (the
// backing store's finalizer and the object's), as js_segments.h describes
// for a pool of one thread. Release (arena done, on whatever thread freed
// the last allocation in it, with the arena's mutex held) cannot detach the
// ArrayBuffers of other environments, so when any ref besides the arena's
// is left the memory is retired (fresh zero pages, addresses kept) and is
// unmapped by the last Unref, from whichever thread drops it; a view in
// another thread then reads zeros, never an unmapped page. A lost segment
// (someone else detached an ArrayBuffer over it and owns the memory now) is
// neither retired nor unmapped at Release: its last ref unmaps it.
//
// Threads: every method may be called from any thread. Lock order: the
// registry mutex, then an arena's mutex, then a source's mutex, then a pool's
// share mutex; the members mutex is never held with another; a segment's
// refs are atomic.
#ifndef MMAP_POOL_ADDON_SHARED_POOL_H_
#define MMAP_POOL_ADDON_SHARED_POOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "../alloc/arena.h"
#include "../alloc/segment.h"
#include "../platform/mapping.h"

namespace mmap_pool {
namespace addon {

struct SharedSegment : alloc::Segment {
  platform::Mapping mapping;
  std::atomic<int> refs{1};
  std::atomic<bool> released{false};  // the arena let go: a view of it is stale
  std::atomic<bool> lost{false};      // someone else owns the memory: never retire it

  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  // Unmaps and deletes at the last ref.
  void Unref();
};

class SharedSource : public alloc::SegmentSource {
 public:
  SharedSource(platform::Backing backing, std::string dir, bool secure, bool huge_pages, bool prefault)
      : backing_(backing), dir_(std::move(dir)), secure_(secure), huge_pages_(huge_pages), prefault_(prefault) {}
  ~SharedSource() override = default;

  alloc::Segment* Acquire(size_t size, alloc::SourceError* err) override;
  alloc::Segment* AcquireHuge(size_t size, alloc::SourceError* err) override;
  void Release(alloc::Segment* segment) override;
  size_t Discard(alloc::Segment* segment, size_t offset, size_t len, bool* zeroed) override;
  size_t Granularity() const override { return platform::MapGranularity(); }
  bool ResidentBytes(alloc::Segment* segment, size_t* out) override;

  // One ref on `found` (what Arena::FindSegment returned, which another
  // thread may have released since) if it is still live; nullptr otherwise.
  // SharedPool::Pin checks that it is still the segment of its id.
  SharedSegment* Pin(alloc::Segment* found);

  bool huge_pages() const { return huge_pages_ && platform::HugePageSize() != 0; }
  bool prefault() const { return prefault_; }

 private:
  alloc::Segment* AcquireMapped(size_t size, bool guard, alloc::SourceError* err);

  const platform::Backing backing_;
  const std::string dir_;
  const bool secure_;
  const bool huge_pages_;
  const bool prefault_;
  std::mutex mu_;
  std::unordered_set<const alloc::Segment*> live_;  // as the arena names them (Pin)
};

// One attachment's counts of what its program holds, written by its JS
// thread (plain stores: an aligned double is read whole on every platform
// Node runs on) and read by any thread's Totals(). Two halves of 8
// doubles: the block cache's allocations (kCacheFigures) and every other
// (kOtherFigures); in each, at kAllocs.. kMoved (lib/threads/figures.ts
// writes the same layout):
//   allocs frees used peak closed   as lib/observe/counts.ts counts them
//   moved (other half only)         cached blocks shared (promoted): each
//                                   counted once in each half, as a free
//                                   of the cache's and an allocation here
//
// After the counts, the attachment's deferred frees (lib/native/
// free-batch.ts): its JS thread writes here the free() of each Buffer it
// holds as its allocation's only reference (adopted so), not into the
// arena, and DrainFrees() gives a whole batch back under one hold of the
// arena's lock:
//   v[kFreeBatch]                 entries written (the entry first, then this)
//   v[kFreeResets]                ResetExcept() calls the last drain saw (the
//                                 addon's own: JS never writes it)
//   v[kFreeEntries + 4 * i ..]    segment offset length serial
struct Figures {
  static constexpr size_t kBatchMax = 64;
  static constexpr size_t kCount = 20 + 4 * kBatchMax;
  double v[kCount] = {};
};
constexpr size_t kCacheFigures = 0, kOtherFigures = 8;
constexpr size_t kAllocs = 0, kFrees = 1, kUsed = 2, kMoved = 5;
constexpr size_t kFreeBatch = 16, kFreeResets = 17, kFreeEntries = 20;

// The whole pool's counts (Totals()).
struct Totals {
  double allocs = 0, frees = 0, used = 0, peak = 0;
};

struct SharedPoolOptions {
  alloc::ArenaOptions arena;
  platform::Backing backing = platform::Backing::kAnonymous;
  std::string dir;
  bool secure = false;
  bool huge_pages = false;
  bool prefault = false;
  // What an attaching thread needs to build its Pool (lib/ writes it: JSON).
  std::string description;
};

class SharedPool {
 public:
  explicit SharedPool(const SharedPoolOptions& options, uint64_t id);
  SharedPool(const SharedPool&) = delete;
  SharedPool& operator=(const SharedPool&) = delete;

  uint64_t id() const { return id_; }
  uint64_t token() const { return token_; }
  const std::string& description() const { return description_; }
  alloc::Arena& arena() { return arena_; }
  SharedSource& source() { return source_; }
  uint32_t attachments() const { return attachments_.load(std::memory_order_relaxed); }

  // The live segment `id`, with one ref the caller drops (Unref); nullptr
  // when there is none. Safe against another thread releasing it meanwhile.
  SharedSegment* Pin(uint32_t id);

  // The first of `n` serials no other thread gets from this pool.
  uint64_t TakeSerials(uint64_t n);

  // One more reference of the live allocation `ref` for a receiver, under a
  // new share id; `check` is what Adopt() wants with it. Statuses as
  // Arena::Retain (kDoubleFree, kForeign, kTooLarge, kClosed).
  alloc::Status Share(const alloc::Arena::Ref& ref, uint64_t* share_id, uint64_t* check);
  // Takes share `share_id` (with its reference) once: kOk with `out` the
  // allocation; kForeign when `check` is not the share's (a forged handle);
  // kDoubleFree when it was adopted already, or the allocation was freed
  // since (its serial no longer lives there); kClosed after the pool ended.
  // `refs`, when given: the allocation's reference count after.
  alloc::Status Adopt(uint64_t share_id, uint64_t check, alloc::Arena::Ref* out, uint32_t* refs = nullptr);

  // Ends one attachment (an environment's close, exit or collection); the
  // last one closes the arena (every segment released: unmapped, or retired
  // while an ArrayBuffer over it lives) and forgets the pool. Returns the
  // attachments left.
  uint32_t Detach();

  // A new member (one per attachment): its id, and in `figures` the counts
  // its JS thread writes.
  uint64_t Join(std::shared_ptr<Figures>* figures);
  // Member `member` keeps a block cache: the serial its blocks carry in
  // the arena (one TakeSerials() serial: never an allocation's).
  uint64_t OpenCache(uint64_t member);
  // Member `member` leaves (before its Detach): its counts fold into the
  // pool's; with `free_cached`, every block its cache holds is freed (its
  // views are detached or gone with its heap: close, exit, terminate) and
  // counted freed; without (a Pool collected while one of its Buffers lives),
  // they stay allocated until the pool ends.
  void Leave(uint64_t member, bool free_cached);
  // The deferred frees written in `figures` (a member's, on its own
  // thread or after it stopped), which its free() counted already: each
  // entry still naming a live allocation is freed; one that does not (freed
  // since through another view, or by a reset in another thread, which
  // counted it too) is refused and counted back there (the other half).
  // The batch is empty after. Returns the entries refused, to be reported
  // as double frees: 0 when a reset came since the last drain (it may be
  // what freed them).
  uint32_t DrainFrees(Figures* figures);
  // reset() by member `member`: every allocation freed but the blocks of
  // the other members' caches (a thread's cache may be handing one out at
  // this moment); the other members' other allocations leave the counts.
  void ResetExcept(uint64_t member);
  // The cache serials of every member but `except`.
  std::unordered_set<uint64_t> CacheSerials(uint64_t except);
  // The whole pool's counts: every member's, and those of the members
  // that left. peak is the highest `used` any Totals() call saw.
  Totals Sum();

  // A new pool with one attachment.
  static std::shared_ptr<SharedPool> Create(const SharedPoolOptions& options);
  // Another attachment of pool `id`, or nullptr with `st`: kClosed when the
  // pool ended, kForeign when `token` is not its own (or no pool of this
  // process had that id).
  static std::shared_ptr<SharedPool> Attach(uint64_t id, uint64_t token, alloc::Status* st);

 private:
  uint64_t CheckOf(uint64_t share_id) const;
  // A member's deferred frees not yet drained, as counts to take back off
  // `t` (they are counted freed in its figures already).
  static void AddPending(const Figures& f, Totals* t);

  const uint64_t id_;
  const uint64_t token_;
  const uint64_t secret_;  // keys the share checks
  const std::string description_;
  SharedSource source_;
  alloc::Arena arena_;
  std::atomic<uint32_t> attachments_{1};  // changed under the registry mutex only
  // From 2^52: above what a thread's own counter (lib/buffers/serials.ts,
  // the block caches' Buffers) reaches in practice, so that a stale view of
  // a cached block never matches an allocation the arena knows by serial.
  std::atomic<uint64_t> next_serial_{uint64_t{1} << 52};
  std::mutex share_mu_;
  uint64_t next_share_ = 1;
  std::unordered_map<uint64_t, alloc::Arena::Ref> shares_;
  struct Member {
    std::shared_ptr<Figures> figures;
    uint64_t cache_serial = 0;  // 0: no block cache
  };
  std::mutex members_mu_;       // after the arena's in the lock order; never held around it
  uint64_t next_member_ = 1;
  std::unordered_map<uint64_t, Member> members_;
  Totals retired_;              // peak: the highest used seen
  std::atomic<uint64_t> resets_{0};  // ResetExcept() calls (DrainFrees)
};

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_SHARED_POOL_H_
