// Makes docs/pool-map.svg (and docs/pool-map.png, where rsvg-convert is
// installed) from a pool like a web service's: small records and headers,
// response bodies of a few KiB, some large buffers and two huge uploads,
// then about half of it freed as after a burst of requests.
//
//   npx tsc -p tsconfig.json && node docs/make-pool-map.js
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { Pool } = require('../dist/lib/index.js');
const { renderMap } = require('../dist/lib/observe/render-map.js');

const pool = new Pool({ name: 'http-buffers', chunkSize: 1024 * 1024, hugeThreshold: 512 * 1024 });
let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;  // the same picture every run
const live = [];
for (let i = 0; i < 1400; i++) {
  const r = rnd();
  let size;
  if (r < 0.55) size = 24 + Math.floor(rnd() * 104);           // headers, small records
  else if (r < 0.8) size = 200 + Math.floor(rnd() * 300);      // JSON fragments
  else if (r < 0.95) size = 1024 + Math.floor(rnd() * 3000);   // response bodies
  else if (r < 0.99) size = 16384 + Math.floor(rnd() * 48000); // page runs
  else size = 96 * 1024 + Math.floor(rnd() * 160 * 1024);      // large runs
  live.push(pool.allocUnsafe(size));
}
pool.alloc(2 * 1024 * 1024);  // huge: a mapping of its own
pool.alloc(700 * 1024 + 321);
for (let i = 0; i < live.length; i++) if (rnd() < 0.4 + (i > 900 ? 0.45 : 0)) pool.free(live[i]);

const svg = path.join(__dirname, 'pool-map.svg');
fs.writeFileSync(svg, renderMap(pool.dump()));
pool.close();
console.log(`wrote ${svg}`);
try {
  execFileSync('rsvg-convert', ['--zoom', '2', '-o', path.join(__dirname, 'pool-map.png'), svg]);
  console.log(`wrote ${path.join(__dirname, 'pool-map.png')}`);
} catch {
  console.log('no rsvg-convert (apt-get install librsvg2-bin): PNG not made');
}
