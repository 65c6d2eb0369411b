// Helpers shared by the test files: sizes, pools closed after each test, and
// an exact check of a thrown error's class and code.
import * as fs from 'node:fs';
import * as path from 'node:path';

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

/**
 * Wine, not Windows (wineboot.exe is Wine's own program, in every Wine
 * prefix). There a 'file' pool's temp file whose memory was given back while
 * an ArrayBuffer over it was reachable keeps its name until the collector
 * took that ArrayBuffer and the view is unmapped: Wine deletes a
 * DELETE_ON_CLOSE file with its last Unix descriptor, which the view holds.
 * Windows takes the name away at once (native/platform/windows.cc, Retire).
 */
export const WINE = process.platform === 'win32' && fs.existsSync(path.join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'wineboot.exe'));

/**
 * Under Wine only: collections and turns of the event loop (finalizers run
 * after a gc(), not in it) until `done()`, at most 64 rounds; see WINE.
 * Elsewhere it returns at once: what the caller expects next must hold
 * already. The caller must hold no Buffer of the memory given back, not even
 * in a variable of an async function (its registers are kept across an
 * await): make the allocations in plain functions.
 */
export async function collectedUnderWine(done: () => boolean): Promise<void> {
  if (!WINE) return;
  for (let i = 0; i < 64 && !done(); i++) {
    await new Promise((resolve) => setImmediate(resolve));
    globalThis.gc!();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

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

/** mulberry32: a small 32-bit PRNG; floats in [0, 1) (test/fixtures/prng.js, which the fixtures use too). */
export { mulberry32 } from './fixtures/prng.js';
