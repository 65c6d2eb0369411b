// A coarse clock for the ages of slot-cache allocations in dump(): reading
// performance.now() costs more (~50 ns) than a whole allocation from the
// cache, so a timer reads it every CLOCK_MS instead. The timer is unref'd
// (it never keeps the process alive), starts with the first pool that caches
// and uses node:timers' own setInterval, so fake timers installed later (by a
// test framework) neither stop it nor see it.
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
