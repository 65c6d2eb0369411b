// FigureCounts: a Counts (lib/observe/counts.ts) kept in memory the shared
// pool owns, one Float64Array per attachment (native/addon/shared_pool.h
// Figures), so that stats() in any thread sums every thread's counts
// without stopping them. Layout (16 doubles; the addon reads the same):
//
//   [0 .. 7]   the block cache's allocations    allocs frees used peak closed
//   [8 .. 15]  every other allocation           allocs frees used peak closed moved
//
// `moved`: cached blocks shared (promoted, lib/threads/share.ts), each
// counted as a free in the first half and an allocation in the second, so
// that the sum counts it once. A thread writes its own with plain stores;
// another thread's read of an aligned double sees it whole, and a message
// between them (postMessage) orders them, so counts read after one are exact.
// docs/design.md, "Per-thread caches", says why here and not per batch.
//
// Threads: written by the attachment's own JS thread; read by the addon
// from any thread.

/** Where each half starts. */
export const CACHE_HALF = 0;
export const OTHER_HALF = 8;
const ALLOCS = 0;
const FREES = 1;
const USED = 2;
const PEAK = 3;
const CLOSED = 4;
const MOVED = 5;

export class FigureCounts {
  readonly #v: Float64Array;
  readonly #at: number;

  constructor(figures: Float64Array, half: number) {
    this.#v = figures;
    this.#at = half;
  }

  get allocs(): number { return this.#v[this.#at + ALLOCS]; }
  set allocs(n: number) { this.#v[this.#at + ALLOCS] = n; }
  get frees(): number { return this.#v[this.#at + FREES]; }
  set frees(n: number) { this.#v[this.#at + FREES] = n; }
  get used(): number { return this.#v[this.#at + USED]; }
  set used(n: number) { this.#v[this.#at + USED] = n; }
  get peak(): number { return this.#v[this.#at + PEAK]; }
  set peak(n: number) { this.#v[this.#at + PEAK] = n; }
  get closed(): number { return this.#v[this.#at + CLOSED]; }
  set closed(n: number) { this.#v[this.#at + CLOSED] = n; }
  /** Blocks of the cache shared since (the second half only). */
  get moved(): number { return this.#v[this.#at + MOVED]; }
  set moved(n: number) { this.#v[this.#at + MOVED] = n; }

  get live(): number {
    return this.allocs - this.frees - this.closed;
  }

  freeAll(): void {
    this.frees = this.allocs - this.closed;
    this.used = 0;
  }

  closeAll(): void {
    this.closed += this.live;
    this.used = 0;
  }

  count(size: number): void {
    this.allocs++;
    if ((this.used += size) > this.peak) this.peak = this.used;
  }

  uncount(size: number): void {
    this.frees++;
    this.used -= size;
  }
}
