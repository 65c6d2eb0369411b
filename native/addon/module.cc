// Module init: exports the NativePool and SharedPool classes and platform
// facts, and registers the environment cleanup hook that lets go of every
// pool of an environment (a worker thread exiting or being terminated)
// without touching JS values, and ends its attachments to shared pools.
//
// Threads: Init and the cleanup hook run on the JS thread of the environment
// that loads the addon; each environment (main thread, each worker) has its
// own registry.
#include <napi.h>

#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../alloc/size_classes.h"
#include "../platform/mapping.h"
#include "handle.h"
#include "pool_wrap.h"
#include "shared_pool_wrap.h"

namespace mmap_pool {
namespace addon {
namespace {

// claimOnce(key): true the first time `key` is claimed in the process, by
// any thread (a warning said "once" must not repeat in every worker).
Napi::Value ClaimOnce(const Napi::CallbackInfo& info) {
  static std::mutex mu;
  static std::set<std::string>* claimed = new std::set<std::string>();  // never freed: process-wide
  std::string key = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  std::lock_guard<std::mutex> lock(mu);
  return Napi::Boolean::New(info.Env(), claimed->insert(key).second);
}

// The cleanup hook owns the registry, so instance data has no finalizer.
void KeepRegistry(Napi::Env, PoolRegistry*) {}

void CleanupEnvironment(void* arg) {
  auto* registry = static_cast<PoolRegistry*>(arg);
  std::unordered_set<PoolWrap*> pools;
  pools.swap(registry->pools);
  for (PoolWrap* pool : pools) pool->Abandon();
  std::unordered_set<SharedPoolWrap*> shared;
  shared.swap(registry->shared);
  for (SharedPoolWrap* pool : shared) pool->Abandon();
  delete registry;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* registry = new PoolRegistry();
  env.SetInstanceData<PoolRegistry, KeepRegistry>(registry);
  if (napi_add_env_cleanup_hook(env, CleanupEnvironment, registry) != napi_ok) {
    delete registry;
    Napi::Error::New(env, "mmap-pool: cannot register the environment cleanup hook")
        .ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("NativePool", PoolWrap::Define(env));
  exports.Set("SharedPool", SharedPoolWrap::Define(env));
  exports.Set("claimOnce", Napi::Function::New(env, ClaimOnce));
  exports.Set("externalBuffersAllowed", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Boolean::New(info.Env(), JsSegmentSource::ExternalBuffersAllowed(info.Env()));
              }));
  // tuneHeap(trimBytes, mmapBytes): platform::TuneHeap; lib/ checks both are integers in range.
  exports.Set("tuneHeap", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                const double trim = info[0].As<Napi::Number>().DoubleValue();
                const double mmap = info[1].As<Napi::Number>().DoubleValue();
                return Napi::Boolean::New(info.Env(), platform::TuneHeap(static_cast<size_t>(trim), static_cast<size_t>(mmap)));
              }));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(platform::PageSize())));
  // Every small and large class size up to 64 KiB, ascending (native/alloc/size_classes.h):
  // lib/cache/block-cache.ts rounds requests with the allocator's own table.
  Napi::Array classes = Napi::Array::New(env);
  for (uint32_t i = 0; alloc::ClassSize(i) <= 65536; i++) {
    classes.Set(i, Napi::Number::New(env, static_cast<double>(alloc::ClassSize(i))));
  }
  exports.Set("classSizes", classes);
  exports.Set("smallMax", Napi::Number::New(env, static_cast<double>(alloc::kSmallMax)));
  // What lib/native/ writes down as constants of its own; test/binding.test.ts
  // compares them, so the two languages cannot drift apart: the handle's
  // span, alloc::Status by name, and the fields stats() reports (the
  // arena's MMAP_POOL_STATS_FIGURES in camelCase, then the addon's own).
  // The arena's own counts of allocations are not among them: lib/ counts
  // what the program holds (a block in its block cache is one allocation to
  // the arena however often the program takes and frees it).
  Napi::Object contract = Napi::Object::New(env);
  contract.Set("handleSpan", Napi::Number::New(env, kHandleSpan));
  Napi::Object status = Napi::Object::New(env);
  const std::pair<const char*, alloc::Status> kStatuses[] = {
      {"Ok", alloc::Status::kOk},           {"SegmentReleased", alloc::Status::kSegmentReleased},
      {"DoubleFree", alloc::Status::kDoubleFree}, {"Foreign", alloc::Status::kForeign},
      {"Exhausted", alloc::Status::kExhausted},   {"MapFailed", alloc::Status::kMapFailed},
      {"Closed", alloc::Status::kClosed},         {"TooLarge", alloc::Status::kTooLarge},
      {"NeedsChunk", alloc::Status::kNeedsChunk}, {"BadAlign", alloc::Status::kBadAlign},
      {"CountFull", alloc::Status::kCountFull},
  };
  for (const auto& [name, value] : kStatuses) {
    status.Set(name, Napi::Number::New(env, static_cast<double>(static_cast<int32_t>(value))));
  }
  contract.Set("status", status);
  std::vector<std::string> stats_fields = PoolWrap::StatsFields();
  Napi::Array fields = Napi::Array::New(env, stats_fields.size());
  for (uint32_t i = 0; i < stats_fields.size(); i++) fields.Set(i, Napi::String::New(env, stats_fields[i]));
  contract.Set("statsFields", fields);
  exports.Set("contract", contract);
  exports.Set("mapGranularity",
              Napi::Number::New(env, static_cast<double>(platform::MapGranularity())));
  return exports;
}

}  // namespace addon
}  // namespace mmap_pool

static Napi::Object InitMmapPool(Napi::Env env, Napi::Object exports) {
  return mmap_pool::addon::Init(env, exports);
}

NODE_API_MODULE(mmap_pool, InitMmapPool)
