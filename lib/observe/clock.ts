// A coarse clock for the ages of block-cache allocations in dump(): reading
// performance.now() costs more (~50 ns) than a whole allocation from the
// cache, so a timer reads it every CLOCK_MS instead (and tick() between, for
// a loop that keeps the timer from running). The timer is unref'd (it never
// keeps the process alive), starts with the first pool that caches and uses
// node:timers' own setInterval, so fake timers installed later (by a test
// framework) neither stop it nor see it.
import { performance } from 'node:perf_hooks';
import { setInterval } from 'node:timers';

/** Milliseconds on performance.now()'s scale, at most CLOCK_MS old. */
export const CLOCK_MS = 100;

export const coarseClock = { now: performance.now() };

let timer: ReturnType<typeof setInterval> | undefined;

export function startCoarseClock(): void {
  if (timer !== undefined) return;
  coarseClock.now = performance.now();
  timer = setInterval(() => {
    coarseClock.now = performance.now();
  }, CLOCK_MS);
  timer.unref();
}

let ticks = 0;

/**
 * Reads the clock on every 16th call: what a block cache's refill calls, so
 * that ages stay right in a busy loop that never lets the timer run, at a
 * small fraction of a read per refill.
 */
export function tick(): void {
  if ((++ticks & 15) === 0) coarseClock.now = performance.now();
}
