// How a segment source (JsSegmentSource, SharedSource) makes a fresh
// mapping into a segment: the steps after the mapping itself, which differ
// only in where the mapping comes from (JsSegmentSource may map over a
// retired range first; SharedSource always maps anew). No Node here: the
// shared-pool core is built and tested without it.
//
// Threads: whichever thread maps; it touches only the mapping it is given.
#ifndef MMAP_POOL_ADDON_SEGMENT_MAPPING_H_
#define MMAP_POOL_ADDON_SEGMENT_MAPPING_H_

#include <cstddef>

#include "../platform/mapping.h"

namespace mmap_pool {
namespace addon {

// `m` holds `size` usable bytes and then `guard_bytes` (0, or one map
// granule): the guard made inaccessible, the usable bytes locked and kept
// out of core dumps when `secure`, faulted in with `prefault` (a secure
// mapping's mlock has done that already). False, with `err` set, when the
// OS refused a step; the caller then unmaps `m`.
inline bool PrepareSegmentMapping(const platform::Mapping& m, size_t size, size_t guard_bytes, bool secure,
                                  bool prefault, platform::MapError* err) {
  if (guard_bytes != 0 && !platform::ProtectNone(m, size, guard_bytes, err)) return false;
  if (secure && !platform::Lock(m, 0, size, err)) return false;
  if (secure) platform::ExcludeFromDumps(m, 0, size);
  if (prefault && !secure) platform::Prefault(m, 0, size);
  return true;
}

}  // namespace addon
}  // namespace mmap_pool

#endif  // MMAP_POOL_ADDON_SEGMENT_MAPPING_H_
