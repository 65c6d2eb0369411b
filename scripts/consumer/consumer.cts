// CommonJS consumer: resolves 'mmap-pool' through the "require" condition
// (dist/lib/index.js, typed by dist/lib/index.d.ts).
import assert = require('node:assert/strict');
import mmapPool = require('mmap-pool');
import { Pool, PoolError, type PoolErrorCode, type PoolStats } from 'mmap-pool';

assert.equal(mmapPool.Pool, Pool);
const pool = new Pool({ name: 'consumer-cjs' });
const buf: Buffer = pool.allocUnsafe(128);
const stats: PoolStats = pool.stats();
assert.equal(stats.liveAllocations, 1);
assert.equal(pool.release(buf), true);

let code: PoolErrorCode | undefined;
try {
  pool.free(buf);
} catch (err) {
  if (err instanceof mmapPool.PoolError) code = err.code;
}
assert.equal(code, 'ERR_DOUBLE_FREE');
pool.close();
assert.equal(mmapPool.PoolError, PoolError);
console.log('consumer.cts: OK');

// The declarations are real types, not `any`: these lines must not compile.
export function mistakes(): void {
  // @ts-expect-error maxBytes is a number
  new Pool({ maxBytes: '1 MiB' });
  // @ts-expect-error stats() has no such field
  console.log(new Pool().stats().bogus);
}
