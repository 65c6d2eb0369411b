// Platform layer (native/platform/posix.cc): Map / Unmap of anonymous and
// file memory, the unlinked-file promise, file blocks written where there is
// no preallocation, errors, Discard, ProtectNone, Lock, the huge-page and
// prefault hints (kMapHugePages, Prefault), Retire and MapOver.
// Crash behaviour is checked in a forked child by how it died.
#include "platform/mapping.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"

using namespace mmap_pool::platform;

// The ASan and TSan runtimes turn mlock() into a no-op that returns 0 ("...
// ignores mlock/mlockall/munlock/munlockall"), so Lock can only be observed
// in an unsanitized build (scripts/test-native.sh runs one for this file).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MMAP_POOL_TEST_NO_MLOCK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MMAP_POOL_TEST_NO_MLOCK 1
#endif
#endif
#ifdef MMAP_POOL_TEST_NO_MLOCK
constexpr bool kMlockWorks = false;
#else
constexpr bool kMlockWorks = true;
#endif

namespace {

bool SkipWithoutMlock() {
  if (kMlockWorks) return false;
  std::printf("  skipped: the sanitizer runtime ignores mlock (the unsanitized build runs it)\n");
  return true;
}

// A fresh empty directory under $TMPDIR (or /tmp), removed by the destructor.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base ? base : "/tmp") +
                        "/mmap-pool-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path = buf.data();
  }
  ~TempDir() {
    if (!path.empty()) rmdir(path.c_str());
  }
};

// Names in `dir` other than "." and "..".
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return {"<opendir failed>"};
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  }
  closedir(d);
  return names;
}

size_t OpenFds() {
  std::vector<std::string> fds = ListDir("/proc/self/fd");
  return fds.size() - 1;  // minus the descriptor opendir used to list them
}

// The /proc/self/maps line of the mapping that starts at `addr`, or "".
std::string MapsLine(const void* addr) {
  char start[32];
  snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(addr));
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.compare(0, strlen(start), start) == 0) return line;
  }
  return "";
}

// The /proc/self/maps line of the mapping that holds `addr`, or "" (a
// retired range may have merged with its anonymous neighbours).
std::string MapsLineHolding(const void* addr) {
  const unsigned long a = reinterpret_cast<unsigned long>(addr);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long from = 0, to = 0;
    if (sscanf(line.c_str(), "%lx-%lx", &from, &to) == 2 && from <= a && a < to) return line;
  }
  return "";
}

// The /proc/self/smaps block (header and fields) of the mapping at `addr`.
std::string SmapsBlock(const void* addr) {
  char start[32];
  snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(addr));
  std::ifstream smaps("/proc/self/smaps");
  std::string line, block;
  bool in = false;
  while (std::getline(smaps, line)) {
    const bool header = line.find(':') == std::string::npos || line.find(' ') < line.find(':');
    if (header && in) break;
    if (header && line.compare(0, strlen(start), start) == 0) in = true;
    if (in) block += line + "\n";
  }
  return block;
}

// The value of `field` ("Locked:", "VmFlags:") in a smaps block.
std::string SmapsField(const std::string& block, const char* field) {
  size_t at = block.find(std::string("\n") + field);
  if (at == std::string::npos) return "";
  at += 1 + strlen(field);
  return block.substr(at, block.find('\n', at) - at);
}

bool AllBytes(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != v) return false;
  }
  return true;
}

void Fill(uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(i * 7 + 1);
}

bool Filled(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != static_cast<uint8_t>(i * 7 + 1)) return false;
  }
  return true;
}

// Runs `fn` in a forked child; returns the wait status.
template <typename Fn>
int InChild(Fn fn) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

}  // namespace

TEST("PageSize is a power of two of at least 4 KiB and the POSIX granularity") {
  size_t ps = PageSize();
  CHECK_GE(ps, size_t{4096});
  CHECK_EQ(ps & (ps - 1), size_t{0});
  CHECK_EQ(MapGranularity(), ps);
}

TEST("Map anonymous gives zeroed writable memory and Unmap empties the Mapping") {
  const size_t size = 3 * PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, size, &m, &err))) return;
  CHECK(m.addr != nullptr);
  CHECK_EQ(m.size, size);
  CHECK(m.backing == Backing::kAnonymous);
  CHECK(AllBytes(m.addr, size, 0));
  Fill(m.addr, size);
  CHECK(Filled(m.addr, size));
  void* addr = m.addr;
  // (Holding, not starting at, addr: the kernel merges an anonymous mapping
  // with a neighbour of the same protection, such as one of ASan's.)
  CHECK(!MapsLineHolding(addr).empty());
  Unmap(&m);
  CHECK(m.addr == nullptr);
  CHECK_EQ(m.size, size_t{0});
  CHECK(MapsLineHolding(addr).empty());
  Unmap(&m);  // safe on an empty mapping
}

TEST("Map file leaves no name in the directory and no open descriptor") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  const size_t size = 4 * PageSize();
  const size_t fds_before = OpenFds();
  Mapping m;
  MapError err;
  if (!CHECK_MSG(Map(Backing::kFile, dir.path.c_str(), size, &m, &err),
                 std::string("errno ") + std::to_string(err.code) + " from " + err.syscall)) {
    return;
  }
  CHECK(m.backing == Backing::kFile);
  CHECK_EQ(m.size, size);
  CHECK(ListDir(dir.path).empty());
  CHECK_EQ(OpenFds(), fds_before);
  std::string line = MapsLine(m.addr);
  CHECK_MSG(line.find("(deleted)") != std::string::npos, "maps: " + line);
  CHECK_MSG(line.find(" rw-s ") != std::string::npos, "maps: " + line);  // shared
  CHECK(AllBytes(m.addr, size, 0));
  Fill(m.addr, size);
  CHECK(Filled(m.addr, size));
  void* addr = m.addr;
  Unmap(&m);
  CHECK(MapsLine(addr).empty());
  CHECK(ListDir(dir.path).empty());
  CHECK_EQ(OpenFds(), fds_before);
}

// The pages of a file mapping in the page cache right after Map, before any
// access: the blocks were written (a sparse file has none until a write).
TEST("without preallocation, Map file writes the file's blocks: all of it is in the page cache at once") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  const size_t size = 3 * 1024 * 1024 + 5 * PageSize();  // three whole zero blocks and a part
  SimulateNoFallocate(true);
  Mapping m;
  MapError err;
  const bool mapped = Map(Backing::kFile, dir.path.c_str(), size, &m, &err);
  SimulateNoFallocate(false);
  if (!CHECK_MSG(mapped, std::string("errno ") + std::to_string(err.code) + " from " + err.syscall)) return;
  size_t resident = 0;
  CHECK(ResidentBytes(m, size, &resident));
  CHECK_EQ(resident, size);
  CHECK(ListDir(dir.path).empty());
  CHECK(AllBytes(m.addr, size, 0));
  Fill(m.addr, size);
  CHECK(Filled(m.addr, size));
  Unmap(&m);
}

// RLIMIT_FSIZE stands in for a full disk: the write that crosses it is cut
// short, the next fails with EFBIG (SIGXFSZ ignored, as Node does).
TEST("without preallocation, Map file with no room for its blocks fails with EFBIG from pwrite (forked child)") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  int status = InChild([&] {
    SimulateNoFallocate(true);
    signal(SIGXFSZ, SIG_IGN);
    const size_t fds = OpenFds();
    struct rlimit lim = {1536 * 1024 + 100, RLIM_INFINITY};  // mid-block, mid-page
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(3);
    Mapping m;
    MapError e;
    if (Map(Backing::kFile, dir.path.c_str(), 3 * 1024 * 1024, &m, &e)) _exit(4);
    if (e.code != EFBIG) _exit(5);
    if (strcmp(e.syscall, "pwrite") != 0) _exit(6);
    if (m.addr != nullptr || OpenFds() != fds || !ListDir(dir.path).empty()) _exit(7);
    if (!Map(Backing::kFile, dir.path.c_str(), 1024 * 1024, &m, &e)) _exit(8);  // room for this one
    Fill(m.addr, 1024 * 1024);
    if (!Filled(m.addr, 1024 * 1024)) _exit(9);
    Unmap(&m);
    _exit(0);
  });
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "child status " + std::to_string(status) +
                (WIFEXITED(status) ? ", exit " + std::to_string(WEXITSTATUS(status)) : ""));
}

TEST("Map file into a nonexistent directory fails with ENOENT from open") {
  Mapping m;
  MapError err;
  CHECK(!Map(Backing::kFile, "/nonexistent/mmap-pool-test-dir", PageSize(), &m, &err));
  CHECK_EQ(err.code, ENOENT);
  CHECK_EQ(std::string(err.syscall), std::string("open"));
  CHECK(m.addr == nullptr);
  CHECK_EQ(m.size, size_t{0});
}

TEST("Map file with a regular file as the directory fails with ENOTDIR") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  std::string file = dir.path + "/plain";
  { std::ofstream(file) << "x"; }
  Mapping m;
  MapError err;
  CHECK(!Map(Backing::kFile, file.c_str(), PageSize(), &m, &err));
  CHECK_EQ(err.code, ENOTDIR);
  CHECK(err.syscall[0] != '\0');
  CHECK(m.addr == nullptr);
  unlink(file.c_str());
}

TEST("Map of size 0 or not a page multiple fails with EINVAL and maps nothing") {
  for (Backing b : {Backing::kAnonymous, Backing::kFile}) {
    for (size_t size : {size_t{0}, size_t{1}, PageSize() - 1, PageSize() + 1}) {
      Mapping m;
      MapError err;
      CHECK(!Map(b, "/tmp", size, &m, &err));
      CHECK_EQ(err.code, EINVAL);
      CHECK(m.addr == nullptr);
      CHECK_EQ(m.size, size_t{0});
    }
  }
}

TEST("Discard of anonymous memory returns true and the range reads back zero") {
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 4 * ps, &m, &err))) return;
  Fill(m.addr, 4 * ps);
  CHECK(Discard(m, ps, 2 * ps));
  CHECK(Filled(m.addr, ps));                       // before the range: kept
  CHECK(AllBytes(m.addr + ps, 2 * ps, 0));         // the range: zero
  bool tail_kept = true;                           // after the range: kept
  for (size_t i = 3 * ps; i < 4 * ps; i++) tail_kept &= m.addr[i] == static_cast<uint8_t>(i * 7 + 1);
  CHECK(tail_kept);
  CHECK(Discard(m, 0, 0));  // empty range: nothing to do, and nothing fails
  m.addr[ps] = 42;          // still mapped and writable
  CHECK_EQ(m.addr[ps], 42);
  Unmap(&m);
}

TEST("Discard of file memory returns false and the contents stay") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kFile, dir.path.c_str(), 2 * ps, &m, &err))) return;
  Fill(m.addr, 2 * ps);
  CHECK(!Discard(m, 0, 2 * ps));
  CHECK(Filled(m.addr, 2 * ps));
  Unmap(&m);
}

TEST("ProtectNone makes a read die with SIGSEGV (in a forked child)") {
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 2 * ps, &m, &err))) return;
  m.addr[0] = 1;
  m.addr[ps] = 2;
  int status = InChild([&] {
    MapError e;
    if (!ProtectNone(m, ps, ps, &e)) _exit(3);
    // The page before stays readable.
    if (*static_cast<volatile uint8_t*>(m.addr) != 1) _exit(4);
    // Die of the signal itself, not of a sanitizer's report of it.
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    (void)*static_cast<volatile uint8_t*>(m.addr + ps);
    _exit(5);  // reached only if the read did not fault
  });
  CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
            "child status " + std::to_string(status) +
                (WIFEXITED(status) ? ", exit " + std::to_string(WEXITSTATUS(status)) : ""));
  // The parent's mapping is untouched by the child's mprotect.
  CHECK_EQ(m.addr[ps], 2);
  Unmap(&m);
}

TEST("ProtectNone of a misaligned range fails with mprotect's EINVAL") {
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 2 * ps, &m, &err))) return;
  MapError e;
  CHECK(!ProtectNone(m, 1, ps, &e));
  CHECK_EQ(e.code, EINVAL);
  CHECK_EQ(std::string(e.syscall), std::string("mprotect"));
  m.addr[0] = 1;  // nothing was protected
  CHECK_EQ(m.addr[0], 1);
  Unmap(&m);
}

TEST("Lock keeps the range resident: smaps counts it as Locked") {
  if (SkipWithoutMlock()) return;
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 2 * ps, &m, &err))) return;
  MapError e;
  if (!CHECK_MSG(Lock(m, 0, 2 * ps, &e), std::string("errno ") + std::to_string(e.code) + " from " + e.syscall)) {
    Unmap(&m);
    return;
  }
  const std::string locked = SmapsField(SmapsBlock(m.addr), "Locked:");
  CHECK_MSG(std::stoul("0" + locked.substr(locked.find_first_not_of(' '))) == 2 * ps / 1024,
            "Locked:" + locked);
  Unmap(&m);  // unlocks
}

TEST("Lock past RLIMIT_MEMLOCK fails with ENOMEM from mlock (unprivileged child)") {
  if (SkipWithoutMlock()) return;
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 4 * ps, &m, &err))) return;
  int status = InChild([&] {
    struct rlimit lim = {ps, ps};
    if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0) _exit(3);
    // Root (CAP_IPC_LOCK) ignores the limit: become nobody first.
    if (geteuid() == 0 && setuid(65534) != 0) _exit(4);
    MapError e;
    if (Lock(m, 0, 4 * ps, &e)) _exit(5);
    if (e.code != ENOMEM) _exit(6);
    if (strcmp(e.syscall, "mlock") != 0) _exit(7);
    _exit(0);
  });
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "child status " + std::to_string(status) +
                (WIFEXITED(status) ? ", exit " + std::to_string(WEXITSTATUS(status)) : ""));
  Unmap(&m);
}

TEST("ExcludeFromDumps marks the range do-not-dump (VmFlags dd)") {
  const size_t ps = PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 2 * ps, &m, &err))) return;
  CHECK(SmapsField(SmapsBlock(m.addr), "VmFlags:").find(" dd") == std::string::npos);
  ExcludeFromDumps(m, 0, 2 * ps);
  const std::string flags = SmapsField(SmapsBlock(m.addr), "VmFlags:");
  CHECK_MSG(flags.find(" dd") != std::string::npos, "VmFlags:" + flags);
  Unmap(&m);
}

// kMapHugePages and Prefault: hints, checked through what the kernel reports.

size_t SmapsKiB(const std::string& block, const char* field) {
  const std::string v = SmapsField(block, field);
  const size_t at = v.find_first_not_of(' ');
  return at == std::string::npos ? 0 : std::stoul(v.substr(at));
}

TEST("HugePageSize is 0 or a power-of-two page multiple (2 MiB on x86-64 Linux with THP)") {
  const size_t hp = HugePageSize();
  if (hp == 0) return;
  CHECK((hp & (hp - 1)) == 0);
  CHECK(hp % PageSize() == 0);
#if defined(__x86_64__)
  CHECK(hp == size_t{2} << 20);
#endif
}

TEST("Map with kMapHugePages starts on a huge-page boundary, is advised (VmFlags hg) and zeroed") {
  const size_t hp = HugePageSize();
  if (hp == 0) {
    std::printf("  skipped: no transparent huge pages here\n");
    return;
  }
  for (Backing b : {Backing::kAnonymous, Backing::kFile}) {
    TempDir dir;
    // One page over two huge pages, as a huge allocation with its guard page.
    const size_t size = 2 * hp + PageSize();
    Mapping m;
    MapError err;
    if (!CHECK(Map(b, dir.path.c_str(), size, &m, &err, kMapHugePages))) return;
    CHECK(reinterpret_cast<uintptr_t>(m.addr) % hp == 0);
    CHECK(m.size == size);
    const std::string flags = SmapsField(SmapsBlock(m.addr), "VmFlags:");
    CHECK_MSG(flags.find(" hg") != std::string::npos, "VmFlags:" + flags);
    CHECK(AllBytes(m.addr, size, 0));
    Unmap(&m);
  }
}

TEST("Map with kMapHugePages below one huge page is neither aligned on purpose nor advised") {
  const size_t hp = HugePageSize();
  if (hp == 0) return;
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, hp / 2, &m, &err, kMapHugePages))) return;
  const std::string flags = SmapsField(SmapsBlock(m.addr), "VmFlags:");
  CHECK_MSG(flags.find(" hg") == std::string::npos, "VmFlags:" + flags);
  Unmap(&m);
}

TEST("Prefault makes exactly the range resident before any access (anonymous), and it reads zero") {
  const size_t ps = PageSize();
  const size_t size = 64 * ps;
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, size, &m, &err))) return;
  size_t resident = 1;
  CHECK(ResidentBytes(m, size, &resident) && resident == 0);
  // Only the middle: the pages outside stay out. (Not Rss from smaps: an
  // anonymous mapping may share its smaps entry with a merged neighbour.)
  Prefault(m, 8 * ps, 16 * ps);
  CHECK_MSG(ResidentBytes(m, size, &resident) && resident == 16 * ps, "resident " + std::to_string(resident));
  CHECK(AllBytes(m.addr, size, 0));
  Unmap(&m);
}

TEST("Prefault of a whole file mapping makes all of it resident, and it reads zero") {
  TempDir dir;
  const size_t size = 64 * PageSize();
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kFile, dir.path.c_str(), size, &m, &err))) return;
  size_t resident = 1;
  CHECK(ResidentBytes(m, size, &resident) && resident == 0);
  // The whole range: for files mincore reports the page cache, which may
  // bring in a large folio around a smaller range.
  Prefault(m, 0, size);
  CHECK_MSG(ResidentBytes(m, size, &resident) && resident == size, "resident " + std::to_string(resident));
  CHECK(AllBytes(m.addr, size, 0));
  Unmap(&m);
}

TEST("Prefault after kMapHugePages gives huge pages at once (AnonHugePages), where THP is 'always' or 'madvise'") {
  const size_t hp = HugePageSize();
  std::ifstream enabled("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(enabled, mode);
  if (hp == 0 || mode.find("[never]") != std::string::npos) {
    std::printf("  skipped: transparent huge pages off here\n");
    return;
  }
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 2 * hp, &m, &err, kMapHugePages))) return;
  Prefault(m, 0, 2 * hp);
  const std::string block = SmapsBlock(m.addr);
  CHECK_MSG(SmapsKiB(block, "AnonHugePages:") == 2 * hp / 1024, block);
  Unmap(&m);
}

TEST("Retire of a file mapping ends it at once and leaves the range mapped, writable and zero") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  const size_t ps = PageSize();
  const size_t size = 8 * ps;
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kFile, dir.path.c_str(), size, &m, &err))) return;
  Fill(m.addr, size);
  // The guard page of a huge allocation: Retire makes it read/write too.
  if (!CHECK(ProtectNone(m, size - ps, ps, &err))) return;
  uint8_t* addr = m.addr;
  CHECK(Retire(&m));
  CHECK(m.addr == addr);
  CHECK_EQ(m.size, size);
  CHECK(m.backing == Backing::kAnonymous);
  for (size_t at = 0; at < size; at += ps) {
    std::string line = MapsLineHolding(addr + at);
    CHECK_MSG(line.find(" rw-p ") != std::string::npos, "maps: " + line);
    CHECK_MSG(line.find("(deleted)") == std::string::npos, "maps: " + line);
  }
  CHECK(AllBytes(addr, size, 0));
  Fill(addr, size);  // a late writer: lands in fresh pages
  CHECK(Filled(addr, size));
  Unmap(&m);
  CHECK(MapsLineHolding(addr).empty());
  CHECK(ListDir(dir.path).empty());
}

TEST("MapOver maps new file memory over the front of a retired range, which keeps the rest") {
  TempDir dir;
  if (!CHECK(!dir.path.empty())) return;
  const size_t ps = PageSize();
  Mapping retired;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, 8 * ps, &retired, &err))) return;
  Fill(retired.addr, 8 * ps);
  if (!CHECK(Retire(&retired))) return;
  uint8_t* addr = retired.addr;
  Mapping m;
  // More than the range holds: refused, nothing changed.
  CHECK(!MapOver(Backing::kFile, dir.path.c_str(), &retired, 9 * ps, &m, &err));
  CHECK_EQ(err.code, EINVAL);
  CHECK(retired.addr == addr && retired.size == 8 * ps && m.addr == nullptr);
  if (!CHECK_MSG(MapOver(Backing::kFile, dir.path.c_str(), &retired, 3 * ps, &m, &err),
                 std::string("errno ") + std::to_string(err.code) + " from " + err.syscall)) {
    Unmap(&retired);
    return;
  }
  CHECK(m.addr == addr);
  CHECK_EQ(m.size, 3 * ps);
  CHECK(m.backing == Backing::kFile);
  CHECK(retired.addr == addr + 3 * ps);
  CHECK_EQ(retired.size, 5 * ps);
  std::string line = MapsLine(addr);
  CHECK_MSG(line.find(" rw-s ") != std::string::npos && line.find("(deleted)") != std::string::npos,
            "maps: " + line);
  CHECK(AllBytes(m.addr, m.size, 0));
  CHECK(ListDir(dir.path).empty());
  // The rest, taken whole: the retired mapping is left empty.
  Mapping rest;
  if (CHECK(MapOver(Backing::kAnonymous, nullptr, &retired, 5 * ps, &rest, &err))) {
    CHECK(rest.addr == addr + 3 * ps && rest.size == 5 * ps);
    CHECK(retired.addr == nullptr && retired.size == 0);
    CHECK(AllBytes(rest.addr, rest.size, 0));
  }
  Unmap(&m);
  Unmap(&rest);
  CHECK(MapsLine(addr).empty());
  CHECK(MapsLine(addr + 3 * ps).empty());
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
