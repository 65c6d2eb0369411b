// Threads: any thread; see shared_pool.h for the lock order and the life of
// a segment shared by several environments.
#include "shared_pool.h"

#include <chrono>
#include <random>
#include <utility>

#include "segment_mapping.h"

namespace mmap_pool {
namespace addon {

namespace {

// SplitMix64's finaliser: spreads every bit of `x` over the result.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 64 random bits: the OS's entropy (std::random_device), mixed with the
// clock and a counter so that a platform whose random_device is
// deterministic (old MinGW) still gives every pool different values.
uint64_t RandomBits() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return Mix(r ^ Mix(t ^ Mix(counter.fetch_add(1, std::memory_order_relaxed))));
}

struct Registry {
  std::mutex mu;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::shared_ptr<SharedPool>> live;
  std::unordered_map<uint64_t, uint64_t> ended;  // id -> token
};

// Never freed: worker threads may still attach or detach while the process
// runs its static destructors at exit.
Registry& TheRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void SharedSegment::Unref() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  platform::Unmap(&mapping);
  delete this;
}

alloc::Segment* SharedSource::Acquire(size_t size, alloc::SourceError* err) {
  return AcquireMapped(size, secure_, err);
}

alloc::Segment* SharedSource::AcquireHuge(size_t size, alloc::SourceError* err) {
  return AcquireMapped(size, true, err);
}

// As JsSegmentSource::AcquireMapped, without reuse of retired ranges (those
// belong to one environment's list).
alloc::Segment* SharedSource::AcquireMapped(size_t size, bool guard, alloc::SourceError* err) {
  auto* seg = new SharedSegment();
  const size_t guard_bytes = guard ? platform::MapGranularity() : 0;
  const unsigned flags = huge_pages_ ? platform::kMapHugePages : platform::kMapDefault;
  platform::MapError map_err;
  bool ok = platform::Map(backing_, dir_.c_str(), size + guard_bytes, &seg->mapping, &map_err, flags) &&
            PrepareSegmentMapping(seg->mapping, size, guard_bytes, secure_, prefault_, &map_err);
  if (!ok) {
    platform::Unmap(&seg->mapping);
    delete seg;
    err->code = map_err.code;
    err->syscall = map_err.syscall;
    return nullptr;
  }
  seg->base = seg->mapping.addr;
  seg->size = size;
  std::lock_guard<std::mutex> lock(mu_);
  live_.insert(seg);
  return seg;
}

void SharedSource::Release(alloc::Segment* segment) {
  auto* seg = static_cast<SharedSegment*>(segment);
  {
    // From here no environment can pin it: the refs below only go down.
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(seg);
    seg->released.store(true, std::memory_order_release);
  }
  // The arena's ref keeps the mapping until the Unref below, so nothing
  // else touches it meanwhile.
  if (!seg->lost.load(std::memory_order_acquire)) {
    if (seg->refs.load(std::memory_order_acquire) > 1) {
      platform::Retire(&seg->mapping);
    } else {
      platform::Unmap(&seg->mapping);
    }
  }
  seg->Unref();
}

size_t SharedSource::Discard(alloc::Segment* segment, size_t offset, size_t len, bool* zeroed) {
  auto* seg = static_cast<SharedSegment*>(segment);
  *zeroed = platform::Discard(seg->mapping, offset, len);
  return len;
}

bool SharedSource::ResidentBytes(alloc::Segment* segment, size_t* out) {
  auto* seg = static_cast<SharedSegment*>(segment);
  return platform::ResidentBytes(seg->mapping, seg->size, out);
}

SharedSegment* SharedSource::Pin(alloc::Segment* found) {
  if (found == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  // A released segment is no longer in live_ (it may be deleted): the
  // pointer is compared, never read, until it is found there. Not even cast:
  // a checked downcast (UBSan's vptr check) reads the object's vtable.
  if (live_.count(found) == 0) return nullptr;
  auto* seg = static_cast<SharedSegment*>(found);
  seg->Ref();
  return seg;
}

SharedPool::SharedPool(const SharedPoolOptions& options, uint64_t id)
    : id_(id),
      token_(RandomBits()),
      secret_(RandomBits()),
      description_(options.description),
      source_(options.backing, options.dir, options.secure, options.huge_pages, options.prefault),
      arena_(options.arena, &source_) {}

SharedSegment* SharedPool::Pin(uint32_t id) {
  // Between FindSegment and the pin another thread may release the segment
  // and a new one may take its address, or its id: so the pinned segment is
  // checked against the arena again (which also orders this thread after
  // the one that gave it its id). Three tries: each failure needs another
  // thread to release and map a segment in between.
  for (int attempt = 0; attempt < 3; attempt++) {
    alloc::Segment* found = arena_.FindSegment(id);
    if (found == nullptr) return nullptr;
    SharedSegment* seg = source_.Pin(found);
    if (seg == nullptr) continue;
    if (arena_.FindSegment(id) == seg) return seg;
    seg->Unref();
  }
  return nullptr;
}

uint64_t SharedPool::TakeSerials(uint64_t n) {
  return next_serial_.fetch_add(n, std::memory_order_relaxed);
}

uint64_t SharedPool::Join(std::shared_ptr<Figures>* figures) {
  auto f = std::make_shared<Figures>();
  f->v[kFreeResets] = static_cast<double>(resets_.load(std::memory_order_relaxed));
  std::lock_guard<std::mutex> lock(members_mu_);
  uint64_t id = next_member_++;
  members_.emplace(id, Member{f, 0});
  *figures = std::move(f);
  return id;
}

uint64_t SharedPool::OpenCache(uint64_t member) {
  uint64_t serial = TakeSerials(1);
  std::lock_guard<std::mutex> lock(members_mu_);
  auto it = members_.find(member);
  if (it == members_.end()) return 0;
  it->second.cache_serial = serial;
  return serial;
}

namespace {
// A member's figures as the pool's totals see them: a promoted block was
// counted in both halves (see Figures).
void AddMember(const Figures& f, bool cached_freed, Totals* t) {
  const double* c = f.v + kCacheFigures;
  const double* o = f.v + kOtherFigures;
  t->allocs += c[kAllocs] + o[kAllocs] - o[kMoved];
  // Freed with its cache: every block it handed out counts freed.
  t->frees += (cached_freed ? c[kAllocs] : c[kFrees]) + o[kFrees] - o[kMoved];
  t->used += (cached_freed ? 0 : c[kUsed]) + o[kUsed];
}
}  // namespace

void SharedPool::Leave(uint64_t member, bool free_cached) {
  uint64_t serial = 0;
  {
    std::lock_guard<std::mutex> lock(members_mu_);
    auto it = members_.find(member);
    if (it == members_.end()) return;
    AddMember(*it->second.figures, free_cached, &retired_);
    serial = it->second.cache_serial;
    members_.erase(it);
  }
  if (free_cached && serial != 0) arena_.FreeWhere([serial](uint64_t s) { return s == serial; });
}

namespace {
// A whole number in [0, limit]: what an entry of a batch must hold.
bool Whole(double x, double limit) { return x >= 0 && x <= limit && x == static_cast<double>(static_cast<uint64_t>(x)); }
}  // namespace

uint32_t SharedPool::DrainFrees(Figures* figures) {
  double* v = figures->v;
  const double written = v[kFreeBatch];
  v[kFreeBatch] = 0;
  if (!Whole(written, Figures::kBatchMax)) return 0;
  const size_t n = static_cast<size_t>(written);
  alloc::Arena::Ref refs[Figures::kBatchMax] = {};
  alloc::Status statuses[Figures::kBatchMax] = {};
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const double* e = v + kFreeEntries + 4 * i;
    // Only lib/ writes these; an entry that is not a whole reference is skipped all the same.
    if (!Whole(e[0], 4294967295.0) || !Whole(e[1], 9007199254740991.0) || !Whole(e[2], 9007199254740991.0) ||
        !Whole(e[3], 9007199254740991.0)) {
      continue;
    }
    refs[m++] = {static_cast<uint32_t>(e[0]), static_cast<size_t>(e[1]), static_cast<size_t>(e[2]),
                 static_cast<uint64_t>(e[3])};
  }
  arena_.FreeEach(refs, m, statuses);
  // A reset since the last drain may be what freed a refused entry first:
  // then none is reported (each is counted back all the same).
  const double resets = static_cast<double>(resets_.load(std::memory_order_relaxed));
  const bool reset_since = v[kFreeResets] != resets;
  v[kFreeResets] = resets;
  uint32_t refused = 0;
  for (size_t i = 0; i < m; i++) {
    if (statuses[i] == alloc::Status::kOk || statuses[i] == alloc::Status::kSegmentReleased) continue;
    // free() counted it; whoever freed it first counted it too.
    v[kOtherFigures + kFrees] -= 1;
    v[kOtherFigures + kUsed] += static_cast<double>(refs[i].length);
    refused++;
  }
  return reset_since ? 0 : refused;
}

void SharedPool::AddPending(const Figures& f, Totals* t) {
  const double written = f.v[kFreeBatch];
  if (!Whole(written, Figures::kBatchMax)) return;
  for (size_t i = 0; i < static_cast<size_t>(written); i++) {
    t->frees -= 1;
    t->used += f.v[kFreeEntries + 4 * i + 2];
  }
}

void SharedPool::ResetExcept(uint64_t member) {
  std::unordered_set<uint64_t> spared;
  resets_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(members_mu_);
    for (auto& [id, m] : members_) {
      if (id == member) continue;
      if (m.cache_serial != 0) spared.insert(m.cache_serial);
      // Their allocations outside the cache are freed here: out of the
      // counts (their own counts still hold them; a free of them now is
      // refused, so nothing counts them again).
      // Their deferred frees are among them (a free the reset comes
      // before): counted again when their batch is refused (DrainFrees).
      const double* o = m.figures->v + kOtherFigures;
      Totals pending;
      AddPending(*m.figures, &pending);
      retired_.frees += o[kAllocs] - o[kFrees] - pending.frees;
      retired_.used -= o[kUsed] + pending.used;
    }
  }
  if (spared.empty()) {
    arena_.Reset();
  } else {
    arena_.FreeWhere([&spared](uint64_t s) { return spared.count(s) == 0; });
  }
}

std::unordered_set<uint64_t> SharedPool::CacheSerials(uint64_t except) {
  std::unordered_set<uint64_t> out;
  std::lock_guard<std::mutex> lock(members_mu_);
  for (auto& [id, m] : members_) {
    if (id != except && m.cache_serial != 0) out.insert(m.cache_serial);
  }
  return out;
}

Totals SharedPool::Sum() {
  std::lock_guard<std::mutex> lock(members_mu_);
  Totals t = retired_;
  for (auto& [id, m] : members_) AddMember(*m.figures, false, &t);
  if (t.used > retired_.peak) retired_.peak = t.used;
  t.peak = retired_.peak;
  return t;
}

uint64_t SharedPool::CheckOf(uint64_t share_id) const { return Mix(secret_ ^ Mix(share_id)); }

alloc::Status SharedPool::Share(const alloc::Arena::Ref& ref, uint64_t* share_id, uint64_t* check) {
  uint32_t count = 0;
  alloc::Status st = arena_.Retain(ref, &count);
  if (st < alloc::Status::kOk) return st;
  std::lock_guard<std::mutex> lock(share_mu_);
  *share_id = next_share_++;
  *check = CheckOf(*share_id);
  shares_.emplace(*share_id, ref);
  return alloc::Status::kOk;
}

alloc::Status SharedPool::Adopt(uint64_t share_id, uint64_t check, alloc::Arena::Ref* out, uint32_t* refs) {
  if (check != CheckOf(share_id)) return alloc::Status::kForeign;
  {
    std::lock_guard<std::mutex> lock(share_mu_);
    auto it = shares_.find(share_id);
    if (it == shares_.end()) return alloc::Status::kDoubleFree;  // adopted already
    *out = it->second;
    shares_.erase(it);
  }
  // free() gives memory back whatever its count: the reference this share
  // held may have gone with it. The serial says whether it still lives.
  uint32_t count = 0;
  alloc::Status st = arena_.RefCount(*out, &count);
  if (refs != nullptr) *refs = count;
  if (st == alloc::Status::kClosed) return st;
  return st < alloc::Status::kOk ? alloc::Status::kDoubleFree : alloc::Status::kOk;
}

uint32_t SharedPool::Detach() {
  Registry& r = TheRegistry();
  std::shared_ptr<SharedPool> last;  // keeps the pool alive past the unlock
  {
    std::lock_guard<std::mutex> lock(r.mu);
    uint32_t left = attachments_.load(std::memory_order_relaxed);
    if (left == 0) return 0;
    attachments_.store(--left, std::memory_order_relaxed);
    if (left > 0) return left;
    auto it = r.live.find(id_);
    if (it != r.live.end()) {
      last = std::move(it->second);
      r.live.erase(it);
    }
    r.ended.emplace(id_, token_);
  }
  arena_.Close();
  {
    std::lock_guard<std::mutex> lock(share_mu_);
    shares_.clear();
  }
  return 0;
}

std::shared_ptr<SharedPool> SharedPool::Create(const SharedPoolOptions& options) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto pool = std::make_shared<SharedPool>(options, r.next_id++);
  r.live.emplace(pool->id(), pool);
  return pool;
}

std::shared_ptr<SharedPool> SharedPool::Attach(uint64_t id, uint64_t token, alloc::Status* st) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.live.find(id);
  if (it != r.live.end() && it->second->token_ == token) {
    it->second->attachments_.fetch_add(1, std::memory_order_relaxed);
    *st = alloc::Status::kOk;
    return it->second;
  }
  auto gone = r.ended.find(id);
  *st = gone != r.ended.end() && gone->second == token ? alloc::Status::kClosed : alloc::Status::kForeign;
  return nullptr;
}

}  // namespace addon
}  // namespace mmap_pool
