// Helpers shared by the test files: sizes, pools closed after each test, and
// an exact check of a thrown error's class and code.
import { afterEach, expect } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

const pools: Pool[] = [];
const held: unknown[] = [];

/** A new Pool, closed after the current test. */
export function make(options?: PoolOptions): Pool {
  const pool = new Pool(options);
  pools.push(pool);
  return pool;
}

/** Keeps an allocation reachable until its pool is closed: a dropped one would be reported as a leak. */
export function hold<T>(x: T): T {
  held.push(x);
  return x;
}

afterEach(() => {
  for (const pool of pools.splice(0)) pool.close();
  held.length = 0;
});

export type ErrorClass = typeof TypeError | typeof RangeError | typeof PoolError;

/** Calls `fn`, expects an instance of `cls` with `code` (and name 'PoolError' for PoolError); returns the error. */
export function expectThrow(fn: () => unknown, cls: ErrorClass, code: string): Error & { code: string } {
  let caught: unknown;
  let threw = false;
  try {
    fn();
  } catch (err) {
    threw = true;
    caught = err;
  }
  expect(threw, `expected ${code}`).toBe(true);
  expect(caught).toBeInstanceOf(cls);
  expect((caught as { code?: unknown }).code).toBe(code);
  if (cls === PoolError) {
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).name).toBe('PoolError');
  }
  return caught as Error & { code: string };
}

/** True when every byte of the view is zero. */
export function allZero(view: ArrayBufferView): boolean {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(Buffer.alloc(view.byteLength));
}
