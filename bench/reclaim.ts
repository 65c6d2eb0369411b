// The reclaim case: allocate and touch 1 GiB in 64 KiB buffers, let it all
// go, and see how much of it the process still holds.
//   pool:   pool.free() every buffer, then pool.trim(); RSS right after trim().
//   Buffer: drop every reference, then gc(); RSS right after gc(), and again
//           after 200 ms and a second gc() (V8 frees ArrayBuffer memory on a
//           background thread, and glibc returns freed heap memory to the OS
//           only when it can).
// Each side runs in a child process of its own (node --expose-gc), so that
// neither sees the other's leftovers. The goal: the pool's RSS back within 5%
// of where it started, right after trim().
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';

import { Pool } from '../lib/index.js';

const TOTAL = 1024 * 1024 * 1024;
const SIZE = 64 * 1024;
const COUNT = TOTAL / SIZE;
const PAGE = 4096;
/** Warm-up: rounds of this many buffers (4 MiB), enough for V8 to optimise the round before RSS is read. */
const WARM_ROUNDS = 100;
const WARM_BUFFERS = 64;

export type Side = 'pool' | 'Buffer';

export interface ReclaimResult {
  side: Side;
  /** RSS in bytes. */
  before: number;
  peak: number;
  /** Right after trim() (pool) or gc() (Buffer). */
  after: number;
  /** After 200 ms more and another gc(). */
  settled: number;
  /** Pool only: what trim() reported giving back, and mappedBytes after it. */
  trimmed?: number;
  mappedAfter?: number;
  ms: number;
}

/** How long `fn` took, ms. */
function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function child(side: Side): Promise<ReclaimResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('reclaim: run with node --expose-gc');
  const rss = (): number => process.memoryUsage.rss();
  const held: (Buffer | undefined)[] = new Array(COUNT).fill(undefined);
  const pool = side === 'pool' ? new Pool({ name: 'reclaim' }) : undefined;
  // One round: allocate and touch `n` buffers, read RSS at the peak, let
  // them all go (pool: free() each, then trim(); Buffer: drop, then gc()).
  let peak = 0;
  let trimmed: number | undefined;
  const round = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const b = pool !== undefined ? pool.allocUnsafe(SIZE) : Buffer.allocUnsafe(SIZE);
      for (let o = 0; o < SIZE; o += PAGE) b[o] = i;
      held[i] = b;
    }
    peak = rss();
    if (pool !== undefined) {
      for (let i = 0; i < n; i++) pool.free(held[i]!);
      held.fill(undefined, 0, n);
      trimmed = pool.trim();
    } else {
      held.fill(undefined, 0, n);
      gc();
    }
  };
  // Warm-up: small rounds of the same code, so that V8 has compiled it
  // (and its compiler's memory is in the baseline) before RSS is read; the
  // case measures what the memory itself leaves behind.
  for (let r = 0; r < WARM_ROUNDS; r++) round(WARM_BUFFERS);
  gc();
  gc();
  const before = rss();
  const ms = timed(() => round(COUNT));
  const after = rss();
  const mappedAfter = pool?.stats().mappedBytes;
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc();
  const settled = rss();
  pool?.close();
  return { side, before, peak, after, settled, trimmed, mappedAfter, ms };
}

/** Runs both sides, each in a fresh `node --expose-gc` child. */
export function runReclaim(): ReclaimResult[] {
  return (['pool', 'Buffer'] as const).map((side) => {
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, side], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`reclaim (${side}): child exited with ${r.status ?? r.signal}: ${r.stderr.trim().slice(-2000)}`);
    }
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as ReclaimResult;
  });
}

if (require.main === module) {
  const side = process.argv[2];
  if (side === 'pool' || side === 'Buffer') {
    void child(side).then((r) => console.log(JSON.stringify(r)));
  } else {
    for (const r of runReclaim()) console.log(JSON.stringify(r));
  }
}
