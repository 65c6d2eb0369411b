// SlotCache: free blocks of the classes up to 64 KiB, kept on the JS side so
// that most allocations and frees never cross into native code (the idea of
// jemalloc's thread cache and Netty's PoolThreadCache).
//
//   native Arena                       SlotCache (one per pool; not for guard/secure)
//   ┌──────────────────────┐  refill   ┌───────────────────────────────────────────────┐
//   │ blocks of class c,   │ ────────> │ stack[c]: ids of free blocks, newest on top    │
//   │ allocated with the   │  (batch)  │                                               │
//   │ cache's serial 0     │ <──────── │ per block id k (typed arrays, grown by 2x):   │
//   └──────────────────────┘   flush   │   seg[k] off[k] cls[k]   where it is          │
//                              (half)  │   serial[k]  0 = free in the cache, else the  │
//                                      │              serial of the Buffer holding it  │
//                                      │   size[k] refs[k] born[k]   that allocation   │
//                                      └───────────────────────────────────────────────┘
//
// To the allocator every block here is one live allocation, whether it sits
// in a stack or is handed out; this class keeps what it knows of the
// handed-out ones, and Pool.stats() / dump() take the free ones out of the
// allocator's figures (fixStats, fixDump). A Buffer handed out from the cache
// carries k and its serial; free(buf) accepts it when serial[k] still equals
// its serial. A stale Buffer (freed, reset, or its block flushed and reused)
// fails that check and goes the slow way, to the allocator, which refuses it.
import { binding, HANDLE_SPAN, type NativeClassStats, type NativePool } from './binding.js';
import type { AllocationDump, PoolDump } from './stats.js';

/** Bytes one class may keep free in the cache (at least 4 blocks, at most 256). */
const CLASS_BUDGET = 64 * 1024;
const MAX_CACHED = 256;
const MIN_CACHED = 4;
/** Bytes one refill may bring, at most (and at most 1/16 of a chunk; at least one block). */
const REFILL_BUDGET = 16 * 1024;
const EMPTY = new Int32Array(0);

/** Which classes a cache serves and how much it keeps of each; shared by pools alike. */
interface ClassTable {
  /** Class index by (size + 15) >>> 4, for sizes 1 .. maxSize. */
  binOf: Uint8Array;
  maxSize: number;
  size: number[];
  /** Free blocks a class may keep; blocks one refill asks for. */
  cap: number[];
  batch: number[];
}

const tables = new Map<string, ClassTable>();

function classTable(classSizes: readonly number[], limit: number, chunkSize: number): ClassTable {
  const key = `${limit}/${chunkSize}`;
  let t = tables.get(key);
  if (t !== undefined) return t;
  const size = classSizes.filter((s) => s <= limit);
  const maxSize = size.length > 0 ? size[size.length - 1] : 0;
  const binOf = new Uint8Array((maxSize >>> 4) + 1);
  for (let q = 1, c = 0; q < binOf.length; q++) {
    while (size[c] < q * 16) c++;
    binOf[q] = c;
  }
  const cap = size.map((s) => Math.max(MIN_CACHED, Math.min(MAX_CACHED, Math.floor(CLASS_BUDGET / s))));
  const refill = Math.min(REFILL_BUDGET, chunkSize / 16);
  const batch = size.map((s, c) => Math.max(1, Math.min(cap[c] >>> 1, Math.floor(refill / s))));
  t = { binOf, maxSize, size, cap, batch };
  tables.set(key, t);
  return t;
}

export class SlotCache {
  /** Class index by (size + 15) >>> 4, for sizes 1 .. maxSize. */
  readonly binOf: Uint8Array;
  /** The largest size the cache serves. */
  readonly maxSize: number;
  readonly classSize: readonly number[];
  readonly #cap: readonly number[];
  readonly #batch: readonly number[];
  // Per class: its free ids are stacks[c][0 .. top[c]), newest last; a
  // stack grows by doubling up to the class's cap.
  readonly top: number[];
  /** Blocks the next refill of each class asks for: from 2, doubling up to the table's batch. */
  readonly #fill: number[];
  readonly stacks: Int32Array[];
  // Per block id.
  seg = new Int32Array(8);
  off = new Int32Array(8);
  cls = new Uint8Array(8);
  serial = new Int32Array(8);
  size = new Int32Array(8);
  refs = new Uint32Array(8);
  born = new Float64Array(8);
  /** Ids not naming a block: a stack, and the high-water mark of ids ever used. */
  #idle = new Int32Array(8);
  #idleTop = 0;
  #ids = 0;
  /** Blocks held from the allocator (free or handed out). */
  #held = 0;
  readonly #native: NativePool;

  /** `classSizes`: the allocator's class sizes, ascending; the cache serves those <= `limit`. */
  constructor(native: NativePool, classSizes: readonly number[], limit: number, chunkSize: number) {
    this.#native = native;
    const t = classTable(classSizes, limit, chunkSize);
    this.binOf = t.binOf;
    this.maxSize = t.maxSize;
    this.classSize = t.size;
    this.#cap = t.cap;
    this.#batch = t.batch;
    this.top = t.size.map(() => 0);
    this.#fill = t.batch.map((b) => Math.min(2, b));
    this.stacks = t.size.map(() => EMPTY);
  }

  /** Pops a free block of class `c`: its id, or -1 when the stack is empty. */
  pop(c: number): number {
    const t = this.top[c];
    if (t === 0) return -1;
    this.top[c] = t - 1;
    return this.stacks[c][t - 1];
  }

  /** Pushes block `k` (its serial already 0) back; flushes the older half of a full stack first. */
  push(k: number): void {
    const c = this.cls[k];
    let t = this.top[c];
    if (t === this.stacks[c].length) {
      if (t === this.#cap[c]) t = this.#flush(c, t >>> 1);
      else this.#growStack(c, t + 1);
    }
    this.stacks[c][t] = k;
    this.top[c] = t + 1;
  }

  /**
   * Brings new blocks of class `c` onto its stack: 2 the first time, twice
   * as many each time after, up to the class's batch (half its capacity, at
   * most 16 KiB or 1/16 of a chunk). Returns how many came (their ids on top
   * of the stack), or the allocator's negative status when none did.
   */
  refill(c: number): number {
    const want = this.#fill[c];
    this.#fill[c] = Math.min(want * 2, this.#batch[c]);
    const n = this.#native.refill(this.classSize[c], want, scratchFor(want));
    if (n < 0) return n;
    const scratch = scratchFor(n);
    let t = this.top[c];
    if (t + n > this.stacks[c].length) this.#growStack(c, t + n);
    const stack = this.stacks[c];
    // Lowest address on top: a fresh slab fills from its start.
    for (let i = n - 1; i >= 0; i--) {
      const k = this.#newId();
      const h = scratch[i];
      const s = Math.floor(h / HANDLE_SPAN);
      this.seg[k] = s;
      this.off[k] = h - s * HANDLE_SPAN;
      this.cls[k] = c;
      this.serial[k] = 0;
      stack[t++] = k;
    }
    this.top[c] = t;
    this.#held += n;
    return n;
  }

  /** The segment ids of the `n` blocks on top of class `c`'s stack (after refill). */
  topSegments(c: number, n: number): number[] {
    const out: number[] = [];
    const stack = this.stacks[c];
    for (let i = this.top[c] - n; i < this.top[c]; i++) out.push(this.seg[stack[i]]);
    return out;
  }

  /** Gives every free block back to the allocator (before trim(), or to make room). */
  flushAll(): void {
    for (let c = 0; c < this.top.length; c++) this.#flush(c, this.top[c]);
  }

  /** True when the cache holds any block at all. */
  get holding(): boolean {
    return this.#held > 0;
  }

  /** Forgets every block: the allocator has freed them all (reset). Old Buffers fail the serial check. */
  clear(): void {
    this.top.fill(0);
    this.#fill.forEach((_, c) => (this.#fill[c] = Math.min(2, this.#batch[c])));
    this.serial.fill(0);
    this.#idleTop = 0;
    this.#ids = 0;
    this.#held = 0;
  }

  /**
   * Takes the free cached blocks out of the allocator's class rows (to the
   * program they are free memory); returns their bytes, for allocatedBytes.
   */
  fixClasses(classes: NativeClassStats[]): number {
    let freeBytes = 0;
    for (let c = 0; c < this.top.length; c++) {
      const n = this.top[c];
      const row = classes[c];
      if (n === 0 || row === undefined) continue;
      row.live -= n;
      // Page-run classes count capacity as their live runs.
      if (this.classSize[c] > binding.smallMax) row.capacity -= n;
      freeBytes += n * this.classSize[c];
    }
    return freeBytes;
  }

  /**
   * dump() as the program sees it: a cached block handed out shows its own
   * size, serial and age; a free one is left out of the allocations and of
   * its run's live count.
   */
  fixDump(raw: Pick<PoolDump, 'chunks' | 'allocations' | 'pageSize'>, now: number): void {
    // Every held block by handle: its id when handed out, -1 when free here.
    const held = new Map<number, number>();
    for (let k = 0; k < this.#ids; k++) {
      if (this.serial[k] !== 0) held.set(this.seg[k] * HANDLE_SPAN + this.off[k], k);
    }
    for (let c = 0; c < this.top.length; c++) {
      for (let i = 0; i < this.top[c]; i++) {
        const k = this.stacks[c][i];
        held.set(this.seg[k] * HANDLE_SPAN + this.off[k], -1);
      }
    }
    const out: AllocationDump[] = [];
    for (const a of raw.allocations) {
      const k = a.serial === 0 ? held.get(a.segment * HANDLE_SPAN + a.offset) : undefined;
      if (k === undefined) {
        out.push(a);
      } else if (k < 0) {
        this.#freeInRun(raw, a);
      } else {
        a.size = this.size[k];
        a.serial = this.serial[k];
        a.ageMs = Math.max(0, Math.round(now - this.born[k]));
        out.push(a);
      }
    }
    raw.allocations = out;
  }

  #freeInRun(raw: Pick<PoolDump, 'chunks' | 'pageSize'>, a: AllocationDump): void {
    const chunk = raw.chunks.find((ch) => ch.id === a.segment);
    const page = Math.floor(a.offset / raw.pageSize);
    const run = chunk?.runs.find((r) => page >= r.page && page < r.page + r.pages);
    if (run !== undefined && run.kind !== 'free') {
      run.live--;
      if (run.kind === 'large') run.capacity--;
    }
  }

  // Gives the `n` oldest free blocks of class `c` back; returns the new top.
  #flush(c: number, n: number): number {
    const t = this.top[c];
    if (n === 0) return t;
    const stack = this.stacks[c];
    const scratch = scratchFor(n);
    if (this.#idle.length < this.#idleTop + n) this.#idle = grown(this.#idle, Math.max(this.#idle.length * 2, this.#idleTop + n));
    for (let i = 0; i < n; i++) {
      const k = stack[i];
      scratch[i] = this.seg[k] * HANDLE_SPAN + this.off[k];
      this.#idle[this.#idleTop++] = k;
    }
    this.#native.flush(this.classSize[c], scratch, n);
    stack.copyWithin(0, n, t);
    this.top[c] = t - n;
    this.#held -= n;
    return t - n;
  }

  #growStack(c: number, need: number): void {
    let n = Math.max(4, this.stacks[c].length * 2);
    while (n < need) n *= 2;
    this.stacks[c] = grown(this.stacks[c], n);
  }

  #newId(): number {
    if (this.#idleTop > 0) return this.#idle[--this.#idleTop];
    const k = this.#ids++;
    if (k === this.seg.length) this.#grow();
    return k;
  }

  #grow(): void {
    const n = this.seg.length * 2;
    this.seg = grown(this.seg, n);
    this.off = grown(this.off, n);
    this.cls = grown(this.cls, n);
    this.serial = grown(this.serial, n);
    this.size = grown(this.size, n);
    this.refs = grown(this.refs, n);
    this.born = grown(this.born, n);
  }
}

// Handles crossing to and from the allocator: one array for every pool of
// this thread (calls never overlap).
let scratch = new Float64Array(MAX_CACHED);

function scratchFor(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(n);
  return scratch;
}

/** A copy of `a` with room for `n` elements. */
function grown<T extends Int32Array | Uint32Array | Uint8Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}
