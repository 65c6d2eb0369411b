// Randomized model test: a seeded PRNG drives 200k operations (alloc of 0 ..
// 1.5 x hugeThreshold, skewed to small; free; retain / release; refused
// frees; trim sometimes; reset rarely; failing acquisitions) against an Arena
// and the reference model in arena_model.h, which checks every result,
// overlap, zero-fill, patterns and Stats. Several pool shapes run: page sizes
// 4, 16 and 64 KiB, anonymous and file backing, a maxBytes cap, a source that
// cannot discard, zero_on_free with guarded huge mappings, everything huge
// (each of those on 16 and 64 KiB pages too); and a source that recycles
// freed huge mappings (spares: kept, reused, evicted, decayed, given back
// under maxBytes, by Trim and Close), which the model predicts too.
//
// MMAP_POOL_SEED=<n> picks the seed (default fixed, printed either way);
// MMAP_POOL_OPS=<n> scales the first run's operation count.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "alloc/arena.h"
#include "arena_model.h"
#include "check.h"
#include "test_sources.h"

using namespace mmap_pool;
using mmap_pool::test::ArenaModel;
using mmap_pool::test::MapSource;
using mmap_pool::test::TempDir;

namespace {

struct SplitMix64 {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  size_t Between(size_t lo, size_t hi) { return lo >= hi ? lo : lo + Below(hi - lo + 1); }
};

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = getenv(name);
  return v != nullptr && *v ? strtoull(v, nullptr, 0) : fallback;
}

struct Shape {
  const char* name;
  alloc::ArenaOptions opt;
  platform::Backing backing;
  bool discard;
  uint64_t ops;
  bool guard_huge = false;
  // The source recycles freed huge mappings (MapSource::recycle_enabled):
  // the arena keeps spares. Such runs also Decay now and then, draw huge
  // sizes from a few values (so spares get reused), and with `toggle` turn
  // recycling off and on again as they go.
  bool recycle = false;
  bool toggle = false;
};

uint64_t Log2(size_t n) { return alloc::Log2Floor(n); }

size_t PickSize(SplitMix64& rng, const alloc::ArenaOptions& opt, bool few_huge = false) {
  const size_t huge = opt.huge_threshold;
  const uint64_t u = rng.Below(100);
  if (u < 60) return rng.Between(0, 256);
  if (u < 85) return rng.Between(257, std::min(alloc::kSmallMax, huge));
  if (u < (few_huge ? 90 : 95)) return rng.Between(std::min(alloc::kSmallMax, huge) + 1, huge);
  // Recycling runs: twice the share of huge sizes, half of them from three
  // mapped sizes, so that a freed one's spare is often the size the next
  // one needs.
  if (few_huge && rng.Below(2) == 0) return huge + 1 + rng.Below(3) * (huge / 4 + 4096) + rng.Below(64);
  return rng.Between(huge + 1, huge + huge / 2);
}

// What a run saw of spares (ArenaModel's counts).
struct SpareCounts {
  uint64_t kept = 0, reused = 0, evicted = 0, given_back = 0, decayed = 0, for_room = 0;
};

// Runs `shape` for its op count; returns the model's error, or "".
std::string Run(const Shape& shape, uint64_t seed, SpareCounts* spares) {
  MapSource source(shape.backing, TempDir());
  source.discard_enabled = shape.discard;
  source.guard_huge = shape.guard_huge;
  source.recycle_enabled = shape.recycle;
  std::string error;
  {
    alloc::Arena arena(shape.opt, &source);
    ArenaModel model(&arena, &source, shape.opt);
    SplitMix64 rng{seed};
    uint64_t allocs = 0, frees = 0, trims = 0, resets = 0, refused = 0, failing = 0, decays = 0, toggles = 0;
    bool ok = true;
    for (uint64_t i = 0; ok && i < shape.ops; i++) {
      // Every iteration is one operation: ~52% alloc, 36% free, 6% retain /
      // release, 5.5% refused calls, 0.5% trim, 0.01% reset.
      const uint64_t r = rng.Below(10000);
      // Keep the live set bounded (count and bytes) so the run stays fast.
      uint64_t alloc_below = model.live() > 3000 || model.used() > (size_t{48} << 20) ? 4200 : 5200;
      // Recycling runs under a cap free more once half of it is in use, so
      // that huge allocations keep coming and going instead of the live set
      // pinning the pool at maxBytes.
      if (shape.recycle && model.used() > shape.opt.max_bytes / 2) alloc_below = 3600;
      if (r < alloc_below) {
        const bool fail = rng.Below(50) == 0;
        failing += fail;
        // Mostly no alignment demand; sometimes a power of two up to twice the page.
        const size_t align = rng.Below(8) == 0 ? size_t{1} << rng.Below(Log2(shape.opt.page_size) + 2) : 0;
        ok = model.Alloc(PickSize(rng, shape.opt, shape.recycle), rng.Below(4) == 0, fail, align);
        allocs++;
      } else if (r < 8800) {
        ok = model.Free(rng.Next());
        frees++;
      } else if (r < 9400) {
        ok = model.RetainOrRelease(rng.Next(), rng.Below(2) == 0);
      } else if (shape.recycle && r >= 9920 && r < 9949) {
        // Recycling runs only (the others draw exactly as before): Decay,
        // or with `toggle` sometimes recycling off / on.
        if (shape.toggle && r < 9925) {
          source.recycle_enabled = !source.recycle_enabled;
          toggles++;
        } else {
          ok = model.Decay();
          decays++;
        }
      } else if (r < 9949) {
        ok = model.BadFree(rng.Next(), static_cast<int>(rng.Below(7)));
        refused++;
      } else if (r < 9999) {
        ok = model.Trim();
        trims++;
      } else {
        ok = model.Reset();
        resets++;
      }
      if (ok && i % 5000 == 4999) ok = model.CheckAll();
    }
    if (ok) ok = model.CheckAll();
    if (ok) ok = model.Close();
    const alloc::Stats s = arena.GetStats();
    std::printf("  %s: %llu ops (%llu allocs, %llu frees, %llu refused, %llu trims, %llu resets, "
                "%llu failing sources), peak %zu bytes used, %llu segments acquired, "
                "%llu idle chunks given back, %llu kExhausted with room (known bug 1)\n",
                shape.name, (unsigned long long)model.ops(), (unsigned long long)allocs,
                (unsigned long long)frees, (unsigned long long)refused, (unsigned long long)trims,
                (unsigned long long)resets, (unsigned long long)failing, s.peak_used_bytes,
                (unsigned long long)source.acquired, (unsigned long long)model.idle_releases(),
                (unsigned long long)model.exhausted_with_room());
    if (shape.recycle) {
      std::printf("    spares: %llu kept, %llu reused, %llu evicted (past kSpareMax), %llu given back "
                  "(%llu of them for room under maxBytes), %llu decayed; %llu decays, %llu recycle toggles\n",
                  (unsigned long long)model.spares_kept(), (unsigned long long)model.spares_reused(),
                  (unsigned long long)model.spares_evicted(), (unsigned long long)model.spares_given_back(),
                  (unsigned long long)model.spares_for_room(),
                  (unsigned long long)model.spares_decayed(), (unsigned long long)decays,
                  (unsigned long long)toggles);
    }
    spares->kept = model.spares_kept();
    spares->reused = model.spares_reused();
    spares->evicted = model.spares_evicted();
    spares->given_back = model.spares_given_back();
    spares->decayed = model.spares_decayed();
    spares->for_room = model.spares_for_room();
    error = model.error();
  }
  return error;
}

alloc::ArenaOptions Options(size_t page, size_t chunk, size_t huge, size_t max = SIZE_MAX,
                            bool zero_on_free = false) {
  alloc::ArenaOptions o;
  o.zero_on_free = zero_on_free;
  o.page_size = page;
  o.chunk_size = chunk;
  o.huge_threshold = huge;
  o.max_bytes = max;
  return o;
}

const uint64_t kSeed = EnvNumber("MMAP_POOL_SEED", 20240611);

SpareCounts RunShape(const Shape& shape) {
  std::printf("  seed %llu (MMAP_POOL_SEED)\n", (unsigned long long)kSeed);
  SpareCounts spares;
  std::string error = Run(shape, kSeed, &spares);
  CHECK_MSG(error.empty(), std::string(shape.name) + ": " + error);
  if (!shape.recycle) CHECK_EQ(spares.kept, uint64_t{0});
  return spares;
}

Shape Recycling(Shape s, bool toggle = false) {
  s.recycle = true;
  s.toggle = toggle;
  return s;
}

}  // namespace

TEST("200k random ops on 4 KiB pages, 1 MiB chunks, 256 KiB huge threshold match the model") {
  RunShape({"anonymous 4K/1M/256K", Options(4096, 1 << 20, 256 << 10), platform::Backing::kAnonymous,
            true, EnvNumber("MMAP_POOL_OPS", 200000)});
}

TEST("random ops with file backing, 16 KiB pages and a 4 MiB maxBytes match the model") {
  RunShape({"file 16K/512K/128K max 4M", Options(16384, 512 << 10, 128 << 10, 4 << 20),
            platform::Backing::kFile, true, 60000});
}

TEST("random ops on 64 KiB pages with 4 MiB chunks and 1 MiB huge threshold match the model") {
  RunShape({"anonymous 64K/4M/1M", Options(65536, 4 << 20, 1 << 20), platform::Backing::kAnonymous,
            true, 30000});
}

TEST("random ops with a source that cannot discard keep zero-fill correct") {
  RunShape({"no-discard 4K/256K/64K", Options(4096, 256 << 10, 64 << 10), platform::Backing::kAnonymous,
            false, 60000});
}

TEST("random ops with hugeThreshold 0 (everything but size 0 is huge) match the model") {
  RunShape({"huge-only 4K/64K/0", Options(4096, 64 << 10, 0), platform::Backing::kAnonymous, true,
            20000});
}

TEST("random ops with a tight maxBytes of two 128 KiB chunks match the model") {
  RunShape({"tight 4K/128K/32K max 256K", Options(4096, 128 << 10, 32 << 10, 256 << 10),
            platform::Backing::kAnonymous, true, 60000});
}

TEST("random ops on a zero_on_free pool with guarded huge mappings match the model") {
  RunShape({"secure 4K/256K/64K", Options(4096, 256 << 10, 64 << 10, SIZE_MAX, true),
            platform::Backing::kAnonymous, true, 40000, true});
}

TEST("random ops in the smallest pool the JS side allows (64 KiB chunks and threshold) match the model") {
  RunShape({"minimum 4K/64K/64K", Options(4096, 64 << 10, 64 << 10), platform::Backing::kAnonymous,
            true, 40000});
}

TEST("random ops with 64 KiB pages in 64 KiB chunks match the model") {
  RunShape({"one-page chunks 64K/64K/64K", Options(65536, 64 << 10, 64 << 10),
            platform::Backing::kAnonymous, true, 30000});
}

// ---- the same families on the pages of Apple silicon (16 KiB) and some arm64 Linux
// kernels (64 KiB): the arena's page size is its option; huge mappings are rounded
// to this machine's map granule, as the addon's source rounds them.

TEST("random ops with a source that cannot discard keep zero-fill correct on 16 and 64 KiB pages") {
  RunShape({"no-discard 16K/256K/64K", Options(16384, 256 << 10, 64 << 10),
            platform::Backing::kAnonymous, false, 20000});
  RunShape({"no-discard 64K/1M/256K", Options(65536, 1 << 20, 256 << 10),
            platform::Backing::kAnonymous, false, 10000});
}

TEST("random ops on a zero_on_free pool with guarded huge mappings match the model on 16 and 64 KiB pages") {
  RunShape({"secure 16K/256K/64K", Options(16384, 256 << 10, 64 << 10, SIZE_MAX, true),
            platform::Backing::kAnonymous, true, 20000, true});
  RunShape({"secure 64K/1M/256K", Options(65536, 1 << 20, 256 << 10, SIZE_MAX, true),
            platform::Backing::kAnonymous, true, 10000, true});
}

TEST("random ops with hugeThreshold 0 match the model on 16 and 64 KiB pages") {
  RunShape({"huge-only 16K/64K/0", Options(16384, 64 << 10, 0), platform::Backing::kAnonymous,
            true, 10000});
  RunShape({"huge-only 64K/64K/0", Options(65536, 64 << 10, 0), platform::Backing::kAnonymous,
            true, 10000});
}

TEST("random ops on 16 and 64 KiB pages with a recycling source (spares kept, reused, decayed) match the model") {
  for (const Shape& s : {Shape{"recycling 16K/1M/256K", Options(16384, 1 << 20, 256 << 10),
                              platform::Backing::kAnonymous, true, 30000},
                        Shape{"recycling 64K/4M/1M", Options(65536, 4 << 20, 1 << 20),
                              platform::Backing::kAnonymous, true, 20000}}) {
    SpareCounts c = RunShape(Recycling(s));
    CHECK_GT(c.reused, uint64_t{100});
    CHECK_GT(c.given_back, uint64_t{0});
    if (platform::HasDiscardLazily()) CHECK_GT(c.decayed, uint64_t{0});
  }
}

// ---- a source that recycles freed huge mappings: spares ------------------------------

TEST("random ops with a recycling source (spares kept, reused, evicted, decayed) match the model") {
  // Four spares at most here: random frees pass that often, so eviction runs too.
  Shape s = Recycling({"recycling 4K/256K/64K", Options(4096, 256 << 10, 64 << 10),
                       platform::Backing::kAnonymous, true, 60000});
  s.opt.spare_max = 4;
  SpareCounts c = RunShape(s);
  CHECK_GT(c.reused, uint64_t{100});
  CHECK_GT(c.evicted, uint64_t{0});
  CHECK_GT(c.given_back, uint64_t{0});
  if (platform::HasDiscardLazily()) CHECK_GT(c.decayed, uint64_t{0});
}

TEST("random ops with a recycling source under a tight maxBytes (spares given back for room) match the model") {
  SpareCounts c = RunShape(Recycling({"recycling tight 4K/128K/32K max 1M",
                                      Options(4096, 128 << 10, 32 << 10, 2 << 20),
                                      platform::Backing::kAnonymous, true, 60000}, true));
  CHECK_GT(c.reused, uint64_t{100});
  CHECK_GT(c.for_room, uint64_t{10});
}

TEST("random ops with a recycling file-backed source (Decay releases its spares) match the model") {
  SpareCounts c = RunShape(Recycling({"recycling file 16K/512K/128K max 4M",
                                      Options(16384, 512 << 10, 128 << 10, 4 << 20),
                                      platform::Backing::kFile, true, 30000}));
  CHECK_GT(c.reused, uint64_t{10});
  CHECK_EQ(c.decayed, uint64_t{0});
}

TEST("random ops with everything huge and a recycling source match the model") {
  SpareCounts c = RunShape(Recycling({"recycling huge-only 4K/64K/0", Options(4096, 64 << 10, 0),
                                      platform::Backing::kAnonymous, true, 20000}, true));
  CHECK_GT(c.reused, uint64_t{1000});
}

TEST("random ops on a zero_on_free pool with a recycling source keep no spares and match the model") {
  SpareCounts c = RunShape(Recycling({"recycling secure 4K/256K/64K", Options(4096, 256 << 10, 64 << 10, SIZE_MAX, true),
                                      platform::Backing::kAnonymous, true, 20000, true}));
  CHECK_EQ(c.kept, uint64_t{0});
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
