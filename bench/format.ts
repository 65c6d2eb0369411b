// How the benchmarks write their figures: a ratio, a time, a size and a
// goal's verdict, the same in the console lines and in RESULTS.md.
//
// Threads: none; values only.
const KiB = 1024;
const MiB = 1024 * KiB;

/** A ratio: `12x`, `1.34x`, `0.57x` (two significant digits below 1). */
export const ratio = (r: number): string => (r >= 10 ? `${r.toFixed(0)}x` : r >= 1 ? `${r.toFixed(2)}x` : `${r.toPrecision(2)}x`);

/** A goal's verdict: `met`, or `NOT met` (in bold for Markdown). */
export const verdict = (met: boolean, markdown = true): string => (met ? 'met' : markdown ? '**NOT met**' : 'NOT met');

/** A time in nanoseconds: `320 ns`, `12.5 µs`, `1.25 ms`. */
export function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${Math.round(ns).toLocaleString('en-US')} ns`;
}

/** A time in microseconds: `12.5 µs`, `1.25 ms`. */
export const usText = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`);

/** A size in bytes: `64 B`, `4 KiB`, `16 MiB`. */
export const sizeText = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`);
