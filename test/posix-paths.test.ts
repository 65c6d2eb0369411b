// The POSIX paths macOS takes where Linux has something better: temp files
// from mkostemp + unlink (no O_TMPFILE) and trim() handing pages over with
// MADV_FREE, which leaves their bytes (MADV_DONTNEED does not zero anonymous
// memory there). On Linux the addon takes them under
// MMAP_POOL_SIMULATE_NO_TMPFILE=1 and MMAP_POOL_SIMULATE_LAZY_DISCARD=1; on
// macOS and the BSDs they are the default and the switches do nothing.
// Every case runs in a child process (test/fixtures/posix-paths.js).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import * as path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { childEnv, fixture, resultOf, run, SLOWDOWN, type Outcome } from './fixture-run.js';

const linux = process.platform === 'linux';
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

interface TmpfileResult {
  backing: string;
  entries: string[];
  maps: string[] | null;
  intact: boolean;
  refused: { code: string; errno: number; syscall: string } | null;
}

describe.skipIf(process.platform === 'win32')('temp files from mkostemp + unlink (MMAP_POOL_SIMULATE_NO_TMPFILE=1 on Linux)', () => {
  it("have no name while mapped, are gone after SIGKILL, and a missing dir fails with ERR_MAP_FAILED from 'mkostemp'", async () => {
    const dir = fs.mkdtempSync(path.join(tmpdir(), 'mmap-pool-posix-'));
    dirs.push(dir);
    const missing = path.join(dir, 'missing');
    const child = spawn(process.execPath, [fixture('posix-paths.js'), 'tmpfile', dir, missing], {
      env: childEnv({ MMAP_POOL_SIMULATE_NO_TMPFILE: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Outcome = { status: null, signal: null, stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
    const closed = new Promise<void>((resolve) => child.on('close', (status, signal) => {
      out.status = status;
      out.signal = signal;
      resolve();
    }));
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'ready' in time; stderr:\n${out.stderr}`)), 20_000 * SLOWDOWN);
      child.stdout.on('data', () => {
        if (out.stdout.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        reject(new Error(`child ended before 'ready'; stderr:\n${out.stderr}`));
      });
    });
    try {
      await ready;
      const r = resultOf<TmpfileResult>(out);
      expect(r.backing).toBe('file');
      expect(r.intact).toBe(true);
      expect(r.entries).toEqual([]);
      if (linux) {
        // A chunk and a huge mapping (with its guard), each from a file that
        // had the mkostemp name and lost it at once; no O_TMPFILE file (#<inode>).
        expect(r.maps!.length).toBeGreaterThanOrEqual(2);
        for (const p of r.maps!) expect(p).toMatch(/\/\.mmap-pool-\w{6} \(deleted\)$/);
      }
      expect(r.refused).toEqual({ code: 'ERR_MAP_FAILED', errno: osConstants.errno.ENOENT, syscall: 'mkostemp' });
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await closed;
    }
    expect(out.signal).toBe('SIGKILL');
    expect(out.stderr).toBe('');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

interface DiscardResult {
  trimmed: number;
  lazy: number | null;
  sameOffset: boolean;
  nonZero: number;
  hold: number;
}

describe.skipIf(process.platform === 'win32')('trim() where a discard does not zero (MMAP_POOL_SIMULATE_LAZY_DISCARD=1 on Linux)', () => {
  it('hands the free pages over lazily, and alloc() of the same pages still returns zeros', () => {
    const out = run('posix-paths.js', ['discard'], { env: { MMAP_POOL_SIMULATE_LAZY_DISCARD: '1' } });
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    const r = resultOf<DiscardResult>(out);
    expect(r.hold).toBe(64);
    expect(r.trimmed).toBeGreaterThanOrEqual(200 * 1024);
    // MADV_FREE, not MADV_DONTNEED: pages are LazyFree (their old bytes
    // still there) until the kernel needs memory. Not all of them: it may
    // pass over large folios the range covers only in part (seen: 124 of
    // 224 KiB); without the switch, none.
    if (linux) expect(r.lazy).toBeGreaterThan(0);
    expect(r.sameOffset).toBe(true);
    expect(r.nonZero).toBe(0);
  });
});
