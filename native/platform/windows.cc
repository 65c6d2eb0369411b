// Windows implementation of mapping.h.
// Threads: no shared state except the page size and allocation granularity,
// the looked-up DiscardVirtualMemory and K32QueryWorkingSetEx addresses (all
// cached on first use in function-local statics, which C++11 initialises
// thread-safely) and an atomic counter used to make temp file names unique.
#ifdef _WIN32

#include "mapping.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <atomic>
#include <string>

namespace mmap_pool {
namespace platform {

namespace {

SYSTEM_INFO SystemInfo() {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si;
}

}  // namespace

size_t PageSize() {
  static const size_t page = static_cast<size_t>(SystemInfo().dwPageSize);
  return page;
}

// A view must start on an allocation-granularity boundary, so mapping sizes
// that are not multiples of it would waste the rest of each 64 KiB slot of
// address space.
size_t MapGranularity() {
  static const size_t granularity =
      static_cast<size_t>(SystemInfo().dwAllocationGranularity);
  return granularity;
}

namespace {

bool Fail(MapError* err, const char* syscall) {
  // Read before any cleanup: CloseHandle may overwrite the last error.
  err->code = static_cast<int>(GetLastError());
  err->syscall = syscall;
  return false;
}

// CreateFileW reports failure as INVALID_HANDLE_VALUE, CreateFileMappingW as
// nullptr; Mapping uses nullptr for "none", so only ever store the latter.
void CloseIfOpen(HANDLE h) {
  if (h != nullptr && h != INVALID_HANDLE_VALUE) CloseHandle(h);
}

void AppendHex(std::wstring* s, unsigned long long v) {
  static const wchar_t kDigits[] = L"0123456789abcdef";
  wchar_t buf[16];
  int n = 0;
  do {
    buf[n++] = kDigits[v & 0xf];
    v >>= 4;
  } while (v != 0);
  while (n > 0) s->push_back(buf[--n]);
}

bool Utf8ToWide(const char* utf8, std::wstring* out, MapError* err) {
  // MB_ERR_INVALID_CHARS: a malformed name must fail, not silently become a
  // different path full of U+FFFD.
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, nullptr, 0);
  if (n <= 0) return Fail(err, "MultiByteToWideChar");
  out->assign(static_cast<size_t>(n), L'\0');
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, &(*out)[0], n) <= 0) {
    return Fail(err, "MultiByteToWideChar");
  }
  out->resize(static_cast<size_t>(n - 1));  // drop the terminator it counted
  return true;
}

// Creates a read/write temp file in `dir` that the system deletes when its
// last handle closes, however the process ends. GetTempFileNameW is not used:
// it creates the file itself, without FILE_FLAG_DELETE_ON_CLOSE, so a crash
// before we reopen it would leave the file behind; it also allows only 65535
// names per prefix. Instead the name is made from the process id, a
// per-process counter and the performance counter, and CREATE_NEW makes a
// collision (another process, a leftover file) fail so we try the next name.
// Returns the handle, or nullptr with `err` filled.
HANDLE CreateDeleteOnCloseTemp(const char* dir, MapError* err) {
  if (dir == nullptr || dir[0] == '\0') {
    // An empty prefix would put the file in the root of the current drive.
    err->code = ERROR_PATH_NOT_FOUND;
    err->syscall = "CreateFileW";
    return nullptr;
  }
  std::wstring base;
  if (!Utf8ToWide(dir, &base, err)) return nullptr;
  if (base.back() != L'\\' && base.back() != L'/') base.push_back(L'\\');
  base += L".mmap-pool-";
  AppendHex(&base, GetCurrentProcessId());
  base.push_back(L'-');

  static std::atomic<unsigned long> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    std::wstring path = base;
    AppendHex(&path, counter.fetch_add(1, std::memory_order_relaxed));
    path.push_back(L'-');
    AppendHex(&path, static_cast<unsigned long long>(now.QuadPart));
    path += L".tmp";
    // Full sharing lets virus scanners and indexers open the file instead of
    // failing; DELETE_ON_CLOSE already forces any later opener to share
    // delete, so granting it costs nothing. TEMPORARY asks the cache manager
    // to keep the pages in memory rather than flush them to disk early.
    // A null SECURITY_ATTRIBUTES makes the handle non-inheritable, so a child
    // process cannot keep the file alive.
    HANDLE h = CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           nullptr, CREATE_NEW,
                           FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE,
                           nullptr);
    if (h != INVALID_HANDLE_VALUE) return h;
    DWORD e = GetLastError();
    if (e != ERROR_FILE_EXISTS && e != ERROR_ALREADY_EXISTS) {
      Fail(err, "CreateFileW");
      return nullptr;
    }
  }
  err->code = ERROR_FILE_EXISTS;
  err->syscall = "CreateFileW";
  return nullptr;
}

// Gives the file its full length now. NTFS allocates the clusters when the
// end of file moves, so a full disk is reported here instead of as an
// EXCEPTION_IN_PAGE_ERROR on a later write through the view.
bool SizeFile(HANDLE file, size_t size, MapError* err) {
  LARGE_INTEGER end;
  end.QuadPart = static_cast<LONGLONG>(size);
  if (!SetFilePointerEx(file, end, nullptr, FILE_BEGIN)) {
    return Fail(err, "SetFilePointerEx");
  }
  if (!SetEndOfFile(file)) return Fail(err, "SetEndOfFile");
  return true;
}

// Windows 8.1+ only, so looked up at run time: linking against it would stop
// the addon from loading at all on older systems.
using DiscardVirtualMemoryFn = DWORD(WINAPI*)(PVOID, SIZE_T);

DiscardVirtualMemoryFn LookupDiscardVirtualMemory() {
  HMODULE kernel32 = GetModuleHandleW(L"kernel32.dll");
  if (kernel32 == nullptr) return nullptr;
  FARPROC proc = GetProcAddress(kernel32, "DiscardVirtualMemory");
  // Going through void(*)() keeps -Wcast-function-type quiet; FARPROC's
  // nominal type never matches the real signature.
  return reinterpret_cast<DiscardVirtualMemoryFn>(
      reinterpret_cast<void (*)()>(proc));
}

}  // namespace

size_t HugePageSize() {
  // Large pages on Windows (MEM_LARGE_PAGES, SEC_LARGE_PAGES) are not
  // transparent: they need SeLockMemoryPrivilege and are locked, never paged.
  // kMapHugePages is a no-op here.
  return 0;
}

// Flags: kMapHugePages is ignored (see HugePageSize()).
bool Map(Backing backing, const char* dir, size_t size, Mapping* out,
         MapError* err, unsigned /*flags*/) {
  *out = Mapping();
  if (size == 0 || size % MapGranularity() != 0) {
    err->code = ERROR_INVALID_PARAMETER;
    err->syscall = "MapViewOfFile";
    return false;
  }
  const unsigned long long size64 = size;
  const DWORD high = static_cast<DWORD>(size64 >> 32);
  const DWORD low = static_cast<DWORD>(size64 & 0xffffffffu);

  HANDLE file = nullptr;
  HANDLE section = nullptr;
  if (backing == Backing::kAnonymous) {
    // A section backed by the page file: committed (and charged against the
    // commit limit) now, so running out of memory fails here, not on touch.
    section = CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE,
                                 high, low, nullptr);
    if (section == nullptr) return Fail(err, "CreateFileMappingW");
  } else {
    file = CreateDeleteOnCloseTemp(dir, err);
    if (file == nullptr) return false;
    if (!SizeFile(file, size, err)) {
      CloseIfOpen(file);
      return false;
    }
    section = CreateFileMappingW(file, nullptr, PAGE_READWRITE, high, low, nullptr);
    if (section == nullptr) {
      Fail(err, "CreateFileMappingW");
      CloseIfOpen(file);
      return false;
    }
  }

  void* addr = MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, size);
  if (addr == nullptr) {
    Fail(err, "MapViewOfFile");
    CloseIfOpen(section);
    CloseIfOpen(file);
    return false;
  }
  // Both handles are kept rather than closed here (the view alone would keep
  // the section and file alive): the temp file's name stays visible, as the
  // pool's, for as long as the pool holds the memory, and Unmap, or Retire
  // when the memory is given back while the view must stay, closes them.
  out->addr = static_cast<uint8_t*>(addr);
  out->size = size;
  out->backing = backing;
  out->section = section;
  out->file = file;
  return true;
}

void Unmap(Mapping* m) {
  if (m->addr != nullptr) UnmapViewOfFile(m->addr);
  CloseIfOpen(static_cast<HANDLE>(m->section));
  // Last handle to a DELETE_ON_CLOSE file: the file is deleted here, unless
  // Retire closed the handles already (then both are null).
  CloseIfOpen(static_cast<HANDLE>(m->file));
  *m = Mapping();
}

bool Discard(const Mapping& m, size_t offset, size_t len) {
  if (len == 0) return true;
  if (m.backing == Backing::kFile) {
    // MEM_RESET and DiscardVirtualMemory refuse views of real files; dirty
    // pages are written back to the temp file and trimmed by the memory
    // manager under pressure, which is the most that can be had.
    return false;
  }
  uint8_t* p = m.addr + offset;
  static const DiscardVirtualMemoryFn discard = LookupDiscardVirtualMemory();
  // DiscardVirtualMemory fails on pages that are not PAGE_READWRITE (for
  // example ones passed to ProtectNone); MEM_RESET has no such condition, so
  // it is the fallback both when the function is missing and when it fails.
  if (discard != nullptr && discard(p, len) == ERROR_SUCCESS) return false;
  // The pages stay committed and keep their commit charge; only their
  // contents stop being worth saving to the page file. Not zeroed either way.
  VirtualAlloc(p, len, MEM_RESET, PAGE_READWRITE);
  return false;
}

// A view cannot be replaced in place without placeholders (VirtualAlloc2,
// MapViewOfFile3: Windows 10 1803+): taking the view out of a placeholder
// and mapping fresh pages into it are two calls, and a job touching the
// range between them would fault. So a retired view stays a view of its
// section: its pages are discarded as Discard does (page-file sections; a
// file's pages stay in the file), the guard granule stays inaccessible,
// locked pages stay locked, and the addresses go at Unmap.
//
// The temp file's name must not wait for Unmap (the collector), so both
// handles are closed here; the view keeps the section object, and the
// section keeps the file object, referenced (not open: it has no handle),
// so every address stays readable and writable. Closing the last handle of
// the file object is what a DELETE_ON_CLOSE file waits for: the file system
// processes the delete in that handle's cleanup, which takes the name out
// of the directory at once, while the file object, and through it the
// view's pages, stay until the last reference goes at the view's unmap
// (CreateFile's documentation: the file "is to be deleted immediately after
// all of its handles are closed"). A delete disposition cannot do it:
// SetFileInformationByHandle(FileDispositionInfo or FileDispositionInfoEx,
// POSIX semantics included) fails with ERROR_ACCESS_DENIED while a view of
// the file is mapped (STATUS_CANNOT_DELETE). Wine 8.0 differs: its server
// deletes the file when the last descriptor of it goes, which the view
// holds, so there the name stays until Unmap.
bool Retire(Mapping* m) {
  if (m->addr != nullptr) Discard(*m, 0, m->size);
  CloseIfOpen(static_cast<HANDLE>(m->section));
  CloseIfOpen(static_cast<HANDLE>(m->file));
  m->section = nullptr;
  m->file = nullptr;
  return false;
}

// Never reached: Retire never hands out a replaced range here.
bool MapOver(Backing /*backing*/, const char* /*dir*/, Mapping* /*from*/, size_t /*size*/,
             Mapping* out, MapError* err, unsigned /*flags*/) {
  *out = Mapping();
  err->code = ERROR_NOT_SUPPORTED;
  err->syscall = "MapViewOfFile";
  return false;
}

// Not attempted: Discard's DiscardVirtualMemory is the nearest thing, but a
// mapping kept for reuse on Windows would also keep its commit charge.
bool DiscardLazily(const Mapping& /*m*/, size_t /*offset*/, size_t /*len*/) { return false; }

bool HasDiscardLazily() { return false; }

void Prefault(const Mapping& m, size_t offset, size_t len) {
  // PrefetchVirtualMemory reads pages in but does not add them to the
  // working set, so the first touch would still fault; and pages of a new
  // section were never anywhere to read from. Writing one zero byte per page
  // is what faults them in (the memory is fresh, so it already reads as zero).
  if (len == 0 || m.addr == nullptr) return;
  volatile uint8_t* v = m.addr + offset;
  const size_t page = PageSize();
  for (size_t o = 0; o < len; o += page) v[o] = 0;
}

bool ProtectNone(const Mapping& m, size_t offset, size_t len, MapError* err) {
  DWORD old = 0;
  if (!VirtualProtect(m.addr + offset, len, PAGE_NOACCESS, &old)) {
    return Fail(err, "VirtualProtect");
  }
  return true;
}

bool ReleaseFreeHeap() {
  // The Windows heap decommits free pages on its own.
  return false;
}

bool TuneHeap(size_t, size_t) {
  return false;  // the Windows heap has no such settings
}

namespace {

// K32QueryWorkingSetEx is kernel32's own export of psapi's QueryWorkingSetEx
// (Windows 7+); looked up at run time like DiscardVirtualMemory, so that
// the addon needs no psapi.lib and loads where it is missing.
using QueryWorkingSetExFn = BOOL(WINAPI*)(HANDLE, PVOID, DWORD);

QueryWorkingSetExFn LookupQueryWorkingSetEx() {
  HMODULE kernel32 = GetModuleHandleW(L"kernel32.dll");
  if (kernel32 == nullptr) return nullptr;
  FARPROC proc = GetProcAddress(kernel32, "K32QueryWorkingSetEx");
  return reinterpret_cast<QueryWorkingSetExFn>(reinterpret_cast<void (*)()>(proc));
}

// PSAPI_WORKING_SET_EX_INFORMATION, declared here rather than taken from
// psapi.h: the entry is a virtual address in, and a flags word out whose
// bit 0 ("Valid") says the page is in the process's working set.
struct WorkingSetExEntry {
  PVOID address;
  ULONG_PTR attributes;
};

}  // namespace

// The pages of the range in this process's working set: what the process
// has touched and the memory manager has not trimmed since (a page in the
// standby list or the page file is not counted, as mincore on Linux counts a
// file page in the page cache whether or not this process mapped it in).
bool ResidentBytes(const Mapping& m, size_t len, size_t* out) {
  static const QueryWorkingSetExFn query = LookupQueryWorkingSetEx();
  if (query == nullptr) return false;
  const size_t page = PageSize();
  const size_t pages = (len + page - 1) / page;
  // One entry per page; a small table at a time keeps the stack bounded.
  WorkingSetExEntry table[512];
  size_t resident = 0;
  for (size_t first = 0; first < pages; first += 512) {
    const size_t n = pages - first < 512 ? pages - first : 512;
    for (size_t i = 0; i < n; i++) {
      table[i].address = m.addr + (first + i) * page;
      table[i].attributes = 0;
    }
    if (!query(GetCurrentProcess(), table, static_cast<DWORD>(n * sizeof table[0]))) return false;
    for (size_t i = 0; i < n; i++) resident += table[i].attributes & 1;
  }
  *out = resident * page;
  return true;
}

bool Lock(const Mapping& m, size_t offset, size_t len, MapError* err) {
  // VirtualLock is limited by the process's minimum working set; a failure
  // (ERROR_WORKING_SET_QUOTA) is reported, not worked around.
  if (!VirtualLock(m.addr + offset, len)) return Fail(err, "VirtualLock");
  return true;
}

void ExcludeFromDumps(const Mapping&, size_t, size_t) {
  // Windows has no per-range switch for what goes into a crash dump.
}

}  // namespace platform
}  // namespace mmap_pool

#endif  // _WIN32
