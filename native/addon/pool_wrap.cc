// Threads: JS thread only (see pool_wrap.h).
#include "pool_wrap.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cache_batches.h"
#include "handle.h"
#include "js_args.h"

namespace mmap_pool {
namespace addon {

namespace {
// The serial of every block the JS block cache holds; lib/ never gives an
// allocation serial 0.
constexpr uint64_t kCacheSerial = 0;

}  // namespace

Napi::Function PoolWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativePool",
                     {
                         InstanceMethod<&PoolWrap::Alloc>("alloc"),
                         InstanceMethod<&PoolWrap::Free>("free"),
                         InstanceMethod<&PoolWrap::SetScratch>("setScratch"),
                         InstanceMethod<&PoolWrap::Refill>("refill"),
                         InstanceMethod<&PoolWrap::Flush>("flush"),
                         InstanceMethod<&PoolWrap::Retain>("retain"),
                         InstanceMethod<&PoolWrap::Release>("release"),
                         InstanceMethod<&PoolWrap::RefCount>("refCount"),
                         InstanceMethod<&PoolWrap::Segment>("segment"),
                         InstanceMethod<&PoolWrap::View>("view"),
                         InstanceMethod<&PoolWrap::Detach>("detach"),
                         InstanceMethod<&PoolWrap::Lose>("lose"),
                         InstanceMethod<&PoolWrap::FindLost>("findLost"),
                         InstanceMethod<&PoolWrap::Reset>("reset"),
                         InstanceMethod<&PoolWrap::Trim>("trim"),
                         InstanceMethod<&PoolWrap::Decay>("decay"),
                         InstanceMethod<&PoolWrap::Stats>("stats"),
                         InstanceMethod<&PoolWrap::Mapped>("mapped"),
                         InstanceMethod<&PoolWrap::Dump>("dump"),
                         InstanceMethod<&PoolWrap::Close>("close"),
                         InstanceMethod<&PoolWrap::LastError>("lastError"),
                     });
}

// new NativePool({ backing, dir, chunkSize, hugeThreshold, maxBytes, secure, hugePages,
// prefault, heapFactory, heapRetire }) with values already validated by lib/options.ts.
PoolWrap::PoolWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PoolWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "NativePool expects an options object").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  alloc::ArenaOptions opt;
  if (!ReadArenaOptions(env, o, "NativePool", &opt)) return;
  if (!o.Get("backing").IsString()) {
    Napi::TypeError::New(env, "NativePool: options.backing must be a string").ThrowAsJavaScriptException();
    return;
  }
  std::string backing = o.Get("backing").As<Napi::String>().Utf8Value();
  bool heap = backing == "heap";
  platform::Backing b = backing == "file" ? platform::Backing::kFile : platform::Backing::kAnonymous;
  std::string dir = o.Has("dir") && o.Get("dir").IsString() ? o.Get("dir").As<Napi::String>().Utf8Value() : "";
  napi_value factory = heap ? static_cast<napi_value>(o.Get("heapFactory")) : nullptr;
  napi_value retire = nullptr;
  if (heap && o.Get("heapRetire").IsFunction()) retire = o.Get("heapRetire");
  bool secure = opt.zero_on_free;
  bool huge_pages = o.Get("hugePages").ToBoolean().Value();
  bool prefault = o.Get("prefault").ToBoolean().Value();
  registry_ = env.GetInstanceData<PoolRegistry>();
  std::shared_ptr<RetiredRanges> retired =
      registry_ != nullptr ? registry_->retired : std::make_shared<RetiredRanges>();
  source_.reset(new JsSegmentSource(env, b, dir, heap, factory, retire, secure, huge_pages, prefault,
                                    std::move(retired)));
  arena_.reset(new alloc::Arena(opt, source_.get()));
  if (registry_ != nullptr) registry_->pools.insert(this);
}

PoolWrap::~PoolWrap() {
  // Collected without close(): Buffers over the chunks may still be alive, so
  // let go without detaching; each chunk unmaps with its ArrayBuffer.
  if (source_) source_->Abandon();
  arena_.reset();
  if (registry_ != nullptr) registry_->pools.erase(this);
  if (scratch_ref_ != nullptr) napi_delete_reference(Env(), scratch_ref_);
}

void PoolWrap::Abandon() {
  registry_ = nullptr;
  if (source_) source_->Abandon();
  if (arena_) arena_->Close();
}

Napi::Value PoolWrap::Alloc(const Napi::CallbackInfo& info) {
  size_t size = ToSize(info[0]);
  // Only calls that cannot fail while a worker is being terminated (no
  // coercion: lib/ passes exactly a boolean and numbers).
  bool zero = info[1].As<Napi::Boolean>().Value();
  uint64_t serial = ToSerial(info[2]);
  size_t align = info.Length() > 3 ? ToSize(info[3]) : 0;
  bool may_map = info.Length() > 4 ? info[4].As<Napi::Boolean>().Value() : true;
  alloc::Handle h;
  alloc::Status st = arena_->Alloc(size, zero, serial, &h, &last_error_, align, may_map);
  if (st != alloc::Status::kOk) return StatusValue(info.Env(), st);
  return Napi::Number::New(info.Env(), EncodeHandle(h.segment, h.offset));
}

Napi::Value PoolWrap::Free(const Napi::CallbackInfo& info) {
  return StatusValue(info.Env(), arena_->Free(RefArgs(info)));
}

// Frees n cached blocks given as (handle, class size) pairs in
// scratch[0 .. 2n) (at most as many as it holds); returns how many the arena
// refused (0 unless lib/ has a bug).
uint32_t PoolWrap::FreePairs(uint32_t n) {
  if (n > scratch_len_ / 2) n = static_cast<uint32_t>(scratch_len_ / 2);
  return FreeBlocks(*arena_, scratch_, n, kCacheSerial);
}

// setScratch(array: Float64Array): the array refill() and flush() read
// their pairs from and write their handles to, from now on; true when taken
// (false, with nothing changed, for anything but a Float64Array).
Napi::Value PoolWrap::SetScratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    return Napi::Boolean::New(env, false);
  }
  Napi::Float64Array array = info[0].As<Napi::Float64Array>();
  napi_ref ref = nullptr;
  if (napi_create_reference(env, array, 1, &ref) != napi_ok) return Napi::Boolean::New(env, false);
  if (scratch_ref_ != nullptr) napi_delete_reference(env, scratch_ref_);
  scratch_ref_ = ref;
  scratch_ = array.Data();
  scratch_len_ = array.ElementLength();
  return Napi::Boolean::New(env, true);
}

// refill(size, count, nflush, mayMap, aged): first frees the nflush cached
// blocks given as (handle, class size) pairs in scratch[0 .. 2 * nflush)
// (one call both gives back and brings blocks), ages the idle chunks by
// `aged` bytes (Arena::AgeIdle), then allocates up to `count` blocks of
// `size` into scratch[0..n): how many were allocated, 0 when count is 0 (or
// no scratch array was set), or a negative status when none was
// (kNeedsChunk when mayMap is false and only a new chunk has room).
Napi::Value PoolWrap::Refill(const Napi::CallbackInfo& info) {
  size_t size = ToSize(info[0]);
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  uint32_t nflush = info[2].As<Napi::Number>().Uint32Value();
  bool may_map = info[3].As<Napi::Boolean>().Value();
  double aged = info[4].As<Napi::Number>().DoubleValue();
  FreePairs(nflush);
  // (Clamped: a double past size_t's range must not be cast. NaN fails >= 1.)
  if (aged >= 1) arena_->AgeIdle(aged < 0x1p60 ? static_cast<size_t>(aged) : size_t{1} << 60);
  if (count > scratch_len_) count = static_cast<uint32_t>(scratch_len_);
  alloc::Status st = alloc::Status::kOk;
  uint32_t n = AllocBlocks(*arena_, size, kCacheSerial, count, may_map, scratch_, &last_error_, &st);
  if (n == 0 && count > 0) return StatusValue(info.Env(), st);
  return Napi::Number::New(info.Env(), n);
}

// flush(n): frees n cached blocks given as (handle, class size) pairs in the
// scratch array; returns how many the arena refused (0 unless lib/ has a
// bug).
Napi::Value PoolWrap::Flush(const Napi::CallbackInfo& info) {
  uint32_t n = info[0].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), FreePairs(n));
}

// retain / release / refCount return the count (>= 0) or a negative status.
static Napi::Value CountResult(Napi::Env env, alloc::Status st, uint32_t count) {
  if (st < alloc::Status::kOk) return StatusValue(env, st);
  return Napi::Number::New(env, count);
}

Napi::Value PoolWrap::Retain(const Napi::CallbackInfo& info) {
  uint32_t count = 0;
  alloc::Status st = arena_->Retain(RefArgs(info), &count);  // before `count` is read
  return CountResult(info.Env(), st, count);
}

Napi::Value PoolWrap::Release(const Napi::CallbackInfo& info) {
  uint32_t count = 0;
  alloc::Status st = arena_->Release(RefArgs(info), &count);  // before `count` is read
  return CountResult(info.Env(), st, count);
}

Napi::Value PoolWrap::RefCount(const Napi::CallbackInfo& info) {
  uint32_t count = 0;
  alloc::Status st = arena_->RefCount(RefArgs(info), &count);  // before `count` is read
  return CountResult(info.Env(), st, count);
}

// The ArrayBuffer over segment `id`; null when the runtime refuses external
// ArrayBuffers, undefined when there is no such segment or it cannot be made.
Napi::Value PoolWrap::Segment(const Napi::CallbackInfo& info) {
  alloc::Segment* seg = arena_->FindSegment(info[0].As<Napi::Number>().Uint32Value());
  if (seg == nullptr) return info.Env().Undefined();
  bool refused = false;
  napi_value buffer = source_->Expose(seg, &refused);
  if (buffer == nullptr) return refused ? info.Env().Null() : info.Env().Undefined();
  return Napi::Value(info.Env(), buffer);
}

// view(segment, offset, length): an ArrayBuffer of its own over one
// allocation (guarded pools), or undefined.
Napi::Value PoolWrap::View(const Napi::CallbackInfo& info) {
  alloc::Segment* seg = arena_->FindSegment(info[0].As<Napi::Number>().Uint32Value());
  if (seg == nullptr) return info.Env().Undefined();
  napi_value buffer = source_->ExposeRange(seg, ToSize(info[1]), ToSize(info[2]));
  if (buffer == nullptr) return info.Env().Undefined();
  return Napi::Value(info.Env(), buffer);
}

// detach(arrayBuffer): true when it is detached now.
Napi::Value PoolWrap::Detach(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), napi_detach_arraybuffer(info.Env(), info[0]) == napi_ok);
}

// lose(id[, guarded]): true when segment `id`'s ArrayBuffer was detached by
// someone else (a web byte stream, ArrayBuffer.prototype.transfer()), now
// or before: the arena takes it out of placement (Arena::Lose). False for
// anything else, a segment detached here (released, recycled) included.
// In a guarded pool the segment has no ArrayBuffer of its own: `guarded`,
// an allocation's own ArrayBuffer found detached, stands for it.
// The first time, the reference to the detached ArrayBuffer becomes strong:
// Release must find it to see that someone else detached it (and leave the
// memory mapped for its new owner until the backing store's finalizer),
// and Expose must never make a second ArrayBuffer over memory that is
// someone else's.
Napi::Value PoolWrap::Lose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto* seg = static_cast<JsSegment*>(arena_->FindSegment(id));
  if (seg == nullptr) return Napi::Boolean::New(env, false);
  if (seg->buffer_ref == nullptr && info.Length() > 1 && info[1].IsArrayBuffer()) {
    bool gone = false;
    if (napi_is_detached_arraybuffer(env, info[1], &gone) != napi_ok || !gone ||
        napi_create_reference(env, info[1], 0, &seg->buffer_ref) != napi_ok) {
      return Napi::Boolean::New(env, false);
    }
  }
  if (seg->buffer_ref == nullptr || seg->detached_here) return Napi::Boolean::New(env, false);
  napi_value buffer = nullptr;
  bool detached = false;
  if (napi_get_reference_value(env, seg->buffer_ref, &buffer) != napi_ok || buffer == nullptr ||
      napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || !detached) {
    return Napi::Boolean::New(env, false);
  }
  alloc::Arena::Lost lost = arena_->Lose(id);
  // (kNow may have released the segment already, a chunk with nothing
  // live: Release has seen the detach and deleted the reference.)
  if (lost == alloc::Arena::Lost::kNow && arena_->FindSegment(id) == seg) {
    napi_reference_ref(env, seg->buffer_ref, nullptr);
  }
  return Napi::Boolean::New(env, lost != alloc::Arena::Lost::kNo);
}

// findLost(id, serial): [offset, length] of the live allocation under
// `serial` in lost segment `id` (its views are detached: byteOffset and
// byteLength read 0), or undefined.
Napi::Value PoolWrap::FindLost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0, length = 0;
  if (!arena_->FindLost(info[0].As<Napi::Number>().Uint32Value(), ToSerial(info[1]), &offset, &length)) {
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(offset)));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(length)));
  return out;
}

Napi::Value PoolWrap::Reset(const Napi::CallbackInfo& info) {
  arena_->Reset();
  return info.Env().Undefined();
}

Napi::Value PoolWrap::Trim(const Napi::CallbackInfo& info) {
  size_t released = arena_->Trim();
  // The arena's freed metadata (slabs, page maps) sits in the C++ heap.
  platform::ReleaseFreeHeap();
  return Napi::Number::New(info.Env(), static_cast<double>(released));
}

Napi::Value PoolWrap::Decay(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(arena_->Decay()));
}

namespace {
// "mapped_bytes" -> "mappedBytes": the JS name of a member of alloc::Stats.
std::string CamelCase(const char* snake) {
  std::string out;
  for (bool up = false; *snake != '\0'; snake++) {
    if (*snake == '_') {
      up = true;
    } else {
      out.push_back(up ? static_cast<char>(*snake - 'a' + 'A') : *snake);
      up = false;
    }
  }
  return out;
}

// What stats() reports besides alloc::Stats's MMAP_POOL_STATS_FIGURES, in the
// order it sets them.
constexpr const char* kStatsExtras[] = {"hugePages", "prefault", "residentBytes", "classes"};
}  // namespace

std::vector<std::string> PoolWrap::StatsFields() {
  std::vector<std::string> names;
#define MMAP_POOL_STATS_NAME(type, member) names.push_back(CamelCase(#member));
  MMAP_POOL_STATS_FIGURES(MMAP_POOL_STATS_NAME)
#undef MMAP_POOL_STATS_NAME
  for (const char* extra : kStatsExtras) names.push_back(extra);
  return names;
}

Napi::Object StatsObject(Napi::Env env, const alloc::Stats& s, bool huge_pages, bool prefault) {
  Napi::Object o = Napi::Object::New(env);
#define MMAP_POOL_STATS_SET(type, member) \
  o.Set(CamelCase(#member), Napi::Number::New(env, static_cast<double>(s.member)));
  MMAP_POOL_STATS_FIGURES(MMAP_POOL_STATS_SET)
#undef MMAP_POOL_STATS_SET
  // The hints in force (false where they are no-ops: 'heap', or huge pages
  // on a system without transparent huge pages).
  o.Set("hugePages", Napi::Boolean::New(env, huge_pages));
  o.Set("prefault", Napi::Boolean::New(env, prefault));
  if (s.resident_known) {
    o.Set("residentBytes", Napi::Number::New(env, static_cast<double>(s.resident_bytes)));
  } else {
    o.Set("residentBytes", env.Null());
  }
  Napi::Array classes = Napi::Array::New(env, s.classes.size());
  for (uint32_t i = 0; i < s.classes.size(); i++) {
    Napi::Object row = Napi::Object::New(env);
    row.Set("size", Napi::Number::New(env, static_cast<double>(s.classes[i].size)));
    row.Set("live", Napi::Number::New(env, static_cast<double>(s.classes[i].live)));
    row.Set("capacity", Napi::Number::New(env, static_cast<double>(s.classes[i].capacity)));
    classes.Set(i, row);
  }
  o.Set("classes", classes);
  return o;
}

Napi::Value PoolWrap::Stats(const Napi::CallbackInfo& info) {
  return StatsObject(info.Env(), arena_->GetStats(), source_->huge_pages(), source_->prefault());
}

Napi::Value PoolWrap::Mapped(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(arena_->MappedInUseBytes()));
}

namespace {
Napi::Number Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

Napi::Object RunObject(Napi::Env env, const alloc::RunDump& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("page", Num(env, r.page));
  o.Set("pages", Num(env, r.pages));
  const char* kind = r.kind == alloc::RunDump::Kind::kFree   ? "free"
                     : r.kind == alloc::RunDump::Kind::kSlab ? "slab"
                                                              : "large";
  o.Set("kind", Napi::String::New(env, kind));
  if (r.kind == alloc::RunDump::Kind::kFree) return o;
  o.Set("classSize", Num(env, static_cast<double>(r.class_size)));
  o.Set("live", Num(env, r.live));
  o.Set("capacity", Num(env, r.capacity));
  return o;
}

Napi::Object ChunkObject(Napi::Env env, const alloc::ChunkDump& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Num(env, c.id));
  o.Set("size", Num(env, static_cast<double>(c.size)));
  o.Set("freePages", Num(env, c.free_pages));
  Napi::Array runs = Napi::Array::New(env, c.runs.size());
  for (uint32_t i = 0; i < c.runs.size(); i++) runs.Set(i, RunObject(env, c.runs[i]));
  o.Set("runs", runs);
  return o;
}

Napi::Object AllocationObject(Napi::Env env, const alloc::AllocationDump& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("segment", Num(env, a.segment));
  o.Set("offset", Num(env, static_cast<double>(a.offset)));
  o.Set("size", Num(env, static_cast<double>(a.size)));
  if (a.class_size == 0) {
    o.Set("classSize", env.Null());  // a huge allocation
  } else {
    o.Set("classSize", Num(env, static_cast<double>(a.class_size)));
  }
  o.Set("serial", Num(env, static_cast<double>(a.serial)));
  o.Set("ageMs", Num(env, a.age_ms));
  return o;
}
}  // namespace

// The arena's dump as the objects lib/native/shapes.ts NativeDump describes.
Napi::Object DumpObject(Napi::Env env, const alloc::ArenaDump& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pageSize", Num(env, static_cast<double>(d.page_size)));
  o.Set("chunkSize", Num(env, static_cast<double>(d.chunk_size)));
  o.Set("hugeThreshold", Num(env, static_cast<double>(d.huge_threshold)));
  o.Set("spareBytes", Num(env, static_cast<double>(d.spare_bytes)));
  Napi::Array chunks = Napi::Array::New(env, d.chunks.size());
  for (uint32_t i = 0; i < d.chunks.size(); i++) chunks.Set(i, ChunkObject(env, d.chunks[i]));
  o.Set("chunks", chunks);
  Napi::Array huge = Napi::Array::New(env, d.huge.size());
  for (uint32_t i = 0; i < d.huge.size(); i++) {
    Napi::Object h = Napi::Object::New(env);
    h.Set("id", Num(env, d.huge[i].id));
    h.Set("size", Num(env, static_cast<double>(d.huge[i].size)));
    h.Set("mappedBytes", Num(env, static_cast<double>(d.huge[i].mapped_bytes)));
    huge.Set(i, h);
  }
  o.Set("huge", huge);
  Napi::Array allocations = Napi::Array::New(env, d.allocations.size());
  for (uint32_t i = 0; i < d.allocations.size(); i++) allocations.Set(i, AllocationObject(env, d.allocations[i]));
  o.Set("allocations", allocations);
  return o;
}

Napi::Value PoolWrap::Dump(const Napi::CallbackInfo& info) {
  return DumpObject(info.Env(), arena_->Dump());
}

// Detaches every ArrayBuffer the pool made, then gives the memory back
// (JsSegmentSource::Release detaches each first, and retires rather than
// unmaps memory an ArrayBuffer object may still lead a pending job to).
Napi::Value PoolWrap::Close(const Napi::CallbackInfo& info) {
  if (!arena_->closed()) source_->DetachAll();
  arena_->Close();
  return info.Env().Undefined();
}

Napi::Value PoolWrap::LastError(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("errno", Napi::Number::New(info.Env(), last_error_.code));
  o.Set("syscall", Napi::String::New(info.Env(), last_error_.syscall));
  return o;
}

}  // namespace addon
}  // namespace mmap_pool
