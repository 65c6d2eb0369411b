// Request bodies handed to piscina workers, two ways, timed in one run:
//
//   plain Buffers   each body a Buffer, given to piscina.run() as it is:
//                   postMessage() copies it into the worker
//   pool handles    each body allocated in a shared pool, given as
//                   pool.share(body): the worker adopt()s the same bytes
//
//   node dist/examples/piscina-bodies.js [rounds] [bodies]   (default 6 rounds of 64 bodies)
//
// Bodies are 64 KiB to 1 MiB (sizes from a seeded generator, the same in
// both versions); the main thread copies each into its Buffer, as it would
// from a socket, and the worker returns its CRC-32 (node:zlib), checked
// against one computed beforehand. The versions alternate round by round on
// the same two piscina workers, IN_FLIGHT bodies at a time.
//
// Threads: the main thread makes the shared pool and allocates every body;
// piscina's workers (examples/piscina-worker.ts) attach to it, adopt the
// bodies and release them, which frees them in the worker's thread.
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { Piscina } from 'piscina';

import { Pool } from '../lib/index.js';
import type { BodyTask } from './piscina-worker.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const IN_FLIGHT = 8;
const THREADS = 2;

function count(text: string | undefined, fallback: number, what: string): number {
  const n = Number(text ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`piscina-bodies: ${what} must be a positive integer, not ${JSON.stringify(text)}`);
    process.exit(1);
  }
  return n;
}

const rounds = count(process.argv[2], 6, 'rounds');
const bodies = count(process.argv[3], 64, 'bodies');

// The request bytes: one random MiB, each body a prefix of it.
const source = randomFillSync(Buffer.allocUnsafe(MiB));
let seed = 7;
const sizes = Array.from({ length: bodies }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return 64 * KiB + Math.floor((seed / 2 ** 32) * (MiB - 64 * KiB));
});
const expected = sizes.map((n) => crc32(source.subarray(0, n)));
const roundBytes = sizes.reduce((a, b) => a + b, 0);

const pool = new Pool({ name: 'bodies', shared: true });
const piscina = new Piscina<BodyTask, number>({
  filename: join(__dirname, 'piscina-worker.js'),
  minThreads: THREADS,
  maxThreads: THREADS,
  workerData: { pool: pool.handle },
});

/** One body through a worker: its CRC-32 as the worker computed it. */
type Send = (size: number) => Promise<number>;

const plain: Send = (size) => {
  const body = Buffer.allocUnsafe(size);
  source.copy(body, 0, 0, size);
  return piscina.run({ body });
};

const handles: Send = (size) => {
  const body = pool.allocUnsafe(size);
  source.copy(body, 0, 0, size);
  const handle = pool.share(body);
  // The worker's reference is the one left: its release() frees the body.
  pool.release(body);
  return piscina.run({ handle });
};

/** Every body once, IN_FLIGHT at a time; ms for the round and how many CRCs were right. */
async function round(send: Send): Promise<{ ms: number; right: number }> {
  let next = 0;
  let right = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < bodies; i = next++) if ((await send(sizes[i])) === expected[i]) right++;
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, bodies) }, lane));
  return { ms: performance.now() - t0, right };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const versions = [
    { name: 'plain Buffers (postMessage copies each body)', send: plain, ms: [] as number[], right: 0 },
    { name: 'pool handles (share/adopt, no copy)', send: handles, ms: [] as number[], right: 0 },
  ];
  // One untimed round each: workers started, code warm.
  for (const v of versions) await round(v.send);
  for (let r = 0; r < rounds; r++) {
    for (const v of versions) {
      const { ms, right } = await round(v.send);
      v.ms.push(ms);
      v.right += right;
    }
  }
  console.log(`piscina: ${THREADS} worker threads, ${rounds} rounds of ${bodies} bodies (64 KiB-1 MiB, ` +
    `${(roundBytes / MiB).toFixed(1)} MiB a round), ${IN_FLIGHT} in flight, the two versions alternating`);
  for (const v of versions) {
    const ms = median(v.ms);
    console.log(`  ${(v.name + ':').padEnd(46)} ${((ms * 1000) / bodies).toFixed(0)} µs per body, ` +
      `${(roundBytes / MiB / (ms / 1000)).toFixed(0)} MiB/s (median round ${ms.toFixed(1)} ms)`);
  }
  const [a, b] = versions.map((v) => median(v.ms));
  console.log(`  pool handles: ${(a / b).toFixed(2)}x the throughput of plain Buffers`);
  const checked = rounds * bodies;
  console.log(`crc32 right: plain ${versions[0].right} of ${checked}, handles ${versions[1].right} of ${checked}`);
  await piscina.destroy();
  const s = pool.stats();
  console.log(`pool after the workers ended: ${s.liveAllocations} live allocations, attachments ${s.attachments} (this thread)`);
  pool.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
