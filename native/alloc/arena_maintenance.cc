// Arena: the whole-pool operations (reset, trim, close) and the read-outs
// (stats, dump). Threads: each public method locks mu_.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "arena.h"

namespace mmap_pool {
namespace alloc {

namespace {
// Deletes the slabs of a chunk and makes the whole chunk one free run,
// keeping what is known about its pages' contents.
void ClearChunk(Chunk* c) {
  for (uint32_t p = 0; p < c->npages; p++) {
    PageMeta& m = c->pages[p];
    if (m.used && m.head == p && m.kind == RunKind::kSlab) delete m.slab;
    m.used = 0;
    m.kind = RunKind::kFree;
    m.slab = nullptr;
  }
  c->free_pages = c->npages;
  c->SetFreeBounds(0, c->npages);
}
}  // namespace

void Arena::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  free_runs_.clear();
  for (uint32_t id = 0; id < records_.size(); id++) {
    Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk == nullptr) {
      ReleaseSegment(id);
      continue;
    }
    ClearChunk(r.chunk);
    free_runs_.insert(FreeRunKey(r.chunk->npages, id, 0));
  }
  for (ClassState& cs : classes_) {
    cs.avail.head = nullptr;
    cs.spare = nullptr;
    cs.live = 0;
    cs.capacity = 0;
  }
  refs_.clear();
  s_.total_frees += s_.live_allocations;
  s_.live_allocations = 0;
  s_.used_bytes = 0;
  s_.allocated_bytes = 0;
  s_.huge_allocations = 0;
  s_.huge_bytes = 0;
}

size_t Arena::Trim() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return 0;
  size_t released = 0;
  for (uint32_t c = 0; c < kSmallClasses; c++) {
    ClassState& cs = classes_[c];
    if (cs.spare != nullptr) {
      ReleaseSlab(cs.spare);
      cs.spare = nullptr;
    }
  }
  for (uint32_t id = 0; id < records_.size(); id++) {
    Record& r = records_[id];
    if (r.chunk != nullptr && r.chunk->empty()) {
      released += r.segment->size;
      ReleaseSegment(id);
    }
  }
  // Discard the resident pages of the remaining free runs, range by range.
  const size_t ps = opt_.page_size;
  for (const FreeRunKey& run : free_runs_) {
    Chunk* c = records_[std::get<1>(run)].chunk;
    uint32_t end = std::get<2>(run) + std::get<0>(run);
    uint32_t p = std::get<2>(run);
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
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
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
    cs.avail.head = nullptr;
    cs.spare = nullptr;
    cs.live = cs.capacity = 0;
  }
  s_.live_allocations = 0;
  s_.used_bytes = s_.allocated_bytes = 0;
  s_.huge_allocations = 0;
  s_.huge_bytes = 0;
}

Stats Arena::GetStats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats out = s_;
  out.free_bytes = 0;
  for (const FreeRunKey& run : free_runs_) out.free_bytes += size_t{std::get<0>(run)} * opt_.page_size;
  out.classes.reserve(huge_class_limit_ + 1);
  for (uint32_t c = 0; c <= huge_class_limit_ && c < kMaxClasses; c++) {
    const ClassState& cs = classes_[c];
    out.classes.push_back({ClassSize(c), cs.live, IsSmallClass(c) ? cs.capacity : cs.live});
  }
  return out;
}

namespace {
void Append(std::string* s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Append(std::string* s, const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) s->append(buf, static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1);
}
}  // namespace

// JSON: {"pageSize","chunks":[{id,size,freePages,runs:[...]}],"huge":[...],
// "allocations":[{segment,offset,size,classSize}]}. Built by hand: it is
// flat, numeric and has no strings that need escaping.
std::string Arena::DumpJson() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t ps = opt_.page_size;
  std::string chunks, huge, allocs;
  for (uint32_t id = 0; id < records_.size(); id++) {
    const Record& r = records_[id];
    if (r.segment == nullptr) continue;
    if (r.chunk == nullptr) {
      Append(&huge, "%s{\"id\":%u,\"size\":%zu,\"mappedBytes\":%zu}", huge.empty() ? "" : ",",
             id, r.huge_req, r.segment->size);
      Append(&allocs, "%s{\"segment\":%u,\"offset\":0,\"size\":%zu,\"classSize\":null}",
             allocs.empty() ? "" : ",", id, r.huge_req);
      continue;
    }
    const Chunk& c = *r.chunk;
    Append(&chunks, "%s{\"id\":%u,\"size\":%zu,\"freePages\":%u,\"runs\":[", chunks.empty() ? "" : ",",
           id, r.segment->size, c.free_pages);
    bool first_run = true;
    for (uint32_t p = 0; p < c.npages;) {
      const PageMeta& m = c.pages[p];
      const char* sep = first_run ? "" : ",";
      first_run = false;
      if (!m.used) {
        Append(&chunks, "%s{\"page\":%u,\"pages\":%u,\"kind\":\"free\"}", sep, p, m.pages);
        p += m.pages;
        continue;
      }
      size_t cls_size = ClassSize(m.cls);
      if (m.kind == RunKind::kLarge) {
        Append(&chunks, "%s{\"page\":%u,\"pages\":%u,\"kind\":\"large\",\"classSize\":%zu,\"live\":1,\"capacity\":1}",
               sep, p, m.pages, cls_size);
        Append(&allocs, "%s{\"segment\":%u,\"offset\":%zu,\"size\":%u,\"classSize\":%zu}",
               allocs.empty() ? "" : ",", id, size_t{p} * ps, m.req, cls_size);
      } else {
        const Slab& s = *m.slab;
        Append(&chunks, "%s{\"page\":%u,\"pages\":%u,\"kind\":\"slab\",\"classSize\":%zu,\"live\":%u,\"capacity\":%u}",
               sep, p, m.pages, cls_size, s.nslots - s.nfree, s.nslots);
        for (uint32_t i = 0; i < s.nslots; i++) {
          if (!s.IsLive(i)) continue;
          Append(&allocs, "%s{\"segment\":%u,\"offset\":%zu,\"size\":%u,\"classSize\":%zu}",
                 allocs.empty() ? "" : ",", id, size_t{p} * ps + size_t{i} * s.slot_size,
                 static_cast<unsigned>(s.req[i]), cls_size);
        }
      }
      p += m.pages;
    }
    chunks += "]}";
  }
  std::string out;
  Append(&out, "{\"pageSize\":%zu,\"chunkSize\":%zu,\"hugeThreshold\":%zu,", ps, opt_.chunk_size,
         opt_.huge_threshold);
  out += "\"chunks\":[" + chunks + "],\"huge\":[" + huge + "],\"allocations\":[" + allocs + "]}";
  return out;
}

}  // namespace alloc
}  // namespace mmap_pool
