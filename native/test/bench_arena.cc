// bench_arena: what an alloc+free pair costs inside the Arena alone, without
// Node: the floor under pool.allocUnsafe() + pool.free(). A benchmark, not a
// test: it asserts nothing about time and is not registered with ctest.
//
//   cmake -S native/test -B build-native/bench -DCMAKE_BUILD_TYPE=Release
//   cmake --build build-native/bench --target bench_arena
//   build-native/bench/bench_arena            # a table
//   build-native/bench/bench_arena --json     # what bench/run.ts reads
//   build-native/bench/bench_arena --clock    # with the Pool's allocation clock
//
// The arena has the Pool's defaults (4 MiB chunks, 1 MiB huge threshold, the
// OS page size) over plain mappings (test_sources.h), and no clock unless
// --clock gives it the one the Pool has (platform::MonotonicMillis, read on
// every allocation for its age in dumps). For each size:
//   pair   alloc then free at once: the same slot comes back every time, the
//          fast path at its best;
//   batch  kBatch allocs, then their frees in allocation order: the slab's
//          free list and the class's slab list move, as under real traffic.
// Figures are ns per alloc+free pair: the median of kRounds timed rounds of
// at least kRoundNs each, measured in kPasses passes over every case, and
// the lowest of the passes' medians reported (with all of them). On a
// shared machine a neighbour's burst slows a whole pass, a few hundred ms,
// which a median within the pass does not see through; the lowest pass is
// what the code costs when it has the core (as Python's timeit advises the
// minimum). Everything is compiled at -O2 (CMakeLists.txt).
//
// Threads: one. The Arena's mutex is taken twice per pair, uncontended.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "alloc/arena.h"
#include "platform/clock.h"
#include "platform/mapping.h"
#include "test_sources.h"

using mmap_pool::alloc::Arena;
using mmap_pool::alloc::ArenaOptions;
using mmap_pool::alloc::Handle;
using mmap_pool::alloc::SourceError;
using mmap_pool::alloc::Status;

namespace {

constexpr int kRounds = 9;
constexpr int kPasses = 3;
constexpr int64_t kRoundNs = 20'000'000;  // 20 ms
constexpr int kBatch = 256;
#if defined(__clang__)
constexpr const char* kCompiler = __VERSION__;  // "Debian Clang 14.0.6", say
#else
constexpr const char* kCompiler = "g++ " __VERSION__;
#endif

struct Case {
  size_t size;
  const char* kind;  // "small" or "large", as the arena classifies it
};

const Case kCases[] = {
    {16, "small"}, {64, "small"}, {1024, "small"}, {4096, "small"}, {65536, "large"},
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Keeps the offsets the loops produce observable.
volatile uint64_t g_sink = 0;
uint32_t g_serial = 0;

[[noreturn]] void Die(const char* what, size_t size, Status st) {
  std::fprintf(stderr, "bench_arena: %s(%zu) failed with status %d\n", what, size,
               static_cast<int>(st));
  std::exit(1);
}

void Pairs(Arena* arena, size_t size, int64_t n) {
  SourceError err;
  uint64_t sum = 0;
  for (int64_t i = 0; i < n; i++) {
    Handle h;
    uint32_t serial = ++g_serial;
    Status st = arena->Alloc(size, false, serial, &h, &err);
    if (st != Status::kOk) Die("Alloc", size, st);
    sum += h.offset;
    st = arena->Free({h.segment, h.offset, size, serial});
    if (st != Status::kOk) Die("Free", size, st);
  }
  g_sink = g_sink + sum;
}

// n rounded down to whole batches.
void Batches(Arena* arena, size_t size, int64_t n) {
  SourceError err;
  Handle handles[kBatch];
  uint32_t serials[kBatch];
  uint64_t sum = 0;
  for (int64_t done = 0; done + kBatch <= n; done += kBatch) {
    for (int j = 0; j < kBatch; j++) {
      serials[j] = ++g_serial;
      Status st = arena->Alloc(size, false, serials[j], &handles[j], &err);
      if (st != Status::kOk) Die("Alloc", size, st);
      sum += handles[j].offset;
    }
    for (int j = 0; j < kBatch; j++) {
      Status st = arena->Free({handles[j].segment, handles[j].offset, size, serials[j]});
      if (st != Status::kOk) Die("Free", size, st);
    }
  }
  g_sink = g_sink + sum;
}

// Median ns per pair of `body` over kRounds rounds; n is calibrated first so
// that one round takes at least kRoundNs.
template <typename Body>
double Measure(Body body) {
  int64_t n = kBatch * 16;
  for (;;) {
    int64_t t0 = NowNs();
    body(n);
    int64_t dt = NowNs() - t0;
    if (dt >= kRoundNs / 4) {
      n = std::max<int64_t>(n, n * kRoundNs / std::max<int64_t>(dt, 1));
      n = (n + kBatch - 1) / kBatch * kBatch;
      break;
    }
    n *= 4;
  }
  std::vector<double> per_pair;
  for (int r = 0; r < kRounds; r++) {
    int64_t t0 = NowNs();
    body(n);
    per_pair.push_back(static_cast<double>(NowNs() - t0) / static_cast<double>(n));
  }
  std::sort(per_pair.begin(), per_pair.end());
  return per_pair[per_pair.size() / 2];
}

struct Result {
  Case c;
  double pair_ns = 0;   // the lowest pass
  double batch_ns = 0;
  double pair_pass[kPasses] = {};
  double batch_pass[kPasses] = {};
};

}  // namespace

int main(int argc, char** argv) {
  bool json = false, clock = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--clock") == 0) {
      clock = true;
    } else {
      std::fprintf(stderr, "usage: bench_arena [--json] [--clock]\n");
      return 2;
    }
  }
  ArenaOptions opt;
  opt.page_size = mmap_pool::platform::PageSize();
  if (clock) opt.clock = mmap_pool::platform::MonotonicMillis;
  std::vector<Result> results;
  for (const Case& c : kCases) {
    Result r;
    r.c = c;
    results.push_back(r);
  }
  {
    mmap_pool::test::MapSource source;
    Arena arena(opt, &source);
    for (int pass = 0; pass < kPasses; pass++) {
      for (Result& r : results) {
        const size_t size = r.c.size;
        // One allocation held for the whole case keeps its slab (or chunk)
        // in place, so the timed loops never map or unmap.
        Handle anchor;
        SourceError err;
        uint32_t anchor_serial = ++g_serial;
        Status st = arena.Alloc(size, false, anchor_serial, &anchor, &err);
        if (st != Status::kOk) Die("Alloc", size, st);
        r.pair_pass[pass] = Measure([&](int64_t n) { Pairs(&arena, size, n); });
        r.batch_pass[pass] = Measure([&](int64_t n) { Batches(&arena, size, n); });
        arena.Free({anchor.segment, anchor.offset, size, anchor_serial});
      }
    }
    arena.Close();
  }
  for (Result& r : results) {
    r.pair_ns = *std::min_element(r.pair_pass, r.pair_pass + kPasses);
    r.batch_ns = *std::min_element(r.batch_pass, r.batch_pass + kPasses);
  }

  if (json) {
    std::printf("{\"compiler\":\"%s\",\"optimized\":%s,\"clock\":%s,\"rounds\":%d,"
                "\"passes\":%d,\"batch\":%d,\"results\":[",
                kCompiler,
#ifdef __OPTIMIZE__
                "true",
#else
                "false",
#endif
                clock ? "true" : "false", kRounds, kPasses, kBatch);
    for (size_t i = 0; i < results.size(); i++) {
      const Result& r = results[i];
      std::printf("%s{\"size\":%zu,\"kind\":\"%s\",\"pairNs\":%.2f,\"batchNs\":%.2f,",
                  i == 0 ? "" : ",", r.c.size, r.c.kind, r.pair_ns, r.batch_ns);
      for (const char* key : {"pairPasses", "batchPasses"}) {
        const double* v = key[0] == 'p' ? r.pair_pass : r.batch_pass;
        std::printf("\"%s\":[", key);
        for (int k = 0; k < kPasses; k++) std::printf("%s%.2f", k == 0 ? "" : ",", v[k]);
        std::printf("]%s", key[0] == 'p' ? "," : "}");
      }
    }
    std::printf("]}\n");
  } else {
    std::printf("bench_arena: Arena alloc+free without Node, ns per pair (the lowest of %d passes' "
                "medians of %d rounds; each pass in brackets)%s\n",
                kPasses, kRounds, clock ? ", with the clock" : "");
    std::printf("%-9s %-6s %28s %28s\n", "size", "class", "pair", "batch of 256");
    for (const Result& r : results) {
      std::printf("%-9zu %-6s %6.1f (%5.1f %5.1f %5.1f) %7.1f (%5.1f %5.1f %5.1f)\n", r.c.size,
                  r.c.kind, r.pair_ns, r.pair_pass[0], r.pair_pass[1], r.pair_pass[2], r.batch_ns,
                  r.batch_pass[0], r.batch_pass[1], r.batch_pass[2]);
    }
    static_assert(kPasses == 3, "the table prints three passes");
  }
  return g_sink == 1 ? 3 : 0;  // never 1 in practice; keeps g_sink alive
}
