// Running out of memory is an error, not a signal: when the OS refuses a
// mapping, the pool first gives back what it holds but does not need
// (spare huge mappings, idle chunks, the block cache's free blocks), asks once
// more, and only then throws ERR_MAP_FAILED, changing nothing. Each case runs
// in a child process (test/fixtures/oom.js) that lowers its own RLIMIT_AS to
// what it measures of its address space plus 8 MiB, loading the compiled
// library (dist/lib/index.js, written by `tsc -p tsconfig.json`, which
// `npm test` runs first) through MMAP_POOL_LIB.
import * as fs from 'node:fs';
import * as os from 'node:os';

import { beforeAll, describe, expect, it } from 'vitest';

import { LIB, resultOf, run, type Outcome } from './fixture-run.js';

const linux = process.platform === 'linux';
const MiB = 1024 * 1024;

interface Attempt {
  threw: boolean;
  length?: number;
  name?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  message?: string;
}

interface Stats {
  mappedBytes: number;
  spareBytes: number;
  chunks: number;
  liveAllocations: number;
  cachedBytes: number;
  [key: string]: unknown;
}

interface Result {
  mode: string;
  limit: string;
  base: number;
  slack: number;
  heldStats: Stats;
  probe: Attempt;
  probeMapped: number;
  got: Attempt;
  intact: boolean;
  before: Stats;
  refused: Attempt;
  after: Stats;
}

// What each mode holds unused before the limit comes, and what the request is.
const modes = [
  { mode: 'spares', holds: 'four 16 MiB spare huge mappings', asks: 'its first (64 MiB) chunk', size: 512 * 1024 },
  { mode: 'idle', holds: 'sixteen idle 4 MiB chunks', asks: 'a 40 MiB huge allocation', size: 40 * MiB },
  { mode: 'cached', holds: 'a 64 MiB chunk kept only by the block cache’s free blocks', asks: 'a 40 MiB huge allocation', size: 40 * MiB },
] as const;

// Linux only (prlimit, RLIMIT_AS, /proc/self/status); on Windows these are
// expected skips in scripts/test-windows.sh.
describe.runIf(linux).each(modes)('RLIMIT_AS reached while a pool holds $holds (child process)', ({ mode, asks, size }) => {
  let outcome: Outcome;
  let res: Result;
  beforeAll(() => {
    if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
    // One malloc arena: glibc reserves 64 MiB of address space for each
    // thread that first calls malloc, at a moment no test can choose, which
    // would move the child's VmSize by more than the limit's slack.
    outcome = run('oom.js', [mode], { env: { MALLOC_ARENA_MAX: '1' }, timeout: 60_000 });
    res = resultOf<Result>(outcome);
  });

  it('the child runs under the RLIMIT_AS it set itself: its measured VmSize plus 8 MiB (precondition)', () => {
    expect(res.slack).toBe(8 * MiB);
    const limit = res.base + res.slack;
    expect(res.limit).toMatch(new RegExp(`^Max address space\\s+${limit}\\s+${limit}\\s+bytes`));
    expect(res.heldStats.mappedBytes).toBe(64 * MiB);
    expect(res.heldStats.liveAllocations).toBe(0);
  });

  it(`a fresh pool asking for ${asks} is refused: the limit leaves no room for it (precondition)`, () => {
    expect(res.probe.threw).toBe(true);
    expect(res.probe.code).toBe('ERR_MAP_FAILED');
    expect(res.probeMapped).toBe(0);
  });

  it(`the pool gets ${asks} without trim(): what it held unused went back first, and the bytes round-trip`, () => {
    expect(res.got).toEqual({ threw: false, length: size });
    expect(res.intact).toBe(true);
    expect(res.before.spareBytes).toBe(0);
    expect(res.before.liveAllocations).toBe(1);
    expect(res.before.cachedBytes).toBe(0);
  });

  it("an allocation that cannot fit even then throws ERR_MAP_FAILED, errno ENOMEM, syscall 'mmap'", () => {
    expect(res.refused.threw).toBe(true);
    expect(res.refused.name).toBe('PoolError');
    expect(res.refused.code).toBe('ERR_MAP_FAILED');
    expect(res.refused.errno).toBe(os.constants.errno.ENOMEM);
    expect(res.refused.syscall).toBe('mmap');
    expect(res.refused.message).toMatch(/mmap failed \(ENOMEM\)/);
  });

  it('the refused allocation leaves stats() as they were', () => {
    expect(res.after).toEqual(res.before);
  });

  it('the child ends normally with nothing on stderr', () => {
    expect(outcome.stderr).toBe('');
    expect(outcome.signal).toBeNull();
    expect(outcome.status).toBe(0);
  });
});
