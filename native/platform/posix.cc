// POSIX implementation of mapping.h (Linux, macOS, the BSDs).
// Threads: no shared state except the page size, cached on first use.
#ifndef _WIN32

#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Opens a read/write temp file in `dir` that has no name in the file system:
// O_TMPFILE where the kernel and file system allow it, else mkstemp followed
// at once by unlink. Returns the descriptor, or -1 with `err` filled.
int OpenUnlinkedTemp(const char* dir, MapError* err) {
#ifdef O_TMPFILE
  int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // EISDIR/EOPNOTSUPP/EINVAL: the kernel or file system has no O_TMPFILE.
  // Anything else (ENOENT, EACCES, ENOTDIR, ...) is about `dir` itself and
  // mkstemp would fail the same way, so report the open() error.
  if (errno != EISDIR && errno != EOPNOTSUPP && errno != EINVAL) {
    Fail(err, "open");
    return -1;
  }
#endif
  std::string path(dir);
  if (path.empty() || path.back() != '/') path.push_back('/');
  path += ".mmap-pool-XXXXXX";
  int tmp = mkstemp(&path[0]);
  if (tmp < 0) {
    Fail(err, "mkstemp");
    return -1;
  }
  // The name exists only between these two calls.
  if (unlink(path.c_str()) != 0) {
    Fail(err, "unlink");
    close(tmp);
    return -1;
  }
  fcntl(tmp, F_SETFD, FD_CLOEXEC);
  return tmp;
}

// Gives the file its size and, where the system can, reserves its blocks now,
// so a full disk shows up here as an error instead of as SIGBUS on a later
// write through the mapping.
bool SizeFile(int fd, size_t size, MapError* err) {
#if defined(__linux__)
  int rc = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (rc == 0) return true;
  if (rc != EOPNOTSUPP && rc != EINVAL) {
    err->code = rc;
    err->syscall = "posix_fallocate";
    return false;
  }
#endif
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) return Fail(err, "ftruncate");
  return true;
}

}  // namespace

bool Map(Backing backing, const char* dir, size_t size, Mapping* out,
         MapError* err) {
  *out = Mapping();
  if (size == 0 || size % PageSize() != 0) {
    err->code = EINVAL;
    err->syscall = "mmap";
    return false;
  }
  void* addr = MAP_FAILED;
  if (backing == Backing::kAnonymous) {
    addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (addr == MAP_FAILED) return Fail(err, "mmap");
  } else {
    int fd = OpenUnlinkedTemp(dir, err);
    if (fd < 0) return false;
    if (!SizeFile(fd, size, err)) {
      close(fd);
      return false;
    }
    addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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

bool Discard(const Mapping& m, size_t offset, size_t len) {
  if (len == 0) return true;
  uint8_t* p = m.addr + offset;
  if (m.backing == Backing::kFile) {
    // Dirty shared pages are written back to the (unlinked) file and dropped
    // from this process; their contents stay, so they are not zero.
    madvise(p, len, MADV_DONTNEED);
    return false;
  }
#if defined(__linux__)
  // Private anonymous pages read back as zeros after MADV_DONTNEED.
  return madvise(p, len, MADV_DONTNEED) == 0;
#elif defined(MADV_FREE)
  madvise(p, len, MADV_FREE);  // reclaimed lazily; contents unspecified
  return false;
#else
  posix_madvise(p, len, POSIX_MADV_DONTNEED);
  return false;
#endif
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
