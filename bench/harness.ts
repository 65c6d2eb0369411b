// A small layer over tinybench: cases whose variants run interleaved, round
// by round, in one process, and are compared by their medians. Each task
// runs `batch` operations per call so that the timer's own cost (tens of
// nanoseconds) is amortised; reported figures are per operation.
export interface Variant {
  name: string;
  /** One call performs `batch` operations. */
  run: () => void;
}

export interface CaseResult {
  name: string;
  /** Median ns per operation for each variant, in the order given. */
  ns: number[];
}

type BenchClass = new (options: { time: number; warmupTime: number }) => {
  add(name: string, fn: () => void): unknown;
  run(): Promise<unknown>;
  tasks: { name: string; result?: { latency?: { p50?: number } } }[];
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
  { rounds = 7, timeMs = 150 }: { rounds?: number; timeMs?: number } = {}): Promise<CaseResult> {
  const Bench = await loadBench();
  const samples: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let v = 0; v < variants.length; v++) {
      const bench = new Bench({ time: timeMs, warmupTime: 30 });
      bench.add(variants[v].name, variants[v].run);
      await bench.run();
      const p50ms = bench.tasks[0].result?.latency?.p50 ?? NaN;
      samples[v].push((p50ms * 1e6) / batch);
    }
  }
  return { name, ns: samples.map(median) };
}
