// Shared pools without Node (native/addon/shared_pool.h): two "environments"
// on two threads attached to one SharedPool, as two worker threads are.
// Each environment pins the segments it shows (as its ArrayBuffers would),
// allocates, fills a pattern, shares the allocation to the other and lets
// go of its own reference; the other adopts it, checks the pattern and
// frees it. Meanwhile segments come and go (huge allocations), so Pin races
// Release. Run under ASan (a segment never unmapped or deleted is a leak
// report) and TSan (scripts/test-native.sh).
//
// The per-thread caches' native side too: blocks under each member's cache
// serial, refilled and given back from two threads, freed by the member's
// Leave; a cached block renamed when shared (Rename); reset sparing other
// members' caches; and the members' figures summed.
//
// Threads: the two environments and a stats reader share the pool; each
// environment's queue has a mutex of its own.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "addon/shared_pool.h"
#include "check.h"

using namespace mmap_pool;
using addon::SharedPool;
using addon::SharedSegment;
using alloc::Status;

namespace {

constexpr size_t kChunk = 256 * 1024;

addon::SharedPoolOptions Options() {
  addon::SharedPoolOptions o;
  o.arena.chunk_size = kChunk;
  o.arena.huge_threshold = 64 * 1024;
  o.arena.page_size = 4096;
  o.description = "{}";
  return o;
}

uint8_t PatternAt(uint64_t seed, size_t i) { return static_cast<uint8_t>(seed * 131 + i * 31 + (i >> 8)); }

struct Rng {
  uint64_t s;
  uint64_t Below(uint64_t n) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s % n;
  }
};

struct Shared {
  uint64_t id;
  uint64_t check;
  uint64_t seed;
};

struct Queue {
  std::mutex mu;
  std::deque<Shared> items;
  void Push(const Shared& s) {
    std::lock_guard<std::mutex> lock(mu);
    items.push_back(s);
  }
  bool Pop(Shared* s) {
    std::lock_guard<std::mutex> lock(mu);
    if (items.empty()) return false;
    *s = items.front();
    items.pop_front();
    return true;
  }
};

// The bytes of a live allocation, through a pin of its segment (as an
// environment's ArrayBuffer holds one); nullptr if the segment is gone.
uint8_t* Bytes(SharedPool& pool, const alloc::Arena::Ref& ref, SharedSegment** pinned) {
  *pinned = pool.Pin(ref.segment);
  return *pinned == nullptr ? nullptr : (*pinned)->base + ref.offset;
}

// Writes a deferred free into a member's batch, as lib/native/free-batch.ts does.
void Defer(addon::Figures* f, const alloc::Arena::Ref& r) {
  double* e = f->v + addon::kFreeEntries + 4 * static_cast<size_t>(f->v[addon::kFreeBatch]);
  e[0] = r.segment;
  e[1] = static_cast<double>(r.offset);
  e[2] = static_cast<double>(r.length);
  e[3] = static_cast<double>(r.serial);
  f->v[addon::kFreeBatch] += 1;
}

// One environment: `rounds` allocations shared to `out`, and whatever
// arrives on `in` adopted, checked and freed: the small ones by batches of
// deferred frees (each adopted as the only reference), as a thread's JS does.
void Environment(std::shared_ptr<SharedPool> pool, Queue* in, Queue* out, uint64_t seed, int rounds,
                 std::atomic<int>* done) {
  Rng rng{seed};
  std::shared_ptr<addon::Figures> figures;
  const uint64_t member = pool->Join(&figures);
  std::vector<SharedSegment*> views;  // pins kept for a while, as ArrayBuffers are
  auto take_in = [&]() {
    Shared s;
    while (in->Pop(&s)) {
      alloc::Arena::Ref ref{};
      uint32_t refs = 0;
      Status st = pool->Adopt(s.id, s.check, &ref, &refs);
      CHECK_EQ(st, Status::kOk);
      CHECK_EQ(refs, 1u);  // the sender released its own
      if (st != Status::kOk) continue;
      CHECK_EQ(pool->Adopt(s.id, s.check, &ref), Status::kDoubleFree);
      SharedSegment* pin = nullptr;
      uint8_t* p = Bytes(*pool, ref, &pin);
      CHECK(p != nullptr);
      if (p != nullptr) {
        size_t bad = ref.length;
        for (size_t i = 0; i < ref.length; i++) {
          if (p[i] != PatternAt(s.seed, i)) {
            bad = i;
            break;
          }
        }
        CHECK_EQ(bad, ref.length);
        views.push_back(pin);
      }
      if (ref.length < 100 * 1024) {
        Defer(figures.get(), ref);
        if (figures->v[addon::kFreeBatch] == addon::Figures::kBatchMax) CHECK_EQ(pool->DrainFrees(figures.get()), 0u);
      } else {
        CHECK(pool->arena().Free(ref) >= Status::kOk);
      }
    }
  };
  for (int n = 0; n < rounds; n++) {
    size_t size = rng.Below(50) == 0 ? 100 * 1024 + rng.Below(100000) : 1 + rng.Below(3000);
    uint64_t serial = pool->TakeSerials(1);
    alloc::Handle h;
    alloc::SourceError err;
    CHECK_EQ(pool->arena().Alloc(size, false, serial, &h, &err), Status::kOk);
    alloc::Arena::Ref ref{h.segment, h.offset, size, serial};
    SharedSegment* pin = nullptr;
    uint8_t* p = Bytes(*pool, ref, &pin);
    CHECK(p != nullptr);
    if (p == nullptr) continue;
    for (size_t i = 0; i < size; i++) p[i] = PatternAt(serial, i);
    Shared s{0, 0, serial};
    CHECK_EQ(pool->Share(ref, &s.id, &s.check), Status::kOk);
    uint32_t count = 0;
    CHECK_EQ(pool->arena().Release(ref, &count), Status::kOk);
    CHECK_EQ(count, 1u);
    out->Push(s);
    views.push_back(pin);
    // Views die now and then, in another order than they were made.
    if (views.size() > 16) {
      size_t i = rng.Below(views.size());
      views[i]->Unref();
      views[i] = views.back();
      views.pop_back();
    }
    take_in();
  }
  done->fetch_add(1);
  while (done->load() < 2) {
    take_in();
    std::this_thread::yield();
  }
  take_in();
  CHECK_EQ(pool->DrainFrees(figures.get()), 0u);
  pool->Leave(member, true);
  for (SharedSegment* v : views) v->Unref();
  pool->Detach();
}

}  // namespace

TEST("two environments on two threads hand allocations across; the last detach gives everything back") {
  std::shared_ptr<SharedPool> a = SharedPool::Create(Options());
  Status st = Status::kOk;
  std::shared_ptr<SharedPool> b = SharedPool::Attach(a->id(), a->token(), &st);
  CHECK_EQ(st, Status::kOk);
  CHECK(b == a);
  CHECK_EQ(a->attachments(), 2u);
  Queue to_a, to_b;
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      alloc::Stats s = a->arena().GetStats();
      CHECK(s.live_allocations <= s.total_allocations);
      std::this_thread::yield();
    }
  });
  std::thread ta(Environment, a, &to_a, &to_b, 1, 3000, &done);
  std::thread tb(Environment, b, &to_b, &to_a, 2, 3000, &done);
  ta.join();
  tb.join();
  stop.store(true);
  reader.join();
  CHECK_EQ(a->attachments(), 0u);
  CHECK_EQ(a->arena().GetStats().live_allocations, 0u);
  std::shared_ptr<SharedPool> late = SharedPool::Attach(a->id(), a->token(), &st);
  CHECK(late == nullptr);
  CHECK_EQ(st, Status::kClosed);
}

TEST("attach with a wrong token or an unknown id: kForeign") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  Status st = Status::kOk;
  CHECK(SharedPool::Attach(p->id(), p->token() ^ 1, &st) == nullptr);
  CHECK_EQ(st, Status::kForeign);
  CHECK(SharedPool::Attach(p->id() + 1000000, p->token(), &st) == nullptr);
  CHECK_EQ(st, Status::kForeign);
  p->Detach();
  CHECK(SharedPool::Attach(p->id(), p->token() ^ 1, &st) == nullptr);
  CHECK_EQ(st, Status::kForeign);
}

TEST("adopt: once, never a forged share, never a freed allocation") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  alloc::Handle h;
  alloc::SourceError err;
  uint64_t serial = p->TakeSerials(2);
  CHECK_EQ(p->arena().Alloc(100, true, serial, &h, &err), Status::kOk);
  alloc::Arena::Ref ref{h.segment, h.offset, 100, serial};
  uint64_t id = 0, check = 0;
  CHECK_EQ(p->Share(ref, &id, &check), Status::kOk);
  alloc::Arena::Ref out{};
  CHECK_EQ(p->Adopt(id, check ^ 1, &out), Status::kForeign);
  CHECK_EQ(p->Adopt(id + 1, check, &out), Status::kForeign);
  CHECK_EQ(p->Adopt(id, check, &out), Status::kOk);
  CHECK_EQ(out.serial, serial);
  CHECK_EQ(p->Adopt(id, check, &out), Status::kDoubleFree);
  // Stale: shared, then freed (whatever its count), then the slot reused.
  CHECK_EQ(p->Share(ref, &id, &check), Status::kOk);
  CHECK_EQ(p->arena().Free(ref), Status::kOk);
  CHECK_EQ(p->arena().Alloc(100, true, serial + 1, &h, &err), Status::kOk);
  CHECK_EQ(p->Adopt(id, check, &out), Status::kDoubleFree);
  CHECK_EQ(p->arena().Free({h.segment, h.offset, 100, serial + 1}), Status::kOk);
  p->Detach();
}

TEST("a segment released while another environment pins it is retired: readable zeros until the last unref") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  alloc::Handle h;
  alloc::SourceError err;
  uint64_t serial = p->TakeSerials(1);
  CHECK_EQ(p->arena().Alloc(200 * 1024, false, serial, &h, &err), Status::kOk);  // huge: a segment of its own
  SharedSegment* pin = p->Pin(h.segment);
  CHECK(pin != nullptr);
  if (pin == nullptr) return;
  std::memset(pin->base, 0x5a, 200 * 1024);
  std::thread other([&] { CHECK_EQ(p->arena().Free({h.segment, h.offset, 200 * 1024, serial}), Status::kSegmentReleased); });
  other.join();
  CHECK(pin->released.load());
  CHECK(p->Pin(h.segment) == nullptr);
  CHECK_EQ(pin->base[0], 0);
  CHECK_EQ(pin->base[200 * 1024 - 1], 0);
  pin->base[5] = 1;  // still mapped, and nobody else's
  pin->Unref();
  p->Detach();
}

TEST("Pin races Release: a pinned segment is always the live one of its id, or none") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int n = 0; n < 3000; n++) {
      alloc::Handle h;
      alloc::SourceError err;
      uint64_t serial = p->TakeSerials(1);
      size_t size = 100 * 1024 + (n % 3) * 4096;
      CHECK_EQ(p->arena().Alloc(size, false, serial, &h, &err), Status::kOk);
      CHECK(p->arena().Free({h.segment, h.offset, size, serial}) >= Status::kOk);
    }
    stop.store(true);
  });
  long pinned = 0;
  while (!stop.load()) {
    SharedSegment* s = p->Pin(0);
    if (s == nullptr) continue;
    pinned++;
    volatile uint8_t x = s->base[s->size - 1];  // mapped, whatever happened since
    (void)x;
    s->Unref();
  }
  churn.join();
  CHECK(pinned >= 0);
  p->Detach();
}

// One thread's block cache, as SharedPoolWrap runs it: batches of blocks
// under the member's cache serial, half of them given back, again and again.
void CacheChurn(SharedPool* pool, uint64_t serial, size_t size, int rounds, std::vector<alloc::Arena::Ref>* kept) {
  std::vector<alloc::Arena::Ref> held;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < 16; i++) {
      alloc::Handle h;
      alloc::SourceError err;
      CHECK_EQ(pool->arena().Alloc(size, false, serial, &h, &err), Status::kOk);
      held.push_back({h.segment, h.offset, size, serial});
    }
    while (held.size() > 8) {
      CHECK_EQ(pool->arena().Free(held.back()), Status::kOk);
      held.pop_back();
    }
  }
  *kept = held;
}

TEST("per-thread caches: batches under each member's cache serial from two threads; a member's Leave frees its blocks only") {
  std::shared_ptr<SharedPool> a = SharedPool::Create(Options());
  Status st = Status::kOk;
  std::shared_ptr<SharedPool> b = SharedPool::Attach(a->id(), a->token(), &st);
  std::shared_ptr<addon::Figures> fa, fb;
  uint64_t ma = a->Join(&fa), mb = b->Join(&fb);
  uint64_t sa = a->OpenCache(ma), sb = b->OpenCache(mb);
  CHECK(sa != 0 && sb != 0 && sa != sb);
  std::vector<alloc::Arena::Ref> ka, kb;
  std::thread ta(CacheChurn, a.get(), sa, 48, 500, &ka);
  std::thread tb(CacheChurn, b.get(), sb, 4096, 500, &kb);
  ta.join();
  tb.join();
  CHECK_EQ(a->arena().GetStats().live_allocations, 16u);
  // a leaves on its thread while b's blocks stay live and usable.
  std::thread leave([&] {
    a->Leave(ma, true);
    a->Detach();
  });
  leave.join();
  CHECK_EQ(b->arena().GetStats().live_allocations, 8u);
  for (const auto& r : ka) CHECK_EQ(b->arena().Free(r), Status::kDoubleFree);
  uint32_t count = 0;
  for (const auto& r : kb) CHECK_EQ(b->arena().RefCount(r, &count), Status::kOk);
  b->Leave(mb, true);
  CHECK_EQ(b->arena().GetStats().live_allocations, 0u);
  b->Detach();
}

TEST("Rename: a shared cached block leaves its cache: it survives the cache's Leave and frees under its new serial") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  std::shared_ptr<addon::Figures> f;
  uint64_t m = p->Join(&f);
  uint64_t cache = p->OpenCache(m);
  alloc::Handle h;
  alloc::SourceError err;
  CHECK_EQ(p->arena().Alloc(64, false, cache, &h, &err), Status::kOk);
  uint64_t serial = p->TakeSerials(1);
  alloc::Arena::Ref as_cached{h.segment, h.offset, 64, cache};
  CHECK_EQ(p->arena().Rename(as_cached, serial, 65, 1), Status::kTooLarge);
  CHECK_EQ(p->arena().Rename(as_cached, serial, 50, 2), Status::kOk);
  CHECK_EQ(p->arena().Free(as_cached), Status::kDoubleFree);  // the cache's name is stale now
  alloc::Arena::Ref ref{h.segment, h.offset, 50, serial};
  uint32_t count = 0;
  CHECK_EQ(p->arena().RefCount(ref, &count), Status::kOk);
  CHECK_EQ(count, 2u);
  CHECK_EQ(p->arena().GetStats().used_bytes, 50u);
  p->Leave(m, true);
  CHECK_EQ(p->arena().RefCount(ref, &count), Status::kOk);
  std::thread t([&] {
    CHECK_EQ(p->arena().Release(ref, &count), Status::kOk);
    CHECK_EQ(p->arena().Release(ref, &count), Status::kOk);
    CHECK_EQ(count, 0u);
  });
  t.join();
  CHECK_EQ(p->arena().GetStats().live_allocations, 0u);
  p->Detach();
}

TEST("ResetExcept frees everything but the other members' cached blocks; Sum adds every member's figures and a leaver's") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  Status st = Status::kOk;
  std::shared_ptr<SharedPool> q = SharedPool::Attach(p->id(), p->token(), &st);
  std::shared_ptr<addon::Figures> fa, fb;
  uint64_t ma = p->Join(&fa), mb = q->Join(&fb);
  uint64_t sa = p->OpenCache(ma), sb = q->OpenCache(mb);
  alloc::Handle h;
  alloc::SourceError err;
  std::vector<alloc::Arena::Ref> mine, theirs;
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(p->arena().Alloc(100, false, sa, &h, &err), Status::kOk);
    mine.push_back({h.segment, h.offset, 100, sa});
    CHECK_EQ(q->arena().Alloc(100, false, sb, &h, &err), Status::kOk);
    theirs.push_back({h.segment, h.offset, 100, sb});
    CHECK_EQ(q->arena().Alloc(3000, false, p->TakeSerials(1), &h, &err), Status::kOk);
  }
  // b's counts: 3 handed out from its cache (300 bytes), 5 others (15000 bytes).
  fb->v[addon::kCacheFigures + addon::kAllocs] = 3;
  fb->v[addon::kCacheFigures + addon::kUsed] = 300;
  fb->v[addon::kOtherFigures + addon::kAllocs] = 5;
  fb->v[addon::kOtherFigures + addon::kUsed] = 15000;
  addon::Totals t = p->Sum();
  CHECK_EQ(t.allocs, 8.0);
  CHECK_EQ(t.used, 15300.0);
  p->ResetExcept(ma);
  CHECK_EQ(p->arena().GetStats().live_allocations, 5u);
  for (const auto& r : mine) CHECK_EQ(p->arena().Free(r), Status::kDoubleFree);
  uint32_t count = 0;
  for (const auto& r : theirs) CHECK_EQ(q->arena().RefCount(r, &count), Status::kOk);
  t = p->Sum();
  CHECK_EQ(t.allocs - t.frees, 3.0);  // b's others went with the reset
  CHECK_EQ(t.used, 300.0);
  q->Leave(mb, true);  // its 3 handed-out blocks end freed with its cache
  t = p->Sum();
  CHECK_EQ(t.allocs - t.frees, 0.0);
  CHECK_EQ(t.used, 0.0);
  CHECK_EQ(t.peak, 15300.0);
  CHECK_EQ(p->arena().GetStats().live_allocations, 0u);
  q->Detach();
  p->Leave(ma, true);
  p->Detach();
}

TEST("DrainFrees: a batch freed in one go; a stale entry refused and counted back; after a reset, none reported") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  Status st = Status::kOk;
  std::shared_ptr<SharedPool> q = SharedPool::Attach(p->id(), p->token(), &st);
  std::shared_ptr<addon::Figures> fa, fb;
  uint64_t ma = p->Join(&fa), mb = q->Join(&fb);
  alloc::Handle h;
  alloc::SourceError err;
  std::vector<alloc::Arena::Ref> refs;
  for (int i = 0; i < 6; i++) {
    uint64_t serial = p->TakeSerials(1);
    CHECK_EQ(p->arena().Alloc(500, false, serial, &h, &err), Status::kOk);
    refs.push_back({h.segment, h.offset, 500, serial});
  }
  // b holds all six (counted as its own), frees three by batch: counted at once, as its JS does.
  fb->v[addon::kOtherFigures + addon::kAllocs] = 6;
  fb->v[addon::kOtherFigures + addon::kUsed] = 3000;
  for (int i = 0; i < 3; i++) Defer(fb.get(), refs[i]);
  fb->v[addon::kOtherFigures + addon::kFrees] = 3;
  fb->v[addon::kOtherFigures + addon::kUsed] = 1500;
  CHECK_EQ(p->arena().GetStats().live_allocations, 6u);
  // One was freed first through another view (a double free): refused, counted back, reported.
  CHECK_EQ(p->arena().Free(refs[2]), Status::kOk);
  CHECK_EQ(q->DrainFrees(fb.get()), 1u);
  CHECK_EQ(fb->v[addon::kFreeBatch], 0.0);
  CHECK_EQ(fb->v[addon::kOtherFigures + addon::kFrees], 2.0);
  CHECK_EQ(fb->v[addon::kOtherFigures + addon::kUsed], 2000.0);
  CHECK_EQ(p->arena().GetStats().live_allocations, 3u);
  CHECK_EQ(q->DrainFrees(fb.get()), 0u);  // nothing waits: nothing happens
  // Two more deferred, then a reset by a: counted by the reset as b's
  // outstanding, refused when b's batch goes back, and not reported.
  for (int i = 3; i < 5; i++) Defer(fb.get(), refs[i]);
  fb->v[addon::kOtherFigures + addon::kFrees] = 4;
  fb->v[addon::kOtherFigures + addon::kUsed] = 500;
  p->ResetExcept(ma);
  CHECK_EQ(p->arena().GetStats().live_allocations, 0u);
  CHECK_EQ(q->DrainFrees(fb.get()), 0u);
  addon::Totals t = p->Sum();
  CHECK_EQ(t.allocs - t.frees, 0.0);
  CHECK_EQ(t.used, 0.0);
  // A malformed entry (lib/ would have a bug) is skipped, never freed.
  alloc::Arena::Ref bad{0, 1, 500, 0};
  Defer(fb.get(), bad);
  fb->v[addon::kFreeEntries + 1] = 0.5;
  CHECK_EQ(q->DrainFrees(fb.get()), 0u);
  q->Leave(mb, true);
  q->Detach();
  p->Leave(ma, true);
  p->Detach();
}

TEST("Leave drains a member's batch: frees waiting when a thread ends are not lost") {
  std::shared_ptr<SharedPool> p = SharedPool::Create(Options());
  std::shared_ptr<addon::Figures> fa;
  uint64_t ma = p->Join(&fa);
  alloc::Handle h;
  alloc::SourceError err;
  uint64_t serial = p->TakeSerials(1);
  CHECK_EQ(p->arena().Alloc(700, false, serial, &h, &err), Status::kOk);
  Defer(fa.get(), {h.segment, h.offset, 700, serial});
  CHECK_EQ(p->arena().GetStats().live_allocations, 1u);
  p->DrainFrees(fa.get());  // what SharedPoolWrap::End() does before Leave
  CHECK_EQ(p->arena().GetStats().live_allocations, 0u);
  p->Leave(ma, true);
  p->Detach();
}

int main(int argc, char** argv) { return check::RunAll(argc, argv); }
