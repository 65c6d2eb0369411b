// The tour: `npm start` runs this. It allocates, frees, prints a stats table
// and closes, saying what it does at each step.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { formatBytes, formatStats, Pool, PoolError, renderMap, toPrometheus } from '../lib/index.js';
import { vsBuffer } from '../bench/quick.js';

const pool = new Pool({ name: 'tour', maxBytes: 64 * 1024 * 1024 });
console.log(`mmap-pool tour: a pool named "tour" (${pool.stats().backing} memory, ${formatBytes(pool.stats().chunkSize)} chunks, at most 64 MiB)`);

// Small allocations come from slabs inside one chunk.
const greeting = pool.from('hello from outside the V8 heap');
console.log(`from():  ${JSON.stringify(greeting.toString())} (${greeting.length} bytes, a real Buffer: ${Buffer.isBuffer(greeting)})`);

const small = Array.from({ length: 1000 }, (_, i) => pool.allocUnsafe(16 + (i % 200)));
const page = pool.alloc(64 * 1024);
const huge = pool.alloc(8 * 1024 * 1024);
console.log(`alloc:   1000 small buffers, one of 64 KiB, one of 8 MiB (a mapping of its own); zero-filled: ${page.every((b) => b === 0)}`);

for (const buf of small.slice(0, 500)) pool.free(buf);
pool.free(huge);
console.log(`free:    500 small buffers and the 8 MiB one; the 8 MiB view is now detached (length ${huge.length}), ` +
  `its mapping kept for reuse (spareBytes ${formatBytes(pool.stats().spareBytes)})`);

try {
  pool.free(small[0]);
} catch (err) {
  console.log(`free:    the same buffer again -> ${(err as PoolError).code}`);
}

{
  using scope = pool.scope();
  for (let i = 0; i < 100; i++) scope.alloc(256);
  console.log(`scope:   100 buffers of 256 B, live now: ${pool.stats().liveAllocations}`);
}
console.log(`scope:   closed by \`using\`, live now: ${pool.stats().liveAllocations}`);

console.log('');
console.log(formatStats(pool.stats()));
console.log('');

const picture = join(tmpdir(), 'mmap-pool-tour.svg');
writeFileSync(picture, renderMap(pool.dump(), { title: 'the tour pool' }));
console.log(`map:     a picture of the chunks is in ${picture} (open it in a browser)`);
const metrics = toPrometheus(pool).split('\n');
console.log(`metrics: ${metrics.filter((l) => l !== '' && !l.startsWith('#')).length} Prometheus samples, e.g. ${metrics.find((l) => l.startsWith('mmap_pool_used_bytes'))}`);

console.log(`trim:    gave ${formatBytes(pool.trim())} back to the OS (the spare and free pages)`);
const view = small[999];
pool.close();
console.log(`close:   pool closed; an old view now reads as length ${view.length}, and view.readUInt8(0) throws ${(() => {
  try {
    view.readUInt8(0);
    return 'nothing';
  } catch (err) {
    return (err as Error & { code?: string }).code ?? (err as Error).name;
  }
})()}`);

// Against Node's own Buffer: a short run of three cases from bench/ (pools
// with leakDetection 'disabled'; `npm run bench` runs the full suite).
void vsBuffer().then((lines) => {
  console.log('');
  for (const line of lines) console.log(line);
});
