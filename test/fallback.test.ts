// The heap fallback: where the runtime refuses external ArrayBuffers (as
// Electron's V8 sandbox does), 'anonymous' and 'file' pools use ordinary
// ArrayBuffers instead and say so once per process. The addon pretends to be
// such a runtime when MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS=1, which it reads
// at each check, so every case runs in a child process
// (test/fixtures/fallback.js) loading the compiled library (dist/lib/index.js,
// written by `tsc -p tsconfig.json`, which `npm test` runs first).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LIB, resultOf, run, type Outcome } from './fixture-run.js';
import { WINE } from './helpers.js';

const DEFAULT_BACKING = process.platform === 'win32' ? 'file' : 'anonymous';

interface Attempt {
  threw: boolean;
  isPoolError?: boolean;
  name?: string;
  code?: string;
  syscall?: string;
  errno?: number;
}

interface Warning {
  name: string;
  code?: string;
  message: string;
}

interface Result {
  backings: Record<string, string>;
  problems: Record<string, string[]>;
  guard: Attempt;
  secure: Attempt;
  shared: Attempt;
  warnings: Warning[];
  /** The file pool's dir right after close(), and once the closed pools' ArrayBuffers were collected. */
  entries: string[];
  collected: string[];
  worker: { code: number; backing: string; problems: string[]; warnings: Warning[] };
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** How the child ended, with the JSON of its 'result ' line. */
interface Run extends Outcome {
  result: Result;
}

function runFixture(simulate: boolean): Run {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mmap-pool-fallback-'));
  dirs.push(dir);
  const env: Record<string, string> = simulate ? { MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS: '1' } : {};
  const r = run('fallback.js', [dir], { env, timeout: 30_000, execArgv: ['--expose-gc'] });
  return { ...r, result: resultOf<Result>(r) };
}

/** The MMAP_POOL_FALLBACK lines Node printed to stderr (it prints every process warning, whichever thread emitted it). */
function fallbackLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.includes('[MMAP_POOL_FALLBACK]'));
}

beforeAll(() => {
  if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
});

describe('MMAP_POOL_SIMULATE_NO_EXTERNAL_BUFFERS=1: a runtime that refuses external ArrayBuffers', () => {
  let out: Run;
  beforeAll(() => {
    out = runFixture(true);
  });

  it('the child ends normally; stderr holds nothing but the fallback warning', () => {
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
    const other = out.stderr.split('\n').filter((l) => l !== '' && !l.includes('[MMAP_POOL_FALLBACK]') && !l.includes('--trace-warnings'));
    expect(other).toEqual([]);
  });

  it("new Pool() and 'anonymous' and 'file' pools report stats().backing 'heap'", () => {
    expect(out.result.backings).toEqual({
      'default-1': 'heap',
      'default-2': 'heap',
      anonymous: 'heap',
      file: 'heap',
      heap: 'heap',
      later: 'heap',
    });
  });

  it('every pool allocates, frees and keeps data: small, large, huge, typed, retain/release, reset', () => {
    for (const [name, problems] of Object.entries(out.result.problems)) {
      expect(problems, `pool ${name}`).toEqual([]);
    }
    expect(Object.keys(out.result.problems)).toHaveLength(6);
  });

  it("a 'file' pool on the heap leaves nothing in its dir", () => {
    expect(out.result.entries).toEqual([]);
  });

  it("several pools emit exactly one warning with code 'MMAP_POOL_FALLBACK'", () => {
    const ours = out.result.warnings.filter((w) => w.code === 'MMAP_POOL_FALLBACK');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.name).toBe('Warning');
    expect(ours[0]!.message).toContain("'heap'");
    expect(out.result.warnings).toHaveLength(1);  // and no other warning
  });

  it('a pool made in a worker thread falls back too, without a second warning: one per process', () => {
    expect(out.result.worker.code).toBe(0);
    expect(out.result.worker.backing).toBe('heap');
    expect(out.result.worker.problems).toEqual([]);
    expect(out.result.worker.warnings.filter((w) => w.code === 'MMAP_POOL_FALLBACK')).toEqual([]);
    expect(fallbackLines(out.stderr)).toHaveLength(1);
  });

  it.each(['guard', 'secure', 'shared'] as const)('new Pool({ %s: true }) throws PoolError ERR_MAP_FAILED', (option) => {
    const attempt = out.result[option];
    expect(attempt.threw).toBe(true);
    expect(attempt.isPoolError).toBe(true);
    expect(attempt.name).toBe('PoolError');
    expect(attempt.code).toBe('ERR_MAP_FAILED');
    expect(typeof attempt.syscall).toBe('string');
    expect(typeof attempt.errno).toBe('number');
  });
});

describe('without the variable', () => {
  let out: Run;
  beforeAll(() => {
    out = runFixture(false);
  });

  it('the child ends normally with nothing on stderr', () => {
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
    expect(out.stderr).toBe('');
  });

  it('backings stay as asked and no warning is emitted, in the main thread or a worker', () => {
    expect(out.result.backings).toEqual({
      'default-1': DEFAULT_BACKING,
      'default-2': DEFAULT_BACKING,
      anonymous: 'anonymous',
      file: 'file',
      heap: 'heap',
      later: DEFAULT_BACKING,
    });
    expect(out.result.worker.backing).toBe(DEFAULT_BACKING);
    expect(out.result.warnings).toEqual([]);
    expect(out.result.worker.warnings).toEqual([]);
  });

  it('the same exercise passes in every pool, and guard, secure and shared pools can be made', () => {
    for (const [name, problems] of Object.entries(out.result.problems)) {
      expect(problems, `pool ${name}`).toEqual([]);
    }
    expect(out.result.worker.problems).toEqual([]);
    expect(out.result.guard.threw).toBe(false);
    expect(out.result.secure.threw).toBe(false);
    expect(out.result.shared.threw).toBe(false);
    // Under Wine a name goes only with the ArrayBuffers over it (helpers.ts, WINE).
    if (!WINE) expect(out.result.entries).toEqual([]);
    expect(out.result.collected).toEqual([]);
  });
});
