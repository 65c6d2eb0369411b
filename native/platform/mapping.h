// Platform layer: map, unmap, discard and protect memory, one interface with
// a POSIX implementation (posix.cc) and a Windows one (windows.cc).
//
// Threads: every function here may be called from any thread; none keeps
// global state beyond the cached page size.
//
// Nothing here knows about the allocator or Node. A mapping never keeps a
// file descriptor open on POSIX: file-backed memory is created already
// unlinked (O_TMPFILE, or mkstemp + unlink at once) and the descriptor is
// closed as soon as the mapping exists, so the kernel removes the file when
// the mapping goes, however the process ends. On Windows the file is opened
// with FILE_FLAG_DELETE_ON_CLOSE and its handles live exactly as long as the
// view.
#ifndef MMAP_POOL_PLATFORM_MAPPING_H_
#define MMAP_POOL_PLATFORM_MAPPING_H_

#include <cstddef>
#include <cstdint>

namespace mmap_pool {
namespace platform {

enum class Backing : uint8_t {
  kAnonymous = 0,  // private anonymous memory (page file on Windows)
  kFile = 1,       // shared mapping of an unlinked / delete-on-close temp file
};

// Why a call failed: the OS error number (errno on POSIX, GetLastError() on
// Windows) and the name of the system call that reported it.
struct MapError {
  int code = 0;
  const char* syscall = "";
};

struct Mapping {
  uint8_t* addr = nullptr;
  size_t size = 0;
  Backing backing = Backing::kAnonymous;
#ifdef _WIN32
  void* section = nullptr;  // HANDLE of the file mapping object
  void* file = nullptr;     // HANDLE of the temp file (kFile only)
#endif
};

// The OS page size: the unit of Discard and Protect.
size_t PageSize();

// The unit that mapping sizes are rounded up to: the page size on POSIX,
// the 64 KiB allocation granularity on Windows.
size_t MapGranularity();

// Maps `size` bytes (a multiple of MapGranularity()) of zeroed read/write
// memory. `dir` is the directory for kFile temp files (UTF-8; ignored for
// kAnonymous). On failure returns false, fills `err` and leaves `out` empty.
bool Map(Backing backing, const char* dir, size_t size, Mapping* out,
         MapError* err);

// Unmaps and releases everything Map acquired. Safe on an empty Mapping.
void Unmap(Mapping* m);

// Gives the physical pages of [offset, offset + len) back to the OS; the
// range stays mapped and usable. `offset` and `len` are page multiples.
// Returns true when the range is guaranteed to read back as zeros.
bool Discard(const Mapping& m, size_t offset, size_t len);

// Makes [offset, offset + len) inaccessible (no read, write or execute).
bool ProtectNone(const Mapping& m, size_t offset, size_t len, MapError* err);

// Locks [offset, offset + len) in RAM (never paged or swapped out). Fails
// with the OS error when the locked-memory limit (RLIMIT_MEMLOCK, or the
// working-set quota on Windows) is too low. Unmap unlocks.
bool Lock(const Mapping& m, size_t offset, size_t len, MapError* err);

// How many bytes of [0, len) are resident in RAM now (mincore). False where
// the OS does not say (Windows, here).
bool ResidentBytes(const Mapping& m, size_t len, size_t* out);

// Gives the C++ heap's free memory back to the OS where the allocator can
// (glibc's malloc_trim), so that trim() also returns what the allocator's
// own freed bookkeeping held. Returns true if anything was released.
bool ReleaseFreeHeap();

// Leaves [offset, offset + len) out of core dumps where the OS allows it
// (MADV_DONTDUMP on Linux; a no-op elsewhere).
void ExcludeFromDumps(const Mapping& m, size_t offset, size_t len);

}  // namespace platform
}  // namespace mmap_pool

#endif  // MMAP_POOL_PLATFORM_MAPPING_H_
