// What the lifetime-safety features cost, measured in one process:
//   - the serial number that tells a stale Buffer from the slot's new owner:
//     PoolBuffer's private fields (serial and block-cache block id), set by its
//     constructor and read on free (the other side is one compare against the
//     block cache's table, or in the allocator under a lock it already holds);
//   - guard: true, one external ArrayBuffer per allocation, detached on free;
//   - leak detection at each level.
// `npm run bench` runs these with the rest (bench/run.ts puts them in
// RESULTS.md); `npm run bench -- lifetimes` runs only these, and
// `node dist/bench/lifetimes.js` prints them as before. Figures are ns per
// operation, medians of interleaved rounds; a plain Buffer.allocUnsafe(64)
// is the yardstick.
import { Buffer } from 'node:buffer';  // not the global: its getter costs ~8 ns a read (bench/cases.ts)
import { arch, cpus, platform } from 'node:os';

import { Pool } from '../lib/index.js';
import { PoolBuffer } from '../lib/buffers/pool-buffer.js';
import { compare, SINK_MASK as HARNESS_SINK_MASK, type CaseResult } from './harness.js';

const BATCH = 1000;
/** A view with no tags: what Node's own FastBuffer is. */
class BareBuffer extends Uint8Array {}
Object.setPrototypeOf(BareBuffer.prototype, Buffer.prototype);

// Kept below 2^30 with SINK_MASK (harness.ts), a local const here: an
// imported binding would be a property read at every use.
const SINK_MASK = HARNESS_SINK_MASK;
let sink = 0;

/** The four cases, in this order: serial tag, guard, leak levels, yardstick. */
export async function runLifetimes(): Promise<CaseResult[]> {
  const ab = new ArrayBuffer(1 << 20);
  const serials = new Float64Array(1024);  // as BlockCache.serial
  const results: CaseResult[] = [];

  // The serial tag: the same view creation with and without the store + load.
  results.push(await compare('serial + block id (PoolBuffer private fields, set and read) vs a bare view', [
    { name: 'view', run: () => {
      for (let i = 0; i < BATCH; i++) {
        const b = new BareBuffer(ab, (i & 1023) * 64, 64);
        sink = (sink + b.length) & SINK_MASK;
      }
    } },
    { name: 'view + serial', run: () => {
      for (let i = 0; i < BATCH; i++) {
        const b = new PoolBuffer(ab, (i & 1023) * 64, 64, i & 1023, i);
        serials[i & 1023] = i;
        sink = (sink + PoolBuffer.liveBlock(b, serials)) & SINK_MASK;
      }
    } },
  ], BATCH));

  const plain = new Pool({ leakDetection: 'disabled', name: 'plain' });
  const guarded = new Pool({ leakDetection: 'disabled', guard: true, name: 'guarded' });
  const pair = (pool: Pool, size: number) => () => {
    for (let i = 0; i < BATCH; i++) pool.free(pool.allocUnsafe(size));
  };
  results.push(await compare('alloc+free 64 B: default vs guard: true', [
    { name: 'default', run: pair(plain, 64) },
    { name: 'guard', run: pair(guarded, 64) },
  ], BATCH, { rounds: 5 }));

  const levels = (['disabled', 'simple', 'advanced', 'paranoid'] as const).map((leakDetection) =>
    new Pool({ leakDetection, name: leakDetection }));
  results.push(await compare('alloc+free 64 B by leakDetection: disabled, simple, advanced, paranoid',
    levels.map((p) => ({ name: p.name, run: pair(p, 64) })), BATCH, { rounds: 5 }));

  results.push(await compare('yardstick: Buffer.allocUnsafe(64)', [
    { name: 'Buffer', run: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + Buffer.allocUnsafe(64).length) & SINK_MASK;
    } },
  ], BATCH));

  for (const p of [plain, guarded, ...levels]) p.close();
  if (sink === -1) console.log(sink);
  return results;
}

async function main(): Promise<void> {
  const results = await runLifetimes();
  console.log(`mmap-pool lifetime costs — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${platform()}-${arch()}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}`);
  for (const r of results) {
    console.log(`\n${r.name}`);
    console.log(`  ${r.ns.map((ns) => `${ns.toFixed(1)} ns`).join('  |  ')}`);
    if (r.ns.length === 2) console.log(`  difference: ${(r.ns[1] - r.ns[0]).toFixed(1)} ns per operation`);
  }
}

if (require.main === module) void main();
