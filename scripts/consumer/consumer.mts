// ESM consumer: resolves 'mmap-pool' through the "import" condition
// (esm/index.mjs, typed by esm/index.d.mts).
import assert from 'node:assert/strict';
import {
  Pool,
  PoolError,
  Scope,
  formatStats,
  type Backing,
  type PoolErrorCode,
  type PoolOptions,
  type PoolStats,
} from 'mmap-pool';

const options: PoolOptions = { name: 'consumer-esm', maxBytes: 1 << 20 };
const pool: Pool = new Pool(options);
const buf: Buffer = pool.alloc(64);
buf.write('esm');
const stats: PoolStats = pool.stats();
const backing: Backing = stats.backing;
assert.equal(stats.liveAllocations, 1);
pool.free(buf);

const scope: Scope = pool.scope();
scope.from('scoped');
scope.close();

let code: PoolErrorCode | undefined;
try {
  pool.free(buf);
} catch (err) {
  if (err instanceof PoolError) code = err.code;
}
assert.equal(code, 'ERR_DOUBLE_FREE');
assert.match(formatStats(pool.stats()), /consumer-esm/);
pool.close();
assert.equal(pool.closed, true);

console.log(`consumer.mts: OK (backing '${backing}')`);

// The declarations are real types, not `any`: these lines must not compile.
export function mistakes(p: Pool): void {
  // @ts-expect-error alloc() takes a number
  p.alloc('64');
  // @ts-expect-error 'tmpfs' is not a Backing
  const b: Backing = 'tmpfs';
  // @ts-expect-error codes are a closed set
  const c: PoolErrorCode = 'ERR_SOMETHING_ELSE';
  console.log(b, c);
}
