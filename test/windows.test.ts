// Windows only: what the platform layer promises there (native/platform/windows.cc).
// The default backing is 'file': temp files made with FILE_ATTRIBUTE_TEMPORARY
// | FILE_FLAG_DELETE_ON_CLOSE, which, unlike POSIX's unlinked files, keep
// their name (.mmap-pool-<pid>-<n>-<time>.tmp, hex) in dir while the pool
// holds them, and which the system deletes when their last handle closes,
// however the process ends. Errors carry GetLastError() and the Win32 call;
// huge mappings sit on the 64 KiB allocation granularity.
//
// scripts/test-windows.sh runs this file (with the rest of the suite) on
// Windows Node under Wine; elsewhere every case is skipped. Wine is not
// Windows: where it is known to behave differently, the case says so and
// checks what holds on both.
//
// Memory given back while an ArrayBuffer over it may still be reachable (a
// job in the thread pool may hold a pointer into it) is retired, not
// unmapped: the view stays until the collector took every ArrayBuffer over
// it (native/platform/windows.cc, Retire). Retire closes the temp file's
// handles at once, and Windows takes the name of a DELETE_ON_CLOSE file away
// when its last handle closes, view or no view: the name goes at close(),
// trim() and free(). Wine 8.0 deletes the file only when the last Unix
// descriptor of it goes, and the view holds one: there the name stays until
// the view is unmapped, after the collector. Under Wine, then, the cases
// below let go of the Buffers and wait for the collector before they look.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { binding } from '../lib/native/binding.js';
import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { childEnv, fixture, resultOf, run, type Outcome } from './fixture-run.js';
import { KiB, MiB, WINE as wine, collectedUnderWine, expectThrow } from './helpers.js';

const win32 = process.platform === 'win32';
/** A temp file of this process (pid, counter and QueryPerformanceCounter in hex). */
const OURS = new RegExp(`^\\.mmap-pool-${process.pid.toString(16)}-[0-9a-f]+-[0-9a-f]+\\.tmp$`);
/** A temp file of any process. */
const ANY = /^\.mmap-pool-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+\.tmp$/;

/** A huge mapping is followed by an inaccessible guard of one granule, in the same temp file. */
const GUARD = binding.mapGranularity;

const pools: Pool[] = [];
const dirs: string[] = [];

/** A new Pool, closed after the current test. */
function make(options?: PoolOptions): Pool {
  const pool = new Pool(options);
  pools.push(pool);
  return pool;
}

/** A fresh, empty directory for one test's temp files; removed after the test. */
function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mmap-pool-windows-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  // Pools first: on Windows a directory holding open files cannot be removed,
  // and under Wine a file stays until the collector took the test's Buffers.
  for (const pool of pools.splice(0)) pool.close();
  const held = dirs.splice(0);
  await collectedUnderWine(() => !held.some((dir) => entries(dir).some((name) => ANY.test(name))));
  for (const dir of held) fs.rmSync(dir, { recursive: true, force: true });
});

/** The entries of dir, sorted. */
function entries(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

/** The JSON after `<key> ` on a line of the child's stdout. */
function line<T>(out: { stdout: string }, key: string): T {
  const l = out.stdout.split('\n').find((s) => s.startsWith(`${key} `));
  if (l === undefined) throw new Error(`no '${key}' line in child output:\n${out.stdout}`);
  return JSON.parse(l.slice(key.length + 1)) as T;
}

describe.runIf(win32)("Windows: the default 'file' backing", () => {
  /** A default pool with a chunk and a huge mapping, closed while both Buffers are reachable; the names of its temp files. */
  function defaultPoolClosed(): string[] {
    const pool = make();
    expect(pool.stats().backing).toBe('file');
    const before = fs.readdirSync(os.tmpdir()).filter((f) => OURS.test(f));
    const small = pool.alloc(100);
    const huge = pool.alloc(2 * MiB);
    const added = fs.readdirSync(os.tmpdir()).filter((f) => OURS.test(f) && !before.includes(f));
    expect(added.length).toBe(2);  // one chunk, one huge mapping
    pool.close();
    expect(small.length).toBe(0);
    expect(huge.length).toBe(0);
    return added;
  }

  it("is the default: a Pool without options is file-backed, its temp files in os.tmpdir(), named while open and gone after close()", async () => {
    const added = defaultPoolClosed();
    const left = () => fs.readdirSync(os.tmpdir()).filter((f) => added.includes(f));
    await collectedUnderWine(() => left().length === 0);
    expect(left()).toEqual([]);
  });

  /** A small and a huge allocation in `pool`, their temp files checked; the huge one is freed while reachable. */
  function fileEach(pool: Pool, dir: string): void {
    expect(entries(dir)).toEqual([]);  // nothing is mapped before the first allocation
    const small = pool.alloc(64).fill(0x41);
    const huge = pool.alloc(300 * KiB).fill(0x42);
    const names = entries(dir);
    expect(names.length).toBe(2);
    for (const name of names) expect(name).toMatch(OURS);
    const sizes = names.map((n) => fs.statSync(path.join(dir, n)).size).sort((a, b) => a - b);
    const hugeMapped = pool.dump().huge[0]!.mappedBytes;
    expect(hugeMapped).toBe(320 * KiB);
    expect(sizes).toEqual([hugeMapped + GUARD, MiB].sort((a, b) => a - b));
    // The view and the file are one: the bytes written through the Buffer are in the file.
    const hugeFile = names.find((n) => fs.statSync(path.join(dir, n)).size === hugeMapped + GUARD)!;
    const head = Buffer.alloc(16);
    const fd = fs.openSync(path.join(dir, hugeFile), 'r');
    try {
      fs.readSync(fd, head, 0, 16, 0);
    } finally {
      fs.closeSync(fd);
    }
    expect(head).toEqual(Buffer.alloc(16, 0x42));

    pool.free(huge);
    expect(small.every((b) => b === 0x41)).toBe(true);
  }

  it('a temp file per chunk and per huge mapping (sized as mapped, plus the guard granule), holding the bytes written through the pool; free() of a huge buffer deletes its file at once', async () => {
    const dir = freshDir();
    const pool = make({ backing: 'file', dir, chunkSize: MiB, hugeThreshold: 256 * KiB });
    fileEach(pool, dir);
    await collectedUnderWine(() => entries(dir).length === 1);
    expect(entries(dir).length).toBe(1);  // the chunk's file stays
    pool.close();
    await collectedUnderWine(() => entries(dir).length === 0);
    expect(entries(dir)).toEqual([]);
  });

  /** Two chunks filled, emptied by free() while their Buffers are reachable, and trimmed; their names go into `seen`. */
  function emptiedAndTrimmed(pool: Pool, dir: string, seen: Set<string>): void {
    const bufs = Array.from({ length: 3 }, () => pool.alloc(30 * KiB));  // two chunks
    for (const n of entries(dir)) seen.add(n);
    for (const b of bufs) pool.free(b);
    expect(pool.trim()).toBeGreaterThan(0);
  }

  it('trim() of an emptied chunk deletes its file; the names never repeat within the process', async () => {
    const dir = freshDir();
    const pool = make({ backing: 'file', dir, chunkSize: 64 * KiB, hugeThreshold: 32 * KiB });
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      emptiedAndTrimmed(pool, dir, seen);
      await collectedUnderWine(() => entries(dir).length === 0);
      expect(entries(dir)).toEqual([]);
    }
    expect(seen.size).toBe(6);
  });
});

describe.runIf(win32)('Windows: a file-backed pool leaves no file behind, however the process ends', () => {
  it('after close() in a child: four named files while open, none after (under Wine: none once the Buffers were collected)', () => {
    const dir = freshDir();
    const r = run('windows-file-pool.js', ['close', dir], { execArgv: ['--expose-gc'] });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const open = line<string[]>(r, 'entries');
    expect(open.length).toBe(4);
    for (const name of open) expect(name).toMatch(ANY);
    // The child's Buffers are reachable at close(): see the top of this file.
    if (!wine) expect(line<string[]>(r, 'closed')).toEqual([]);
    expect(line<string[]>(r, 'collected')).toEqual([]);
    expect(entries(dir)).toEqual([]);
  });

  it('after process.exit(3) with the pools open', () => {
    const dir = freshDir();
    const r = run('windows-file-pool.js', ['exit', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(3);
    expect(line<string[]>(r, 'entries').length).toBe(4);
    expect(r.stdout).toContain('exiting\n');
    expect(entries(dir)).toEqual([]);
  });

  it('after an uncaught exception (exit code 1, the error on stderr)', () => {
    const dir = freshDir();
    const r = run('windows-file-pool.js', ['throw', dir]);
    expect(r.status).toBe(1);
    expect(line<string[]>(r, 'entries').length).toBe(4);
    expect(r.stdout).toContain('throwing\n');
    expect(r.stderr).toContain('Error: windows fixture: deliberate uncaught error');
    expect(entries(dir)).toEqual([]);
  });

  it('after child.kill() (TerminateProcess: no JS runs, only the system closes the handles)', async () => {
    const dir = freshDir();
    const child = spawn(process.execPath, [fixture('windows-file-pool.js'), 'kill', dir], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
    const closed = new Promise<Outcome>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (status, signal) => resolve({ status, signal, ...out }));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no 'ready' within 30 s; stdout:\n${out.stdout}`)), 30_000);
        child.stdout.on('data', () => {
          if (out.stdout.split('\n').includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', () => reject(new Error(`child exited before 'ready'; stdout:\n${out.stdout}\nstderr:\n${out.stderr}`)));
      });
      // Alive, writing to its memory: the four files are there, by name.
      const open = entries(dir);
      expect(open).toEqual(line<string[]>(out, 'entries'));
      expect(open.length).toBe(4);
      for (const name of open) expect(name).toMatch(new RegExp(`^\\.mmap-pool-${child.pid!.toString(16)}-`));
    } finally {
      child.kill();
    }
    const r = await closed;
    // Node reports a TerminateProcess'ed child as killed by SIGTERM.
    expect(r.status).toBeNull();
    expect(r.signal).toBe('SIGTERM');
    expect(r.stderr).toBe('');
    expect(entries(dir)).toEqual([]);
  });

  it('worker.terminate() x20 landing in the middle of alloc()/free() calls: each worker\'s files are gone when its exit event fires; the process lives on', () => {
    const dir = freshDir();
    const r = run('windows-worker.js', ['20', dir], { timeout: 120_000, execArgv: ['--expose-gc'] });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const res = resultOf<{ codes: number[]; during: number[]; after: string[][]; own: string[]; intact: boolean; left: string[]; collected: string[] }>(r);
    expect(res.codes).toEqual(new Array(20).fill(1));  // a terminated worker exits with 1
    expect(res.during).toEqual(new Array(20).fill(2));  // its chunk and its huge mapping
    expect(res.after).toEqual(new Array(20).fill([]));
    expect(res.own.length).toBe(1);  // the main thread's chunk, throughout
    expect(res.intact).toBe(true);
    // The main thread's Buffer is reachable at close(): see the top of this file.
    if (!wine) expect(res.left).toEqual([]);
    expect(res.collected).toEqual([]);
    expect(entries(dir)).toEqual([]);
  });
});

describe.runIf(win32)('Windows: errors, residency and the allocation granularity', () => {
  it("ERR_MAP_FAILED for a dir that does not exist: errno is GetLastError() (3, ERROR_PATH_NOT_FOUND), syscall 'CreateFileW'", () => {
    const missing = path.join(os.tmpdir(), `mmap-pool-missing-${process.pid}-${Date.now()}`, 'deeper');
    const pool = make({ backing: 'file', dir: missing });
    for (const size of [16, 2 * MiB]) {
      const err = expectThrow(() => pool.alloc(size), PoolError, 'ERR_MAP_FAILED') as PoolError;
      expect(err.errno).toBe(3);
      expect(err.syscall).toBe('CreateFileW');
      expect(err.message).toContain('CreateFileW failed (Windows error 3)');
    }
    expect(pool.stats().mappedBytes).toBe(0);
  });

  it("ERR_MAP_FAILED for a dir that is a file: GetLastError() from CreateFileW (ERROR_PATH_NOT_FOUND, 3, under Wine; ERROR_DIRECTORY, 267, is allowed too)", () => {
    const dir = freshDir();
    const file = path.join(dir, 'not-a-directory');
    fs.writeFileSync(file, 'x');
    const pool = make({ backing: 'file', dir: file });
    const err = expectThrow(() => pool.alloc(16), PoolError, 'ERR_MAP_FAILED') as PoolError;
    expect(err.syscall).toBe('CreateFileW');
    expect([3, 267]).toContain(err.errno);
    expect(entries(dir)).toEqual(['not-a-directory']);
  });

  it.each(['file', 'anonymous'] as const)("stats().residentBytes of a '%s' pool is a number (QueryWorkingSetEx), grows as pages are touched and never passes mappedBytes", (backing) => {
    const dir = freshDir();
    const pool = make({ backing, dir, hugeThreshold: 256 * KiB });
    const buf = pool.allocUnsafe(4 * MiB);
    const before = pool.stats().residentBytes;
    expect(typeof before).toBe('number');
    buf.fill(0x5a);
    const s = pool.stats();
    expect(typeof s.residentBytes).toBe('number');
    // All 4 MiB were just written, so Windows counts them all in the working
    // set. Wine answers from /proc/self/pagemap, where a page of a shared file
    // mapping may be missing (seen: one 4 KiB page of the 4 MiB): at least
    // three quarters, then.
    expect(s.residentBytes!).toBeGreaterThanOrEqual(3 * MiB);
    expect(s.residentBytes!).toBeLessThanOrEqual(s.mappedBytes);
    expect(s.residentBytes!).toBeGreaterThan(before!);
  });

  it('huge mappings sit on the 64 KiB allocation granularity: mappedBytes rounds up to it, pages stay 4 KiB', () => {
    expect(binding.pageSize).toBe(4 * KiB);
    expect(binding.mapGranularity).toBe(64 * KiB);
    const dir = freshDir();
    const pool = make({ backing: 'file', dir, hugeThreshold: 256 * KiB });
    const cases: [number, number][] = [
      [256 * KiB + 1, 320 * KiB],
      [300 * KiB, 320 * KiB],
      [320 * KiB, 320 * KiB],
      [MiB + 4 * KiB, MiB + 64 * KiB],
    ];
    let mapped = pool.stats().mappedBytes;
    for (const [size, expected] of cases) {
      const buf = pool.alloc(size);
      expect(buf.length).toBe(size);
      const now = pool.stats().mappedBytes;
      expect(now - mapped, `alloc(${size})`).toBe(expected);
      mapped = now;
    }
    const huge = pool.dump().huge;
    expect(huge.map((h) => h.mappedBytes).sort((a, b) => a - b)).toEqual(cases.map((c) => c[1]).sort((a, b) => a - b));
    // Each file is as long as its mapping and the guard granule after it.
    const sizes = entries(dir).map((n) => fs.statSync(path.join(dir, n)).size).sort((a, b) => a - b);
    expect(sizes).toEqual(cases.map((c) => c[1] + GUARD).sort((a, b) => a - b));
  });
});
