// Platform layer: map, unmap, discard and protect memory, one interface with
// a POSIX implementation (posix.cc) and a Windows one (windows.cc).
//
// Threads: every function here may be called from any thread; none keeps
// global state beyond the cached page size.
//
// Nothing here knows about the allocator or Node. A mapping never keeps a
// file descriptor open on POSIX: file-backed memory is created already
// unlinked (O_TMPFILE, or mkostemp + unlink at once) and the descriptor is
// closed as soon as the mapping exists, so the kernel removes the file when
// the mapping goes, however the process ends. On Windows the file is opened
// with FILE_FLAG_DELETE_ON_CLOSE and its handles stay open while the memory
// is in use; Unmap, or Retire (the view stays), closes them, and the file's
// name goes with the last handle.
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

// What Map does besides mapping; combine with |.
enum MapFlags : unsigned {
  kMapDefault = 0,
  // Transparent huge pages: where HugePageSize() is not 0 (Linux with THP in
  // the kernel), a mapping at least that long starts on a multiple of it (a
  // larger range is reserved, and the mapping placed in it with MAP_FIXED),
  // and the whole mapping is advised MADV_HUGEPAGE. Whether the kernel then
  // backs it with huge pages is its own setting: transparent_hugepage/enabled
  // 'always' or 'madvise' for anonymous memory, the huge= mount option for a
  // tmpfs (shmem_enabled only as 'deny' or 'force'), large-folio support for
  // other file systems. A failed advice or reservation is ignored (the
  // mapping is made as without the flag): this flag never makes Map fail.
  // A no-op where HugePageSize() is 0.
  kMapHugePages = 1u << 0,
};

// Maps `size` bytes (a multiple of MapGranularity()) of zeroed read/write
// memory. `dir` is the directory for kFile temp files (UTF-8; ignored for
// kAnonymous). `flags`: MapFlags. On failure returns false, fills `err` and
// leaves `out` empty.
bool Map(Backing backing, const char* dir, size_t size, Mapping* out,
         MapError* err, unsigned flags = kMapDefault);

// The transparent huge page size kMapHugePages aligns to (the PMD size Linux
// reports in /sys/kernel/mm/transparent_hugepage/hpage_pmd_size: 2 MiB on
// x86-64); 0 where there is none to ask for (no THP in the kernel, or not
// Linux: Windows large pages need a privilege and are not transparent).
size_t HugePageSize();

// Faults [offset, offset + len) in now, writable, so that the first write to
// each page takes no page fault. For freshly mapped memory only: where the
// kernel cannot do it in one call, one zero byte per page is written.
// Linux: madvise(MADV_POPULATE_WRITE) (5.14+; not MAP_POPULATE, which runs
// inside mmap before MADV_HUGEPAGE can be given, and only read-faults shared
// file mappings); older kernels and other systems: a write per page. Best
// effort, like MAP_POPULATE: if the kernel refuses (no memory), the pages are
// left to fault on first touch as usual.
void Prefault(const Mapping& m, size_t offset, size_t len);

// Unmaps and releases everything Map acquired. Safe on an empty Mapping.
void Unmap(Mapping* m);

// Retires the memory of a mapping the program is done with but that a job
// outside the program's control (a request in Node's thread pool holding a
// raw pointer) may still read or write: its pages, and for kFile the file
// and its disk blocks, go back to the OS now, while every address of it
// stays mapped, readable and writable, so a late access lands in a fresh
// zero page instead of faulting. Unmap releases the addresses later.
// True when the range was replaced by fresh private pages (POSIX: one
// mmap(MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE) over the whole mapping,
// guard pages included, which become read/write like the rest); the mapping
// is then kAnonymous and MapOver may reuse it. False where the memory cannot
// be replaced in place (Windows: a view of a section stays what it is; its
// pages are discarded as Discard does, the handles are closed, so a temp
// file's name goes now and its disk blocks at Unmap), or
// when the kernel refused; the mapping keeps its memory, and only Unmap may
// be used on it.
bool Retire(Mapping* m);

// Maps `size` bytes (a multiple of MapGranularity()) of new zeroed
// read/write memory of `backing` over the first `size` bytes of `*from`, a
// mapping Retire returned true for, into `out`; `*from` keeps the rest of
// its range (empty when none is left). So address space waiting in retired
// mappings serves new mappings before more is asked for. As Map otherwise
// (`dir`, `flags`; kMapHugePages advises but cannot align). On failure
// returns false, fills `err`, leaves `out` empty and `*from` as it was.
bool MapOver(Backing backing, const char* dir, Mapping* from, size_t size, Mapping* out,
             MapError* err, unsigned flags = kMapDefault);

// Gives the physical pages of [offset, offset + len) back to the OS; the
// range stays mapped and usable. `offset` and `len` are page multiples.
// Returns true when the range is guaranteed to read back as zeros: private
// anonymous memory on Linux (MADV_DONTNEED). Elsewhere anonymous pages go
// with MADV_FREE, lazily and keeping their bytes until taken (macOS's
// MADV_DONTNEED does not zero them); file pages keep their contents.
bool Discard(const Mapping& m, size_t offset, size_t len);

// Lets the OS take the physical pages of [offset, offset + len) whenever it
// needs memory, without the cost of taking them now: a page written again
// before that keeps its frame and takes no fault. Contents afterwards are
// unspecified (the old bytes or zeros, page by page). True where done:
// MADV_FREE on private anonymous memory (Linux 4.5+, the BSDs, macOS).
// False, with nothing done, for file mappings, on Windows and on kernels
// without MADV_FREE.
bool DiscardLazily(const Mapping& m, size_t offset, size_t len);

// Whether DiscardLazily can work here at all (built with MADV_FREE); a
// kernel may still refuse it at run time.
bool HasDiscardLazily();

// Makes [offset, offset + len) inaccessible (no read, write or execute).
bool ProtectNone(const Mapping& m, size_t offset, size_t len, MapError* err);

// Locks [offset, offset + len) in RAM (never paged or swapped out). Fails
// with the OS error when the locked-memory limit (RLIMIT_MEMLOCK, or the
// working-set quota on Windows) is too low. Unmap unlocks.
bool Lock(const Mapping& m, size_t offset, size_t len, MapError* err);

// How many bytes of [0, len) are resident in RAM now: mincore on POSIX
// (for a file mapping, its pages in the page cache), the process's working
// set on Windows (QueryWorkingSetEx). False where the OS does not say.
bool ResidentBytes(const Mapping& m, size_t len, size_t* out);

// Gives the C++ heap's free memory back to the OS where the allocator can
// (glibc's malloc_trim), so that trim() also returns what the allocator's
// own freed bookkeeping held. Returns true if anything was released.
bool ReleaseFreeHeap();

// Sets how the C library's allocator gives its heap back (glibc's mallopt):
// keep up to `trim_bytes` of free memory at the heap's top before returning
// any to the OS (M_TRIM_THRESHOLD), and serve requests below `mmap_bytes`
// from the heap rather than from a mapping of their own (M_MMAP_THRESHOLD);
// 0 leaves a setting as it is. glibc then stops adjusting either on its
// own. Process-wide, so only ever on the program's request (tuneMalloc() in
// lib/; docs/services.md says why a service may want it). Returns false
// where the C library has no such settings (musl, macOS, Windows) or
// refused a value; any setting made before a refusal stays.
bool TuneHeap(size_t trim_bytes, size_t mmap_bytes);

// Leaves [offset, offset + len) out of core dumps where the OS allows it
// (MADV_DONTDUMP on Linux; a no-op elsewhere).
void ExcludeFromDumps(const Mapping& m, size_t offset, size_t len);

#ifndef _WIN32
// A kFile Map reserves its file's blocks before it maps (posix_fallocate;
// fcntl(F_PREALLOCATE) on macOS), or, where the system has no such call or
// the file system refuses it, by writing zeros over the file; no space fails
// the Map with the call's error (syscall 'posix_fallocate', 'fcntl' or
// 'pwrite'), never a SIGBUS later. For tests: with `on`, every kFile Map
// takes the writing path. MMAP_POOL_SIMULATE_NO_FALLOCATE=1 in the
// environment at the first kFile Map does the same.
//
// Two more switches, read from the environment once, make Linux take the
// paths macOS and the BSDs take: MMAP_POOL_SIMULATE_NO_TMPFILE=1 (temp
// files from mkostemp + unlink, not O_TMPFILE) and
// MMAP_POOL_SIMULATE_LAZY_DISCARD=1 (Discard of anonymous memory with
// MADV_FREE, returning false).
void SimulateNoFallocate(bool on);
#endif

}  // namespace platform
}  // namespace mmap_pool

#endif  // MMAP_POOL_PLATFORM_MAPPING_H_
