// The alloc/free fast path fits V8's inlining budget: TurboFan inlines at
// most 920 bytes of bytecode into one function (--max-inlined-bytecode-size-
// cumulative), and when allocUnsafe() + free() of a cached size outgrow it,
// a caller's loop calls part of the fast path instead (docs/design.md,
// "The JS fast path"). Not a
// timing: what the compiler decided, read from --trace-turbo-inlining in a
// child that has the loop compiled on purpose (test/fixtures/inlining.js).
import { expect, it } from 'vitest';

import { resultOf, run } from './fixture-run.js';

/**
 * Every function of the fast path of allocUnsafe(64) + free() (lib/pool.ts,
 * lib/cache/block-cache.ts and class-stacks.ts, lib/buffers/pool-buffer.ts and serials.ts). take() has claim() written out.
 */
const FAST_PATH = ['allocUnsafe', 'take', 'nextSerial', 'PoolBuffer', 'free', 'liveBlock', 'freeBlock', 'push'];

// 'simple' is the default: its sampling is a countdown on the fast path,
// and the rare sampled allocation a call that is not inlined.
it.each(['disabled', 'simple'])("a caller's loop of allocUnsafe(64) + free() gets the whole fast path inlined by TurboFan (leakDetection '%s')", (level) => {
  const r = run('inlining.js', [level], { execArgv: ['--allow-natives-syntax', '--trace-turbo-inlining'] });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  resultOf(r);  // the fixture ran to its end
  // "Inlining 0x.. {0x.. <SharedFunctionInfo take>} into 0x.. {0x.. <SharedFunctionInfo callersLoop>}"
  const inlined = new Set<string>();
  for (const m of r.stdout.matchAll(/^Inlining .*<SharedFunctionInfo (\S+)>\} into .*<SharedFunctionInfo callersLoop>\}/gm)) {
    inlined.add(m[1]);
  }
  expect(FAST_PATH.filter((f) => !inlined.has(f))).toEqual([]);
});
