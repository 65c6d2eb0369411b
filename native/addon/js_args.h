// What lib/ passes the addon's pools (PoolWrap, SharedPoolWrap), read the
// one way both read it. lib/ has checked every value (lib/options.ts,
// lib/native/); the checks here only keep a wrong call (the binding is
// reachable by its file path) from aborting the process in a failed
// conversion: a bad number reads as a value the arena refuses, a bad option
// throws a TypeError or RangeError into JS.
//
// Threads: the JS thread of the environment that makes the call.
#ifndef MMAP_POOL_ADDON_JS_ARGS_H_
#define MMAP_POOL_ADDON_JS_ARGS_H_

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../alloc/arena.h"
#include "../platform/clock.h"
#include "../platform/mapping.h"
#include "handle.h"

namespace mmap_pool {
namespace addon {

// Never a serial: what ToSerial makes of a value that is not one.
constexpr uint64_t kNoSerial = UINT64_MAX;

// A serial: an integer 1 .. 2^53 - 1 (lib/buffers/serials.ts nextSerial), exact as a
// double; anything else (lib/ has a bug) names no allocation, not even the
// block cache's blocks (serial 0).
inline uint64_t ToSerial(const Napi::Value& v) {
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0)) return kNoSerial;
  return static_cast<uint64_t>(d);
}

inline size_t ToSize(const Napi::Value& v) {
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0)) return 0;
  if (d >= 18446744073709551616.0) return SIZE_MAX;  // Infinity and beyond
  return static_cast<size_t>(d);
}

inline Napi::Value StatusValue(Napi::Env env, alloc::Status st) {
  return Napi::Number::New(env, static_cast<int32_t>(st));
}

// (segment, offset, length, serial) from a call's first four arguments.
inline alloc::Arena::Ref RefArgs(const Napi::CallbackInfo& info) {
  return {info[0].As<Napi::Number>().Uint32Value(), ToSize(info[1]), ToSize(info[2]), ToSerial(info[3])};
}

// The arena's options from a pool's options object `o` (chunkSize,
// hugeThreshold, maxBytes, secure), for the constructor `who` ("NativePool",
// "SharedPool"). False, with a TypeError or RangeError thrown into JS, when
// a size is not a number or not one the arena and the handle layout take.
inline bool ReadArenaOptions(Napi::Env env, const Napi::Object& o, const char* who, alloc::ArenaOptions* opt) {
  for (const char* key : {"chunkSize", "hugeThreshold", "maxBytes"}) {
    if (!o.Get(key).IsNumber()) {
      Napi::TypeError::New(env, std::string(who) + ": options." + key + " must be a number").ThrowAsJavaScriptException();
      return false;
    }
  }
  opt->chunk_size = ToSize(o.Get("chunkSize"));
  opt->huge_threshold = ToSize(o.Get("hugeThreshold"));
  opt->max_bytes = ToSize(o.Get("maxBytes"));
  opt->page_size = platform::PageSize() < 4096 ? 4096 : platform::PageSize();
  opt->zero_on_free = o.Get("secure").ToBoolean().Value();
  opt->clock = platform::MonotonicMillis;
  if (opt->chunk_size == 0 || opt->chunk_size % opt->page_size != 0 ||
      opt->chunk_size % platform::MapGranularity() != 0 || opt->chunk_size > kHandleSpan ||
      opt->huge_threshold > opt->chunk_size) {
    Napi::RangeError::New(env, std::string(who) + ": invalid chunkSize/hugeThreshold").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_JS_ARGS_H_
