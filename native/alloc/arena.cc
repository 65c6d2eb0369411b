// Arena: allocation, free and reference counts. The layout and the placement
// policy (lowest slab, best fit off the top chunk, idle chunks) are drawn in
// arena.h (the arena), chunk.h (pages and runs) and slab.h (slots).
// Stats, dump, reset, trim and close live in arena_maintenance.cc.
//
// Threads: each public method locks mu_ for its whole duration.
#include "arena.h"

#include <algorithm>
#include <cstring>

// The fast paths (AllocSmall, Locate, FreeSlot) are forced inline into the
// public methods (g++ left Locate, with four callers, out of line): called,
// they cost ~3 ns of a 20 ns small pair, in prologues and in the Located
// struct going through memory (docs/design.md, "The allocator's fast path").
#if defined(_MSC_VER)
#define MMAP_POOL_FAST_PATH __forceinline
#elif defined(__GNUC__)
#define MMAP_POOL_FAST_PATH inline __attribute__((always_inline))
#else
#define MMAP_POOL_FAST_PATH inline
#endif

namespace mmap_pool {
namespace alloc {

namespace {
inline uint64_t RefKey(uint32_t segment, size_t offset) {
  return (uint64_t{segment} << 32) | static_cast<uint64_t>(offset);
}
inline size_t RoundUp(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }
}  // namespace

Arena::Arena(const ArenaOptions& options, SegmentSource* source)
    : opt_(options),
      page_shift_(Log2Floor(options.page_size)),
      source_(source) {
  // `align` can lift a request up to the first large class whatever the
  // threshold, so stats cover at least that far.
  huge_class_limit_ = std::max(ClassIndex(opt_.huge_threshold), kSmallClasses);
  for (uint32_t c = 0; c < kSmallClasses; c++) {
    ClassState& cs = classes_[c];
    cs.slab_pages = SlabPages(c, opt_.page_size,
                              static_cast<uint32_t>(opt_.chunk_size / opt_.page_size));
    size_t slots = cs.slab_pages * opt_.page_size / ClassSize(c);
    // Pages of 1 MiB or more would give the 16 B class more slots than a
    // 16-bit index names; the rest of such a slab is left unused.
    cs.slab_slots = static_cast<uint32_t>(std::min<size_t>(slots, kMaxSlabSlots));
  }
}

Arena::~Arena() { Close(); }

// ---- allocation -------------------------------------------------------------

// The fast path: pop a slot from the class's current slab, its lowest slab
// with room; when that one fills, the next lowest takes over.
MMAP_POOL_FAST_PATH Status Arena::AllocSmall(uint32_t cls, size_t size, bool zero,
                                             uint64_t serial, Handle* out, SourceError* err,
                                             bool may_map) {
  ClassState& cs = classes_[cls];
  Slab* slab = cs.cur;
  if (slab == nullptr) {
    Status st = Status::kOk;
    slab = NewSlab(cls, may_map, err, &st);
    if (slab == nullptr) return st;
  } else if (slab == cs.empty) {
    SlabReused(slab);
  }
  uint32_t slot = slab->Take(static_cast<uint16_t>(size), serial, Now());
  if (slab->nfree == 0) cs.cur = cs.avail.PopMin();
  cs.live++;
  size_t rel = size_t{slot} * slab->slot_size;
  if (zero && size != 0) std::memset(slab->base + rel, 0, size);
  CountAlloc(size);
  out->segment = slab->segment_id;
  out->offset = slab->run_offset + rel;
  return Status::kOk;
}

Status Arena::Alloc(size_t size, bool zero, uint64_t serial, Handle* out, SourceError* err,
                    size_t align, bool may_map) {
  std::lock_guard<Mutex> lock(mu_);
  return AllocHeld(size, zero, serial, out, err, align, may_map);
}

uint32_t Arena::AllocEach(size_t size, uint64_t serial, uint32_t count, bool may_map, Handle* out,
                          SourceError* err, Status* st) {
  std::lock_guard<Mutex> lock(mu_);
  *st = Status::kOk;
  uint32_t n = 0;
  for (; n < count; n++) {
    *st = AllocHeld(size, false, serial, &out[n], err, 0, may_map);
    if (*st != Status::kOk) break;
  }
  return n;
}

Status Arena::AllocHeld(size_t size, bool zero, uint64_t serial, Handle* out, SourceError* err,
                        size_t align, bool may_map) {
  if (closed_) return Status::kClosed;
  if (size > opt_.max_bytes) return Status::kTooLarge;
  if (align > opt_.page_size) return Status::kBadAlign;
  if (size > opt_.huge_threshold) {
    Status st = AllocHuge(size, zero, serial, out, err);
    if (idle_.head != nullptr && st == Status::kOk) AgeIdleChunks(size);
    return st;
  }
  uint32_t cls = ClassIndex(size);
  // Slabs and runs start on page boundaries, so a class whose size is a
  // multiple of `align` has every slot aligned. Runs are page-aligned.
  while (align > kQuantum && IsSmallClass(cls) && ClassSize(cls) % align != 0) cls++;
  Status st = IsSmallClass(cls) ? AllocSmall(cls, size, zero, serial, out, err, may_map)
                                : AllocLarge(cls, size, zero, serial, out, err, may_map);
  if (idle_.head != nullptr && st == Status::kOk) AgeIdleChunks(size);
  return st;
}

// A new slab for `cls`, which has no slab with room (so no empty one
// either): a run of pages. It becomes the class's current slab.
Slab* Arena::NewSlab(uint32_t cls, bool may_map, SourceError* err, Status* st) {
  ClassState& cs = classes_[cls];
  Chunk* chunk = nullptr;
  uint32_t first = 0;
  if (!AllocRun(cs.slab_pages, may_map, &chunk, &first, err, st)) return nullptr;
  chunk->MarkUsed(first, cs.slab_pages, RunKind::kSlab, static_cast<uint8_t>(cls));
  if (chunk->busy++ == 0) ChunkReused(chunk);  // the caller takes a slot at once
  const size_t run_offset = size_t{first} << page_shift_;
  Slab* slab = Slab::Create(chunk, chunk->segment->base + run_offset, run_offset, chunk->id(),
                            first, cls, static_cast<uint32_t>(ClassSize(cls)), cs.slab_slots,
                            size_t{cs.slab_pages} << page_shift_);
  chunk->SetSlab(first, cs.slab_pages, slab);
  cs.capacity += slab->nslots;
  cs.cur = slab;
  return slab;
}

// The class's empty slab is about to hold an allocation again.
void Arena::SlabReused(Slab* slab) {
  classes_[slab->cls].empty = nullptr;
  Chunk* c = slab->chunk;
  if (c->busy++ == 0) ChunkReused(c);
}

Status Arena::AllocLarge(uint32_t cls, size_t size, bool zero, uint64_t serial, Handle* out,
                         SourceError* err, bool may_map) {
  const size_t ps = opt_.page_size;
  uint32_t pages = static_cast<uint32_t>(RoundUp(ClassSize(cls), ps) / ps);
  Chunk* chunk = nullptr;
  uint32_t first = 0;
  Status st = Status::kOk;
  if (!AllocRun(pages, may_map, &chunk, &first, err, &st)) return st;
  if (zero) {
    // Pages never written since they were mapped (or zeroed by a discard)
    // are already zero; clear only the others.
    uint32_t touched = static_cast<uint32_t>(RoundUp(size, ps) / ps);
    for (uint32_t p = first; p < first + touched; p++) {
      if (!chunk->pages[p].dirty) continue;
      size_t from = (p - first) * ps;
      std::memset(chunk->segment->base + first * ps + from, 0,
                  (size - from < ps ? size - from : ps));
    }
  }
  chunk->MarkUsed(first, pages, RunKind::kLarge, static_cast<uint8_t>(cls));
  if (chunk->busy++ == 0) ChunkReused(chunk);
  chunk->pages[first].req = static_cast<uint32_t>(size);
  chunk->pages[first].serial = serial;
  chunk->pages[first].born = Now();
  classes_[cls].live++;
  CountAlloc(size);
  out->segment = chunk->id();
  out->offset = size_t{first} * ps;
  return Status::kOk;
}

// A kept mapping of exactly `mapped` bytes if there is one (its pages may
// hold old bytes), else a new one from the source (zero-filled).
Status Arena::AllocHuge(size_t size, bool zero, uint64_t serial, Handle* out,
                        SourceError* err) {
  size_t mapped = RoundUp(size, source_->Granularity());
  if (mapped < size) return Status::kExhausted;
  Segment* seg = TakeSpare(mapped);
  if (seg != nullptr) {
    if (zero) std::memset(seg->base, 0, size);
  } else {
    if (!MakeRoom(mapped)) return Status::kExhausted;
    seg = source_->AcquireHuge(mapped, err);
    if (seg == nullptr && GiveBackUnused() > 0) seg = source_->AcquireHuge(mapped, err);
    if (seg == nullptr) return Status::kMapFailed;
    s_.mapped_bytes += mapped;
  }
  uint32_t id = NewId(seg);
  records_[id].huge_req = size;
  records_[id].huge_serial = serial;
  records_[id].huge_born = Now();
  s_.huge_allocations++;
  s_.huge_bytes += mapped;
  CountAlloc(size);
  out->segment = id;
  out->offset = 0;
  return Status::kOk;
}

// The run AllocRun takes, or end(). The top chunk's runs sort last, so when
// the first run is the top chunk's (always, with one chunk) one lookup does.
std::set<Arena::FreeRunKey>::iterator Arena::FindRun(uint32_t pages) {
  auto it = free_runs_.begin();
  if (it != free_runs_.end() && !it->top()) {
    it = free_runs_.lower_bound(FreeRunKey(false, pages, 0, 0));
    if (it != free_runs_.end() && !it->top()) return it;
  }
  return free_runs_.lower_bound(FreeRunKey(true, pages, 0, 0));
}

// Best fit: the shortest free run that holds `pages`, the lowest chunk and
// page among equals, in the top chunk only when no other chunk has one (so
// the top chunk drains and can go back). Maps a new chunk when none fits;
// with `may_map` false, gives back the empty slabs and looks again, then
// fails with kNeedsChunk.
bool Arena::AllocRun(uint32_t pages, bool may_map, Chunk** chunk, uint32_t* first,
                     SourceError* err, Status* st) {
  auto it = FindRun(pages);
  if (it == free_runs_.end() && s_.mapped_bytes + opt_.chunk_size > opt_.max_bytes) {
    // Tight under max_bytes: give back the empty slabs and chunks first, and
    // look again before asking the source, whose answer is then not needed
    // (and, if it would fail, must not be asked for nothing).
    ReleaseEmptyChunks();
    it = FindRun(pages);
  }
  if (it == free_runs_.end() && !may_map) {
    // A caller's cache asks before it gives its free blocks back: the empty
    // slabs go first (their pages, merged, may hold the run). Not on the
    // way to a new chunk, where a call that then fails must change nothing.
    if (ReleaseEmptySlabs() > 0) it = FindRun(pages);
    if (it == free_runs_.end()) {
      *st = Status::kNeedsChunk;
      return false;
    }
  }
  if (it == free_runs_.end()) {
    const Chunk* fresh = NewChunk(err, st);
    // Look again even when NewChunk failed: its MakeRoom() may have released
    // empty slabs whose pages, merged, now hold the run. A new chunk is the
    // top one, but it may not be: the others may have pages now.
    it = FindRun(pages);
    if (it == free_runs_.end() && fresh == nullptr && *st == Status::kMapFailed) {
      // The source refused: what no allocation uses goes back, the empty
      // slabs' pages may hold the run now, else the source is asked again.
      const size_t back = GiveBackUnused();
      it = FindRun(pages);
      if (it == free_runs_.end() && back > 0) {
        fresh = NewChunk(err, st);
        it = FindRun(pages);
      }
    }
    if (it == free_runs_.end()) {
      // Cannot happen: huge_threshold <= chunk_size, so a fresh chunk holds
      // every run; were it not so, the request would be one no chunk holds.
      if (fresh != nullptr) *st = Status::kTooLarge;
      return false;
    }
  }
  const uint32_t n = it->pages(), id = it->id(), start = it->first;
  // The rest of the run is indexed again in the same set node: a slab's
  // run coming and going costs no heap allocation for the index.
  auto node = free_runs_.extract(it);
  Chunk* c = records_[id].chunk;
  if (n > pages) {
    c->SetFreeBounds(start + pages, n - pages);
    node.value() = RunKey(id, start + pages, n - pages);
    free_runs_.insert(std::move(node));
  }
  *chunk = c;
  *first = start;
  return true;
}

// Whether `bytes` more can be mapped under max_bytes, after giving back the
// empty chunks and empty slabs, then the spare huge mappings, if that is
// what it takes. Spares go only when that makes the room: a call that fails
// keeps them (it changes nothing).
bool Arena::MakeRoom(size_t bytes) {
  if (s_.mapped_bytes + bytes <= opt_.max_bytes) return true;
  ReleaseEmptyChunks();
  if (s_.mapped_bytes + bytes <= opt_.max_bytes) return true;
  if (s_.mapped_bytes - s_.spare_bytes + bytes > opt_.max_bytes) return false;
  ReleaseSpares();
  return true;
}

// The source refused memory (ENOMEM from mmap under RLIMIT_AS or an
// overcommit limit, a full disk, a locked-memory limit): gives back what the
// arena keeps that no allocation uses -- every spare, the classes' empty
// slabs, and every empty chunk, the idle ones among them, the only chunk
// too -- so that the caller can ask the source once more. Returns the bytes
// handed to the source's Release (0: asking again meets the same answer).
// Asking again helps as far as Release gives the OS back what it refused
// (address space, commit charge, disk blocks) before it returns. If the
// second answer is no as well, what went stays gone, as after Trim(): it
// was memory no allocation used, and no allocation changes.
size_t Arena::GiveBackUnused() {
  return ReleaseSpares() + ReleaseEmptyChunks();
}

Chunk* Arena::NewChunk(SourceError* err, Status* st) {
  if (!MakeRoom(opt_.chunk_size)) {
    *st = Status::kExhausted;
    return nullptr;
  }
  Segment* seg = source_->Acquire(opt_.chunk_size, err);
  if (seg == nullptr) {
    *st = Status::kMapFailed;
    return nullptr;
  }
  uint32_t id = NewId(seg);
  Chunk* chunk = new Chunk(seg, static_cast<uint32_t>(opt_.chunk_size / opt_.page_size));
  records_[id].chunk = chunk;
  free_runs_.insert(RunKey(id, 0, chunk->npages));
  s_.mapped_bytes += opt_.chunk_size;
  s_.chunks++;
  if (top_chunk_ == UINT32_MAX || id > top_chunk_) SetTopChunk(id);
  return chunk;
}

// Makes chunk `id` (or none: UINT32_MAX) the top one and re-sorts the free
// runs of the old and the new top chunk. Runs only when a chunk is mapped or
// unmapped, so walking two chunks' page maps is cheap next to that.
void Arena::SetTopChunk(uint32_t id) {
  const uint32_t old = top_chunk_;
  top_chunk_ = id;
  if (old != UINT32_MAX && records_[old].chunk != nullptr) RekeyRuns(records_[old].chunk);
  if (id != UINT32_MAX) RekeyRuns(records_[id].chunk);
}

// Indexes a chunk's free runs again under RunKey (after top_chunk_ moved).
void Arena::RekeyRuns(Chunk* c) {
  if (c->lost) return;  // its free runs are not indexed
  const uint32_t id = c->id();
  for (uint32_t p = 0; p < c->npages; p += c->pages[p].pages) {
    if (c->pages[p].used) continue;
    const uint32_t n = c->pages[p].pages;
    auto node = free_runs_.extract(FreeRunKey(!(id == top_chunk_), n, id, p));
    node.value() = RunKey(id, p, n);
    free_runs_.insert(std::move(node));
  }
}

uint32_t Arena::NewId(Segment* segment) {
  uint32_t id;
  if (!free_ids_.empty()) {
    id = *free_ids_.begin();
    free_ids_.erase(free_ids_.begin());
  } else {
    id = static_cast<uint32_t>(records_.size());
    records_.emplace_back();
  }
  segment->id = id;
  records_[id] = Record();
  records_[id].segment = segment;
  return id;
}

// ---- lookup, free and reference counts --------------------------------------

MMAP_POOL_FAST_PATH Status Arena::Locate(const Ref& ref, Located* at) {
  if (closed_) return Status::kClosed;
  if (ref.segment >= records_.size() || records_[ref.segment].segment == nullptr) {
    return Status::kForeign;
  }
  const size_t offset = ref.offset, length = ref.length;
  Record& r = records_[ref.segment];
  at->record = &r;
  if (r.chunk == nullptr) {
    if (offset != 0) return Status::kForeign;
    if (ref.serial != r.huge_serial) return Status::kDoubleFree;
    return length == r.huge_req ? Status::kOk : Status::kForeign;
  }
  const Chunk& c = *r.chunk;
  const size_t page = offset >> page_shift_;
  if (page >= c.npages) return Status::kForeign;
  const PageMeta& pm = c.pages[page];
  if (!pm.used) return Status::kDoubleFree;  // memory that is not allocated now
  at->first_page = pm.head;
  if (pm.slab != nullptr) {
    Slab* slab = pm.slab;
    const size_t rel = offset - slab->run_offset;
    const size_t slot = slab->slot_of.Div(rel);
    if (slot >= slab->nslots) return Status::kForeign;  // the slab's unused tail
    const SlotMeta& m = slab->meta(static_cast<uint32_t>(slot));
    if (m.next != kLive) return Status::kDoubleFree;
    if (rel != slot * slab->slot_size) return Status::kForeign;
    if (m.serial != ref.serial) return Status::kDoubleFree;  // a stale Buffer
    if (m.req != length) return Status::kForeign;
    at->slab = slab;
    at->slot = static_cast<uint32_t>(slot);
    return Status::kOk;
  }
  const PageMeta& head = c.pages[pm.head];  // a large run
  if (offset != size_t{pm.head} << page_shift_) return Status::kForeign;
  if (ref.serial != head.serial) return Status::kDoubleFree;  // a stale Buffer
  return length == head.req ? Status::kOk : Status::kForeign;
}

// The fast path of a free: the slot goes back on its slab's free list.
MMAP_POOL_FAST_PATH void Arena::FreeSlot(Slab* slab, uint32_t slot) {
  ClassState& cs = classes_[slab->cls];
  const uint16_t req = slab->meta(slot).req;
  // (A lost chunk's bytes are its new owner's: not ours to wipe.)
  if (opt_.zero_on_free && !slab->chunk->lost) {
    std::memset(slab->base + size_t{slot} * slab->slot_size, 0, req);
  }
  CountFree(req);
  cs.live--;
  slab->Put(slot);
  if (slab->nfree == 1) SlabGotRoom(slab);
  if (slab->nfree == slab->nslots) SlabEmptied(slab);
}

// A full slab has a free slot again. The current slab stays the class's
// lowest with room: this one takes over if it is lower.
void Arena::SlabGotRoom(Slab* slab) {
  if (slab->chunk->lost) return;  // nothing is placed there again
  ClassState& cs = classes_[slab->cls];
  Slab* cur = cs.cur;
  if (cur == nullptr) {
    cs.cur = slab;
  } else if (slab->order < cur->order) {
    cs.avail.Insert(cur);
    cs.cur = slab;
  } else {
    cs.avail.Insert(slab);
  }
}

// A class keeps one empty slab: of two, the higher one's pages go back.
// A chunk left without a live allocation is idle (ChunkIdle).
void Arena::SlabEmptied(Slab* slab) {
  ClassState& cs = classes_[slab->cls];
  Chunk* c = slab->chunk;
  c->busy--;
  if (c->lost) {
    if (c->busy == 0) ReleaseLost(c);
    return;
  }
  Slab* kept = cs.empty;
  if (kept == nullptr) {
    cs.empty = slab;
  } else {
    Slab* drop = kept->order < slab->order ? slab : kept;
    cs.empty = drop == slab ? kept : slab;
    Unlist(drop);
    ReleaseSlab(drop);
  }
  if (c->busy == 0) ChunkIdle(c);
}

// Takes a slab with room out of its class's current slab and heap.
void Arena::Unlist(Slab* slab) {
  ClassState& cs = classes_[slab->cls];
  if (cs.cur == slab) {
    cs.cur = cs.avail.PopMin();
  } else {
    cs.avail.Remove(slab);
  }
}

Status Arena::FreeLocated(const Located& at) {
  if (at.slab != nullptr) {
    FreeSlot(at.slab, at.slot);
    return Status::kOk;
  }
  Record& r = *at.record;
  if (r.chunk == nullptr) {
    FreeHuge(r.segment->id);
    return Status::kSegmentReleased;
  }
  Chunk* c = r.chunk;
  PageMeta& head = c->pages[at.first_page];
  if (opt_.zero_on_free && !c->lost) {
    std::memset(c->segment->base + size_t{at.first_page} * opt_.page_size, 0, head.req);
  }
  CountFree(head.req);
  classes_[head.cls].live--;
  if (c->lost) {
    // Not indexed: nothing is placed in a lost chunk again.
    c->MarkFree(at.first_page, head.pages);
    if (--c->busy == 0) ReleaseLost(c);
    return Status::kOk;
  }
  FreeRun(c, at.first_page, head.pages);
  if (--c->busy == 0) ChunkIdle(c);
  return Status::kOk;
}

Status Arena::Free(const Ref& ref) {
  std::lock_guard<Mutex> lock(mu_);
  return FreeHeld(ref);
}

void Arena::FreeEach(const Ref* refs, size_t n, Status* out) {
  std::lock_guard<Mutex> lock(mu_);
  for (size_t i = 0; i < n; i++) out[i] = FreeHeld(refs[i]);
}

MMAP_POOL_FAST_PATH Status Arena::FreeHeld(const Ref& ref) {
  Located at;
  Status st = Locate(ref, &at);
  if (st != Status::kOk) return st;
  // Most allocations are never retained: skip hashing the key then.
  if (!refs_.empty()) refs_.erase(RefKey(ref.segment, ref.offset));
  if (at.slab != nullptr) {
    FreeSlot(at.slab, at.slot);
    return Status::kOk;
  }
  return FreeLocated(at);
}

Status Arena::Retain(const Ref& ref, uint32_t* count) {
  std::lock_guard<Mutex> lock(mu_);
  Located at;
  Status st = Locate(ref, &at);
  if (st != Status::kOk) return st;
  auto it = refs_.find(RefKey(ref.segment, ref.offset));
  uint32_t now = it == refs_.end() ? 1 : it->second;
  if (now == UINT32_MAX) return Status::kCountFull;
  refs_[RefKey(ref.segment, ref.offset)] = now + 1;
  *count = now + 1;
  return Status::kOk;
}

Status Arena::Release(const Ref& ref, uint32_t* count) {
  std::lock_guard<Mutex> lock(mu_);
  Located at;
  Status st = Locate(ref, &at);
  if (st != Status::kOk) return st;
  auto it = refs_.find(RefKey(ref.segment, ref.offset));
  if (it != refs_.end()) {
    *count = --it->second;
    if (it->second == 1) refs_.erase(it);
    return Status::kOk;
  }
  *count = 0;
  return FreeLocated(at);
}

Status Arena::RefCount(const Ref& ref, uint32_t* count) {
  std::lock_guard<Mutex> lock(mu_);
  Located at;
  Status st = Locate(ref, &at);
  if (st != Status::kOk) return st;
  auto it = refs_.find(RefKey(ref.segment, ref.offset));
  *count = it == refs_.end() ? 1 : it->second;
  return Status::kOk;
}

// ---- runs, slabs and segments going back --------------------------------------

// Frees [first, first+pages) and merges it with free neighbours.
// A neighbour's set node, if there is one, indexes the merged run.
void Arena::FreeRun(Chunk* c, uint32_t first, uint32_t pages) {
  const uint32_t id = c->id();
  c->MarkFree(first, pages);
  std::set<FreeRunKey>::node_type node;
  if (first > 0 && !c->pages[first - 1].used) {
    uint32_t left = c->pages[first - 1].pages;
    node = free_runs_.extract(RunKey(id, first - left, left));
    first -= left;
    pages += left;
  }
  if (first + pages < c->npages && !c->pages[first + pages].used) {
    uint32_t right = c->pages[first + pages].pages;
    auto right_node = free_runs_.extract(RunKey(id, first + pages, right));
    if (node.empty()) node = std::move(right_node);
    pages += right;
  }
  c->SetFreeBounds(first, pages);
  if (node.empty()) {
    free_runs_.insert(RunKey(id, first, pages));
  } else {
    node.value() = RunKey(id, first, pages);
    free_runs_.insert(std::move(node));
  }
}

void Arena::ReleaseSlab(Slab* slab) {
  ClassState& cs = classes_[slab->cls];
  cs.capacity -= slab->nslots;
  FreeRun(slab->chunk, slab->first_page, cs.slab_pages);
  Slab::Destroy(slab);
}

// A chunk has no live allocation left, only free runs and empty slabs: it
// joins the idle list and stays mapped, in case the next allocations need
// it. The age of the idle chunks starts again from 0 when the list was
// empty, and whenever an idle chunk is needed again (ChunkReused).
void Arena::ChunkIdle(Chunk* c) {
  if (idle_.head == nullptr) idle_bytes_ = 0;
  idle_.PushBack(c);
}

// An idle chunk is about to hold an allocation: the idle memory was needed.
void Arena::ChunkReused(Chunk* c) {
  if (!c->idle) return;
  idle_.Remove(c);
  idle_bytes_ = 0;
}

// After each allocation while some chunk is idle: once the arena has
// allocated kIdleKeepChunks chunks' worth of bytes without needing an idle
// chunk, the one idle longest goes back, unless it is the only chunk.
void Arena::AgeIdleChunks(size_t size) {
  idle_bytes_ += size;
  if (idle_bytes_ < kIdleKeepChunks * opt_.chunk_size || s_.chunks < 2) return;
  idle_bytes_ = 0;
  ReleaseIdleChunk(idle_.head);
}

void Arena::AgeIdle(size_t bytes) {
  std::lock_guard<Mutex> lock(mu_);
  if (!closed_ && idle_.head != nullptr) AgeIdleChunks(bytes);
}

// Gives back an idle chunk: the classes' empty slabs in it, then the chunk.
void Arena::ReleaseIdleChunk(Chunk* c) {
  for (uint32_t k = 0; k < kSmallClasses; k++) {
    Slab* e = classes_[k].empty;
    if (e == nullptr || e->chunk != c) continue;
    classes_[k].empty = nullptr;
    Unlist(e);
    ReleaseSlab(e);
  }
  ReleaseSegment(c->id());
}

// Ends a huge allocation: its id goes, and its mapping is kept as a spare
// when the source can recycle it (never in a pool that wipes on free), else
// given back.
void Arena::FreeHuge(uint32_t id) {
  Record& r = records_[id];
  Segment* seg = r.segment;
  CountFree(r.huge_req);
  s_.huge_allocations--;
  s_.huge_bytes -= seg->size;
  if (opt_.zero_on_free || seg->size > kSpareMaxBytes || !source_->Recycle(seg)) {
    ReleaseSegment(id);
    return;
  }
  r = Record();
  free_ids_.insert(id);
  spare_.push_back({seg, false});
  s_.spare_bytes += seg->size;
  while (spare_.size() > opt_.spare_max || s_.spare_bytes > kSpareKeepBytes) ReleaseSpare(0);  // the oldest
}

// Gives spare_[i] back to the source.
void Arena::ReleaseSpare(size_t i) {
  Segment* seg = spare_[i].segment;
  spare_.erase(spare_.begin() + static_cast<std::ptrdiff_t>(i));
  s_.spare_bytes -= seg->size;
  s_.mapped_bytes -= seg->size;
  source_->Release(seg);
}

// The newest spare of exactly `mapped` bytes, taken out of spare_; or null.
Segment* Arena::TakeSpare(size_t mapped) {
  for (size_t i = spare_.size(); i-- > 0;) {
    Segment* seg = spare_[i].segment;
    if (seg->size != mapped) continue;
    spare_.erase(spare_.begin() + static_cast<std::ptrdiff_t>(i));
    s_.spare_bytes -= mapped;
    return seg;
  }
  return nullptr;
}

size_t Arena::Decay() {
  std::lock_guard<Mutex> lock(mu_);
  size_t n = 0;
  for (size_t i = 0; i < spare_.size();) {
    Spare& sp = spare_[i];
    if (sp.decayed) {
      i++;
      continue;
    }
    n++;
    if (source_->DiscardLazily(sp.segment)) {
      sp.decayed = true;
      i++;
      continue;
    }
    ReleaseSpare(i);
  }
  return n;
}

// Gives every spare back to the source; returns the bytes unmapped.
size_t Arena::ReleaseSpares() {
  size_t released = 0;
  for (const Spare& sp : spare_) {
    released += sp.segment->size;
    source_->Release(sp.segment);
  }
  spare_.clear();
  s_.mapped_bytes -= released;
  s_.spare_bytes = 0;
  return released;
}

// Gives a segment back to the source. A chunk must be empty (one free run).
void Arena::ReleaseSegment(uint32_t id) {
  Record& r = records_[id];
  if (r.chunk != nullptr) {
    free_runs_.erase(RunKey(id, 0, r.chunk->npages));
    if (r.chunk->idle) idle_.Remove(r.chunk);
    delete r.chunk;
    s_.chunks--;
  }
  s_.mapped_bytes -= r.segment->size;
  Segment* seg = r.segment;
  r = Record();
  free_ids_.insert(id);
  source_->Release(seg);
  if (id == top_chunk_) {
    uint32_t top = UINT32_MAX;
    for (uint32_t i = id; i-- > 0;) {
      if (records_[i].chunk != nullptr && !records_[i].chunk->lost) {
        top = i;
        break;
      }
    }
    SetTopChunk(top);
  }
}

// live_allocations and allocated_bytes are not counted here: GetStats sums
// them from the classes' live counts. So a pair writes two of s_'s counters,
// not four, and no neighbours: g++ updated neighbouring counters with one
// 16-byte load and store in one call and with 8-byte ones in the other, and
// a 16-byte load of two 8-byte stores cannot be forwarded from them; it
// waits until they reach the cache.
void Arena::CountAlloc(size_t req) {
  s_.used_bytes += req;
  s_.total_allocations++;
  if (s_.used_bytes > s_.peak_used_bytes) s_.peak_used_bytes = s_.used_bytes;
}

void Arena::CountFree(size_t req) {
  s_.used_bytes -= req;
  s_.total_frees++;
}

uint64_t Arena::LiveAllocations() const {
  uint64_t live = s_.huge_allocations;
  for (uint32_t c = 0; c <= huge_class_limit_ && c < kMaxClasses; c++) live += classes_[c].live;
  return live;
}

// Each live allocation of a class takes the same bytes: a slot, or a run of
// whole pages. Huge ones take their mappings.
size_t Arena::AllocatedBytes() const {
  size_t bytes = s_.huge_bytes;
  for (uint32_t c = 0; c <= huge_class_limit_ && c < kMaxClasses; c++) {
    size_t each = IsSmallClass(c) ? ClassSize(c) : RoundUp(ClassSize(c), opt_.page_size);
    bytes += classes_[c].live * each;
  }
  return bytes;
}

// ---- segments someone else took ----------------------------------------------

Arena::Lost Arena::Lose(uint32_t id) {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_ || id >= records_.size() || records_[id].segment == nullptr) return Lost::kNo;
  Record& r = records_[id];
  if (r.lost) return Lost::kBefore;
  r.lost = true;
  Chunk* c = r.chunk;
  if (c == nullptr) return Lost::kNow;  // huge: one allocation, freed as ever
  // Out of placement: its free runs leave the index (under the keys they
  // have now), its slabs with room their class lists, its empty slab its
  // class's `empty`; it is no longer idle.
  for (uint32_t p = 0; p < c->npages; p += c->pages[p].pages) {
    const PageMeta& m = c->pages[p];
    if (!m.used) {
      free_runs_.erase(RunKey(id, p, m.pages));
      continue;
    }
    if (m.kind != RunKind::kSlab) continue;
    Slab* slab = m.slab;
    ClassState& cs = classes_[slab->cls];
    if (cs.empty == slab) cs.empty = nullptr;
    if (slab->nfree > 0) Unlist(slab);
  }
  if (c->idle) idle_.Remove(c);
  c->lost = true;
  if (id == top_chunk_) {
    uint32_t top = UINT32_MAX;
    for (uint32_t i = static_cast<uint32_t>(records_.size()); i-- > 0;) {
      if (records_[i].chunk != nullptr && !records_[i].chunk->lost) {
        top = i;
        break;
      }
    }
    SetTopChunk(top);
  }
  if (c->busy == 0) ReleaseLost(c);
  return Lost::kNow;
}

// The last live allocation of a lost chunk went: its slabs (empty now) and
// the chunk go. The source keeps the memory for its new owner.
void Arena::ReleaseLost(Chunk* c) {
  for (uint32_t p = 0; p < c->npages; p++) {
    PageMeta& m = c->pages[p];
    if (m.used && m.head == p && m.kind == RunKind::kSlab) {
      classes_[m.slab->cls].capacity -= m.slab->nslots;
      Slab::Destroy(m.slab);
      m.slab = nullptr;
    }
  }
  ReleaseSegment(c->id());
}

bool Arena::FindLost(uint32_t id, uint64_t serial, size_t* offset, size_t* length) {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_ || serial == 0 || id >= records_.size() || !records_[id].lost) return false;
  const Record& r = records_[id];
  if (r.chunk == nullptr) {
    if (r.huge_serial != serial) return false;
    *offset = 0;
    *length = r.huge_req;
    return true;
  }
  const Chunk& c = *r.chunk;
  for (uint32_t p = 0; p < c.npages; p += c.pages[p].pages) {
    const PageMeta& m = c.pages[p];
    if (!m.used) continue;
    if (m.kind == RunKind::kLarge) {
      if (m.serial != serial) continue;
      *offset = size_t{p} << page_shift_;
      *length = m.req;
      return true;
    }
    const Slab& s = *m.slab;
    for (uint32_t i = 0; i < s.nslots; i++) {
      if (!s.IsLive(i) || s.meta(i).serial != serial) continue;
      *offset = s.run_offset + size_t{i} * s.slot_size;
      *length = s.meta(i).req;
      return true;
    }
  }
  return false;
}

Segment* Arena::FindSegment(uint32_t id) {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_ || id >= records_.size()) return nullptr;
  return records_[id].segment;
}

// ---- walks and renames (shared pools: per-thread caches) ---------------------

void Arena::ListLive(std::vector<Ref>* out) const {
  for (uint32_t id = 0; id < records_.size(); id++) {
    const Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk == nullptr) {
      out->push_back({id, 0, r.huge_req, r.huge_serial});
      continue;
    }
    const Chunk& c = *r.chunk;
    for (uint32_t p = 0; p < c.npages; p += c.pages[p].pages) {
      const PageMeta& m = c.pages[p];
      if (!m.used) continue;
      if (m.kind == RunKind::kLarge) {
        out->push_back({id, size_t{p} << page_shift_, m.req, m.serial});
        continue;
      }
      const Slab& s = *m.slab;
      for (uint32_t i = 0; i < s.nslots; i++) {
        if (s.IsLive(i)) out->push_back({id, s.run_offset + size_t{i} * s.slot_size, s.meta(i).req, s.meta(i).serial});
      }
    }
  }
}

size_t Arena::FreeWhere(const std::function<bool(uint64_t serial)>& pick) {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_) return 0;
  std::vector<Ref> live;
  ListLive(&live);
  size_t freed = 0;
  // Each found before any is freed: a free may release a segment (a huge
  // one, or a lost chunk's last allocation), and with it its id.
  for (const Ref& ref : live) {
    if (!pick(ref.serial)) continue;
    Located at;
    if (Locate(ref, &at) != Status::kOk) continue;
    if (!refs_.empty()) refs_.erase(RefKey(ref.segment, ref.offset));
    FreeLocated(at);
    freed++;
  }
  return freed;
}

Status Arena::Rename(const Ref& ref, uint64_t serial, size_t length, uint32_t count) {
  std::lock_guard<Mutex> lock(mu_);
  Located at;
  Status st = Locate(ref, &at);
  if (st != Status::kOk) return st;
  if (count == 0) return Status::kTooLarge;
  if (at.slab != nullptr) {
    SlotMeta& m = at.slab->meta(at.slot);
    if (length > at.slab->slot_size) return Status::kTooLarge;
    s_.used_bytes = s_.used_bytes - m.req + length;
    m.req = static_cast<uint16_t>(length);
    m.serial = serial;
  } else if (at.record->chunk == nullptr) {
    if (length != at.record->huge_req) return Status::kTooLarge;
    at.record->huge_serial = serial;
  } else {
    PageMeta& head = at.record->chunk->pages[at.first_page];
    if (length > size_t{head.pages} << page_shift_) return Status::kTooLarge;
    s_.used_bytes = s_.used_bytes - head.req + length;
    head.req = static_cast<uint32_t>(length);
    head.serial = serial;
  }
  const uint64_t key = RefKey(ref.segment, ref.offset);
  if (count > 1) {
    refs_[key] = count;
  } else if (!refs_.empty()) {
    refs_.erase(key);
  }
  return Status::kOk;
}

}  // namespace alloc
}  // namespace mmap_pool
