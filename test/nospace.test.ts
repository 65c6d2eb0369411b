// A 'file' pool never maps a page it has no disk block for: where the pool
// cannot preallocate (no posix_fallocate, or the file system refuses it: musl
// on some file systems, macOS without F_PREALLOCATE, the BSDs), it writes the
// blocks, and no space is ERR_MAP_FAILED naming the call, never SIGBUS.
// MMAP_POOL_SIMULATE_NO_FALLOCATE=1 makes the addon take that path on Linux
// too. The cases run test/fixtures/nospace.js in a child process, loading
// the compiled library (dist/lib/index.js, written by `tsc -p tsconfig.json`,
// which `npm test` runs first) through MMAP_POOL_LIB:
//   - in a 2 MiB tmpfs of the child's own (unshare: a mount namespace, and a
//     user namespace so that no root is needed), where the kernel allows
//     that; elsewhere skipped, saying so, unless MMAP_POOL_REQUIRE_TMPFS=1;
//   - under a 1.5 MiB RLIMIT_FSIZE (prlimit), which makes the write that
//     crosses it fail with EFBIG, everywhere on Linux.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LIB, resultOf, run, type Outcome } from './fixture-run.js';

const linux = process.platform === 'linux';
const MiB = 1024 * 1024;

interface Attempt {
  threw: boolean;
  value?: boolean;
  name?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  message?: string;
}

interface Result {
  fsSize: number;
  simulated: boolean;
  before: Record<string, unknown>;
  big: Attempt;
  after: Record<string, unknown>;
  fits: Attempt;
  smallHolds: boolean;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mmap-pool-nospace-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the child with its own 2 MiB tmpfs mounted on `dir` (a private mount namespace). */
function onTmpfs(dir: string): string[] {
  return ['unshare', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', dir];
}

/** Whether a child can mount its own tmpfs here (user namespaces allowed, unshare present). */
function canMountTmpfs(): boolean {
  if (!linux) return false;
  const dir = tempDir();
  const r = spawnSync(onTmpfs(dir)[0]!, [...onTmpfs(dir).slice(1), 'true'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

const TMPFS = canMountTmpfs();
const TMPFS_REQUIRED = process.env.MMAP_POOL_REQUIRE_TMPFS === '1';
if (linux && !TMPFS && !TMPFS_REQUIRED) {
  console.warn('test/nospace.test.ts: this system does not let a process mount its own tmpfs ' +
    '(`unshare --map-root-user --mount` refused), so the full-tmpfs cases are skipped; the RLIMIT_FSIZE cases still run');
}

const FSIZE = 1536 * 1024 + 100;  // room for the 1 MiB chunk and the 512 KiB allocation, not for 3 MiB

const places = [
  { where: 'a full 2 MiB tmpfs', runs: TMPFS || TMPFS_REQUIRED, prefix: onTmpfs, errno: 'ENOSPC' },
  { where: `a ${FSIZE}-byte RLIMIT_FSIZE`, runs: true, prefix: () => ['prlimit', `--fsize=${FSIZE}`], errno: 'EFBIG' },
] as const;

// Linux only (posix_fallocate, unshare and tmpfs, prlimit and RLIMIT_FSIZE);
// on Windows these are expected skips in scripts/test-windows.sh.
describe.runIf(linux).each(places)('a file pool that cannot preallocate, on $where (child process)', ({ runs, prefix, errno }) => {
  let outcome: Outcome;
  let res: Result;
  beforeAll(() => {
    if (!runs) return;
    if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
    const dir = tempDir();
    outcome = run('nospace.js', [dir], { prefix: prefix(dir), env: { MMAP_POOL_SIMULATE_NO_FALLOCATE: '1' }, timeout: 30_000 });
    res = resultOf<Result>(outcome);
  });
  const itRuns = runs ? it : it.skip;

  itRuns('the child ends normally with nothing on stderr: no SIGBUS', () => {
    expect(outcome.signal).toBeNull();
    expect(outcome.stderr).toBe('');
    expect(outcome.status).toBe(0);
    expect(res.simulated).toBe(true);
  });

  itRuns("a 3 MiB allocation without room for its blocks throws ERR_MAP_FAILED naming 'pwrite'", () => {
    expect(res.big.threw).toBe(true);
    expect(res.big.name).toBe('PoolError');
    expect(res.big.code).toBe('ERR_MAP_FAILED');
    expect(res.big.syscall).toBe('pwrite');
    expect(res.big.errno).toBe(os.constants.errno[errno]);
    expect(res.big.message).toContain(`pwrite failed (${errno})`);
  });

  itRuns('the refused allocation leaves stats() as they were', () => {
    expect(res.after).toEqual(res.before);
  });

  itRuns('with room, allocations work and their bytes round-trip: 100 KiB in the first chunk, then 512 KiB of its own', () => {
    expect(res.smallHolds).toBe(true);
    expect(res.fits).toEqual({ threw: false, value: true });
  });

  if (prefix === onTmpfs) {
    itRuns('the tmpfs really is 2 MiB (precondition)', () => {
      expect(res.fsSize).toBe(2 * MiB);
    });
  }
});
