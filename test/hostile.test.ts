// A randomized hostile sequence (test/fixtures/hostile.js, seeded, 20,000
// steps) against a plain and a guarded pool, each in a child process that
// loads the compiled library (dist/lib/index.js, written by
// `tsc -p tsconfig.json`, which `npm test` runs first) through MMAP_POOL_LIB.
// The child checks every call against the contract and every live buffer's
// bytes against the pattern last written to it; this file judges its exit
// code, its stderr and its summary.
import * as fs from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { LIB, resultOf, runAsync, SLOWDOWN, type Outcome } from './fixture-run.js';

const STEPS = 20_000;
const SEEDS = { plain: 0x5eed1, guard: 0x5eed2 } as const;

interface Problem {
  step: number;
  label?: string;
  expected?: string[];
  got?: string;
  [key: string]: unknown;
}

interface Summary {
  mode: string;
  seed: number;
  counts: {
    steps: number;
    allocations: number;
    exhausted: number;
    frees: number;
    staleFrees: number;
    resets: number;
    trims: number;
    scopes: number;
    maxLive: number;
  };
  codes: Record<string, number>;
  seen: string[];
  liveAtClose: number;
  viewsHandedOut: number;
  attachedAfterClose: number;
  readableAfterClose: number;
  otherIntact: boolean;
  otherLive: number;
  unexpected: Problem[];
  mismatches: Problem[];
  damage: Problem[];
}

/** How the child ended, with the JSON of its 'result ' line. */
interface Run extends Outcome {
  summary: Summary;
}

async function runHostile(mode: keyof typeof SEEDS): Promise<Run> {
  const r = await runAsync('hostile.js', [mode, String(SEEDS[mode]), String(STEPS)], { timeout: 60_000 });
  return { ...r, summary: resultOf<Summary>(r) };
}

const REQUIRED = [
  'ERR_DOUBLE_FREE',
  'ERR_FOREIGN_BUFFER',
  'ERR_POOL_EXHAUSTED',
  'ERR_OUT_OF_RANGE',
  'ERR_INVALID_ARG_TYPE',
  'ERR_POOL_CLOSED',
];

beforeAll(() => {
  if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
});

describe.each(['plain', 'guard'] as const)('a hostile sequence of 20,000 calls against a %s pool', (mode) => {
  let out: Run;
  beforeAll(async () => {
    out = await runHostile(mode);
  }, 60_000 * SLOWDOWN);

  it('the child runs every step and exits 0 with nothing on stderr', () => {
    expect(out.signal).toBeNull();
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.summary.counts.steps).toBe(STEPS);
  });

  it('no live buffer was damaged: each kept the pattern last written to it, up to close()', () => {
    expect(out.summary.damage).toEqual([]);
  });

  it('no call threw an error of a code or class outside the contract', () => {
    expect(out.summary.unexpected).toEqual([]);
    expect(Object.keys(out.summary.codes).filter((c) => !REQUIRED.includes(c))).toEqual([]);
  });

  it('every call had the outcome the contract gives it (a stale Buffer is ERR_DOUBLE_FREE, a slice ERR_FOREIGN_BUFFER, ...)', () => {
    expect(out.summary.mismatches).toEqual([]);
  });

  it(`the codes seen include each of ${REQUIRED.join(', ')}`, () => {
    expect(out.summary.seen).toEqual(expect.arrayContaining(REQUIRED));
    for (const code of REQUIRED) expect(out.summary.codes[code], code).toBeGreaterThan(0);
  });

  it('the run was hostile enough: thousands of allocations, repeated exhaustion, stale frees, resets, trims and scopes', () => {
    const c = out.summary.counts;
    expect(c.allocations).toBeGreaterThan(2000);
    expect(c.frees).toBeGreaterThan(1000);
    expect(c.staleFrees).toBeGreaterThan(500);
    expect(c.exhausted).toBeGreaterThan(10);
    expect(c.resets).toBeGreaterThan(5);
    expect(c.trims).toBeGreaterThan(5);
    expect(c.scopes).toBeGreaterThan(5);
    expect(c.maxLive).toBeGreaterThan(10);
  });

  it('after close() every view ever handed out reads as empty, and the other pool was left alone', () => {
    expect(out.summary.viewsHandedOut).toBe(out.summary.counts.allocations);
    expect(out.summary.attachedAfterClose).toBe(0);
    expect(out.summary.readableAfterClose).toBe(0);
    expect(out.summary.otherIntact).toBe(true);
    expect(out.summary.otherLive).toBe(0);
  });
});
