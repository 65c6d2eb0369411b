// The alloc/free fast path fits V8's inlining budget: TurboFan inlines at
// most 920 bytes of bytecode into one function (--max-inlined-bytecode-size-
// cumulative), and when allocUnsafe() + free() of a cached size outgrow it,
// a caller's loop calls part of the fast path instead (bench/NOTES.md,
// "inlining budget"; it went over once, unnoticed, by a few bytes). Not a
// timing: what the compiler decided, read from --trace-turbo-inlining in a
// child that has the loop compiled on purpose (test/fixtures/inlining.js).
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { expect, it } from 'vitest';

const LIB = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
const FIXTURE = path.join(__dirname, 'fixtures', 'inlining.js');

/** Every function of the fast path of allocUnsafe(64) + free() (lib/pool.ts, lib/slot-cache.ts, lib/views.ts). */
const FAST_PATH = ['allocUnsafe', 'take', 'claim', 'nextSerial', 'PoolBuffer', 'free', 'liveSlot', 'freeBlock', 'push'];

// 'simple' is the default: its sampling is a countdown on the fast path,
// and the rare sampled allocation a call that is not inlined.
it.each(['disabled', 'simple'])("a caller's loop of allocUnsafe(64) + free() gets the whole fast path inlined by TurboFan (leakDetection '%s')", (level) => {
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--trace-turbo-inlining', FIXTURE, level], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MMAP_POOL_LIB: LIB },
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const line = r.stdout.split('\n').find((l) => l.startsWith('result '));
  expect(line).toBeDefined();
  // "Inlining 0x.. {0x.. <SharedFunctionInfo take>} into 0x.. {0x.. <SharedFunctionInfo callersLoop>}"
  const inlined = new Set<string>();
  for (const m of r.stdout.matchAll(/^Inlining .*<SharedFunctionInfo (\S+)>\} into .*<SharedFunctionInfo callersLoop>\}/gm)) {
    inlined.add(m[1]);
  }
  expect(FAST_PATH.filter((f) => !inlined.has(f))).toEqual([]);
});
