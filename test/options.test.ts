// Constructor options: defaults and validation (README "API at a glance" and "Errors").
import { existsSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, make } from './helpers.js';

const GiB = 1024 * MiB;

/** Calls `fn`, expects it to throw an instance of `cls` with `code`, and returns the error. */
function expectThrow(fn: () => unknown, cls: typeof TypeError | typeof RangeError, code: string): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(cls);
  expect((caught as { code?: unknown }).code).toBe(code);
  return caught as Error;
}

// Options of the wrong type, on purpose.
const bad = (o: unknown): PoolOptions => o as PoolOptions;

describe('defaults', () => {
  it('new Pool() uses backing anonymous on Linux, 4 MiB chunks, 1 MiB huge threshold, no cap and name "default"', () => {
    const s = make().stats();
    if (process.platform === 'linux') expect(s.backing).toBe('anonymous');
    expect(s.chunkSize).toBe(4 * MiB);
    expect(s.hugeThreshold).toBe(1 * MiB);
    expect(s.maxBytes).toBe(Infinity);
    expect(s.name).toBe('default');
    expect(s.closed).toBe(false);
  });

  it('new Pool({}) has the same defaults as new Pool()', () => {
    const a = make().stats();
    const b = make({}).stats();
    expect([b.backing, b.chunkSize, b.hugeThreshold, b.maxBytes, b.name]).toEqual([
      a.backing,
      a.chunkSize,
      a.hugeThreshold,
      a.maxBytes,
      a.name,
    ]);
  });

  it('maps nothing until the first allocation', () => {
    const s = make().stats();
    expect(s.mappedBytes).toBe(0);
    expect(s.chunks).toBe(0);
    expect(s.liveAllocations).toBe(0);
  });

  it('the name option shows in stats(), dump() and pool.name', () => {
    const pool = make({ name: 'sessions' });
    expect(pool.name).toBe('sessions');
    expect(pool.stats().name).toBe('sessions');
    expect(pool.dump().name).toBe('sessions');
  });

  it('valid explicit options are reported back by stats()', () => {
    const s = make({ chunkSize: 64 * KiB, hugeThreshold: 16 * KiB, maxBytes: 256 * KiB }).stats();
    expect(s.chunkSize).toBe(64 * KiB);
    expect(s.hugeThreshold).toBe(16 * KiB);
    expect(s.maxBytes).toBe(256 * KiB);
  });

  it('chunkSize at both ends of its range (64 KiB and 1 GiB) is accepted', () => {
    expect(make({ chunkSize: 64 * KiB }).stats().chunkSize).toBe(64 * KiB);
    expect(make({ chunkSize: GiB }).stats().chunkSize).toBe(GiB);
  });

  it('hugeThreshold defaults to at most chunkSize', () => {
    expect(make({ chunkSize: 256 * KiB }).stats().hugeThreshold).toBe(256 * KiB);
  });

  it('hugeThreshold 0 and hugeThreshold === chunkSize are accepted', () => {
    expect(make({ chunkSize: MiB, hugeThreshold: 0 }).stats().hugeThreshold).toBe(0);
    expect(make({ chunkSize: MiB, hugeThreshold: MiB }).stats().hugeThreshold).toBe(MiB);
  });

  it('a small maxBytes without chunkSize gives a smaller chunk (maxBytes 1 MiB -> chunkSize 1 MiB)', () => {
    const s = make({ maxBytes: MiB }).stats();
    expect(s.chunkSize).toBe(MiB);
    expect(s.hugeThreshold).toBeLessThanOrEqual(s.chunkSize);
  });

  it('maxBytes that is not a power of two gives the largest power-of-two chunk that fits (3 MiB -> 2 MiB)', () => {
    expect(make({ maxBytes: 3 * MiB }).stats().chunkSize).toBe(2 * MiB);
  });

  it('maxBytes of exactly 64 KiB is accepted and gives 64 KiB chunks', () => {
    expect(make({ maxBytes: 64 * KiB }).stats().chunkSize).toBe(64 * KiB);
  });

  it('backing heap and file are accepted and reported by stats()', () => {
    expect(make({ backing: 'heap' }).stats().backing).toBe('heap');
    expect(make({ backing: 'file' }).stats().backing).toBe('file');
    expect(make({ backing: 'anonymous' }).stats().backing).toBe('anonymous');
  });
});

describe('chunkSize validation', () => {
  it.each([
    ['not a power of two (3 MiB)', 3 * MiB],
    ['not a power of two (100000)', 100000],
    ['below 64 KiB (32 KiB)', 32 * KiB],
    ['below 64 KiB (4096)', 4096],
    ['above 1 GiB (2 GiB)', 2 * GiB],
    ['fractional (65536.5)', 65536.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['negative (-65536)', -65536],
    ['zero', 0],
  ])('chunkSize %s throws RangeError ERR_OUT_OF_RANGE', (_label, chunkSize) => {
    const err = expectThrow(() => new Pool({ chunkSize }), RangeError, 'ERR_OUT_OF_RANGE');
    expect(err.message).toMatch(/chunkSize/);
  });

  it("chunkSize '4096' (a string) throws TypeError ERR_INVALID_ARG_TYPE", () => {
    expectThrow(() => new Pool(bad({ chunkSize: '4096' })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('chunkSize 4096n (a bigint) throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad({ chunkSize: 4096n })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('chunkSize explicitly above maxBytes throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ chunkSize: 4 * MiB, maxBytes: 2 * MiB }), RangeError, 'ERR_OUT_OF_RANGE');
  });
});

describe('hugeThreshold validation', () => {
  it('hugeThreshold above chunkSize throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ chunkSize: MiB, hugeThreshold: MiB + 1 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('hugeThreshold above the default chunkSize throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ hugeThreshold: 8 * MiB }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('hugeThreshold negative throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ hugeThreshold: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('hugeThreshold fractional or NaN throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ hugeThreshold: 1000.5 }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => new Pool({ hugeThreshold: NaN }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it("hugeThreshold '1024' (a string) throws TypeError ERR_INVALID_ARG_TYPE", () => {
    expectThrow(() => new Pool(bad({ hugeThreshold: '1024' })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

describe('maxBytes validation', () => {
  it('maxBytes below 64 KiB throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ maxBytes: 64 * KiB - 1 }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => new Pool({ maxBytes: 1024 }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => new Pool({ maxBytes: 0 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('maxBytes negative, fractional or NaN throws RangeError ERR_OUT_OF_RANGE', () => {
    expectThrow(() => new Pool({ maxBytes: -MiB }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => new Pool({ maxBytes: MiB + 0.5 }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => new Pool({ maxBytes: NaN }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it("maxBytes '1048576' (a string) throws TypeError ERR_INVALID_ARG_TYPE", () => {
    expectThrow(() => new Pool(bad({ maxBytes: '1048576' })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

describe('backing, dir, name and the options argument', () => {
  it("backing 'nope' throws TypeError ERR_INVALID_ARG_VALUE", () => {
    const err = expectThrow(() => new Pool(bad({ backing: 'nope' })), TypeError, 'ERR_INVALID_ARG_VALUE');
    expect(err.message).toMatch(/backing/);
  });

  it('backing 5 (not a string) throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad({ backing: 5 })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('dir 5 (not a string) throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad({ backing: 'file', dir: 5 })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it("dir '' throws TypeError ERR_INVALID_ARG_VALUE", () => {
    expectThrow(() => new Pool({ backing: 'file', dir: '' }), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it('name 5 (not a string) throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad({ name: 5 })), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('options null throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad(null)), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('options 5 throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new Pool(bad(5)), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it("options 'big' (a string) throws TypeError ERR_INVALID_ARG_TYPE", () => {
    expectThrow(() => new Pool(bad('big')), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

describe('hugePages and prefault validation', () => {
  it.each([['hugePages'], ['prefault']] as const)('%s: true and false are accepted and reported by stats() where in force', (key) => {
    expect(make({ [key]: false }).stats()[key]).toBe(false);
    const on = make({ [key]: true }).stats()[key];
    // hugePages is a no-op (false) on systems without transparent huge pages.
    const thp = process.platform === 'linux' && existsSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size');
    expect(on).toBe(key === 'prefault' || thp);
  });

  it.each([
    ['hugePages', 'yes'],
    ['hugePages', 1],
    ['prefault', 'yes'],
    ['prefault', 1],
  ])('%s: %j (not a boolean) throws TypeError ERR_INVALID_ARG_TYPE naming the option', (key, value) => {
    const err = expectThrow(() => new Pool(bad({ [key]: value })), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(err.message).toContain(`options.${key}`);
  });

  it("hugePages and prefault with backing 'heap' are accepted (no-ops), unlike guard and secure", () => {
    const s = make({ backing: 'heap', hugePages: true, prefault: true }).stats();
    expect([s.backing, s.hugePages, s.prefault]).toEqual(['heap', false, false]);
  });
});
