// Shared pools across worker threads (`npm run bench -- threads`): what
// handing a Buffer to a worker costs with share()/adopt() against Node's two
// ways (postMessage of a Buffer, which copies it; transfer of an
// ArrayBuffer, which moves it), and how alloc/free scales over two threads
// of one shared pool. The variants alternate round by round in this
// process; each figure is the median over rounds, and the claims are ratios.
//
// Threads: the main thread makes the pool and two workers
// (bench/threads-worker.ts) attach to it. The pairs case runs one worker,
// then both at once; the machine this runs on may have only 2 cores, which
// the main thread (idle in Atomics and message waits) shares with them.
import { Buffer } from 'node:buffer';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { Pool, type BufferHandle } from '../lib/index.js';
import type { Command } from './threads-worker.js';
import { sizeText, usText, verdict } from './format.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export const THREAD_CASES = [
  { id: 'threads-trip', what: 'shared pool: a Buffer to a worker and back, share()/adopt() vs postMessage copy vs ArrayBuffer transfer, 4 KiB / 1 MiB / 16 MiB' },
  { id: 'threads-pairs', what: 'shared pool: alloc/free pairs of 64 B and 4 KiB, 2 worker threads at once vs 1' },
  { id: 'threads-free', what: 'shared pool: free() of blocks allocated in another thread vs in the same thread' },
];

/** Goals of the issue (shared pools across threads). */
export const TRIP_COPY_GOAL = 20; // share/adopt vs copy, at 1 MiB: at least this much faster
export const TRIP_TRANSFER_GOAL = 0.5; // transfer time / share time: within 2x of transfer
export const PAIRS_GOAL = 1.7; // 2-thread throughput / 1-thread throughput
export const FREE_GOAL = 0.5; // cross-thread free throughput / same-thread

export interface TripResult {
  size: number;
  /** Median µs per round trip. */
  shareUs: number;
  copyUs: number;
  transferUs: number;
  /** The copy's page faults per round trip (the whole process's minor faults, median over rounds). */
  copyFaults: number;
}

export interface PairsResult {
  size: number;
  /** Pairs per second, all threads together. */
  one: number;
  two: number;
}

export interface FreeResult {
  size: number;
  /** ns per free(). */
  sameNs: number;
  crossNs: number;
}

export interface ThreadsResult {
  cores: number;
  trip: TripResult[];
  pairs: PairsResult[];
  free: FreeResult[];
  /** The round trip at 1 MiB again, in a process whose glibc keeps its heap (bench/threads-apart.ts); absent elsewhere. */
  tripHeapKept?: TripResult[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A worker attached to the pool, with one answer awaited per command. */
class BenchWorker {
  readonly worker: Worker;
  #next: ((v: unknown) => void) | undefined;

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.on('message', (v: unknown) => {
      const r = this.#next;
      this.#next = undefined;
      r?.(v);
    });
  }

  static async start(pool: Pool): Promise<BenchWorker> {
    const w = new BenchWorker(new Worker(join(__dirname, 'threads-worker.js'), { workerData: { pool: pool.handle } }));
    await w.answer();
    return w;
  }

  answer<T>(): Promise<T> {
    return new Promise<T>((resolve) => {
      this.#next = resolve as (v: unknown) => void;
    });
  }

  ask<T>(c: Command, transfer?: ArrayBuffer[]): Promise<T> {
    const p = this.answer<T>();
    this.worker.postMessage(c, transfer ?? []);
    return p;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage({ op: 'close' } satisfies Command);
    await exited;
  }
}

/** Round trips for `ms`, at least `min`: µs and the process's minor page faults, per trip. */
async function trips(trip: () => Promise<void>, ms: number, min: number): Promise<{ us: number; faults: number }> {
  const f0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  let n = 0;
  while (n < min || performance.now() - t0 < ms) {
    await trip();
    n++;
  }
  const us = ((performance.now() - t0) * 1000) / n;
  return { us, faults: (process.resourceUsage().minorPageFault - f0) / n };
}

async function roundTrip(pool: Pool, w: BenchWorker, size: number, rounds: number, ms: number): Promise<TripResult> {
  // Each side starts with its body filled, and gets it back from the worker with one byte changed.
  let shared = pool.allocUnsafe(size).fill(1);
  let plain: Uint8Array = Buffer.alloc(size, 1);
  let standalone = new Uint8Array(size).fill(1).buffer;
  const variants: (() => Promise<void>)[] = [
    async () => {
      const h = pool.share(shared);
      pool.release(shared);
      shared = pool.adopt(await w.ask<BufferHandle>({ op: 'trip-share', h }));
    },
    async () => {
      plain = await w.ask<Uint8Array>({ op: 'trip-copy', body: plain });
    },
    async () => {
      const body = standalone;
      standalone = await w.ask<ArrayBuffer>({ op: 'trip-transfer', body }, [body]);
    },
  ];
  const min = size >= 16 * MiB ? 4 : 16;
  for (const v of variants) await trips(v, ms / 2, min);
  const us: number[][] = variants.map(() => []);
  const copyFaults: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let v = 0; v < variants.length; v++) {
      const t = await trips(variants[v], ms, min);
      us[v].push(t.us);
      if (v === 1) copyFaults.push(t.faults);
    }
  }
  const trips0 = shared[0] + plain[0] + new Uint8Array(standalone)[0];
  if (trips0 < 0) console.log(trips0);
  pool.release(shared);
  return { size, shareUs: median(us[0]), copyUs: median(us[1]), transferUs: median(us[2]), copyFaults: median(copyFaults) };
}

/** Pairs per second with the given workers running `count` pairs each, started together. */
async function pairsRate(ws: BenchWorker[], size: number, count: number): Promise<number> {
  // [0]: the gate (1: go); [1]: the workers waiting at it.
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const done = ws.map((w) => w.ask<{ start: number; end: number }>({ op: 'pairs', size, count, gate }));
  // The gate opens once every worker waits at it: one that came late (the
  // warm-up round's second worker did, by up to 3 ms) would otherwise
  // start late and count as slow.
  while (Atomics.load(gate, 1) < ws.length) await new Promise((resolve) => setTimeout(resolve, 1));
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  const spans = await Promise.all(done);
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.end));
  return (ws.length * count) / ((end - start) / 1000);
}

async function pairs(ws: BenchWorker[], size: number, rounds: number, count: number): Promise<PairsResult> {
  await pairsRate(ws, size, count);
  const one: number[] = [];
  const two: number[] = [];
  for (let r = 0; r < rounds; r++) {
    one.push(await pairsRate([ws[0]], size, count));
    two.push(await pairsRate(ws, size, count));
  }
  return { size, one: median(one), two: median(two) };
}

async function frees(ws: BenchWorker[], size: number, rounds: number, count: number): Promise<FreeResult> {
  const [a, b] = ws;
  const span = (s: { start: number; end: number }): number => ((s.end - s.start) * 1e6) / count;
  const same: number[] = [];
  const cross: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const s = span(await a.ask({ op: 'alloc-free', size, count }));
    const handles = await a.ask<BufferHandle[]>({ op: 'alloc-share', size, count });
    const c = span(await b.ask({ op: 'adopt-free', handles }));
    if (r === 0) continue; // warm-up
    same.push(s);
    cross.push(c);
  }
  return { size, sameNs: median(same), crossNs: median(cross) };
}

/** Runs the thread cases in `ids` (THREAD_CASES); `say` prints each result as it comes. */
export async function runThreads(ids: string[], say: (line: string) => void, tripSizes = [4 * KiB, MiB, 16 * MiB]): Promise<ThreadsResult> {
  const pool = new Pool({ name: 'bench-threads', shared: true, leakDetection: 'disabled' });
  const ws = [await BenchWorker.start(pool), await BenchWorker.start(pool)];
  const out: ThreadsResult = { cores: cpus().length, trip: [], pairs: [], free: [] };
  try {
    if (ids.includes('threads-trip')) {
      for (const size of tripSizes) {
        const r = await roundTrip(pool, ws[0], size, 7, size >= 16 * MiB ? 300 : 150);
        out.trip.push(r);
        say(tripLine(r));
      }
    }
    if (ids.includes('threads-pairs')) {
      for (const size of [64, 4 * KiB]) {
        const r = await pairs(ws, size, 9, 200_000);
        out.pairs.push(r);
        say(pairsLine(r, out.cores));
      }
    }
    if (ids.includes('threads-free')) {
      for (const size of [64, 4 * KiB]) {
        const r = await frees(ws, size, 9, 20_000);
        out.free.push(r);
        say(freeLine(r));
      }
    }
  } finally {
    for (const w of ws) await w.stop();
    pool.close();
  }
  return out;
}


export function tripLine(r: TripResult): string {
  const vsCopy = r.copyUs / r.shareUs;
  const vsTransfer = r.transferUs / r.shareUs;
  return `threads round trip ${sizeText(r.size)}: share/adopt ${usText(r.shareUs)}, copy ${usText(r.copyUs)} (${r.copyFaults.toFixed(0)} page faults), transfer ${usText(r.transferUs)}; ` +
    `vs copy ${vsCopy.toPrecision(3)}x${r.size === MiB ? ` (goal >= ${TRIP_COPY_GOAL}x: ${verdict(vsCopy >= TRIP_COPY_GOAL, false)})` : ''}, ` +
    `vs transfer ${vsTransfer.toPrecision(3)}x (goal >= ${TRIP_TRANSFER_GOAL}x: ${verdict(vsTransfer >= TRIP_TRANSFER_GOAL, false)})`;
}

export function pairsLine(r: PairsResult, cores: number): string {
  const x = r.two / r.one;
  return `threads pairs ${sizeText(r.size)}: 1 thread ${(r.one / 1e6).toFixed(2)} M pairs/s (${(1e9 / r.one).toFixed(0)} ns/pair), ` +
    `2 threads ${(r.two / 1e6).toFixed(2)} M pairs/s -> ${x.toPrecision(3)}x (goal >= ${PAIRS_GOAL}x: ${verdict(x >= PAIRS_GOAL, false)}; ${cores} cores)`;
}

export function freeLine(r: FreeResult): string {
  const x = r.sameNs / r.crossNs;
  return `threads free ${sizeText(r.size)}: same thread ${r.sameNs.toFixed(0)} ns, other thread ${r.crossNs.toFixed(0)} ns -> ` +
    `${x.toPrecision(3)}x the throughput (goal >= ${FREE_GOAL}x: ${verdict(x >= FREE_GOAL, false)})`;
}
