// The speed cases of the performance issue: each runs the same work through
// a Pool and through Node's own Buffer, interleaved round by round in this
// process (harness.ts), and is judged by ratio = Buffer time / pool time, so
// above 1 the pool is faster. The two sides differ only in the allocator:
// same sizes, same bytes touched, every Buffer consumed into `sink` so that
// neither side can be optimised away. The pools run with leakDetection
// 'disabled' (what a service that frees everything itself would choose),
// except the one case that says 'simple', the default.
import { Pool } from '../lib/index.js';
import { compare, type CompareOptions, type Variant } from './harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Stride for touching every page (the Linux x64 page size; a smaller one would only touch more). */
const PAGE = 4096;

let sink = 0;

export interface SpeedResult {
  id: string;
  label: string;
  goal: number;
  poolNs: number;
  bufferNs: number;
  /** bufferNs / poolNs: above 1 the pool is faster. */
  ratio: number;
  /** The same from means (GC pauses included): see CaseResult.meanNs. */
  meanRatio: number;
  poolMeanNs: number;
  bufferMeanNs: number;
  /** Extra lines for the report (the churn case's memory efficiency). */
  notes: string[];
  /** Churn only: stats().usedBytes / stats().mappedBytes at the end of the run. */
  efficiency?: { usedBytes: number; allocatedBytes: number; mappedBytes: number; ratio: number };
}

export interface SpeedCase {
  /** The name to run it by: `npm run bench -- pair-4k`. */
  id: string;
  /** Row label in tables and the chart. */
  label: string;
  /** What one operation is, on each side (for RESULTS.md). */
  work: string;
  /** Minimum ratio the issue asks for. */
  goal: number;
  /** Operations per timed call. */
  batch: number;
  options?: CompareOptions;
  /** Makes the pool, returns [pool variant, Buffer variant] and a finisher that closes it. */
  setup(batch: number): { variants: [Variant, Variant]; finish(result: SpeedResult): void };
}

function pairCase(id: string, label: string, size: number, goal: number,
  leakDetection: 'disabled' | 'simple' = 'disabled'): SpeedCase {
  return {
    id, label, goal, batch: 1000,
    work: `pool.allocUnsafe(${size}) + pool.free() | Buffer.allocUnsafe(${size})` +
      (leakDetection === 'simple' ? ` (pool with leakDetection: 'simple', the default)` : ''),
    setup(batch) {
      const pool = new Pool({ name: id, leakDetection });
      return {
        variants: [
          { name: 'pool', run: () => {
            for (let i = 0; i < batch; i++) {
              const b = pool.allocUnsafe(size);
              sink += b.length;
              pool.free(b);
            }
          } },
          { name: 'Buffer', run: () => {
            for (let i = 0; i < batch; i++) {
              const b = Buffer.allocUnsafe(size);
              sink += b.length;
            }
          } },
        ],
        finish: () => pool.close(),
      };
    },
  };
}

const zeroed4k: SpeedCase = {
  id: 'zeroed-4k', label: 'zeroed 4 KiB', goal: 5, batch: 1000,
  work: 'pool.alloc(4096) + pool.free() | Buffer.alloc(4096)',
  setup(batch) {
    const pool = new Pool({ name: 'zeroed-4k', leakDetection: 'disabled' });
    return {
      variants: [
        { name: 'pool', run: () => {
          for (let i = 0; i < batch; i++) {
            const b = pool.alloc(4096);
            sink += b.length;
            pool.free(b);
          }
        } },
        { name: 'Buffer', run: () => {
          for (let i = 0; i < batch; i++) {
            const b = Buffer.alloc(4096);
            sink += b.length;
          }
        } },
      ],
      finish: () => pool.close(),
    };
  },
};

const HUGE = 16 * MiB;
const huge16m: SpeedCase = {
  id: 'huge-16m', label: 'huge 16 MiB', goal: 1, batch: 1,
  work: 'pool.allocUnsafe(16 MiB), write one byte per 4 KiB page, pool.free() | the same with Buffer.allocUnsafe',
  options: { rounds: 7, timeMs: 150, iterations: 32 },
  setup(batch) {
    const pool = new Pool({ name: 'huge-16m', leakDetection: 'disabled' });
    return {
      variants: [
        { name: 'pool', run: () => {
          for (let i = 0; i < batch; i++) {
            const b = pool.allocUnsafe(HUGE);
            for (let o = 0; o < HUGE; o += PAGE) b[o] = o >>> 12;
            sink += b[HUGE - PAGE];
            pool.free(b);
          }
        } },
        { name: 'Buffer', run: () => {
          for (let i = 0; i < batch; i++) {
            const b = Buffer.allocUnsafe(HUGE);
            for (let o = 0; o < HUGE; o += PAGE) b[o] = o >>> 12;
            sink += b[HUGE - PAGE];
          }
        } },
      ],
      finish: () => pool.close(),
    };
  },
};

/** Sizes log-uniform over [16 B, 64 KiB], from a seeded PRNG (mulberry32), so every run and both sides see the same sequence. */
export function churnSizes(count: number, seed = 0x5eed): Uint32Array {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const sizes = new Uint32Array(count);
  for (let i = 0; i < count; i++) sizes[i] = Math.min(64 * KiB, Math.floor(16 * 4096 ** next()));
  return sizes;
}

const WINDOW = 4096;
const SIZES = churnSizes(1 << 16);
const churn: SpeedCase = {
  id: 'churn', label: 'churn', goal: 3, batch: 1000,
  work: `sizes log-uniform 16 B–64 KiB (seeded), ${WINDOW} live buffers, each allocation writes its first byte; ` +
    'pool: the oldest is freed first | Buffer.allocUnsafe: the oldest is dropped for the GC',
  setup(batch) {
    const pool = new Pool({ name: 'churn', leakDetection: 'disabled' });
    const poolRing: (Buffer | undefined)[] = new Array(WINDOW).fill(undefined);
    const bufRing: (Buffer | undefined)[] = new Array(WINDOW).fill(undefined);
    let pk = 0;
    let bk = 0;
    return {
      variants: [
        { name: 'pool', run: () => {
          for (let i = 0; i < batch; i++, pk++) {
            const j = pk & (WINDOW - 1);
            const old = poolRing[j];
            if (old !== undefined) pool.free(old);
            const b = pool.allocUnsafe(SIZES[pk & (SIZES.length - 1)]);
            b[0] = pk;
            sink += b.length;
            poolRing[j] = b;
          }
        } },
        { name: 'Buffer', run: () => {
          for (let i = 0; i < batch; i++, bk++) {
            const j = bk & (WINDOW - 1);
            const b = Buffer.allocUnsafe(SIZES[bk & (SIZES.length - 1)]);
            b[0] = bk;
            sink += b.length;
            bufRing[j] = b;
          }
        } },
      ],
      finish(result) {
        const s = pool.stats();
        const ratio = s.usedBytes / s.mappedBytes;
        result.efficiency = { usedBytes: s.usedBytes, allocatedBytes: s.allocatedBytes, mappedBytes: s.mappedBytes, ratio };
        result.notes.push(`after ${pk.toLocaleString('en-US')} pool allocations: ${s.liveAllocations} live, ` +
          `usedBytes ${mib(s.usedBytes)}, allocatedBytes ${mib(s.allocatedBytes)}, mappedBytes ${mib(s.mappedBytes)}`);
        pool.close();
      },
    };
  },
};

function mib(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

/** Every speed case, in report order. */
export const speedCases: SpeedCase[] = [
  pairCase('pair-64', 'pair 64 B', 64, 0.9),
  pairCase('pair-64-simple', "pair 64 B, leakDetection 'simple'", 64, 0.9, 'simple'),
  pairCase('pair-4k', 'pair 4 KiB', 4096, 10),
  pairCase('pair-64k', 'pair 64 KiB', 65536, 10),
  zeroed4k,
  huge16m,
  churn,
];

/** Timings of a full run, unless a case sets its own: 100 ms untimed, then 9 rounds of ~230 ms, per variant. */
const FULL: CompareOptions = { prewarmMs: 100, rounds: 9, timeMs: 200, warmupMs: 30 };

/** Runs one case; `options` (the --quick timings) override the case's own. */
export async function runSpeedCase(c: SpeedCase, options?: CompareOptions & { batch?: number }): Promise<SpeedResult> {
  const batch = options?.batch !== undefined ? Math.max(1, Math.min(c.batch, options.batch)) : c.batch;
  const { variants, finish } = c.setup(batch);
  const r = await compare(c.label, variants, batch, { ...FULL, ...c.options, ...options });
  const result: SpeedResult = {
    id: c.id, label: c.label, goal: c.goal,
    poolNs: r.ns[0], bufferNs: r.ns[1], ratio: r.ns[1] / r.ns[0],
    poolMeanNs: r.meanNs[0], bufferMeanNs: r.meanNs[1], meanRatio: r.meanNs[1] / r.meanNs[0],
    notes: [],
  };
  finish(result);
  if (sink === -1) console.log(sink);
  return result;
}
