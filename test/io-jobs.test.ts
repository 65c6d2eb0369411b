// Jobs in Node's thread pool (zlib, crypto) that still read or write pool
// memory when the program frees it, trims or closes the pool: the job may
// get garbage, the process must not die. Each case runs in a child process
// (test/fixtures/io-jobs.js) with one thread-pool thread, busy with a slow
// pbkdf2 call, so the job runs only after the pool has let go.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { resultOf, run, type Outcome } from './fixture-run.js';

const linux = process.platform === 'linux';
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function runJob(mode: string, args: string[] = []): Outcome {
  return run('io-jobs.js', [mode, ...args], {
    execArgv: ['--expose-gc'],
    env: { UV_THREADPOOL_SIZE: '1' },
    timeout: 60_000,
  });
}

interface JobResult {
  error: string | null;
  outputBytes?: number;
}

/** The child ended normally, its job done without an error. */
function expectSurvived(r: Outcome): JobResult {
  expect(r.signal, r.stderr).toBeNull();  // SIGSEGV (or SIGBUS) when the memory was unmapped under the job
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  const res = resultOf<JobResult>(r);
  expect(res.error).toBeNull();
  return res;
}

describe('a thread-pool job over pool memory outlives the memory being given back', () => {
  it('crypto.randomFill() into a 48 MiB huge allocation, then free(): the process survives', () => {
    const res = expectSurvived(runJob('crypto-free')) as JobResult & { lengthAfterFree: number };
    expect(res.lengthAfterFree).toBe(0);
  });

  it('zlib.deflate() of a 3 MB allocation, then close(): the process survives and deflate completes', () => {
    const res = expectSurvived(runJob('zlib-close'));
    expect(res.outputBytes).toBeGreaterThan(0);
  });

  it('zlib.deflate() of 500 KB in a chunk, then free() and trim() of that chunk: the process survives', () => {
    const res = expectSurvived(runJob('zlib-trim')) as JobResult & { trimmed: number };
    expect(res.trimmed).toBeGreaterThan(0);  // the chunk really went back
    expect(res.outputBytes).toBeGreaterThan(0);
  });

  it("zlib.deflate() of 3 MB in a 'heap' pool, then close(): the process survives", () => {
    const res = expectSurvived(runJob('heap-close')) as JobResult & { lengthAfterClose: number };
    expect(res.lengthAfterClose).toBe(0);  // the view is detached all the same
    expect(res.outputBytes).toBeGreaterThan(0);
  });

  // Linux only: it reads /proc/self/maps, and what it checks is MAP_FIXED
  // reuse of a retired range, which Windows does not do (a retired view stays
  // until the collector; native/platform/windows.cc: Retire, MapOver).
  it.runIf(linux)('memory freed while a view of it stays reachable keeps its addresses only until a new mapping takes them over', () => {
    const r = runJob('reuse');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const res = resultOf<{ growth: number; keptLengths: number[] }>(r);
    expect(res.keptLengths).toEqual([0]);  // every kept view detached
    // 30 x 40 MiB + 30 x 4 MiB would be 1.3 GiB; one of each waiting is 44 MiB.
    expect(res.growth).toBeLessThan(100 * 1024 * 1024);
  });

  // On Windows (no /proc/self/maps) only that the process survives, the
  // job completes and no file is left behind; the mapping checks are Linux's.
  it.runIf(linux || process.platform === 'win32')(
    "zlib.deflate() in a 'file' pool, then close(): the process survives, the file mapping ends at close() and the addresses once the views are collected",
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mmap-pool-io-'));
      dirs.push(dir);
      const res = expectSurvived(runJob('file-close', [dir])) as JobResult & {
        fileMappingsBefore: number;
        fileMappingsAfterClose: number;
        rangeMappedAfterClose: boolean;
        rangeMappedAfterGc: boolean;
      };
      expect(res.outputBytes).toBeGreaterThan(0);
      if (!linux) {
        expect(fs.readdirSync(dir)).toEqual([]);
        return;
      }
      expect(res.fileMappingsBefore).toBeGreaterThan(0);
      // close(): the temp file is no longer mapped (its blocks are free), ...
      expect(res.fileMappingsAfterClose).toBe(0);
      // ... while its addresses stay mapped for the job, ...
      expect(res.rangeMappedAfterClose).toBe(true);
      // ... until the job's view is gone and collected.
      expect(res.rangeMappedAfterGc).toBe(false);
      expect(fs.readdirSync(dir)).toEqual([]);
    },
  );
});
