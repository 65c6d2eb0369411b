// Smoke test of an installed mmap-pool: loads it by `import` and by `require`
// (through the package's exports map, so the file resolves 'mmap-pool' from
// where it lies: the repository itself by self-reference, or a consumer's
// node_modules when copied there), checks both give the same Pool class, and
// allocates, writes, reads and frees with each. Prints the binary that
// node-gyp-build loaded; exits non-zero on any failure.
//
//   node scripts/smoke.mjs                   # in the repository
//   PREBUILDS_ONLY=1 node scripts/smoke.mjs  # refuse build/, load prebuilds/ only
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import * as esm from 'mmap-pool';

const require = createRequire(import.meta.url);
const cjs = require('mmap-pool');
const root = dirname(require.resolve('mmap-pool/package.json'));
// node-gyp-build is a dependency of mmap-pool; resolve it from there.
const loader = createRequire(`${root}/package.json`)('node-gyp-build');

assert.equal(esm.Pool, cjs.Pool, 'import and require give the same Pool class');
assert.equal(esm.PoolError, cjs.PoolError, 'import and require give the same PoolError class');

for (const [how, { Pool, PoolError }] of [['require', cjs], ['import', esm]]) {
  const pool = new Pool({ name: `smoke-${how}`, maxBytes: 1 << 20 });
  const buf = pool.alloc(4096);
  assert.ok(Buffer.isBuffer(buf) && buf.length === 4096 && buf.every((b) => b === 0));
  buf.write('hello from the pool');
  assert.equal(buf.toString('utf8', 0, 19), 'hello from the pool');
  assert.equal(pool.stats().liveAllocations, 1);
  pool.free(buf);
  assert.equal(pool.stats().liveAllocations, 0);
  assert.throws(() => pool.free(buf), (err) => err instanceof PoolError && err.code === 'ERR_DOUBLE_FREE');
  const backing = pool.stats().backing;
  pool.close();
  console.log(`smoke: via ${how}: alloc, write, free OK (backing '${backing}')`);
}
console.log(`smoke: binary ${relative(root, loader.path(root))} (${process.platform}-${process.arch}, Node ${process.version})`);
