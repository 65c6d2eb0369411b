// A small layer over tinybench: cases whose variants run interleaved, round
// by round, in one process, and are compared by their medians. Each task
// runs `batch` operations per call so that the timer's own cost (tens of
// nanoseconds) is amortised; reported figures are per operation.
/**
 * What the variants add each result into a sink with (`sink = (sink + x) &
 * SINK_MASK`), so that neither side can be optimised away: it keeps the sink
 * a V8 small integer. A sink that grew past 2^30 became a heap number, which
 * cost an allocation per operation on both sides and made V8 deoptimise and
 * recompile every loop once it happened (docs/performance.md, "How it is measured").
 */
export const SINK_MASK = 0x3fffffff;

export interface Variant {
  name: string;
  /** One call performs `batch` operations. */
  run: () => void;
}

export interface CaseResult {
  name: string;
  /** Median ns per operation for each variant, in the order given. */
  ns: number[];
  /**
   * The same from each round's mean instead of its median (still the median
   * over rounds): it keeps the rare slow calls, garbage-collector pauses
   * above all, that a median leaves out.
   */
  meanNs: number[];
}

export interface CompareOptions {
  /** Rounds; in each, every variant runs once, in order. */
  rounds?: number;
  /** Time budget per variant per round, ms. */
  timeMs?: number;
  /** Warm-up per variant per round, ms. */
  warmupMs?: number;
  /** Minimum calls per variant per round (tinybench keeps going until both limits are met). */
  iterations?: number;
  /**
   * Untimed running of each variant before the first round, ms. A fresh
   * process needs it: until glibc's heap and V8's new space have grown,
   * Buffer.allocUnsafe(4096) costs 2-3x its steady-state time (page faults
   * on new heap memory, frequent scavenges), which per-round warm-ups of a
   * few ms do not cover.
   */
  prewarmMs?: number;
}

type BenchClass = new (options: {
  time: number; warmupTime: number; iterations: number; warmupIterations: number;
}) => {
  add(name: string, fn: () => void): unknown;
  run(): Promise<unknown>;
  tasks: { name: string; result?: { latency?: { p50?: number; mean?: number } } }[];
};

let BenchCtor: BenchClass | undefined;

async function loadBench(): Promise<BenchClass> {
  // tinybench is ESM-only; this file compiles to CommonJS.
  BenchCtor ??= ((await import('tinybench')) as unknown as { Bench: BenchClass }).Bench;
  return BenchCtor;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs the variants alternately for `rounds` rounds; returns the median ns/op of each. */
export async function compare(name: string, variants: Variant[], batch: number,
  { rounds = 7, timeMs = 150, warmupMs = 30, iterations = 64, prewarmMs = 0 }: CompareOptions = {}): Promise<CaseResult> {
  const Bench = await loadBench();
  for (const v of variants) {
    const end = performance.now() + prewarmMs;
    while (performance.now() < end) v.run();
  }
  const p50s: number[][] = variants.map(() => []);
  const means: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let v = 0; v < variants.length; v++) {
      const bench = new Bench({
        time: timeMs, warmupTime: warmupMs, iterations, warmupIterations: Math.min(16, iterations),
      });
      bench.add(variants[v].name, variants[v].run);
      await bench.run();
      const latency = bench.tasks[0].result?.latency;
      p50s[v].push(((latency?.p50 ?? NaN) * 1e6) / batch);
      means[v].push(((latency?.mean ?? NaN) * 1e6) / batch);
    }
  }
  return { name, ns: p50s.map(median), meanNs: means.map(median) };
}
