// Segments: what becomes of a pool's segments (chunks and huge mappings)
// once made, as the SlowPath finds out:
//
//   lost      someone else detached its ArrayBuffer (a web byte stream's
//             enqueue() or BYOB read(), ArrayBuffer.prototype.transfer()):
//             the allocator places nothing there again, its memory stays
//             mapped for its new owner, the block cache gives its free
//             blocks back; its allocations still count and can be freed
//   released  a huge allocation's mapping went back to the OS (or became a
//             spare, decayed SPARE_DECAY_MS later if not reused)
//   swept     after trim() and reset(): every lost one found, every one
//             this pool detached retired
//
// Mapped memory may change with each of these, so the pressure check lives
// here too. Nothing here emits an event in the middle of an allocation.
//
// Threads: the pool's JS thread only, like the pool.
import type { PoolMemory } from '../native/pool-memory.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { PressureWatch } from '../observe/pressure.js';

/**
 * How long a freed huge allocation's mapping (a spare, kept for the next
 * huge allocation of its size) stays as it is before its pages are handed to
 * the OS lazily (MADV_FREE): a program that frees and allocates huge buffers
 * back to back reuses warm pages; one that stops gives them up this soon
 * after (docs/design.md, "Huge allocations and spares").
 */
const SPARE_DECAY_MS = 100;

export class Segments {
  readonly #memory: PoolMemory;
  readonly #pressure: PressureWatch;
  /** The pool's block cache, told of lost segments; undefined for guard and secure pools, and once closed. */
  #cache: BlockCache | undefined;
  #closed = false;
  /** Set while a decay of spare huge mappings is due (SPARE_DECAY_MS). */
  #decayTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(memory: PoolMemory, cache: BlockCache | undefined, pressure: PressureWatch) {
    this.#memory = memory;
    this.#cache = cache;
    this.#pressure = pressure;
  }

  /**
   * Segment `id`'s ArrayBuffer was found detached. True when someone else
   * did that, now or before: the segment is lost. False when this pool did
   * (the segment went back; the id may name a new one). No event: this may
   * run in the middle of an allocation, and mapped memory does not change.
   */
  lose(id: number): boolean {
    if (!this.#memory.lose(id)) return false;
    this.#cache?.lose(id);
    return true;
  }

  /** A view of lost segment `id` was found by its serial: the block cache gives the segment's free blocks back. */
  lost(id: number): void {
    this.#cache?.lose(id);
  }

  /** Every segment whose ArrayBuffer someone else detached, lost now. */
  loseDetached(): void {
    for (const id of this.#memory.loseDetached()) this.#cache?.lose(id);
  }

  /** After trim() and reset(): lose every segment someone else detached, retire every one this pool detached. */
  sweep(): void {
    this.loseDetached();
    this.#memory.sweep();
    this.checkPressure();
  }

  /**
   * A huge allocation's mapping went back to the OS: forget its segment, and
   * let the pressure levels see the drop (so a later rise fires again).
   * Its mapping may now be a spare: decay spares not reused by then.
   */
  released(id: number): void {
    this.#memory.retire(id);
    this.checkPressure();
    if (this.#decayTimer === undefined) {
      this.#decayTimer = setTimeout(() => {
        this.#decayTimer = undefined;
        if (!this.#closed) this.#memory.decay();
      }, SPARE_DECAY_MS);
      this.#decayTimer.unref();
    }
  }

  /** Called whenever mapped memory may have changed: the 'pressure' event, if due. */
  checkPressure(): void {
    if (this.#pressure.active) this.#pressure.check(this.#memory.mapped());
  }

  /** The pool closed: no decay is due, and the cache is gone. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#decayTimer);
    this.#cache = undefined;
  }
}
