// PoolWrap: the native half of a JS Pool. It holds an Arena and its segment
// source and translates calls; all allocation logic is in native/alloc.
//
// The hot calls (alloc, free) take and return plain numbers and create no JS
// object: alloc(size, zero, serial) returns a handle, segment id * 2^30 +
// byte offset, or a negative alloc::Status; free, retain, release and
// refCount take (segment, offset, length, serial). Arguments are validated in lib/; here they are only
// asserted to be numbers.
//
// refill and flush serve the JS-side cache of free blocks (lib/cache/transfers.ts)
// through one Float64Array the cache hands over once (setScratch), so that
// these calls take numbers only (reading a typed array argument's data
// pointer through Node-API cost about a quarter of a refill):
// refill(size, count, nflush, mayMap, aged) frees the nflush blocks given as
// (handle, class size) pairs at the start of the scratch array, ages the
// idle chunks by `aged` bytes, then allocates up to `count` blocks of one
// class size (serial kCacheSerial, not zeroed; with mayMap false, never in a
// new chunk) and writes their handles into the scratch array; flush(n) frees
// n blocks given there as such pairs. One Node-API call moves a whole batch.
//
// Threads: JS thread of the environment that created it; the env cleanup hook
// (module.cc) abandons every live PoolWrap of its environment.
#ifndef MMAP_POOL_ADDON_POOL_WRAP_H_
#define MMAP_POOL_ADDON_POOL_WRAP_H_

#include <napi.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "../alloc/arena.h"
#include "js_segments.h"

namespace mmap_pool {
namespace addon {

class PoolWrap;
class SharedPoolWrap;

// The live pools of one environment, for its cleanup hook.
struct PoolRegistry {
  std::unordered_set<PoolWrap*> pools;
  // This environment's attachments to shared pools (shared_pool_wrap.h).
  std::unordered_set<SharedPoolWrap*> shared;
  // Retired ranges any pool of the environment may map over (js_segments.h).
  std::shared_ptr<RetiredRanges> retired = std::make_shared<RetiredRanges>();
};

// stats() and dump() as JS sees them, for PoolWrap and SharedPoolWrap alike.
Napi::Object StatsObject(Napi::Env env, const alloc::Stats& s, bool huge_pages, bool prefault);
Napi::Object DumpObject(Napi::Env env, const alloc::ArenaDump& d);

class PoolWrap : public Napi::ObjectWrap<PoolWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit PoolWrap(const Napi::CallbackInfo& info);
  ~PoolWrap() override;

  // Environment teardown: let go of everything without touching JS values.
  void Abandon();

  // The names of the fields of the object stats() returns, in its order
  // (module.cc exports them as contract.statsFields).
  static std::vector<std::string> StatsFields();

 private:
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value SetScratch(const Napi::CallbackInfo& info);
  Napi::Value Refill(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  uint32_t FreePairs(uint32_t n);
  Napi::Value Retain(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value RefCount(const Napi::CallbackInfo& info);
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

  std::unique_ptr<JsSegmentSource> source_;
  std::unique_ptr<alloc::Arena> arena_;
  PoolRegistry* registry_ = nullptr;
  alloc::SourceError last_error_;
  // The block cache's Float64Array (setScratch): held by a strong reference,
  // so that its data stays where scratch_ points while this pool lives.
  napi_ref scratch_ref_ = nullptr;
  double* scratch_ = nullptr;
  size_t scratch_len_ = 0;
};

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_POOL_WRAP_H_
