// Threads: the JS thread of one environment; the SharedPool behind it is
// called from every attached thread (see shared_pool_wrap.h).
#include "shared_pool_wrap.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache_batches.h"
#include "handle.h"
#include "js_args.h"

namespace mmap_pool {
namespace addon {

namespace {
uint64_t ToId(const Napi::Value& v) {
  if (!v.IsNumber()) return 0;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) return 0;
  return static_cast<uint64_t>(d);
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// 16 lowercase hex digits, as Hex() writes them; false for anything else.
bool ParseHex(const Napi::Value& v, uint64_t* out) {
  if (!v.IsString()) return false;
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() != 16) return false;
  uint64_t r = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    r = (r << 4) | static_cast<uint64_t>(d);
  }
  *out = r;
  return true;
}

// V8 let go of an ArrayBuffer's memory; or the ArrayBuffer object was collected.
void FinalizeMemory(napi_env /*env*/, void* /*data*/, void* hint) { static_cast<SharedSegment*>(hint)->Unref(); }
void FinalizeObject(napi_env /*env*/, void* data, void* /*hint*/) { static_cast<SharedSegment*>(data)->Unref(); }

// A new external ArrayBuffer over [base, base + len) of `seg`, holding two
// refs (memory and object); nullptr on failure, refs unchanged.
napi_value NewBuffer(napi_env env, SharedSegment* seg, uint8_t* base, size_t len) {
  napi_value buffer = nullptr;
  seg->Ref();  // the memory finalizer's, before V8 may call it
  if (napi_create_external_arraybuffer(env, base, len, FinalizeMemory, seg, &buffer) != napi_ok) {
    seg->Unref();
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return nullptr;
  }
  seg->Ref();
  if (napi_add_finalizer(env, buffer, seg, FinalizeObject, nullptr, nullptr) != napi_ok) {
    seg->Unref();
    // Without the object's ref a pending job could outlive the memory.
    napi_detach_arraybuffer(env, buffer);
    return nullptr;
  }
  return buffer;
}
}  // namespace

Napi::Function SharedPoolWrap::Define(Napi::Env env) {
  return DefineClass(env, "SharedPool",
                     {
                         InstanceMethod<&SharedPoolWrap::AttachStatus>("attachStatus"),
                         InstanceMethod<&SharedPoolWrap::Info>("info"),
                         InstanceMethod<&SharedPoolWrap::Serials>("serials"),
                         InstanceMethod<&SharedPoolWrap::Alloc>("alloc"),
                         InstanceMethod<&SharedPoolWrap::Free>("free"),
                         InstanceMethod<&SharedPoolWrap::SetScratch>("setScratch"),
                         InstanceMethod<&SharedPoolWrap::Refill>("refill"),
                         InstanceMethod<&SharedPoolWrap::Flush>("flush"),
                         InstanceMethod<&SharedPoolWrap::Retain>("retain"),
                         InstanceMethod<&SharedPoolWrap::Release>("release"),
                         InstanceMethod<&SharedPoolWrap::RefCount>("refCount"),
                         InstanceMethod<&SharedPoolWrap::Share>("share"),
                         InstanceMethod<&SharedPoolWrap::Adopt>("adopt"),
                         InstanceMethod<&SharedPoolWrap::Promote>("promote"),
                         InstanceMethod<&SharedPoolWrap::FiguresArray>("figures"),
                         InstanceMethod<&SharedPoolWrap::FlushFrees>("flushFrees"),
                         InstanceMethod<&SharedPoolWrap::Segment>("segment"),
                         InstanceMethod<&SharedPoolWrap::View>("view"),
                         InstanceMethod<&SharedPoolWrap::Detach>("detach"),
                         InstanceMethod<&SharedPoolWrap::Lose>("lose"),
                         InstanceMethod<&SharedPoolWrap::FindLost>("findLost"),
                         InstanceMethod<&SharedPoolWrap::Reset>("reset"),
                         InstanceMethod<&SharedPoolWrap::Trim>("trim"),
                         InstanceMethod<&SharedPoolWrap::Decay>("decay"),
                         InstanceMethod<&SharedPoolWrap::Stats>("stats"),
                         InstanceMethod<&SharedPoolWrap::Mapped>("mapped"),
                         InstanceMethod<&SharedPoolWrap::Dump>("dump"),
                         InstanceMethod<&SharedPoolWrap::Close>("close"),
                         InstanceMethod<&SharedPoolWrap::LastError>("lastError"),
                     });
}

// new SharedPool({ backing, dir, chunkSize, hugeThreshold, maxBytes, secure,
// hugePages, prefault, description }) makes a pool (lib/options.ts checked
// the values); new SharedPool({ attach: id, token }) attaches to one, and
// attachStatus() says whether that worked (kClosed, kForeign).
SharedPoolWrap::SharedPoolWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SharedPoolWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "SharedPool expects an options object").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  if (o.Has("attach")) {
    uint64_t token = 0;
    uint64_t id = ToId(o.Get("attach"));
    if (id == 0 || !ParseHex(o.Get("token"), &token)) {
      attach_status_ = alloc::Status::kForeign;
    } else {
      pool_ = SharedPool::Attach(id, token, &attach_status_);
    }
  } else {
    SharedPoolOptions opt;
    if (!ReadArenaOptions(env, o, "SharedPool", &opt.arena)) return;
    if (!o.Get("backing").IsString() || !o.Get("description").IsString()) {
      Napi::TypeError::New(env, "SharedPool: options.backing and options.description must be strings")
          .ThrowAsJavaScriptException();
      return;
    }
    std::string backing = o.Get("backing").As<Napi::String>().Utf8Value();
    if (backing == "heap") {
      Napi::RangeError::New(env, "SharedPool: invalid backing 'heap'").ThrowAsJavaScriptException();
      return;
    }
    opt.backing = backing == "file" ? platform::Backing::kFile : platform::Backing::kAnonymous;
    opt.dir = o.Get("dir").IsString() ? o.Get("dir").As<Napi::String>().Utf8Value() : "";
    opt.secure = opt.arena.zero_on_free;
    opt.huge_pages = o.Get("hugePages").ToBoolean().Value();
    opt.prefault = o.Get("prefault").ToBoolean().Value();
    opt.description = o.Get("description").As<Napi::String>().Utf8Value();
    pool_ = SharedPool::Create(opt);
  }
  if (!pool_) return;
  attached_ = true;
  member_ = pool_->Join(&figures_);
  registry_ = env.GetInstanceData<PoolRegistry>();
  if (registry_ != nullptr) registry_->shared.insert(this);
}

SharedPoolWrap::~SharedPoolWrap() {
  // Collected without close(): views over the chunks may still be alive
  // (each holds its segment), so let go without detaching. Every Buffer
  // this environment made over a chunk holds the chunk's ArrayBuffer, which
  // views_ refers to weakly: when none is alive, no Buffer of its cache's
  // blocks is either, and they go back; else they stay allocated (a live
  // Buffer must never see another allocation's bytes) until the pool ends.
  bool viewed = false;
  if (!abandoned_) {
    for (auto& [id, v] : views_) {
      napi_value buffer = nullptr;
      if (v.buffer != nullptr && napi_get_reference_value(Env(), v.buffer, &buffer) == napi_ok && buffer != nullptr) {
        viewed = true;
      }
      if (v.buffer != nullptr) napi_delete_reference(Env(), v.buffer);
      v.buffer = nullptr;
    }
  }
  DropViews(true);
  End(!viewed);
  if (scratch_ref_ != nullptr && !abandoned_) napi_delete_reference(Env(), scratch_ref_);
  if (registry_ != nullptr) registry_->shared.erase(this);
}

void SharedPoolWrap::Abandon() {
  abandoned_ = true;
  registry_ = nullptr;
  DropViews(true);
  End(true);
}

void SharedPoolWrap::End(bool free_cached) {
  if (!attached_) return;
  attached_ = false;
  // The frees its thread deferred are its program's: they happen whatever
  // becomes of its cache (close, exit, terminate, collection).
  if (figures_) pool_->DrainFrees(figures_.get());
  pool_->Leave(member_, free_cached);
  pool_->Detach();
}

bool SharedPoolWrap::DetachView(EnvView* v) {
  if (v->detached_here) return true;
  if (v->buffer == nullptr) return true;
  napi_value buffer = nullptr;
  if (napi_get_reference_value(Env(), v->buffer, &buffer) != napi_ok || buffer == nullptr) return true;
  bool detached = false;
  if (napi_is_detached_arraybuffer(Env(), buffer, &detached) != napi_ok || detached) return false;
  if (napi_detach_arraybuffer(Env(), buffer) != napi_ok) return false;
  v->detached_here = true;
  return true;
}

void SharedPoolWrap::DropViews(bool abandon) {
  for (auto& [id, v] : views_) {
    if (!abandon) DetachView(&v);
    if (!abandon && v.buffer != nullptr) napi_delete_reference(Env(), v.buffer);
    v.seg->Unref();
  }
  views_.clear();
}

bool SharedPoolWrap::Stale(uint32_t id) const {
  auto it = views_.find(id);
  return it != views_.end() && it->second.seg->released.load(std::memory_order_acquire);
}

void SharedPoolWrap::DropIfReleased(uint32_t id) {
  auto it = views_.find(id);
  if (it == views_.end() || !it->second.seg->released.load(std::memory_order_acquire)) return;
  DetachView(&it->second);
  if (it->second.buffer != nullptr) napi_delete_reference(Env(), it->second.buffer);
  it->second.seg->Unref();
  views_.erase(it);
}

Napi::Value SharedPoolWrap::AttachStatus(const Napi::CallbackInfo& info) {
  return StatusValue(info.Env(), attach_status_);
}

// { id, token, description, attachments }: what a PoolHandle carries, and
// the options lib/ made the pool with.
Napi::Value SharedPoolWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pool_) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, static_cast<double>(pool_->id())));
  o.Set("token", Napi::String::New(env, Hex(pool_->token())));
  o.Set("description", Napi::String::New(env, pool_->description()));
  o.Set("attachments", Napi::Number::New(env, pool_->attachments()));
  return o;
}

// serials(n): the first of n serials unique in this pool across threads.
Napi::Value SharedPoolWrap::Serials(const Napi::CallbackInfo& info) {
  if (!pool_) return Napi::Number::New(info.Env(), 0);
  uint64_t n = ToSize(info[0]);
  return Napi::Number::New(info.Env(), static_cast<double>(pool_->TakeSerials(n == 0 ? 1 : n)));
}

Napi::Value SharedPoolWrap::Alloc(const Napi::CallbackInfo& info) {
  if (!attached_) return StatusValue(info.Env(), alloc::Status::kClosed);
  size_t size = ToSize(info[0]);
  bool zero = info[1].As<Napi::Boolean>().Value();
  uint64_t serial = ToSerial(info[2]);
  size_t align = info.Length() > 3 ? ToSize(info[3]) : 0;
  bool may_map = info.Length() > 4 ? info[4].As<Napi::Boolean>().Value() : true;
  alloc::Handle h;
  alloc::Status st = pool_->arena().Alloc(size, zero, serial, &h, &last_error_, align, may_map);
  if (st != alloc::Status::kOk) return StatusValue(info.Env(), st);
  return Napi::Number::New(info.Env(), EncodeHandle(h.segment, h.offset));
}

Napi::Value SharedPoolWrap::Free(const Napi::CallbackInfo& info) {
  if (!attached_) return StatusValue(info.Env(), alloc::Status::kClosed);
  alloc::Arena::Ref ref = RefArgs(info);
  if (Stale(ref.segment)) return StatusValue(info.Env(), alloc::Status::kDoubleFree);
  alloc::Status st = pool_->arena().Free(ref);
  if (st == alloc::Status::kSegmentReleased) DropIfReleased(ref.segment);
  return StatusValue(info.Env(), st);
}

// As PoolWrap's, with this attachment's cache serial.
uint32_t SharedPoolWrap::FreePairs(uint32_t n) {
  if (n > scratch_len_ / 2) n = static_cast<uint32_t>(scratch_len_ / 2);
  return FreeBlocks(pool_->arena(), scratch_, n, cache_serial_);
}

// setScratch(array): as PoolWrap's; the first one also opens this
// attachment's block cache (its serial in the arena).
Napi::Value SharedPoolWrap::SetScratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_ || info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    return Napi::Boolean::New(env, false);
  }
  Napi::Float64Array array = info[0].As<Napi::Float64Array>();
  napi_ref ref = nullptr;
  if (napi_create_reference(env, array, 1, &ref) != napi_ok) return Napi::Boolean::New(env, false);
  if (cache_serial_ == 0) cache_serial_ = pool_->OpenCache(member_);
  if (scratch_ref_ != nullptr) napi_delete_reference(env, scratch_ref_);
  scratch_ref_ = ref;
  scratch_ = array.Data();
  scratch_len_ = array.ElementLength();
  return Napi::Boolean::New(env, true);
}

// refill(size, count, nflush, mayMap, aged): as PoolWrap's, one arena lock
// per block (the arena's calls each take it; the batch is one Node-API call).
Napi::Value SharedPoolWrap::Refill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_ || cache_serial_ == 0) return StatusValue(env, alloc::Status::kClosed);
  size_t size = ToSize(info[0]);
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  uint32_t nflush = info[2].As<Napi::Number>().Uint32Value();
  bool may_map = info[3].As<Napi::Boolean>().Value();
  double aged = info[4].As<Napi::Number>().DoubleValue();
  FreePairs(nflush);
  if (aged >= 1) pool_->arena().AgeIdle(aged < 0x1p60 ? static_cast<size_t>(aged) : size_t{1} << 60);
  if (count > scratch_len_) count = static_cast<uint32_t>(scratch_len_);
  alloc::Status st = alloc::Status::kOk;
  uint32_t n = AllocBlocks(pool_->arena(), size, cache_serial_, count, may_map, scratch_, &last_error_, &st);
  if (n == 0 && count > 0) return StatusValue(env, st);
  return Napi::Number::New(env, n);
}

Napi::Value SharedPoolWrap::Flush(const Napi::CallbackInfo& info) {
  if (!attached_ || cache_serial_ == 0) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), FreePairs(info[0].As<Napi::Number>().Uint32Value()));
}

// promote(segment, offset, classSize, serial, length, count): the cached
// block at (segment, offset) leaves this attachment's cache: in the arena
// it becomes the allocation of `length` bytes under `serial` with `count`
// references. A status.
Napi::Value SharedPoolWrap::Promote(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_ || cache_serial_ == 0) return StatusValue(env, alloc::Status::kClosed);
  alloc::Arena::Ref ref{info[0].As<Napi::Number>().Uint32Value(), ToSize(info[1]), ToSize(info[2]), cache_serial_};
  uint64_t serial = ToSerial(info[3]);
  if (serial == kNoSerial) return StatusValue(env, alloc::Status::kForeign);
  alloc::Status st = pool_->arena().Rename(ref, serial, ToSize(info[4]), info[5].As<Napi::Number>().Uint32Value());
  return StatusValue(env, st);
}

namespace {
void DropFigures(napi_env /*env*/, void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<Figures>*>(hint); }
}  // namespace

// figures(): a Float64Array over this attachment's counts (shared_pool.h
// Figures), which keeps them alive; undefined when it cannot be made.
Napi::Value SharedPoolWrap::FiguresArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!figures_) return env.Undefined();
  auto* hold = new std::shared_ptr<Figures>(figures_);
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, figures_->v, sizeof figures_->v, DropFigures, hold, &buffer) != napi_ok) {
    delete hold;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return env.Undefined();
  }
  return Napi::Float64Array::New(env, Figures::kCount, Napi::ArrayBuffer(env, buffer), 0);
}

// flushFrees(): the frees this thread deferred (figures()' batch) go back
// to the arena now; the entries refused as double frees (counted back; none
// reported after a reset: SharedPool::DrainFrees).
Napi::Value SharedPoolWrap::FlushFrees(const Napi::CallbackInfo& info) {
  if (!attached_ || !figures_) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), pool_->DrainFrees(figures_.get()));
}

static Napi::Value CountResult(Napi::Env env, alloc::Status st, uint32_t count) {
  if (st < alloc::Status::kOk) return StatusValue(env, st);
  return Napi::Number::New(env, count);
}

Napi::Value SharedPoolWrap::Retain(const Napi::CallbackInfo& info) {
  if (!attached_) return StatusValue(info.Env(), alloc::Status::kClosed);
  alloc::Arena::Ref ref = RefArgs(info);
  if (Stale(ref.segment)) return StatusValue(info.Env(), alloc::Status::kDoubleFree);
  uint32_t count = 0;
  alloc::Status st = pool_->arena().Retain(ref, &count);
  return CountResult(info.Env(), st, count);
}

Napi::Value SharedPoolWrap::Release(const Napi::CallbackInfo& info) {
  if (!attached_) return StatusValue(info.Env(), alloc::Status::kClosed);
  alloc::Arena::Ref ref = RefArgs(info);
  if (Stale(ref.segment)) return StatusValue(info.Env(), alloc::Status::kDoubleFree);
  uint32_t count = 0;
  alloc::Status st = pool_->arena().Release(ref, &count);
  if (st >= alloc::Status::kOk && count == 0) DropIfReleased(ref.segment);
  return CountResult(info.Env(), st, count);
}

Napi::Value SharedPoolWrap::RefCount(const Napi::CallbackInfo& info) {
  if (!attached_) return StatusValue(info.Env(), alloc::Status::kClosed);
  alloc::Arena::Ref ref = RefArgs(info);
  if (Stale(ref.segment)) return StatusValue(info.Env(), alloc::Status::kDoubleFree);
  uint32_t count = 0;
  alloc::Status st = pool_->arena().RefCount(ref, &count);
  return CountResult(info.Env(), st, count);
}

// share(segment, offset, length, serial): [share id, check] for a new
// reference of that allocation, or a negative status.
Napi::Value SharedPoolWrap::Share(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) return StatusValue(env, alloc::Status::kClosed);
  alloc::Arena::Ref ref = RefArgs(info);
  if (Stale(ref.segment)) return StatusValue(env, alloc::Status::kDoubleFree);
  uint64_t id = 0, check = 0;
  alloc::Status st = pool_->Share(ref, &id, &check);
  if (st < alloc::Status::kOk) return StatusValue(env, st);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(id)));
  out.Set(uint32_t{1}, Napi::String::New(env, Hex(check)));
  return out;
}

// adopt(shareId, check): [segment, offset, length, serial, count] of the
// shared allocation, whose reference the caller now holds (count: its
// references now), or a negative status.
Napi::Value SharedPoolWrap::Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) return StatusValue(env, alloc::Status::kClosed);
  uint64_t id = ToId(info[0]);
  uint64_t check = 0;
  if (id == 0 || !ParseHex(info[1], &check)) return StatusValue(env, alloc::Status::kForeign);
  alloc::Arena::Ref ref{};
  uint32_t refs = 0;
  alloc::Status st = pool_->Adopt(id, check, &ref, &refs);
  if (st < alloc::Status::kOk) return StatusValue(env, st);
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(uint32_t{4}, Napi::Number::New(env, refs));
  out.Set(uint32_t{0}, Napi::Number::New(env, ref.segment));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(ref.offset)));
  out.Set(uint32_t{2}, Napi::Number::New(env, static_cast<double>(ref.length)));
  out.Set(uint32_t{3}, Napi::Number::New(env, static_cast<double>(ref.serial)));
  return out;
}

// This environment's ArrayBuffer over the live segment `id`, made on first
// use (or when the one it had is over a segment released since);
// undefined when there is no such segment or it cannot be made.
Napi::Value SharedPoolWrap::Segment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) return env.Undefined();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  alloc::Segment* found = pool_->arena().FindSegment(id);
  if (found == nullptr) return env.Undefined();
  auto it = views_.find(id);
  if (it != views_.end() && it->second.seg == found && !it->second.detached_here) {
    napi_value buffer = nullptr;
    napi_get_reference_value(env, it->second.buffer, &buffer);
    // A detached one (someone else took it) is lose()'s to handle.
    if (buffer != nullptr) return Napi::Value(env, buffer);
  }
  SharedSegment* seg = pool_->Pin(id);
  if (seg == nullptr) return env.Undefined();
  napi_value buffer = NewBuffer(env, seg, seg->base, seg->size);
  napi_ref ref = nullptr;
  if (buffer == nullptr || napi_create_reference(env, buffer, 0, &ref) != napi_ok) {
    seg->Unref();
    return env.Undefined();
  }
  if (it != views_.end()) {
    // Over a segment released since (its memory retired), or collected.
    DetachView(&it->second);
    if (it->second.buffer != nullptr) napi_delete_reference(env, it->second.buffer);
    it->second.seg->Unref();
    it->second = EnvView{seg, ref, false};
  } else {
    views_.emplace(id, EnvView{seg, ref, false});
  }
  return Napi::Value(env, buffer);
}

// view(segment, offset, length): an ArrayBuffer of its own over one
// allocation (guard and secure pools), or undefined.
Napi::Value SharedPoolWrap::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) return env.Undefined();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  size_t offset = ToSize(info[1]);
  size_t len = ToSize(info[2]);
  SharedSegment* seg = pool_->Pin(id);
  if (seg == nullptr) return env.Undefined();
  napi_value buffer = offset + len <= seg->size ? NewBuffer(env, seg, seg->base + offset, len) : nullptr;
  seg->Unref();  // the pin; the ArrayBuffer holds its own two
  if (buffer == nullptr) return env.Undefined();
  return Napi::Value(env, buffer);
}

Napi::Value SharedPoolWrap::Detach(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), napi_detach_arraybuffer(info.Env(), info[0]) == napi_ok);
}

// lose(id[, guarded]): as PoolWrap's. Someone else detached this
// environment's ArrayBuffer over segment `id` (or, in a guarded pool, an
// allocation's own, `guarded`) and owns that memory now: the arena places
// nothing there again, and the segment is never retired under its owner.
Napi::Value SharedPoolWrap::Lose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) return Napi::Boolean::New(env, false);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  SharedSegment* seg = pool_->Pin(id);
  if (seg == nullptr) return Napi::Boolean::New(env, false);
  bool gone = false;
  if (info.Length() > 1 && info[1].IsArrayBuffer()) {
    napi_is_detached_arraybuffer(env, info[1], &gone);
  } else {
    auto it = views_.find(id);
    if (it != views_.end() && it->second.seg == seg && !it->second.detached_here) {
      napi_value buffer = nullptr;
      napi_get_reference_value(env, it->second.buffer, &buffer);
      if (buffer != nullptr) napi_is_detached_arraybuffer(env, buffer, &gone);
    }
  }
  bool lost = false;
  if (gone || seg->lost.load(std::memory_order_acquire)) {
    seg->lost.store(true, std::memory_order_release);
    lost = pool_->arena().Lose(id) != alloc::Arena::Lost::kNo;
  }
  seg->Unref();
  return Napi::Boolean::New(env, lost);
}

Napi::Value SharedPoolWrap::FindLost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0, length = 0;
  if (!attached_ ||
      !pool_->arena().FindLost(info[0].As<Napi::Number>().Uint32Value(), ToSerial(info[1]), &offset, &length)) {
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(offset)));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(length)));
  return out;
}

// reset() frees every allocation of every thread; trim() gives back what
// is free. Either may release segments: this environment's views of them go.
Napi::Value SharedPoolWrap::Reset(const Napi::CallbackInfo& info) {
  if (attached_) pool_->ResetExcept(member_);
  std::vector<uint32_t> ids;
  for (auto& [id, v] : views_) ids.push_back(id);
  for (uint32_t id : ids) DropIfReleased(id);
  return info.Env().Undefined();
}

Napi::Value SharedPoolWrap::Trim(const Napi::CallbackInfo& info) {
  size_t released = attached_ ? pool_->arena().Trim() : 0;
  platform::ReleaseFreeHeap();
  std::vector<uint32_t> ids;
  for (auto& [id, v] : views_) ids.push_back(id);
  for (uint32_t id : ids) DropIfReleased(id);
  return Napi::Number::New(info.Env(), static_cast<double>(released));
}

// No spares in a shared pool (SharedSource cannot recycle a mapping that
// other threads' ArrayBuffers may show).
Napi::Value SharedPoolWrap::Decay(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), 0);
}

Napi::Value SharedPoolWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pool_) return env.Undefined();
  alloc::Stats s = pool_->arena().GetStats();
  Napi::Object o = StatsObject(env, s, pool_->source().huge_pages(), pool_->source().prefault());
  // The program's counts are every attachment's, summed (the arena's own
  // count each cached block as one allocation: lib/native/shapes.ts
  // NativeSharedStats).
  Totals t = pool_->Sum();
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  num("usedBytes", t.used);
  num("peakUsedBytes", t.peak);
  num("liveAllocations", t.allocs - t.frees);
  num("totalAllocations", t.allocs);
  num("totalFrees", t.frees);
  num("attachments", pool_->attachments());
  return o;
}

Napi::Value SharedPoolWrap::Mapped(const Napi::CallbackInfo& info) {
  if (!pool_) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), static_cast<double>(pool_->arena().MappedInUseBytes()));
}

// The blocks other threads' caches hold are left out (this thread's own
// are lib/'s to show): which of them a thread has handed out is known to
// that thread only.
Napi::Value SharedPoolWrap::Dump(const Napi::CallbackInfo& info) {
  if (!pool_) return info.Env().Undefined();
  alloc::ArenaDump d = pool_->arena().Dump();
  std::unordered_set<uint64_t> others = pool_->CacheSerials(member_);
  if (!others.empty()) {
    std::vector<alloc::AllocationDump> kept;
    for (const alloc::AllocationDump& a : d.allocations) {
      if (others.count(a.serial) == 0) kept.push_back(a);
    }
    d.allocations = std::move(kept);
  }
  return DumpObject(info.Env(), d);
}

// This environment's close(): detaches its ArrayBuffers, then ends its
// attachment (the last one gives the memory back).
Napi::Value SharedPoolWrap::Close(const Napi::CallbackInfo& info) {
  if (pool_ && !abandoned_) DropViews(false);
  End(true);
  return info.Env().Undefined();
}

Napi::Value SharedPoolWrap::LastError(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("errno", Napi::Number::New(info.Env(), last_error_.code));
  o.Set("syscall", Napi::String::New(info.Env(), last_error_.syscall));
  return o;
}

}  // namespace addon
}  // namespace mmap_pool
