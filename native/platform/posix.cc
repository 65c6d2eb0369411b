// POSIX implementation of mapping.h (Linux, macOS, the BSDs).
// Threads: no shared state except the page size and the huge-page size,
// cached on first use, and the SimulateNoFallocate flag (an atomic).
#ifndef _WIN32

#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>

namespace mmap_pool {
namespace platform {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t MapGranularity() { return PageSize(); }

namespace {

bool Fail(MapError* err, const char* syscall) {
  err->code = errno;
  err->syscall = syscall;
  return false;
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// hpage_pmd_size, or 0 when the file is missing (no THP in the kernel) or
// unreadable: then there is nothing to align to or ask for.
size_t ReadHugePageSize() {
  int fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long v = strtoull(buf, nullptr, 10);
  const size_t page = PageSize();
  // A power of two and a page multiple, or it is not what we think it is.
  if (v < page || (v & (v - 1)) != 0) return 0;
  return static_cast<size_t>(v);
}

// mmap(PROT_READ | PROT_WRITE, `flags`, `fd`) of `size` bytes starting on a
// multiple of `align`: reserves size + align bytes of address space, maps
// over the first aligned address in it with MAP_FIXED and gives back the
// rest. MAP_FAILED (errno set) if the reservation or the mapping fails.
void* MmapAligned(size_t size, size_t align, int flags, int fd) {
  const size_t span = size + align;
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return MAP_FAILED;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + align - 1) & ~static_cast<uintptr_t>(align - 1);
  void* addr = mmap(reinterpret_cast<void*>(aligned), size, PROT_READ | PROT_WRITE,
                    flags | MAP_FIXED, fd, 0);
  if (addr == MAP_FAILED) {
    int saved = errno;
    munmap(raw, span);
    errno = saved;
    return MAP_FAILED;
  }
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + size;
  if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
  return addr;
}
#endif  // __linux__ && MADV_HUGEPAGE

// The read/write mapping of Map, aligned and advised for kMapHugePages.
// MAP_FAILED with errno on failure.
void* MmapReadWrite(size_t size, int flags, int fd, unsigned map_flags) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t huge = (map_flags & kMapHugePages) != 0 ? HugePageSize() : 0;
  // A mapping shorter than one huge page cannot hold one.
  const bool want_huge = huge != 0 && size >= huge;
  void* addr = want_huge ? MmapAligned(size, huge, flags, fd) : MAP_FAILED;
  // Not aligned is still memory: the huge-page flag never makes Map fail.
  if (addr == MAP_FAILED) addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  // Advice only; the kernel's THP setting decides what comes of it.
  if (addr != MAP_FAILED && want_huge) madvise(addr, size, MADV_HUGEPAGE);
  return addr;
#else
  (void)map_flags;
  return mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
#endif
}

// One zero byte written per page: faults each page in writable. Only for
// memory that reads as zero anyway.
void TouchPages(uint8_t* p, size_t len) {
  volatile uint8_t* v = p;
  const size_t page = PageSize();
  for (size_t o = 0; o < len; o += page) v[o] = 0;
}

// Whether environment variable `name` is "1". For the switches tests use to
// take, on Linux, the paths other systems take (SimulateNoFallocate,
// NoTmpfile, LazyDiscardOnly); each is read once, where first needed.
bool EnvFlag(const char* name) {
  const char* v = getenv(name);
  return v != nullptr && strcmp(v, "1") == 0;
}

#ifdef O_TMPFILE
// MMAP_POOL_SIMULATE_NO_TMPFILE=1: open temp files as where the kernel or
// the file system has no O_TMPFILE (macOS, the BSDs, some file systems).
bool NoTmpfile() {
  static const bool on = EnvFlag("MMAP_POOL_SIMULATE_NO_TMPFILE");
  return on;
}
#endif

// Opens a read/write temp file in `dir` that has no name in the file system:
// O_TMPFILE where the kernel and file system allow it, else mkostemp followed
// at once by unlink. Returns the descriptor, or -1 with `err` filled.
int OpenUnlinkedTemp(const char* dir, MapError* err) {
#ifdef O_TMPFILE
  if (!NoTmpfile()) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    // EISDIR/EOPNOTSUPP/EINVAL: the kernel or file system has no O_TMPFILE.
    // Anything else (ENOENT, EACCES, ENOTDIR, ...) is about `dir` itself and
    // mkostemp would fail the same way, so report the open() error.
    if (errno != EISDIR && errno != EOPNOTSUPP && errno != EINVAL) {
      Fail(err, "open");
      return -1;
    }
  }
#endif
  std::string path(dir);
  if (path.empty() || path.back() != '/') path.push_back('/');
  path += ".mmap-pool-XXXXXX";
  // Close-on-exec from the start: a child that another thread forks and
  // execs in between would otherwise inherit the descriptor, and with it
  // the file's disk blocks until that child exits.
  int tmp = mkostemp(&path[0], O_CLOEXEC);
  if (tmp < 0) {
    Fail(err, "mkostemp");
    return -1;
  }
  // The name exists only between these two calls. If the process dies
  // between them, the file stays behind under that name.
  if (unlink(path.c_str()) != 0) {
    Fail(err, "unlink");
    close(tmp);
    return -1;
  }
  return tmp;
}

#if defined(__linux__)
// MMAP_POOL_SIMULATE_LAZY_DISCARD=1: Discard anonymous memory as where
// MADV_DONTNEED does not zero it (macOS, the BSDs): MADV_FREE, not zeroed.
bool LazyDiscardOnly() {
  static const bool on = EnvFlag("MMAP_POOL_SIMULATE_LAZY_DISCARD");
  return on;
}
#endif

// SimulateNoFallocate(): -1 as MMAP_POOL_SIMULATE_NO_FALLOCATE says, else 0 / 1.
std::atomic<int> g_no_fallocate{-1};

// Whether to size files as where the system cannot reserve blocks.
bool NoFallocate() {
  // Read once, at the first file-backed Map.
  static const bool from_env = EnvFlag("MMAP_POOL_SIMULATE_NO_FALLOCATE");
  const int forced = g_no_fallocate.load(std::memory_order_relaxed);
  return forced < 0 ? from_env : forced == 1;
}

// An answer that means "this file system cannot preallocate", not "no space".
bool Unsupported(int code) {
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
  if (code == ENOTSUP) return true;
#endif
  return code == EOPNOTSUPP || code == EINVAL;
}

// The zeros WriteBlocks writes from. Static and not const, so it lives in
// .bss: no bytes in the binary, and reading it maps the zero page only.
constexpr size_t kZeroBlock = size_t{1} << 20;
char g_zeros[kZeroBlock];

// Reserves the file's blocks by writing zeros over [0, size), for where the
// system cannot be asked to: a block written is one the file owns, so a
// later write through the mapping cannot meet a full disk (where ftruncate
// alone leaves a sparse file, and that write would be SIGBUS). No space
// (ENOSPC, EDQUOT, EFBIG past RLIMIT_FSIZE, whose SIGXFSZ Node ignores)
// fails here instead, naming pwrite. A copy-on-write or compressing file
// system may still need new blocks for later writes: none can promise them.
bool WriteBlocks(int fd, size_t size, MapError* err) {
  size_t done = 0;
  while (done < size) {
    const size_t n = std::min(kZeroBlock, size - done);
    const ssize_t w = pwrite(fd, g_zeros, n, static_cast<off_t>(done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Fail(err, "pwrite");
    }
    if (w == 0) {  // no progress and no error: as good as no space
      errno = ENOSPC;
      return Fail(err, "pwrite");
    }
    done += static_cast<size_t>(w);  // a short write: the rest on the next turn
  }
  return true;
}

#if defined(__APPLE__)
// macOS has no posix_fallocate: fcntl(F_PREALLOCATE) reserves the blocks
// past the file's end (contiguous if it can, else anywhere), and ftruncate
// then makes them the file's. Sets *unsupported (nothing done) where the
// file system cannot preallocate.
bool Preallocate(int fd, size_t size, MapError* err, bool* unsupported) {
  *unsupported = false;
  fstore_t store;
  memset(&store, 0, sizeof store);
  // F_PEOFPOSMODE: fst_offset counts from the file's physical end, which
  // for this new, empty file is 0, so [0, size) is what gets reserved.
  // F_ALLOCATEALL: all of it or nothing. The file's length stays 0 until
  // ftruncate, whose new length then covers the reserved blocks.
  store.fst_flags = F_ALLOCATECONTIG | F_ALLOCATEALL;
  store.fst_posmode = F_PEOFPOSMODE;
  store.fst_offset = 0;
  store.fst_length = static_cast<off_t>(size);
  if (fcntl(fd, F_PREALLOCATE, &store) == -1) {
    store.fst_flags = F_ALLOCATEALL;
    if (fcntl(fd, F_PREALLOCATE, &store) == -1) {
      if (Unsupported(errno)) {
        *unsupported = true;
        return false;
      }
      return Fail(err, "fcntl");
    }
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) return Fail(err, "ftruncate");
  return true;
}
#endif

// Gives the file its size and reserves its blocks now, so that a full disk
// shows up here as an error (ERR_MAP_FAILED naming the call) instead of as
// SIGBUS on a later write through the mapping: posix_fallocate (Linux,
// FreeBSD), fcntl(F_PREALLOCATE) (macOS), and where those are missing or
// the file system refuses them, writing the blocks (WriteBlocks).
bool SizeFile(int fd, size_t size, MapError* err) {
  if (!NoFallocate()) {
#if defined(__APPLE__)
    bool unsupported = false;
    if (Preallocate(fd, size, err, &unsupported)) return true;
    if (!unsupported) return false;
#elif defined(__linux__) || defined(__FreeBSD__)
    const int rc = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (rc == 0) return true;
    // EOPNOTSUPP (musl on a file system without fallocate), EINVAL (ZFS):
    // the file system cannot preallocate; anything else is the answer.
    if (!Unsupported(rc)) {
      err->code = rc;
      err->syscall = "posix_fallocate";
      return false;
    }
#endif
  }
  return WriteBlocks(fd, size, err);
}

}  // namespace

void SimulateNoFallocate(bool on) { g_no_fallocate.store(on ? 1 : 0, std::memory_order_relaxed); }

size_t HugePageSize() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const size_t size = ReadHugePageSize();
  return size;
#else
  return 0;  // macOS and the BSDs have no per-range advice for it
#endif
}

bool Map(Backing backing, const char* dir, size_t size, Mapping* out,
         MapError* err, unsigned flags) {
  *out = Mapping();
  if (size == 0 || size % PageSize() != 0) {
    err->code = EINVAL;
    err->syscall = "mmap";
    return false;
  }
  void* addr = MAP_FAILED;
  if (backing == Backing::kAnonymous) {
    addr = MmapReadWrite(size, MAP_PRIVATE | MAP_ANONYMOUS, -1, flags);
    if (addr == MAP_FAILED) return Fail(err, "mmap");
  } else {
    int fd = OpenUnlinkedTemp(dir, err);
    if (fd < 0) return false;
    if (!SizeFile(fd, size, err)) {
      close(fd);
      return false;
    }
    addr = MmapReadWrite(size, MAP_SHARED, fd, flags);
    int saved = errno;
    // The mapping holds the file open; the descriptor is no longer needed.
    close(fd);
    if (addr == MAP_FAILED) {
      errno = saved;
      return Fail(err, "mmap");
    }
  }
  out->addr = static_cast<uint8_t*>(addr);
  out->size = size;
  out->backing = backing;
  return true;
}

void Unmap(Mapping* m) {
  if (m->addr != nullptr) munmap(m->addr, m->size);
  *m = Mapping();
}

// FreeBSD dropped MAP_NORESERVE (it never reserves swap for private
// mappings anyway); Linux and macOS have it.
#ifdef MAP_NORESERVE
constexpr int kNoReserve = MAP_NORESERVE;
#else
constexpr int kNoReserve = 0;
#endif

bool Retire(Mapping* m) {
  if (m->addr == nullptr) return false;
  // MAP_FIXED replaces the old pages (and ends the file mapping, whose
  // unlinked file goes with its last mapping) in the same call that maps
  // the new ones, so there is no moment at which the range is unmapped.
  // NORESERVE: retired memory is only there to absorb late accesses, so it
  // is not charged against the commit limit.
  void* p = mmap(m->addr, m->size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | kNoReserve, -1, 0);
  if (p == MAP_FAILED) return false;
  m->backing = Backing::kAnonymous;
  return true;
}

bool MapOver(Backing backing, const char* dir, Mapping* from, size_t size, Mapping* out,
             MapError* err, unsigned flags) {
  *out = Mapping();
  if (size == 0 || size % PageSize() != 0 || from->addr == nullptr || size > from->size) {
    err->code = EINVAL;
    err->syscall = "mmap";
    return false;
  }
  int fd = -1;
  int map_flags = MAP_PRIVATE | MAP_ANONYMOUS;
  if (backing == Backing::kFile) {
    fd = OpenUnlinkedTemp(dir, err);
    if (fd < 0) return false;
    if (!SizeFile(fd, size, err)) {
      close(fd);
      return false;
    }
    map_flags = MAP_SHARED;
  }
  void* addr = mmap(from->addr, size, PROT_READ | PROT_WRITE, map_flags | MAP_FIXED, fd, 0);
  int saved = errno;
  if (fd >= 0) close(fd);  // the mapping holds the file open
  if (addr == MAP_FAILED) {
    // A kernel may have taken the old pages away before it failed: put
    // fresh ones back, so that the range stays what Retire made it.
    mmap(from->addr, size, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | kNoReserve, -1, 0);
    errno = saved;
    return Fail(err, "mmap");
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Where the range happens to allow huge pages; it is not aligned for them.
  const size_t huge = (flags & kMapHugePages) != 0 ? HugePageSize() : 0;
  if (huge != 0 && size >= huge) madvise(addr, size, MADV_HUGEPAGE);
#else
  (void)flags;
#endif
  out->addr = static_cast<uint8_t*>(addr);
  out->size = size;
  out->backing = backing;
  from->addr += size;
  from->size -= size;
  if (from->size == 0) *from = Mapping();
  return true;
}

bool Discard(const Mapping& m, size_t offset, size_t len) {
  if (len == 0) return true;
  uint8_t* p = m.addr + offset;
  if (m.backing == Backing::kFile) {
    // Dirty shared pages are written back to the (unlinked) file and dropped
    // from this process (macOS only lowers their priority); their contents
    // stay, so they are not zero.
    madvise(p, len, MADV_DONTNEED);
    return false;
  }
#if defined(__linux__)
  // Private anonymous pages read back as zeros after MADV_DONTNEED.
  if (!LazyDiscardOnly()) return madvise(p, len, MADV_DONTNEED) == 0;
#endif
#if defined(MADV_FREE)
  // Elsewhere MADV_DONTNEED does not promise zeros (macOS: it only lowers
  // the pages' priority), so the pages go lazily: the kernel takes them
  // when it needs memory, and until then they keep their bytes and count
  // as resident. Not zeroed: the arena clears what it hands out zeroed.
  madvise(p, len, MADV_FREE);
  return false;
#else
  posix_madvise(p, len, POSIX_MADV_DONTNEED);
  return false;
#endif
}

bool DiscardLazily(const Mapping& m, size_t offset, size_t len) {
#if defined(MADV_FREE)
  if (m.backing != Backing::kAnonymous || m.addr == nullptr) return false;
  // EINVAL on a kernel that predates MADV_FREE: nothing was done.
  return len == 0 || madvise(m.addr + offset, len, MADV_FREE) == 0;
#else
  (void)m;
  (void)offset;
  (void)len;
  return false;
#endif
}

bool HasDiscardLazily() {
#if defined(MADV_FREE)
  return true;
#else
  return false;
#endif
}

void Prefault(const Mapping& m, size_t offset, size_t len) {
  if (len == 0 || m.addr == nullptr) return;
  uint8_t* p = m.addr + offset;
#if defined(__linux__)
#ifdef MADV_POPULATE_WRITE
  constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
  constexpr int kPopulateWrite = 23;  // Linux 5.14+; older C library headers lack the name
#endif
  // One call: the kernel faults every page in, huge pages included when the
  // range was advised MADV_HUGEPAGE first.
  if (madvise(p, len, kPopulateWrite) == 0) return;
  // EINVAL: a kernel before 5.14. Anything else (ENOMEM, EINTR, ...): best
  // effort, as MAP_POPULATE would be; the pages fault on first touch.
  if (errno != EINVAL) return;
#endif
  TouchPages(p, len);
}

bool ProtectNone(const Mapping& m, size_t offset, size_t len, MapError* err) {
  if (mprotect(m.addr + offset, len, PROT_NONE) != 0) return Fail(err, "mprotect");
  return true;
}

bool ResidentBytes(const Mapping& m, size_t len, size_t* out) {
  const size_t page = PageSize();
  const size_t pages = (len + page - 1) / page;
  // One byte per page; a small buffer at a time keeps the stack bounded.
  unsigned char vec[4096];
  size_t resident = 0;
  for (size_t first = 0; first < pages; first += sizeof vec) {
    size_t n = pages - first < sizeof vec ? pages - first : sizeof vec;
#if defined(__APPLE__)
    char* v = reinterpret_cast<char*>(vec);
#else
    unsigned char* v = vec;
#endif
    if (mincore(m.addr + first * page, n * page, v) != 0) return false;
    for (size_t i = 0; i < n; i++) resident += vec[i] & 1;
  }
  *out = resident * page;
  return true;
}

bool ReleaseFreeHeap() {
#if defined(__GLIBC__)
  return malloc_trim(0) == 1;
#else
  return false;  // musl and the BSD/macOS allocators return memory themselves
#endif
}

bool TuneHeap(size_t trim_bytes, size_t mmap_bytes) {
#if defined(__GLIBC__)
  if (trim_bytes > INT32_MAX || mmap_bytes > INT32_MAX) return false;
  if (trim_bytes != 0 && mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_bytes)) != 1) return false;
  if (mmap_bytes != 0 && mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_bytes)) != 1) return false;
  return true;
#else
  (void)trim_bytes;
  (void)mmap_bytes;
  return false;
#endif
}

bool Lock(const Mapping& m, size_t offset, size_t len, MapError* err) {
  if (mlock(m.addr + offset, len) != 0) return Fail(err, "mlock");
  return true;
}

void ExcludeFromDumps(const Mapping& m, size_t offset, size_t len) {
#if defined(MADV_DONTDUMP)
  madvise(m.addr + offset, len, MADV_DONTDUMP);
#else
  (void)m;
  (void)offset;
  (void)len;
#endif
}

}  // namespace platform
}  // namespace mmap_pool

#endif  // !_WIN32
