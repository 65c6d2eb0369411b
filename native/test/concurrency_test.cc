// Concurrency, for ThreadSanitizer: four threads allocate, write, verify and
// free in one Arena while a fifth reads GetStats and MappedBytes in a loop
// (and now and then Dump and Trim). Every snapshot must be self-consistent, every thread's
// bytes must survive the others, and the totals must add up at the end.
// Before that, the arena's own Mutex (alloc/mutex.h) alone: no lost update
// under contention, and a waiter put to sleep is woken by unlock().
//
// Threads: workers touch only their own allocations' bytes; the arena (and
// through it the source) is the only shared state. Source counters are read
// after join().
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "alloc/arena.h"
#include "alloc/mutex.h"
#include "arena_model.h"
#include "check.h"
#include "test_sources.h"

using namespace mmap_pool;
using alloc::Status;

namespace {

constexpr int kWorkers = 4;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kHuge = 64 * 1024;

struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

struct Mine {
  alloc::Handle h;
  size_t size;
  uint8_t* p;
  uint32_t tag;  // also the serial
  alloc::Arena::Ref ref() const { return {h.segment, h.offset, size, tag}; }
};

// Bytes written and checked: all of a small allocation, the two ends of a big one.
template <typename Fn>
void ForPatternBytes(size_t size, Fn fn) {
  if (size <= 4096) {
    for (size_t i = 0; i < size; i++) fn(i);
    return;
  }
  for (size_t i = 0; i < 512; i++) fn(i);
  for (size_t i = size - 512; i < size; i++) fn(i);
}

struct WorkerResult {
  uint64_t allocs = 0, frees = 0;
  long errors = 0;
  std::string first_error;
};

void Worker(alloc::Arena* arena, int index, uint64_t ops, WorkerResult* out) {
  Rng rng{0x1234567ull * (index + 1)};
  std::vector<Mine> mine;
  uint32_t next_tag = static_cast<uint32_t>(index) << 24;
  auto fail = [&](const std::string& what) {
    if (out->errors++ == 0) out->first_error = "thread " + std::to_string(index) + ": " + what;
  };
  auto free_one = [&](size_t i) {
    Mine m = mine[i];
    bool intact = true;
    ForPatternBytes(m.size, [&](size_t b) { intact &= m.p[b] == test::PatternByte(m.tag, b); });
    if (!intact) fail("bytes of an allocation changed under it");
    Status st;
    if (rng.Below(4) == 0) {
      uint32_t n = 0;
      if (arena->Retain(m.ref(), &n) != Status::kOk || n != 2) fail("Retain");
      if (arena->Release(m.ref(), &n) != Status::kOk || n != 1) fail("Release");
      st = arena->Release(m.ref(), &n);
    } else {
      st = arena->Free(m.ref());
    }
    const Status want = m.size > kHuge ? Status::kSegmentReleased : Status::kOk;
    if (st != want) fail(std::string("free: ") + test::StatusName(st));
    mine[i] = mine.back();
    mine.pop_back();
    out->frees++;
  };
  for (uint64_t op = 0; op < ops; op++) {
    if (mine.size() < 64 && (mine.empty() || rng.Below(100) < 55)) {
      const uint64_t u = rng.Below(100);
      size_t size = u < 70 ? rng.Below(512) : u < 90 ? rng.Below(alloc::kSmallMax) + 1
                  : u < 98 ? rng.Below(kHuge) + 1 : kHuge + 1 + rng.Below(kHuge);
      const bool zero = rng.Below(4) == 0;
      const size_t align = rng.Below(8) == 0 ? size_t{64} << rng.Below(7) : 0;
      alloc::Handle h;
      alloc::SourceError err;
      Status st = arena->Alloc(size, zero, next_tag, &h, &err, align);
      if (st != Status::kOk) {
        fail(std::string("alloc: ") + test::StatusName(st));
        continue;
      }
      alloc::Segment* seg = arena->FindSegment(h.segment);
      if (seg == nullptr) {
        fail("no segment for a fresh allocation");
        continue;
      }
      uint8_t* p = seg->base + h.offset;
      if (align != 0 && h.offset % align != 0) fail("misaligned");
      if (zero) {
        bool z = true;
        ForPatternBytes(size, [&](size_t b) { z &= p[b] == 0; });
        if (!z) fail("zero=true gave non-zero bytes");
      }
      const uint32_t tag = next_tag++;
      ForPatternBytes(size, [&](size_t b) { p[b] = test::PatternByte(tag, b); });
      mine.push_back({h, size, p, tag});
      out->allocs++;
    } else {
      free_one(rng.Below(mine.size()));
    }
  }
  while (!mine.empty()) free_one(mine.size() - 1);
}

}  // namespace

TEST("Mutex: 4 threads adding to a plain counter under it lose no update") {
  alloc::Mutex mu;
  uint64_t counter = 0;  // plain: TSan reports any access the mutex does not order
  const int kAdds = 100000;
  std::vector<std::thread> ts;
  for (int i = 0; i < kWorkers; i++) {
    ts.emplace_back([&] {
      for (int k = 0; k < kAdds; k++) {
        std::lock_guard<alloc::Mutex> lock(mu);
        counter++;
      }
    });
  }
  for (std::thread& t : ts) t.join();
  CHECK_EQ(counter, uint64_t{kWorkers} * kAdds);
}

TEST("Mutex: threads that find it held wait until unlock(), then each gets it once") {
  alloc::Mutex mu;
  std::atomic<int> inside{0};
  int entered = 0;  // under mu
  mu.lock();
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; i++) {
    ts.emplace_back([&] {
      std::lock_guard<alloc::Mutex> lock(mu);
      if (inside.fetch_add(1) != 0) entered = -1000;  // two threads inside at once
      entered++;
      inside.fetch_sub(1);
    });
  }
  // Long enough for the waiters to reach the condition variable.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_EQ(inside.load(), 0);
  CHECK_EQ(entered, 0);
  mu.unlock();
  for (std::thread& t : ts) t.join();
  std::lock_guard<alloc::Mutex> lock(mu);
  CHECK_EQ(entered, 3);
}

TEST("4 threads allocating and freeing while another reads GetStats see consistent state") {
  test::MapSource src;
  alloc::ArenaOptions opt;
  opt.page_size = 4096;
  opt.chunk_size = kChunk;
  opt.huge_threshold = kHuge;
  const uint64_t ops = 50000;
  WorkerResult results[kWorkers];
  std::atomic<int> running{kWorkers};
  long snapshot_errors = 0;
  std::string snapshot_error;
  uint64_t snapshots = 0, dumps = 0, trims = 0;
  {
    alloc::Arena arena(opt, &src);
    std::thread reader([&] {
      while (running.load() > 0) {
        alloc::Stats s = arena.GetStats();
        snapshots++;
        std::string what;
        if (s.mapped_bytes != s.chunks * kChunk + s.huge_bytes) what = "mapped != chunks + huge";
        if (s.live_allocations > s.total_allocations) what = "live > total";
        if (s.total_allocations - s.total_frees != s.live_allocations) what = "total - frees != live";
        if (s.used_bytes > s.allocated_bytes) what = "used > allocated";
        if (s.free_bytes + (s.allocated_bytes - s.huge_bytes) > s.chunks * kChunk) what = "free bytes";
        if (s.peak_used_bytes < s.used_bytes) what = "peak < used";
        if (arena.MappedBytes() % 4096 != 0) what = "MappedBytes not whole pages";
        uint64_t class_live = 0;
        for (const alloc::ClassStats& c : s.classes) class_live += c.live;
        if (class_live + s.huge_allocations != s.live_allocations) what = "class live counts";
        if (snapshots % 64 == 0) {
          // One snapshot, taken under the arena's lock: each chunk's runs tile it.
          for (const alloc::ChunkDump& c : arena.Dump().chunks) {
            uint64_t pages = 0, free_pages = 0;
            for (const alloc::RunDump& r : c.runs) {
              pages += r.pages;
              if (r.kind == alloc::RunDump::Kind::kFree) free_pages += r.pages;
            }
            if (pages != kChunk / 4096 || free_pages != c.free_pages) what = "Dump: runs do not tile a chunk";
          }
          dumps++;
        }
        if (snapshots % 256 == 0) {
          arena.Trim();
          trims++;
        }
        if (!what.empty() && snapshot_errors++ == 0) snapshot_error = what;
      }
    });
    std::vector<std::thread> workers;
    for (int i = 0; i < kWorkers; i++) {
      workers.emplace_back([&, i] {
        Worker(&arena, i, ops, &results[i]);
        running--;
      });
    }
    for (std::thread& t : workers) t.join();
    reader.join();

    uint64_t allocs = 0, frees = 0;
    for (const WorkerResult& r : results) {
      CHECK_MSG(r.errors == 0, r.first_error + " (" + std::to_string(r.errors) + " errors)");
      allocs += r.allocs;
      frees += r.frees;
    }
    CHECK_MSG(snapshot_errors == 0, "a GetStats snapshot was inconsistent: " + snapshot_error);
    CHECK_GT(snapshots, uint64_t{0});
    alloc::Stats s = arena.GetStats();
    CHECK_EQ(s.total_allocations, allocs);
    CHECK_EQ(s.total_frees, frees);
    CHECK_EQ(s.live_allocations, uint64_t{0});
    CHECK_EQ(s.used_bytes, size_t{0});
    CHECK_EQ(s.huge_allocations, uint64_t{0});
    std::printf("  %llu allocations, %llu stats snapshots, %llu dumps, %llu trims\n",
                (unsigned long long)allocs, (unsigned long long)snapshots,
                (unsigned long long)dumps, (unsigned long long)trims);
  }
  CHECK_EQ(src.live_segments(), size_t{0});
  CHECK_EQ(src.bad_releases, uint64_t{0});
  CHECK_EQ(src.bad_discards, uint64_t{0});
}

TEST("4 threads retaining and releasing one allocation leave its count at 1") {
  test::MapSource src;
  alloc::Arena arena(alloc::ArenaOptions(), &src);
  alloc::Handle h;
  alloc::SourceError err;
  if (!CHECK(arena.Alloc(100, false, 7, &h, &err) == Status::kOk)) return;
  const alloc::Arena::Ref ref{h.segment, h.offset, 100, 7};
  std::vector<std::thread> ts;
  std::atomic<long> errors{0};
  for (int i = 0; i < kWorkers; i++) {
    ts.emplace_back([&] {
      for (int k = 0; k < 5000; k++) {
        uint32_t n = 0;
        if (arena.Retain(ref, &n) != Status::kOk || n < 2) errors++;
        if (arena.Release(ref, &n) != Status::kOk || n < 1) errors++;
      }
    });
  }
  for (std::thread& t : ts) t.join();
  CHECK_EQ(errors.load(), 0L);
  uint32_t n = 0;
  CHECK_EQ(arena.RefCount(ref, &n), Status::kOk);
  CHECK_EQ(n, 1u);
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
