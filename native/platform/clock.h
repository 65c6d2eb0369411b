// A cheap monotonic clock in milliseconds, for the ages of allocations.
// Threads: any. The value wraps every 2^32 ms (49.7 days); differences of
// uint32_t values stay right across one wrap.
#ifndef MMAP_POOL_PLATFORM_CLOCK_H_
#define MMAP_POOL_PLATFORM_CLOCK_H_

#include <cstdint>

#if defined(__linux__)
#include <time.h>
#else
#include <chrono>
#endif

namespace mmap_pool {
namespace platform {

inline uint32_t MonotonicMillis() {
#if defined(__linux__)
  // The coarse clock is read from the vDSO without a syscall in a few
  // nanoseconds; its resolution (a few ms) is plenty for an age.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000u +
                               static_cast<uint64_t>(ts.tv_nsec) / 1000000u);
#else
  using namespace std::chrono;
  return static_cast<uint32_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
#endif
}

}  // namespace platform
}  // namespace mmap_pool

#endif  // MMAP_POOL_PLATFORM_CLOCK_H_
