// The speed cases of the performance issue: each runs the same work through
// a Pool and through Node's own Buffer, interleaved round by round in this
// process (harness.ts), and is judged by ratio = Buffer time / pool time, so
// above 1 the pool is faster. The two sides differ only in the allocator:
// same sizes, same bytes touched, every Buffer consumed into `sink` so that
// neither side can be optimised away. The pools run with leakDetection
// 'disabled' (what a service that frees everything itself would choose),
// except the one case that says 'simple', the default.
//
// Buffer comes from node:buffer, not the global: in Node 20 the global
// `Buffer` is an accessor on globalThis, and reading it costs about 8 ns
// (a getter call through a global load IC) on every use, which a module's
// own import does not. The pool's side reads its pool from a closure, so a
// Buffer side that paid the getter would be judged on work that is not
// Buffer's (docs/performance.md, "How it is measured").
import { Buffer } from 'node:buffer';

import { Pool, type PoolOptions } from '../lib/index.js';
import { compare, SINK_MASK as HARNESS_SINK_MASK, type CompareOptions, type Variant } from './harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Stride for touching every page (the Linux x64 page size; a smaller one would only touch more). */
const PAGE = 4096;

// Kept below 2^30 with SINK_MASK (harness.ts), a local const here: an
// imported binding would be a property read at every use.
const SINK_MASK = HARNESS_SINK_MASK;
let sink = 0;

export interface SpeedResult {
  id: string;
  label: string;
  /** Undefined for a note (see SpeedCase.goal). */
  goal?: number;
  variantOf?: string;
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
  /**
   * Minimum ratio the issue asks for. Undefined for a note: a variant of a
   * goal case with other pool options, or a measurement the issue sets no
   * goal for. Notes are reported in a table of their own, never in the chart.
   */
  goal?: number;
  /** A variant: the id of the case it differs from only by pool options. */
  variantOf?: string;
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
              sink = (sink + b.length) & SINK_MASK;
              pool.free(b);
            }
          } },
          { name: 'Buffer', run: () => {
            for (let i = 0; i < batch; i++) {
              const b = Buffer.allocUnsafe(size);
              sink = (sink + b.length) & SINK_MASK;
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
            sink = (sink + b.length) & SINK_MASK;
            pool.free(b);
          }
        } },
        { name: 'Buffer', run: () => {
          for (let i = 0; i < batch; i++) {
            const b = Buffer.alloc(4096);
            sink = (sink + b.length) & SINK_MASK;
          }
        } },
      ],
      finish: () => pool.close(),
    };
  },
};

const HUGE = 16 * MiB;
/** Pool options as a label suffix: `prefault, hugePages`. */
function optionText(o: PoolOptions): string {
  return Object.entries(o).map(([k, v]) => (v === true ? k : `${k} ${typeof v === 'number' ? mibText(v) : String(v)}`)).join(', ');
}

/** pool.allocUnsafe(16 MiB) (its own mapping), one byte written per page, pool.free() (unmapped at once). */
function hugeCase(id: string, extra: PoolOptions = {}, goal?: number): SpeedCase {
  const variant = Object.keys(extra).length > 0;
  return {
    id, label: variant ? `huge 16 MiB, ${optionText(extra)}` : 'huge 16 MiB', goal, batch: 1,
    variantOf: variant ? 'huge-16m' : undefined,
    work: 'pool.allocUnsafe(16 MiB), write one byte per 4 KiB page, pool.free() | the same with Buffer.allocUnsafe' +
      (variant ? ` (pool with ${optionText(extra)})` : ''),
    options: { rounds: 7, timeMs: 150, iterations: 32 },
    setup(batch) {
      const pool = new Pool({ name: id, leakDetection: 'disabled', ...extra });
      return {
        variants: [
          { name: 'pool', run: () => {
            for (let i = 0; i < batch; i++) {
              const b = pool.allocUnsafe(HUGE);
              for (let o = 0; o < HUGE; o += PAGE) b[o] = o >>> 12;
              sink = (sink + b[HUGE - PAGE]) & SINK_MASK;
              pool.free(b);
            }
          } },
          { name: 'Buffer', run: () => {
            for (let i = 0; i < batch; i++) {
              const b = Buffer.allocUnsafe(HUGE);
              for (let o = 0; o < HUGE; o += PAGE) b[o] = o >>> 12;
              sink = (sink + b[HUGE - PAGE]) & SINK_MASK;
            }
          } },
        ],
        finish: () => pool.close(),
      };
    },
  };
}

const FILL = 16 * MiB;
const FILL_SIZE = 64 * KiB;
/**
 * A pool's growth phase: a new pool fills 16 MiB with 64 KiB allocations
 * (every page written), then close(). Every chunk is mapped fresh, which is
 * where chunkSize, prefault and hugePages show; a warm pool reuses its chunks.
 */
function fillCase(id: string, extra: PoolOptions = {}): SpeedCase {
  const variant = Object.keys(extra).length > 0;
  const count = FILL / FILL_SIZE;
  return {
    id, label: variant ? `fill 16 MiB, ${optionText(extra)}` : 'fill 16 MiB', batch: 1,
    variantOf: variant ? 'fill-16m' : undefined,
    work: `new Pool(), ${count} x pool.allocUnsafe(64 KiB) writing one byte per 4 KiB page, pool.close() | ` +
      `${count} x Buffer.allocUnsafe(64 KiB), the same writes, all dropped for the GC` +
      (variant ? ` (pool with ${optionText(extra)})` : ' (pool defaults: 4 MiB chunks)'),
    options: { rounds: 7, timeMs: 150, iterations: 16 },
    setup(batch) {
      const held: Buffer[] = new Array(count);
      return {
        variants: [
          { name: 'pool', run: () => {
            for (let i = 0; i < batch; i++) {
              const pool = new Pool({ name: id, leakDetection: 'disabled', ...extra });
              for (let k = 0; k < count; k++) {
                const b = pool.allocUnsafe(FILL_SIZE);
                for (let o = 0; o < FILL_SIZE; o += PAGE) b[o] = k;
                held[k] = b;
              }
              sink = (sink + held[count - 1][0]) & SINK_MASK;
              pool.close();
            }
          } },
          { name: 'Buffer', run: () => {
            for (let i = 0; i < batch; i++) {
              for (let k = 0; k < count; k++) {
                const b = Buffer.allocUnsafe(FILL_SIZE);
                for (let o = 0; o < FILL_SIZE; o += PAGE) b[o] = k;
                held[k] = b;
              }
              sink = (sink + held[count - 1][0]) & SINK_MASK;
            }
          } },
        ],
        finish: () => {
          held.length = 0;
        },
      };
    },
  };
}

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
function churnCase(id: string, extra: PoolOptions = {}, goal?: number): SpeedCase {
  const variant = Object.keys(extra).length > 0;
  return {
    id, label: variant ? `churn, ${optionText(extra)}` : 'churn', goal, batch: 1000,
    variantOf: variant ? 'churn' : undefined,
    work: `sizes log-uniform 16 B–64 KiB (seeded), ${WINDOW} live buffers, each allocation writes its first byte; ` +
      'pool: the oldest is freed first | Buffer.allocUnsafe: the oldest is dropped for the GC' +
      (variant ? ` (pool with ${optionText(extra)})` : ''),
    setup(batch) {
      const pool = new Pool({ name: id, leakDetection: 'disabled', ...extra });
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
              sink = (sink + b.length) & SINK_MASK;
              poolRing[j] = b;
            }
          } },
          { name: 'Buffer', run: () => {
            for (let i = 0; i < batch; i++, bk++) {
              const j = bk & (WINDOW - 1);
              const b = Buffer.allocUnsafe(SIZES[bk & (SIZES.length - 1)]);
              b[0] = bk;
              sink = (sink + b.length) & SINK_MASK;
              bufRing[j] = b;
            }
          } },
        ],
        finish(result) {
          const s = pool.stats();
          const ratio = s.usedBytes / s.mappedBytes;
          result.efficiency = { usedBytes: s.usedBytes, allocatedBytes: s.allocatedBytes, mappedBytes: s.mappedBytes, ratio };
          result.notes.push(`after ${pk.toLocaleString('en-US')} pool allocations: ${s.liveAllocations} live, ` +
            `usedBytes ${mib(s.usedBytes)}, allocatedBytes ${mib(s.allocatedBytes)}, mappedBytes ${mib(s.mappedBytes)}` +
            (s.residentBytes !== null ? `, residentBytes ${mib(s.residentBytes)}` : ''));
          pool.close();
        },
      };
    },
  };
}

function mib(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

/** 1 MiB, 64 KiB: for option values in labels. */
function mibText(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`;
}

/** Every speed case, in report order. */
export const speedCases: SpeedCase[] = [
  pairCase('pair-64', 'pair 64 B', 64, 0.9),
  pairCase('pair-64-simple', "pair 64 B, leakDetection 'simple'", 64, 0.9, 'simple'),
  pairCase('pair-4k', 'pair 4 KiB', 4096, 10),
  pairCase('pair-64k', 'pair 64 KiB', 65536, 10),
  zeroed4k,
  hugeCase('huge-16m', {}, 1),
  churnCase('churn', {}, 3),
  // Notes (no goals): the trade-off options of docs/performance.md,
  // "Options: prefault, hugePages, chunkSize".
  hugeCase('huge-16m-prefault', { prefault: true }),
  hugeCase('huge-16m-hugepages', { hugePages: true }),
  hugeCase('huge-16m-both', { prefault: true, hugePages: true }),
  fillCase('fill-16m'),
  fillCase('fill-16m-chunk-1m', { chunkSize: 1 * MiB }),
  fillCase('fill-16m-chunk-16m', { chunkSize: 16 * MiB }),
  fillCase('fill-16m-prefault', { prefault: true }),
  fillCase('fill-16m-hugepages', { hugePages: true }),
  fillCase('fill-16m-both', { prefault: true, hugePages: true }),
  churnCase('churn-chunk-1m', { chunkSize: 1 * MiB }),
  churnCase('churn-chunk-16m', { chunkSize: 16 * MiB }),
  churnCase('churn-hugepages', { hugePages: true }),
];

/** Timings of a full run, unless a case sets its own: 100 ms untimed, then 9 rounds of ~230 ms, per variant. */
const FULL: CompareOptions = { prewarmMs: 100, rounds: 9, timeMs: 200, warmupMs: 30 };

/** Runs one case; `options` (the --quick timings) override the case's own. */
export async function runSpeedCase(c: SpeedCase, options?: CompareOptions & { batch?: number }): Promise<SpeedResult> {
  const batch = options?.batch !== undefined ? Math.max(1, Math.min(c.batch, options.batch)) : c.batch;
  const { variants, finish } = c.setup(batch);
  const r = await compare(c.label, variants, batch, { ...FULL, ...c.options, ...options });
  const result: SpeedResult = {
    id: c.id, label: c.label, goal: c.goal, variantOf: c.variantOf,
    poolNs: r.ns[0], bufferNs: r.ns[1], ratio: r.ns[1] / r.ns[0],
    poolMeanNs: r.meanNs[0], bufferMeanNs: r.meanNs[1], meanRatio: r.meanNs[1] / r.meanNs[0],
    notes: [],
  };
  finish(result);
  if (sink === -1) console.log(sink);
  return result;
}
