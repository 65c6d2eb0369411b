// platform::ResidentBytes on every platform: what stats().residentBytes is
// made of. POSIX asks mincore; Windows asks QueryWorkingSetEx (run under Wine
// by scripts/test-native-wine.sh). platform_test.cc covers the POSIX-only
// paths around it (prefault, locking). Also platform::Retire, which must
// keep a range usable on every platform while it gives its memory back.
#include <string>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif

#include "check.h"
#include "platform/mapping.h"
#include "test_sources.h"

using namespace mmap_pool::platform;
using mmap_pool::test::TempDir;

namespace {

// A mapping of at least `pages` pages, rounded up to the map granularity.
size_t MapSize(size_t pages) {
  const size_t g = MapGranularity();
  const size_t bytes = pages * PageSize();
  return (bytes + g - 1) / g * g;
}

size_t Resident(const Mapping& m, size_t len) {
  size_t out = ~size_t{0};
  if (!CHECK(ResidentBytes(m, len, &out))) return ~size_t{0};
  return out;
}

void WritePages(const Mapping& m, size_t first, size_t count) {
  const size_t ps = PageSize();
  for (size_t p = first; p < first + count; p++) m.addr[p * ps] = static_cast<uint8_t>(p | 1);
}

}  // namespace

TEST("an anonymous mapping: nothing resident until written, then exactly the pages written") {
  const size_t ps = PageSize();
  const size_t size = MapSize(64);
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, size, &m, &err))) return;
  CHECK_EQ(Resident(m, size), size_t{0});
  WritePages(m, 8, 16);
  CHECK_EQ(Resident(m, size), 16 * ps);
  // Only the range asked about is counted.
  CHECK_EQ(Resident(m, 12 * ps), 4 * ps);
  WritePages(m, 40, 3);
  CHECK_EQ(Resident(m, size), 19 * ps);
  Unmap(&m);
}

TEST("a file-backed mapping: nothing resident at first, all of it once every page is written") {
  const size_t size = MapSize(64);
  const std::string dir = TempDir();
  Mapping m;
  MapError err;
  if (!CHECK_MSG(Map(Backing::kFile, dir.c_str(), size, &m, &err),
                 std::string(err.syscall ? err.syscall : "?") + " " + std::to_string(err.code))) {
    return;
  }
  CHECK_EQ(Resident(m, size), size_t{0});
  // Every page: on Linux mincore reports the file's page cache, where a
  // write may bring in a large folio around the page written.
  WritePages(m, 0, size / PageSize());
  CHECK_EQ(Resident(m, size), size);
  Unmap(&m);
}

TEST("a length that is not a page multiple counts its last page") {
  const size_t ps = PageSize();
  const size_t size = MapSize(8);
  Mapping m;
  MapError err;
  if (!CHECK(Map(Backing::kAnonymous, nullptr, size, &m, &err))) return;
  WritePages(m, 0, 2);
  CHECK_EQ(Resident(m, ps + 1), 2 * ps);
  CHECK_EQ(Resident(m, ps), ps);
  Unmap(&m);
}

// Retire on every platform: the range stays mapped and writable (a late
// writer in a thread-pool job must not fault), and what it holds goes back.
// POSIX replaces it with fresh pages (none resident, reusable by MapOver);
// Windows keeps the view of its section, discards its pages and closes the
// section's and the temp file's handles, which is what lets Windows delete
// the file's name at once (the view keeps both objects referenced).
TEST("Retire keeps every page of a mapping writable, the guard page included, and releases what was resident") {
  const size_t ps = PageSize();
  const size_t size = MapSize(64);
  const size_t g = MapGranularity();
  for (Backing backing : {Backing::kAnonymous, Backing::kFile}) {
    const std::string dir = TempDir();
    Mapping m;
    MapError err;
    if (!CHECK(Map(backing, dir.c_str(), size + g, &m, &err))) return;
    if (!CHECK(ProtectNone(m, size, g, &err))) return;
    WritePages(m, 0, size / ps);
    CHECK_EQ(Resident(m, size), size);
    uint8_t* addr = m.addr;
#ifdef _WIN32
    const HANDLE section = static_cast<HANDLE>(m.section);
    const HANDLE file = static_cast<HANDLE>(m.file);
    CHECK(section != nullptr);
    CHECK((file != nullptr) == (backing == Backing::kFile));
#endif
    const bool replaced = Retire(&m);
    CHECK(m.addr == addr);
    CHECK_EQ(m.size, size + g);
#ifdef _WIN32
    CHECK(!replaced);
    CHECK(m.backing == backing);
    CHECK(m.section == nullptr && m.file == nullptr);
    DWORD flags = 0;
    CHECK(!GetHandleInformation(section, &flags));
    if (file != nullptr) CHECK(!GetHandleInformation(file, &flags));
    // Not reusable here: MapOver refuses, leaving both mappings as they were.
    Mapping over;
    CHECK(!MapOver(backing, dir.c_str(), &m, g, &over, &err));
    CHECK(over.addr == nullptr && m.addr == addr);
    WritePages(m, 0, size / ps);  // the usable pages: the guard stays a guard
#else
    CHECK(replaced);
    CHECK(m.backing == Backing::kAnonymous);
    CHECK_EQ(Resident(m, size + g), size_t{0});
    WritePages(m, 0, (size + g) / ps);  // a late writer, past the old guard too
    CHECK_EQ(Resident(m, size + g), size + g);
#endif
    Unmap(&m);
  }
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
