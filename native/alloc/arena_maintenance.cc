// Arena: the whole-pool operations (reset, trim, close) and the read-outs
// (stats, dump). Threads: each public method locks mu_.
#include <cstring>
#include <string>
#include <utility>

#include "arena.h"

namespace mmap_pool {
namespace alloc {

namespace {
// Deletes the slabs of a chunk and makes the whole chunk one free run,
// keeping what is known about its pages' contents.
void ClearChunk(Chunk* c) {
  for (uint32_t p = 0; p < c->npages; p++) {
    PageMeta& m = c->pages[p];
    if (m.used && m.head == p && m.kind == RunKind::kSlab) Slab::Destroy(m.slab);
    m.used = 0;
    m.kind = RunKind::kFree;
    m.slab = nullptr;
  }
  c->free_pages = c->npages;
  c->busy = 0;
  c->SetFreeBounds(0, c->npages);
}
}  // namespace

void Arena::Reset() {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_) return;
  s_.total_frees += LiveAllocations();  // before the counts it sums are cleared
  // Lost chunks (Lose) go, their allocations with the rest; while the
  // index is whole (a release may move the top chunk and re-key runs).
  for (uint32_t id = 0; id < records_.size(); id++) {
    if (records_[id].chunk != nullptr && records_[id].chunk->lost) ReleaseLost(records_[id].chunk);
  }
  free_runs_.clear();
  for (uint32_t id = 0; id < records_.size(); id++) {
    Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk == nullptr) {
      ReleaseSegment(id);
      continue;
    }
    if (opt_.zero_on_free) {
      // Wipe what was written; pages never touched are zero already and
      // stay unfaulted.
      for (uint32_t p = 0; p < r.chunk->npages; p++) {
        PageMeta& m = r.chunk->pages[p];
        if (!m.dirty) continue;
        std::memset(r.segment->base + size_t{p} * opt_.page_size, 0, opt_.page_size);
        m.dirty = 0;
      }
    }
    ClearChunk(r.chunk);
    free_runs_.insert(RunKey(id, 0, r.chunk->npages));
  }
  for (ClassState& cs : classes_) {
    cs.cur = nullptr;
    cs.avail.root = nullptr;
    cs.empty = nullptr;
    cs.live = 0;
    cs.capacity = 0;
  }
  // Every chunk is empty now, and stays mapped: none counts as idle.
  for (Chunk* c = idle_.head; c != nullptr; c = idle_.head) idle_.Remove(c);
  refs_.clear();
  s_.used_bytes = 0;
  s_.huge_allocations = 0;
  s_.huge_bytes = 0;
}

// Gives back the classes' empty slabs, then every chunk left empty (the idle
// ones among them). Returns the bytes unmapped. The caller holds mu_.
uint32_t Arena::ReleaseEmptySlabs() {
  uint32_t released = 0;
  for (uint32_t c = 0; c < kSmallClasses; c++) {
    ClassState& cs = classes_[c];
    Slab* empty = cs.empty;
    if (empty != nullptr) {
      cs.empty = nullptr;
      Unlist(empty);
      ReleaseSlab(empty);
      released++;
    }
  }
  return released;
}

size_t Arena::ReleaseEmptyChunks() {
  size_t released = 0;
  ReleaseEmptySlabs();
  for (uint32_t id = 0; id < records_.size(); id++) {
    Record& r = records_[id];
    if (r.chunk != nullptr && r.chunk->empty()) {
      released += r.segment->size;
      ReleaseSegment(id);
    }
  }
  return released;
}

size_t Arena::Trim() {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_) return 0;
  size_t released = ReleaseSpares() + ReleaseEmptyChunks();
  // Discard the resident pages of the remaining free runs, range by range.
  const size_t ps = opt_.page_size;
  for (const FreeRunKey& run : free_runs_) {
    Chunk* c = records_[run.id()].chunk;
    uint32_t end = run.first + run.pages();
    uint32_t p = run.first;
    while (p < end) {
      if (!c->pages[p].resident) {
        p++;
        continue;
      }
      uint32_t q = p;
      while (q < end && c->pages[q].resident) q++;
      bool zeroed = false;
      size_t bytes = source_->Discard(c->segment, size_t{p} * ps, size_t{q - p} * ps, &zeroed);
      if (bytes > 0) {
        released += bytes;
        for (uint32_t i = p; i < q; i++) {
          c->pages[i].resident = 0;
          if (zeroed) c->pages[i].dirty = 0;
        }
      }
      p = q;
    }
  }
  return released;
}

void Arena::Close() {
  std::lock_guard<Mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
  ReleaseSpares();
  for (uint32_t id = 0; id < records_.size(); id++) {
    Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk != nullptr) ClearChunk(r.chunk);
    ReleaseSegment(id);
  }
  records_.clear();
  free_ids_.clear();
  free_runs_.clear();
  refs_.clear();
  for (ClassState& cs : classes_) {
    cs.cur = nullptr;
    cs.avail.root = nullptr;
    cs.empty = nullptr;
    cs.live = cs.capacity = 0;
  }
  idle_ = ChunkList();
  top_chunk_ = UINT32_MAX;
  s_.used_bytes = 0;
  s_.huge_allocations = 0;
  s_.huge_bytes = 0;
}

size_t Arena::MappedBytes() {
  std::lock_guard<Mutex> lock(mu_);
  return s_.mapped_bytes;
}

size_t Arena::MappedInUseBytes() {
  std::lock_guard<Mutex> lock(mu_);
  return s_.mapped_bytes - s_.spare_bytes;
}

Stats Arena::GetStats() {
  std::lock_guard<Mutex> lock(mu_);
  Stats out = s_;
  out.live_allocations = LiveAllocations();
  out.allocated_bytes = AllocatedBytes();
  out.free_bytes = 0;
  for (const FreeRunKey& run : free_runs_) out.free_bytes += size_t{run.pages()} * opt_.page_size;
  out.resident_known = true;
  for (const Record& r : records_) {
    size_t bytes = 0;
    if (r.segment == nullptr) continue;
    if (!source_->ResidentBytes(r.segment, &bytes)) {
      out.resident_known = false;
      break;
    }
    out.resident_bytes += bytes;
  }
  for (const Spare& sp : spare_) {
    size_t bytes = 0;
    if (!out.resident_known) break;
    if (!source_->ResidentBytes(sp.segment, &bytes)) {
      out.resident_known = false;
      break;
    }
    out.resident_bytes += bytes;
  }
  if (!out.resident_known) out.resident_bytes = 0;
  out.classes.reserve(huge_class_limit_ + 1);
  for (uint32_t c = 0; c <= huge_class_limit_ && c < kMaxClasses; c++) {
    const ClassState& cs = classes_[c];
    out.classes.push_back({ClassSize(c), cs.live, IsSmallClass(c) ? cs.capacity : cs.live});
  }
  return out;
}

ArenaDump Arena::Dump() {
  std::lock_guard<Mutex> lock(mu_);
  const size_t ps = opt_.page_size;
  const uint32_t now = Now();
  ArenaDump d;
  d.page_size = ps;
  d.chunk_size = opt_.chunk_size;
  d.huge_threshold = opt_.huge_threshold;
  d.spare_bytes = s_.spare_bytes;
  for (uint32_t id = 0; id < records_.size(); id++) {
    const Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk == nullptr) {
      d.huge.push_back({id, r.huge_req, r.segment->size});
      d.allocations.push_back({id, 0, r.huge_req, 0, r.huge_serial, uint32_t(now - r.huge_born)});
      continue;
    }
    const Chunk& c = *r.chunk;
    ChunkDump chunk;
    chunk.id = id;
    chunk.size = r.segment->size;
    chunk.free_pages = c.free_pages;
    for (uint32_t p = 0; p < c.npages; p += c.pages[p].pages) {
      const PageMeta& m = c.pages[p];
      RunDump run;
      run.page = p;
      run.pages = m.pages;
      if (m.used) {
        run.class_size = ClassSize(m.cls);
        if (m.kind == RunKind::kLarge) {
          run.kind = RunDump::Kind::kLarge;
          run.live = run.capacity = 1;
          d.allocations.push_back({id, size_t{p} * ps, m.req, run.class_size, m.serial, uint32_t(now - m.born)});
        } else {
          const Slab& s = *m.slab;
          run.kind = RunDump::Kind::kSlab;
          run.live = s.nslots - s.nfree;
          run.capacity = s.nslots;
          for (uint32_t i = 0; i < s.nslots; i++) {
            if (!s.IsLive(i)) continue;
            const SlotMeta& slot = s.meta(i);
            d.allocations.push_back({id, size_t{p} * ps + size_t{i} * s.slot_size, slot.req, run.class_size,
                                     slot.serial, uint32_t(now - slot.born)});
          }
        }
      }
      chunk.runs.push_back(run);
    }
    d.chunks.push_back(std::move(chunk));
  }
  return d;
}

}  // namespace alloc
}  // namespace mmap_pool
