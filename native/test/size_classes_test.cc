// Size classes (native/alloc/size_classes.h): ClassIndex / ClassSize at every
// boundary, the rounding bound, and slab geometry at 4, 16 and 64 KiB pages.
#include "alloc/size_classes.h"

#include <cstdint>
#include <string>

#include "check.h"

using namespace mmap_pool::alloc;

namespace {
constexpr size_t kGiB = size_t{1} << 30;

// Number of classes whose size is at most 1 GiB.
uint32_t ClassesUpTo(size_t limit) {
  uint32_t n = 0;
  while (ClassSize(n) <= limit) n++;
  return n;
}

std::string At(size_t s) { return "size " + std::to_string(s); }
}  // namespace

TEST("Log2Floor is floor(log2(x)) at and around every power of two") {
  CHECK_EQ(Log2Floor(1), 0u);
  for (uint32_t k = 1; k < 64; k++) {
    uint64_t p = uint64_t{1} << k;
    CHECK_EQ(Log2Floor(p), k);
    CHECK_EQ(Log2Floor(p - 1), k - 1);
    if (k < 63) CHECK_EQ(Log2Floor(p + 1), k);
  }
  CHECK_EQ(Log2Floor(UINT64_MAX), 63u);
}

TEST("ClassIndex and ClassSize agree with the table at the quantum and first groups") {
  struct Case { size_t size; uint32_t index; size_t class_size; };
  const Case cases[] = {
      {0, 0, 16},   {1, 0, 16},    {16, 0, 16},   {17, 1, 32},   {32, 1, 32},
      {33, 2, 48},  {48, 2, 48},   {49, 3, 64},   {64, 3, 64},   {65, 4, 80},
      {80, 4, 80},  {81, 5, 96},   {96, 5, 96},   {97, 6, 112},  {112, 6, 112},
      {113, 7, 128}, {128, 7, 128}, {129, 8, 160}, {160, 8, 160}, {161, 9, 192},
      {256, 11, 256}, {257, 12, 320},
  };
  for (const Case& c : cases) {
    CHECK_MSG(ClassIndex(c.size) == c.index, At(c.size) + " -> index " +
                                                 std::to_string(ClassIndex(c.size)));
    CHECK_EQ(ClassSize(c.index), c.class_size);
  }
}

TEST("class 38 is 28672 bytes, the last small class (kSmallMax)") {
  CHECK_EQ(ClassSize(38), size_t{28672});
  CHECK_EQ(ClassSize(kSmallClasses - 1), kSmallMax);
  CHECK_EQ(ClassIndex(kSmallMax), kSmallClasses - 1);
  CHECK_EQ(ClassIndex(kSmallMax + 1), kSmallClasses);
  CHECK(IsSmallClass(kSmallClasses - 1));
  CHECK(!IsSmallClass(kSmallClasses));
  CHECK_EQ(ClassSize(36), size_t{20480});
  CHECK_EQ(ClassSize(37), size_t{24576});
  CHECK_EQ(ClassSize(39), size_t{32768});
}

TEST("every class size maps to its own index and class size + 1 to the next, up to 1 GiB") {
  const uint32_t n = ClassesUpTo(kGiB);
  CHECK_EQ(ClassSize(n - 1), kGiB);  // 1 GiB is itself a class (a power of two)
  CHECK_LT(n, kMaxClasses);
  long bad = 0;
  for (uint32_t i = 0; i < n; i++) {
    const size_t cs = ClassSize(i);
    if (ClassIndex(cs) != i) bad += !CHECK_MSG(false, At(cs) + " is not its own class");
    if (ClassIndex(cs + 1) != i + 1) bad += !CHECK_MSG(false, At(cs + 1) + " is not in the next class");
    if (i > 0 && ClassIndex(ClassSize(i - 1) + 1) != i) bad++;
    if (cs % kQuantum != 0) bad++;
  }
  CHECK_EQ(bad, 0L);
}

TEST("class sizes strictly increase and ClassIndex never decreases") {
  const uint32_t n = ClassesUpTo(kGiB);
  long bad = 0;
  for (uint32_t i = 1; i < n; i++) bad += ClassSize(i) <= ClassSize(i - 1);
  CHECK_EQ(bad, 0L);
  // Every size up to 1 MiB, then both sides of every class boundary beyond.
  uint32_t prev = ClassIndex(0);
  bad = 0;
  for (size_t s = 1; s <= (size_t{1} << 20); s++) {
    uint32_t idx = ClassIndex(s);
    bad += idx < prev || idx > prev + 1;
    prev = idx;
  }
  CHECK_EQ(bad, 0L);
  bad = 0;
  for (uint32_t i = 1; i < n; i++) {
    size_t cs = ClassSize(i);
    bad += ClassIndex(cs - 1) > ClassIndex(cs) || ClassIndex(cs) > ClassIndex(cs + 1);
  }
  CHECK_EQ(bad, 0L);
}

TEST("rounding up to a class wastes less than 25% + 16 bytes") {
  // ClassSize(ClassIndex(s)) >= s and < 1.25 s + 16, in integers:
  // 4 * cs < 5 * s + 64. Size 0 rounds to one quantum (= the bound).
  CHECK_EQ(ClassSize(ClassIndex(0)), kQuantum);
  long bad = 0;
  auto check = [&](size_t s) {
    size_t cs = ClassSize(ClassIndex(s));
    if (cs < s || 4 * cs >= 5 * s + 64) {
      bad++;
      CHECK_MSG(false, At(s) + " rounds to " + std::to_string(cs));
    }
  };
  for (size_t s = 1; s <= (size_t{1} << 20); s++) check(s);
  const uint32_t n = ClassesUpTo(kGiB);
  for (uint32_t i = 0; i < n; i++) {
    size_t cs = ClassSize(i);
    check(cs - 1);
    check(cs);
    if (cs < kGiB) check(cs + 1);
  }
  CHECK_EQ(bad, 0L);
}

TEST("sizes up to 2^36 stay below kMaxClasses") {
  CHECK_LT(ClassIndex(size_t{1} << 36), kMaxClasses);
}

TEST("SlabPages gives 1..32 pages with 4..65535 slots for every small class at 4, 16, 64 KiB pages") {
  for (size_t ps : {size_t{4096}, size_t{16384}, size_t{65536}}) {
    for (uint32_t c = 0; c < kSmallClasses; c++) {
      const uint32_t pages = SlabPages(c, ps);
      const size_t bytes = pages * ps;
      const size_t slots = bytes / ClassSize(c);
      const std::string where = "class " + std::to_string(c) + " (" +
                                std::to_string(ClassSize(c)) + " B) at page " +
                                std::to_string(ps) + ": " + std::to_string(pages) +
                                " pages, " + std::to_string(slots) + " slots";
      CHECK_MSG(pages >= 1 && pages <= 32, where);
      CHECK_MSG(slots >= 4, where);
      CHECK_MSG(slots <= 65535, where);  // slot indices and requests are uint16_t
      // The header's promise: when the result wastes under 1/64, no smaller
      // slab would have done (>= 4 slots and waste <= 1/64).
      const size_t waste = bytes - slots * ClassSize(c);
      if (slots >= 4 && waste * 64 <= bytes) {
        for (uint32_t fewer = 1; fewer < pages; fewer++) {
          size_t b = fewer * ps, n = b / ClassSize(c);
          CHECK_MSG(!(n >= 4 && (b - n * ClassSize(c)) * 64 <= b),
                    where + ": " + std::to_string(fewer) + " pages would do");
        }
      }
    }
  }
}

TEST("SlabPages capped at a chunk's pages stays within the cap and holds a slot") {
  // The arena passes chunkSize / pageSize, so a slab always fits a chunk; the
  // smallest chunk the pool allows is 64 KiB.
  long bad = 0;
  for (size_t ps : {size_t{4096}, size_t{16384}, size_t{65536}}) {
    for (size_t chunk = 65536; chunk <= (size_t{4} << 20); chunk *= 2) {
      if (chunk < ps) continue;
      const uint32_t max_pages = static_cast<uint32_t>(chunk / ps);
      for (uint32_t c = 0; c < kSmallClasses; c++) {
        const uint32_t pages = SlabPages(c, ps, max_pages);
        const size_t slots = pages * ps / ClassSize(c);
        if (pages < 1 || pages > max_pages || pages > 32 || slots < 1 || slots > 65535) {
          bad++;
          CHECK_MSG(false, "class " + std::to_string(c) + ", page " + std::to_string(ps) + ", chunk " +
                               std::to_string(chunk) + ": " + std::to_string(pages) + " pages, " +
                               std::to_string(slots) + " slots");
        }
        // Where the cap does not bind, it changes nothing.
        if (SlabPages(c, ps) <= max_pages && pages != SlabPages(c, ps)) bad++;
      }
    }
  }
  CHECK_EQ(bad, 0L);
  CHECK_EQ(SlabPages(38, 4096, 16), 7u);  // 28 KiB in a 64 KiB chunk: one slot, no waste
  CHECK_EQ(SlabPages(36, 4096, 16), 5u);  // 20 KiB: likewise
}

TEST("SlabPages picks one page for the quantum class and 28 pages for 28 KiB at 4 KiB pages") {
  CHECK_EQ(SlabPages(0, 4096), 1u);
  CHECK_EQ(SlabPages(2, 4096), 1u);   // 48 B: 85 slots, 16 B waste (< 1/64)
  CHECK_EQ(SlabPages(38, 4096), 28u); // 4 x 28 KiB, no waste
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
