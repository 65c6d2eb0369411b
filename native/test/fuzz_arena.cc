// libFuzzer harness for the Arena: the input bytes are decoded into a pool
// shape and a sequence of operations, each applied to the Arena and to the
// reference model in arena_model.h, which checks it exactly (statuses,
// placement, no overlap, zero-fill, patterns, Stats, the dump). Any mismatch
// prints what disagreed and abort()s, so libFuzzer reports it as a crash.
//
// Input layout:
//   byte 0          pool shape (kShapes below: 64 KiB chunks with a 16 KiB
//                   huge threshold so huge paths are reached; large runs; 16
//                   and 64 KiB pages; file backing; tight maxBytes; threshold
//                   0; secure (zero on free, guarded huge); the JS minimum)
//   then per op     one opcode byte c, then its operands:
//     c % 16 0..6   alloc; 3 size bytes (little endian); the size range
//                   depends on c % 16; bit 4 = zero-fill; bits 5..7 all set =
//                   the source refuses this call's acquisition; c % 16 in
//                   {2, 4, 5} reads one more byte a: align = 1 << (a % 18)
//                   (up to 128 KiB, past every page size), 0 when a >= 0x80
//     c % 16 7..10  free live allocation #byte
//     c % 16 11     bit 4 ? retain : release, of live allocation #byte
//     c % 16 12     a call the arena must refuse (kind (c >> 4) % 7, see
//                   ArenaModel::BadFree), on live allocation #byte
//     c % 16 13     trim
//     c % 16 14     c >> 4 == 15: reset
//                   c >> 4 == 1 (0x1E): the source's Recycle turns on / off
//                   (MapSource::recycle_enabled, off at the start): while on,
//                   freed huge mappings are kept as spares, which the model
//                   predicts (kept, reused, evicted, given back for room)
//                   c >> 4 == 2 (0x2E): decay the spares (Arena::Decay)
//                   otherwise a full check
//     c % 16 15     full check (patterns, dump)
// (0x1E and 0x2E were full checks before spares existed; no committed
// corpus input uses them, so every older input decodes as it did.)
// Missing operand bytes read as 0. At most kMaxOps ops run per input, and
// while more than kMaxLiveBytes are live an alloc opcode frees instead.
//
// The model is strict: kExhausted although MakeRoom made room (a fixed bug,
// regression_test.cc) is a crash too.
//
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined), and
// without libFuzzer as fuzz_arena_replay (fuzz_replay_main.cc), which runs the
// committed corpus in every test run.
//
// Threads: single-threaded, like libFuzzer's default.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "alloc/arena.h"
#include "arena_model.h"
#include "test_sources.h"

using namespace mmap_pool;

namespace {

constexpr size_t kMaxOps = 4000;
constexpr size_t kMaxLiveBytes = size_t{64} << 20;  // beyond this, allocs turn into frees

struct Shape {
  size_t page, chunk, huge, max;
  platform::Backing backing;
  bool secure = false;  // zero_on_free, and huge mappings with a guard page
};

const Shape kShapes[] = {
    {4096, 64 << 10, 16 << 10, SIZE_MAX, platform::Backing::kAnonymous},   // huge paths
    {4096, 256 << 10, 128 << 10, SIZE_MAX, platform::Backing::kAnonymous}, // large runs
    {16384, 128 << 10, 64 << 10, 512 << 10, platform::Backing::kAnonymous},// 16 KiB pages, cap
    {4096, 128 << 10, 32 << 10, 256 << 10, platform::Backing::kAnonymous}, // tight cap
    {65536, 512 << 10, 256 << 10, SIZE_MAX, platform::Backing::kFile},     // 64 KiB pages, file
    {4096, 64 << 10, 0, SIZE_MAX, platform::Backing::kAnonymous},          // everything huge
    {4096, 128 << 10, 32 << 10, SIZE_MAX, platform::Backing::kAnonymous, true},  // secure
    {4096, 64 << 10, 64 << 10, 192 << 10, platform::Backing::kAnonymous},  // JS minimum chunk
    {65536, 64 << 10, 64 << 10, SIZE_MAX, platform::Backing::kAnonymous},  // one-page chunks
};
constexpr size_t kShapes_n = sizeof kShapes / sizeof kShapes[0];

struct Reader {
  const uint8_t* p;
  size_t n, i = 0;
  bool done() const { return i >= n; }
  uint8_t Byte() { return i < n ? p[i++] : 0; }
  uint32_t U24() {
    uint32_t v = Byte();
    v |= uint32_t{Byte()} << 8;
    return v | uint32_t{Byte()} << 16;
  }
};

[[noreturn]] void Mismatch(const test::ArenaModel& model, size_t shape) {
  std::fprintf(stderr, "fuzz_arena: model mismatch (shape %zu): %s\n", shape, model.error().c_str());
  std::fflush(stderr);
  std::abort();
}

size_t SizeFor(uint8_t k, uint32_t v, const Shape& s) {
  const size_t small = s.huge < alloc::kSmallMax ? s.huge : alloc::kSmallMax;
  switch (k) {
    case 0: case 1: case 2: return v % 257;
    case 3: case 4: return v % (small + 1);
    case 5: return v % (s.huge + 1);
    default: return s.huge + 1 + v % (s.huge / 2 + 4096);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Reader in{data, size};
  const size_t shape_index = in.Byte() % kShapes_n;
  const Shape& shape = kShapes[shape_index];
  alloc::ArenaOptions opt;
  opt.page_size = shape.page;
  opt.chunk_size = shape.chunk;
  opt.huge_threshold = shape.huge;
  opt.max_bytes = shape.max;
  opt.zero_on_free = shape.secure;

  test::MapSource source(shape.backing, test::TempDir());
  source.guard_huge = shape.secure;
  {
    alloc::Arena arena(opt, &source);
    test::ArenaModel model(&arena, &source, opt);
    model.tolerate_exhausted_with_room = false;
    for (size_t op = 0; op < kMaxOps && !in.done(); op++) {
      const uint8_t c = in.Byte();
      const uint8_t k = c % 16;
      bool ok = true;
      if (k <= 6 && model.used() > kMaxLiveBytes) {
        ok = model.Free(c);  // keep the input's memory bounded (libFuzzer's -rss_limit_mb)
      } else if (k <= 6) {
        const size_t n = SizeFor(k, in.U24(), shape);
        size_t align = 0;
        if (k == 2 || k == 4 || k == 5) {
          const uint8_t a = in.Byte();
          align = a >= 0x80 ? 0 : size_t{1} << (a % 18);
        }
        ok = model.Alloc(n, (c & 0x10) != 0, (c & 0xE0) == 0xE0, align);
      } else if (k <= 10) {
        ok = model.Free(in.Byte());
      } else if (k == 11) {
        ok = model.RetainOrRelease(in.Byte(), (c & 0x10) != 0);
      } else if (k == 12) {
        ok = model.BadFree(in.Byte(), (c >> 4) % 7);
      } else if (k == 13) {
        ok = model.Trim();
      } else if (k == 14 && (c >> 4) == 15) {
        ok = model.Reset();
      } else if (c == 0x1E) {
        source.recycle_enabled = !source.recycle_enabled;
      } else if (c == 0x2E) {
        ok = model.Decay();
      } else {
        ok = model.CheckAll();
      }
      if (!ok) Mismatch(model, shape_index);
    }
    if (!model.CheckAll() || !model.Close()) Mismatch(model, shape_index);
  }
  return 0;
}
