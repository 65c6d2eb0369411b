// FreeBatch: the frees a shared pool's attachment defers. The free() (or
// last release()) of a Buffer this thread holds as its allocation's only
// reference (adopted so: lib/threads/share.ts) is written here instead of
// being a native call under the arena's lock; the addon gives a whole
// batch back in one call under one hold of that lock (docs/design.md,
// "Deferred frees"). The memory is the tail of the attachment's figures,
// which the addon owns:
//
//   figures  [0 .. 15]        counts (lib/threads/figures.ts)
//            [16]             entries written
//            [17]             the addon's own (resets seen: docs/design.md)
//            [20 + 4i .. +3]  entry i: segment offset length serial
//
// free() counts the allocation freed at once, as ever, so stats() in any
// thread is as exact as before. An entry is written before the count that
// covers it, so a thread stopped between the two (worker.terminate())
// leaves that allocation as if free() had not been called; whatever the
// count covers, the attachment's end drains (close, exit, terminate,
// collection). The addon checks every entry exactly when it drains: one
// whose allocation was freed since through another view, or by a reset in
// another thread, is refused and counted back (each was counted twice).
//
// A batch goes back when it is full, at its pool's stats(), dump(),
// trim(), reset() and close(), and otherwise within FLUSH_MS of its first
// entry (one unref'd timer per thread while any batch waits).
//
// Threads: the attachment's own JS thread only.
import { setTimeout } from 'node:timers';

/** Entries a batch holds (native/addon/shared_pool.h Figures::kBatchMax). */
export const BATCH = 64;
/** Where the count and the entries start in the figures. */
const COUNT = 16;
const ENTRIES = 20;
/** The longest a deferred free waits for its batch to go back, ms. */
export const FLUSH_MS = 100;

// Batches with an entry, for the timer; one timer for all of this thread's.
const waiting = new Set<FreeBatch>();
let timer: ReturnType<typeof setTimeout> | undefined;

function flushWaiting(): void {
  timer = undefined;
  for (const batch of waiting) batch.flush();
  waiting.clear();
}

export class FreeBatch {
  readonly #v: Float64Array;
  readonly #drain: () => void;

  /** `figures`: the attachment's (with room for the batch); `drain`: gives the batch back (its native flushFrees()). */
  constructor(figures: Float64Array, drain: () => void) {
    this.#v = figures;
    this.#drain = drain;
  }

  /** Defers the free of the allocation at (segment, offset) of `length` bytes under `serial`. */
  add(segment: number, offset: number, length: number, serial: number): void {
    const v = this.#v;
    const n = v[COUNT];
    const at = ENTRIES + 4 * n;
    v[at] = segment;
    v[at + 1] = offset;
    v[at + 2] = length;
    v[at + 3] = serial;
    v[COUNT] = n + 1;
    if (n === 0) this.#wait();
    else if (n + 1 === BATCH) this.#drain();
  }

  /** Every waiting entry goes back now. */
  flush(): void {
    if (this.#v[COUNT] !== 0) this.#drain();
  }

  #wait(): void {
    waiting.add(this);
    if (timer === undefined) {
      timer = setTimeout(flushWaiting, FLUSH_MS);
      timer.unref();
    }
  }
}
