// The handle: how an allocation's place crosses from C++ to JavaScript.
//
//   handle = segment * 2^30 + offset        one double, exact below 2^53
//            \_____/          \____/
//            chunk or huge    byte offset in it (a chunk is at most 1 GiB)
//
// lib/native/handle.ts is the JavaScript side; the addon exports kHandleSpan
// (module.cc `contract`) and test/binding.test.ts fails if the two differ.
#ifndef MMAP_POOL_ADDON_HANDLE_H_
#define MMAP_POOL_ADDON_HANDLE_H_

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mmap_pool {
namespace addon {

constexpr double kHandleSpan = 1073741824.0;  // 2^30

inline double EncodeHandle(uint32_t segment, size_t offset) {
  return segment * kHandleSpan + static_cast<double>(offset);
}

inline uint32_t HandleSegment(double handle) {
  return static_cast<uint32_t>(std::floor(handle / kHandleSpan));
}

inline size_t HandleOffset(double handle) {
  return static_cast<size_t>(handle - std::floor(handle / kHandleSpan) * kHandleSpan);
}

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_HANDLE_H_
