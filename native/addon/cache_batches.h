// A block cache's batches, as the addon moves them (PoolWrap and
// SharedPoolWrap, refill() and flush()): blocks taken from and given back
// to the arena kBatch at a time under one hold of its lock, not one lock
// per block. The scratch array (setScratch) carries them:
//
//   refill   scratch[0 .. n)         handles of the blocks made
//   flush    scratch[0 .. 2 * n)     (handle, class size) pairs to free
//
// Threads: the caller's environment; the arena locks itself.
#ifndef MMAP_POOL_ADDON_CACHE_BATCHES_H_
#define MMAP_POOL_ADDON_CACHE_BATCHES_H_

#include <cstddef>
#include <cstdint>

#include "../alloc/arena.h"
#include "handle.h"

namespace mmap_pool {
namespace addon {

constexpr uint32_t kBatch = 64;

// Up to `count` blocks of `size` under `serial`, their handles into
// handles[0..n); returns n, with `*st` the status of the one that failed
// (kOk when all were made).
inline uint32_t AllocBlocks(alloc::Arena& arena, size_t size, uint64_t serial, uint32_t count, bool may_map,
                            double* handles, alloc::SourceError* err, alloc::Status* st) {
  alloc::Handle made[kBatch] = {};
  uint32_t n = 0;
  *st = alloc::Status::kOk;
  while (n < count) {
    uint32_t want = count - n < kBatch ? count - n : kBatch;
    uint32_t got = arena.AllocEach(size, serial, want, may_map, made, err, st);
    for (uint32_t i = 0; i < got; i++) handles[n + i] = EncodeHandle(made[i].segment, made[i].offset);
    n += got;
    if (*st != alloc::Status::kOk) break;
  }
  return n;
}

// Frees the `n` blocks of the (handle, class size) pairs under `serial`;
// returns how many the arena refused (0 unless lib/ has a bug).
inline uint32_t FreeBlocks(alloc::Arena& arena, const double* pairs, uint32_t n, uint64_t serial) {
  alloc::Arena::Ref refs[kBatch] = {};
  alloc::Status statuses[kBatch] = {};
  uint32_t refused = 0;
  for (uint32_t done = 0; done < n;) {
    uint32_t m = n - done < kBatch ? n - done : kBatch;
    for (uint32_t i = 0; i < m; i++) {
      const double* p = pairs + 2 * (done + i);
      refs[i] = {HandleSegment(p[0]), HandleOffset(p[0]), static_cast<size_t>(p[1]), serial};
    }
    arena.FreeEach(refs, m, statuses);
    for (uint32_t i = 0; i < m; i++) {
      if (statuses[i] < alloc::Status::kOk) refused++;
    }
    done += m;
  }
  return refused;
}

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_CACHE_BATCHES_H_
