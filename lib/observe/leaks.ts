// Leak detection, with Netty's levels: a buffer the garbage collector takes
// before it was freed is a leak. A FinalizationRegistry watches a sample of
// the buffers handed out:
//
//   disabled  nothing is tracked
//   simple    about 1 in 128 allocations; reports that a leak happened
//   advanced  the same sample, plus the stack of the allocation
//   paranoid  every allocation, with its stack (for tests)
//
// Only the tracked buffer object is watched: a leak report means that object
// was collected unfreed, not that no view of its memory is left, so a leaked
// slot is reported, never freed behind the program's back.
import { channel } from 'node:diagnostics_channel';
import type { Caller } from '../errors.js';

export type LeakDetection = 'disabled' | 'simple' | 'advanced' | 'paranoid';
export const LEAK_LEVELS: readonly LeakDetection[] = ['disabled', 'simple', 'advanced', 'paranoid'];

/** What a 'leak' event carries. */
export interface LeakReport {
  /** Requested size of the leaked allocation, in bytes. */
  size: number;
  /** The stack where it was allocated ('advanced' and 'paranoid' only). */
  createdAt?: string;
}

const SAMPLE_INTERVAL = 128;
const leakChannel = channel('mmap-pool:leak');
/** Allocation sites already warned about, process-wide: one warning per site. */
const warnedSites = new Set<string>();

interface Held {
  size: number;
  epoch: number;
  serial: number;
  createdAt?: string;
  /** Set by freed(): the view is no leak when collected. */
  freed?: true;
}

export class LeakTracker {
  readonly level: LeakDetection;
  readonly #pool: string;
  readonly #report: (report: LeakReport) => void;
  readonly #registry: FinalizationRegistry<Held>;
  readonly #stacks: boolean;
  readonly #every: boolean;
  /**
   * Allocations until allocated() tracks the next one: the countdown of
   * every allocation the block cache does not hand out. The block cache
   * counts its own down in BlockCache.gap, a plain field of the cache, on
   * its fast path. One countdown for both would have to sit in an object of
   * its own (guard and secure pools have no block cache and still sample),
   * and the fast path reading it through that object is measurably slower
   * (about 2 ns of 32 in "pair 64 B"). Both take their lengths from
   * nextCountdown() (the block cache through nextGap()), the one source of
   * the sampling rate.
   */
  #countdown: number;
  /** Stacks of the live tracked allocations, by serial, for dump(). */
  readonly #stacksBySerial = new Map<number, string>();
  /**
   * Records of the live tracked allocations, by serial: the view itself is
   * left as it is (a property on it would show in util.inspect() and
   * assert.deepStrictEqual(), and give tracked Buffers a shape of their own).
   */
  readonly #live = new Map<number, Held>();
  // reset() and close() free everything at once: buffers tracked before
  // that are no longer leaks when collected.
  #epoch = 0;

  constructor(level: LeakDetection, pool: string, report: (report: LeakReport) => void) {
    this.level = level;
    this.#pool = pool;
    this.#report = report;
    this.#stacks = level === 'advanced' || level === 'paranoid';
    this.#every = level === 'paranoid';
    this.#countdown = nextCountdown();
    this.#registry = new FinalizationRegistry((held) => this.#collected(held));
  }

  /** Called for every allocation; tracks the sampled ones. */
  allocated(view: object, size: number, serial: number, caller: Caller): void {
    if (!this.#every && --this.#countdown !== 0) return;
    this.#countdown = nextCountdown();
    this.track(view, size, serial, caller);
  }

  /** How many allocations from now the next one to track is (1 at 'paranoid'): the block cache counts them down itself. */
  nextGap(): number {
    return this.#every ? 1 : nextCountdown();
  }

  /**
   * Tracks this allocation: records it by serial and watches its view. The
   * block cache calls it for the allocation it picked (nextGap()), and
   * remembers itself that it is tracked (it calls freedSerial()).
   */
  track(view: object, size: number, serial: number, caller: Caller): void {
    const held: Held = { size, epoch: this.#epoch, serial };
    if (this.#stacks) {
      held.createdAt = stackOf(caller);
      this.#stacksBySerial.set(serial, held.createdAt);
    }
    this.#registry.register(view, held);
    this.#live.set(serial, held);
  }

  /** Everything was freed at once (reset, close): forget what is tracked. */
  forgetAll(): void {
    this.#epoch++;
    this.#stacksBySerial.clear();
    this.#live.clear();
  }

  /** The allocation stack of a live tracked allocation, by its serial. */
  stackOf(serial: number): string | undefined {
    return this.#stacksBySerial.get(serial);
  }

  /**
   * The allocation with this serial was freed: it can no longer leak. The
   * registry keeps watching its view (unregister() would cost about 250 ns,
   * twice the rest of a tracked allocation's bookkeeping): its record says
   * it was freed.
   */
  freedSerial(serial: number): void {
    const held = this.#live.get(serial);
    if (held !== undefined) {
      this.#live.delete(serial);
      this.#forget(held);
    }
  }

  #forget(held: Held): void {
    held.freed = true;
    this.#stacksBySerial.delete(held.serial);
  }

  #collected(held: Held): void {
    if (held.freed === true || held.epoch !== this.#epoch) return;
    this.#stacksBySerial.delete(held.serial);
    this.#live.delete(held.serial);
    const report: LeakReport = held.createdAt === undefined ? { size: held.size } : { size: held.size, createdAt: held.createdAt };
    const site = held.createdAt ?? `pool:${this.#pool}`;
    if (!warnedSites.has(site)) {
      warnedSites.add(site);
      process.emitWarning(leakMessage(this.#pool, held), { code: 'MMAP_POOL_LEAK' });
    }
    if (leakChannel.hasSubscribers) leakChannel.publish({ pool: this.#pool, ...report });
    this.#report(report);
  }
}

function nextCountdown(): number {
  // Mean SAMPLE_INTERVAL, randomised so a periodic program cannot hide from it.
  return 1 + Math.floor(Math.random() * (2 * SAMPLE_INTERVAL - 1));
}

function stackOf(caller: Caller): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, caller);
  // Drop the "Error" line: what is left names the allocating function first.
  return (holder.stack ?? '').split('\n').slice(1).map((l) => l.trim()).join('\n');
}

function leakMessage(pool: string, held: Held): string {
  const head = `mmap-pool: a buffer of ${held.size} bytes from pool "${pool}" was garbage-collected without free() or release(); its memory stays allocated until the pool is reset or closed.`;
  if (held.createdAt !== undefined) return `${head}\nAllocated at:\n    ${held.createdAt.split('\n').join('\n    ')}`;
  return `${head} Set leakDetection: 'advanced' (sampled) or 'paranoid' (every allocation) to see where it was allocated.`;
}
