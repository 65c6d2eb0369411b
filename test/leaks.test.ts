// Leak detection, judged in child processes run with --expose-gc: what each
// level reports for buffers dropped without free(), and that freed buffers
// are never reported.
import { describe, expect, it } from 'vitest';

import { resultOf, run as runFixture } from './fixture-run.js';

interface Result {
  events: number;
  sizes: number[];
  stack: string | null;
  withStack: number;
  warnings: { code: string; message: string }[];
  published: number;
  live: number;
}

function run(level: string, count: number, mode: 'drop' | 'free' | 'reset' | 'mixed-drop' | 'mixed-free'): Result {
  const r = runFixture('leaks.js', [level, String(count), mode], { execArgv: ['--expose-gc'], timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return resultOf<Result>(r);
}

describe('leak detection', () => {
  it("'paranoid' reports every dropped allocation, with a stack naming the allocating function", () => {
    const r = run('paranoid', 500, 'drop');
    expect(r.events).toBe(500);
    expect(r.withStack).toBe(500);
    expect(r.stack).toContain('makeTheLeakyBuffers');
    expect(r.published).toBe(500);
    // One warning per allocation site (two sites in the fixture), not one per leak.
    expect(r.warnings.length).toBe(2);
    expect(r.warnings[0].message).toContain('Allocated at:');
    expect(r.warnings[0].message).toContain('makeTheLeakyBuffers');
    expect(r.live).toBe(500);
  });

  it("'simple' reports some but far from all of 5,000 dropped allocations, without stacks, in one warning", () => {
    const r = run('simple', 5000, 'drop');
    // About 1 in 128: expect ~39; far outside [5, 200] would mean the sampling is broken.
    expect(r.events).toBeGreaterThanOrEqual(5);
    expect(r.events).toBeLessThanOrEqual(200);
    expect(r.withStack).toBe(0);
    expect(r.warnings.length).toBe(1);
    expect(r.warnings[0].message).toContain("leakDetection: 'advanced'");
  });

  it("'advanced' samples like 'simple' but records the stack", () => {
    const r = run('advanced', 5000, 'drop');
    expect(r.events).toBeGreaterThanOrEqual(5);
    expect(r.events).toBeLessThanOrEqual(200);
    expect(r.withStack).toBe(r.events);
    expect(r.stack).toContain('makeTheLeakyBuffers');
  });

  it("'disabled' reports nothing", () => {
    const r = run('disabled', 2000, 'drop');
    expect(r.events).toBe(0);
    expect(r.warnings).toEqual([]);
    expect(r.live).toBe(2000);
  });

  it('freeing everything reports nothing, even at paranoid', () => {
    const r = run('paranoid', 2000, 'free');
    expect(r.events).toBe(0);
    expect(r.warnings).toEqual([]);
    expect(r.live).toBe(0);
  });

  it('every way in and out: cached Buffers and typed arrays, the allocator\'s own, release() to zero', () => {
    // Each kind is tracked in its own way (the block cache keeps a flag per
    // block, other views carry a mark): all 400 are reported when dropped...
    const dropped = run('paranoid', 400, 'mixed-drop');
    expect(dropped.events).toBe(400);
    expect(dropped.live).toBe(400);
    // ...and none once freed or released to zero.
    const freed = run('paranoid', 400, 'mixed-free');
    expect(freed.events).toBe(0);
    expect(freed.live).toBe(0);
  });

  it('buffers dropped after reset() freed them are not reported', () => {
    const r = run('paranoid', 1000, 'reset');
    expect(r.events).toBe(0);
    expect(r.live).toBe(0);
  });
});
