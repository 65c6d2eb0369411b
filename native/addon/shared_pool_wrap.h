// SharedPoolWrap: one environment's attachment to a shared pool
// (shared_pool.h), the native half of a JS Pool made with `shared: true` or
// by Pool.attach(). The calls are PoolWrap's (same arguments, same
// statuses), plus share/adopt, promote, figures and what an attaching
// thread needs. Each attachment's block cache (lib/cache/) refills and
// gives back through refill/flush as a pool of one thread's does, one
// arena lock per batch; its blocks carry the attachment's cache serial in
// the arena (SharedPool::OpenCache), so that the attachment's end frees
// them without JS (close, exit, terminate: SharedPool::Leave). promote()
// renames a cached block to its Buffer's serial when it is shared: from
// then on it is an allocation like any other. figures() is the
// Float64Array over this attachment's counts (shared_pool.h Figures).
//
// Each environment shows a segment to its JS through an ArrayBuffer of its
// own, made the first time a block of it reaches this thread (segment(id));
// the table entry pins the segment (one ref) and the ArrayBuffer holds two
// (shared_pool.h). When this environment frees the last allocation of a
// segment, it detaches its own ArrayBuffer over it; other environments'
// ArrayBuffers stay over retired memory until they are collected. A call
// about a view of a segment the arena has released since (a stale view) is
// kDoubleFree.
//
// Threads: the JS thread of the environment that made it; the arena and the
// segments it reaches are shared with every other attachment, each on its
// own thread. The env cleanup hook (module.cc) abandons every attachment of
// its environment: no JS value touched, the attachment ended.
#ifndef MMAP_POOL_ADDON_SHARED_POOL_WRAP_H_
#define MMAP_POOL_ADDON_SHARED_POOL_WRAP_H_

#include <napi.h>

#include <memory>
#include <unordered_map>

#include "pool_wrap.h"
#include "shared_pool.h"

namespace mmap_pool {
namespace addon {

class SharedPoolWrap : public Napi::ObjectWrap<SharedPoolWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SharedPoolWrap(const Napi::CallbackInfo& info);
  ~SharedPoolWrap() override;

  // Environment teardown: end the attachment without touching JS values.
  void Abandon();

 private:
  // This environment's ArrayBuffer over one segment.
  struct EnvView {
    SharedSegment* seg = nullptr;  // pinned while the entry lives
    napi_ref buffer = nullptr;     // weak
    bool detached_here = false;
  };

  Napi::Value AttachStatus(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Serials(const Napi::CallbackInfo& info);
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value SetScratch(const Napi::CallbackInfo& info);
  Napi::Value Refill(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value Retain(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value RefCount(const Napi::CallbackInfo& info);
  Napi::Value Share(const Napi::CallbackInfo& info);
  Napi::Value Adopt(const Napi::CallbackInfo& info);
  Napi::Value Promote(const Napi::CallbackInfo& info);
  Napi::Value FiguresArray(const Napi::CallbackInfo& info);
  Napi::Value FlushFrees(const Napi::CallbackInfo& info);
  uint32_t FreePairs(uint32_t n);
  Napi::Value Segment(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Lose(const Napi::CallbackInfo& info);
  Napi::Value FindLost(const Napi::CallbackInfo& info);
  Napi::Value Reset(const Napi::CallbackInfo& info);
  Napi::Value Trim(const Napi::CallbackInfo& info);
  Napi::Value Decay(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Mapped(const Napi::CallbackInfo& info);
  Napi::Value Dump(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value LastError(const Napi::CallbackInfo& info);

  // Whether a call about segment `id` names a segment this environment saw
  // released (its view is stale).
  bool Stale(uint32_t id) const;
  // The segment `id` went back (its last allocation freed here): detach
  // this environment's ArrayBuffer over it and drop the entry.
  void DropIfReleased(uint32_t id);
  // Detaches the entry's ArrayBuffer if nobody else did; true when no JS
  // view can reach the memory through it.
  bool DetachView(EnvView* v);
  // Drops every entry: detaching their ArrayBuffers unless `abandon`.
  void DropViews(bool abandon);
  // Ends the attachment (once); `free_cached`: see SharedPool::Leave.
  void End(bool free_cached);

  std::shared_ptr<SharedPool> pool_;
  alloc::Status attach_status_ = alloc::Status::kOk;
  bool attached_ = false;
  bool abandoned_ = false;
  PoolRegistry* registry_ = nullptr;
  alloc::SourceError last_error_;
  std::unordered_map<uint32_t, EnvView> views_;
  uint64_t member_ = 0;
  std::shared_ptr<Figures> figures_;
  uint64_t cache_serial_ = 0;  // 0 until setScratch(): no block cache
  // The block cache's Float64Array (setScratch), as PoolWrap's.
  napi_ref scratch_ref_ = nullptr;
  double* scratch_ = nullptr;
  size_t scratch_len_ = 0;
};

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_SHARED_POOL_WRAP_H_
