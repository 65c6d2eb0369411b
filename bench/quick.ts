// A short comparison against Buffer for the tour (`npm start`) and for
// `npm run bench -- --quick`: three cases of bench/cases.ts with tiny time
// budgets, about half a second in all. Good enough to show the order of
// magnitude, no more: Buffer's side swings by 2x from run to run with the
// garbage collector's background threads (docs/performance.md); `npm run bench`
// measures properly.
import type { CompareOptions } from './harness.js';
import { runSpeedCase, speedCases, type SpeedResult } from './cases.js';
import { fmtNs } from './format.js';

/** The cases the tour shows. */
export const QUICK_CASES = ['pair-4k', 'zeroed-4k', 'pair-64'];

/** Timings of a quick run: 40 ms of untimed running, then 3 rounds of ~15 ms, per variant. */
export const QUICK_OPTIONS: CompareOptions & { batch: number } = {
  prewarmMs: 40, rounds: 3, timeMs: 12, warmupMs: 3, iterations: 8, batch: 200,
};

/** One line per result: `vs Buffer: pair 4 KiB  1.4x faster: pool 320 ns, Buffer 450 ns`. */
export function formatVsBuffer(r: SpeedResult, width = 0): string {
  const ratio = r.ratio >= 1 ? `${r.ratio.toFixed(1)}x faster` : `${r.ratio.toPrecision(2)}x (slower)`;
  return `vs Buffer: ${r.label.padEnd(width)}  ${ratio}: pool ${fmtNs(r.poolNs)}, Buffer ${fmtNs(r.bufferNs)}`;
}

/** Runs pair 4 KiB, zeroed 4 KiB and pair 64 B briefly; returns a heading and one line for each. */
export async function vsBuffer(): Promise<string[]> {
  const t0 = process.hrtime.bigint();
  const results: SpeedResult[] = [];
  for (const id of QUICK_CASES) {
    results.push(await runSpeedCase(speedCases.find((c) => c.id === id)!, QUICK_OPTIONS));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const width = Math.max(...results.map((r) => r.label.length));
  return [
    `vs Buffer (rough: a ${seconds.toFixed(1)} s run; \`npm run bench\` measures properly):`,
    ...results.map((r) => `  ${formatVsBuffer(r, width).replace(/^vs Buffer: /, '')}`),
  ];
}
