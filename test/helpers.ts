// Helpers shared by the test files: sizes, pools closed after each test, and
// an exact check of a thrown error's class and code.
import { afterEach, expect } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

const pools: Pool[] = [];
const held: unknown[] = [];

/** A new Pool, closed after the current test. */
/** Whether pools keep freed huge mappings as spares here (MADV_FREE: not on Windows). */
export const KEEPS_SPARES = process.platform !== 'win32';

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

/** mulberry32: a small 32-bit PRNG; floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
