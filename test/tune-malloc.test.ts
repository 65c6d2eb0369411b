// tuneMalloc(): glibc's trim and mmap thresholds, set only when asked
// (docs/services.md, "glibc's heap").
import { describe, expect, it } from 'vitest';

import { tuneMalloc, type TuneMallocOptions } from '../lib/index.js';

/** glibc's version where the process runs on glibc, else undefined (macOS, Windows, musl). */
function glibc(): string | undefined {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime;
}

const bad = (o: unknown): TuneMallocOptions => o as TuneMallocOptions;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return `${(err as Error).constructor.name} ${(err as { code?: string }).code}`;
  }
  return undefined;
}

describe('tuneMalloc()', () => {
  it('makes the settings where the process runs on glibc and says false elsewhere', () => {
    const expected = glibc() !== undefined;
    expect(tuneMalloc({ trimThreshold: 64 * 1024 * 1024 })).toBe(expected);
    expect(tuneMalloc({ mmapThreshold: 4 * 1024 * 1024 })).toBe(expected);
    expect(tuneMalloc({ trimThreshold: 128 * 1024, mmapThreshold: 128 * 1024 })).toBe(expected);
    expect(tuneMalloc({})).toBe(expected);
  });

  it('accepts the largest values glibc takes on 64-bit systems', () => {
    expect(tuneMalloc({ trimThreshold: 2 ** 31 - 1, mmapThreshold: 32 * 1024 * 1024 })).toBe(glibc() !== undefined);
    tuneMalloc({ trimThreshold: 128 * 1024, mmapThreshold: 128 * 1024 });
  });

  it('throws ERR_INVALID_ARG_TYPE for options that are not an object or settings that are not numbers', () => {
    expect(codeOf(() => tuneMalloc(bad(undefined)))).toBe('TypeError ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => tuneMalloc(bad(null)))).toBe('TypeError ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => tuneMalloc(bad(65536)))).toBe('TypeError ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => tuneMalloc(bad({ trimThreshold: '65536' })))).toBe('TypeError ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => tuneMalloc(bad({ mmapThreshold: 65536n })))).toBe('TypeError ERR_INVALID_ARG_TYPE');
  });

  it('throws ERR_OUT_OF_RANGE for a setting that is not an integer in its range, and checks both before setting either', () => {
    for (const o of [{ trimThreshold: 0 }, { trimThreshold: -1 }, { trimThreshold: 1.5 }, { trimThreshold: 2 ** 31 },
      { trimThreshold: NaN }, { mmapThreshold: 0 }, { mmapThreshold: 32 * 1024 * 1024 + 1 }, { mmapThreshold: Infinity }]) {
      expect(codeOf(() => tuneMalloc(o)), JSON.stringify(o)).toBe('RangeError ERR_OUT_OF_RANGE');
    }
    // A good trimThreshold with a bad mmapThreshold: the error comes first.
    expect(codeOf(() => tuneMalloc({ trimThreshold: 1024, mmapThreshold: 0 }))).toBe('RangeError ERR_OUT_OF_RANGE');
  });
});
