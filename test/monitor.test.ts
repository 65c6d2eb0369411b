// monitor(): 'growth' on sustained growth, judged by a least-squares line
// over a window of samples; silence on a steady or noisy-flat pool; at most
// one event per window; an unref'd timer that stops with the pool.
//
// Timer tests use 5-10 ms intervals and wait for a number of samples (with
// a bound), never for a wall-clock duration. The child-process test loads
// the compiled library (dist/, written by `tsc -p tsconfig.json`).
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, type PoolStats } from '../lib/index.js';
import { KiB, MiB } from './helpers.js';
import { growthSlope, monitor, type GrowthInfo, type Monitor } from '../lib/observe/monitor.js';

const DIST = path.join(__dirname, '..', 'dist', 'lib');

const cleanup: (() => void)[] = [];
/** Keeps allocations reachable until their pool is closed: dropped ones would be reported as leaks. */
const held: unknown[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  held.length = 0;
});

function track<T extends Monitor | Pool | NodeJS.Timeout>(x: T): T {
  if (x instanceof Pool) cleanup.push(() => x.close());
  else if ('stop' in x) cleanup.push(() => x.stop());
  else cleanup.push(() => clearInterval(x));
  return x;
}

/** Counts the pool's stats() calls: the monitor's samples. */
function counted(pool: Pool): { pool: Pool; samples: () => number } {
  let n = 0;
  const stats = pool.stats.bind(pool);
  pool.stats = (): PoolStats => {
    n++;
    return stats();
  };
  return { pool, samples: () => n };
}

/** Resolves when `done()` holds; rejects after `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A stand-in pool whose usedBytes is `used(k)` at its k-th sample (k = 0, 1, ...). */
function fakePool(used: (k: number) => number): EventEmitter & { stats(): PoolStats; closed: boolean; calls: number } {
  const pool = Object.assign(new EventEmitter(), {
    closed: false,
    calls: 0,
    stats(): PoolStats {
      return { usedBytes: used(pool.calls++) } as PoolStats;
    },
  });
  return pool;
}

describe('growthSlope', () => {
  it('is exact on a straight line', () => {
    const up = Array.from({ length: 10 }, (_, i) => ({ t: i, v: 5 + 2.5 * i }));
    expect(growthSlope(up).slope).toBeCloseTo(2.5, 12);
    expect(growthSlope(up).r2).toBeCloseTo(1, 12);
    const down = Array.from({ length: 7 }, (_, i) => ({ t: i * 0.5, v: 100 - 3 * i }));
    expect(growthSlope(down).slope).toBeCloseTo(-6, 12);
    expect(growthSlope(down).r2).toBeCloseTo(1, 12);
  });

  it('keeps its digits with large t and v (seconds since boot, gigabytes)', () => {
    const s = Array.from({ length: 50 }, (_, i) => ({ t: 1e6 + i * 0.01, v: 8e9 + 123456 * i }));
    expect(growthSlope(s).slope).toBeCloseTo(12345600, 0);
    expect(growthSlope(s).r2).toBeCloseTo(1, 9);
  });

  it('matches the textbook fit of Anscombe\'s first data set', () => {
    const x = [10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5];
    const y = [8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68];
    const { slope, r2 } = growthSlope(x.map((t, i) => ({ t, v: y[i] })));
    expect(slope).toBeCloseTo(0.5001, 4);
    expect(r2).toBeCloseTo(0.6665, 4);
  });

  it('gives slope 0 and r2 0 when there is no trend to measure', () => {
    expect(growthSlope([])).toEqual({ slope: 0, r2: 0 });
    expect(growthSlope([{ t: 1, v: 1 }])).toEqual({ slope: 0, r2: 0 });
    expect(growthSlope([{ t: 1, v: 1 }, { t: 1, v: 5 }])).toEqual({ slope: 0, r2: 0 });
    expect(growthSlope([0, 1, 2, 3].map((t) => ({ t, v: 42 })))).toEqual({ slope: 0, r2: 0 });
  });

  it('throws ERR_INVALID_ARG_TYPE for samples that are not { t, v } numbers', () => {
    const code = { code: 'ERR_INVALID_ARG_TYPE' };
    expect(() => growthSlope('x' as never)).toThrow(expect.objectContaining(code));
    expect(() => growthSlope([{ t: 0, v: 0 }, null as never])).toThrow(expect.objectContaining(code));
    expect(() => growthSlope([{ t: 0, v: NaN }])).toThrow(expect.objectContaining(code));
    expect(() => growthSlope([{ t: '1', v: 0 } as never])).toThrow(expect.objectContaining(code));
  });
});

describe('monitor', () => {
  it('emits growth on a steadily growing pool', async () => {
    const pool = track(new Pool({ name: 'growing' }));
    const events: GrowthInfo[] = [];
    pool.on('growth', (e: GrowthInfo) => events.push(e));
    const keep: Buffer[] = [];
    held.push(keep);
    track(setInterval(() => keep.push(pool.alloc(32 * KiB)), 5));
    track(monitor(pool, { intervalMs: 10, window: 10 }));
    await until(() => events.length > 0, 10_000, "a 'growth' event");
    const [e] = events;
    expect(e.window).toBe(10);
    expect(e.intervalMs).toBe(10);
    expect(e.r2).toBeGreaterThanOrEqual(0.8);
    expect(e.r2).toBeLessThanOrEqual(1);
    expect(e.slopeBytesPerSecond).toBeGreaterThan(0);
    expect(e.usedBytes).toBeGreaterThan(0);
    expect(e.usedBytes).toBeLessThanOrEqual(pool.stats().usedBytes);
  });

  it('pool.monitor() emits growth on a growing pool and reads usedBytes without a stats() per sample', async () => {
    const { pool, samples } = counted(track(new Pool({ name: 'growing-own' })));
    const events: GrowthInfo[] = [];
    pool.on('growth', (e: GrowthInfo) => events.push(e));
    const keep: Buffer[] = [];
    held.push(keep);
    track(setInterval(() => keep.push(pool.alloc(32 * KiB)), 5));
    track(pool.monitor({ intervalMs: 10, window: 10 }));
    await until(() => events.length > 0, 10_000, "a 'growth' event");
    expect(samples()).toBe(0);
    expect(events[0].usedBytes).toBeGreaterThan(0);
    expect(events[0].usedBytes % (32 * KiB)).toBe(0);
    expect(events[0].usedBytes).toBeLessThanOrEqual(pool.stats().usedBytes);
  });

  it('stays quiet on a steady pool', async () => {
    const { pool, samples } = counted(track(new Pool({ name: 'steady' })));
    for (let i = 0; i < 100; i++) held.push(pool.alloc(1000 + i));
    let growth = 0;
    pool.on('growth', () => growth++);
    track(monitor(pool, { intervalMs: 5, window: 5 }));
    await until(() => samples() >= 40, 10_000, '40 samples');
    expect(growth).toBe(0);
  });

  it('stays quiet on a pool whose use jumps around a level', async () => {
    const { pool, samples } = counted(track(new Pool({ name: 'noisy' })));
    held.push(pool.alloc(1 * MiB));
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let noise: Buffer | undefined;
    track(setInterval(() => {
      if (noise) pool.free(noise);
      noise = pool.alloc(Math.floor(random() * 512 * KiB));
      held.push(noise);
    }, 3));
    let growth = 0;
    pool.on('growth', () => growth++);
    track(monitor(pool, { intervalMs: 10, window: 20 }));
    await until(() => samples() >= 80, 15_000, '80 samples');
    expect(growth).toBe(0);
  });

  it('emits at most once per full window', async () => {
    const pool = fakePool((k) => 1 * MiB + k * 64 * KiB);
    let growth = 0;
    pool.on('growth', () => growth++);
    const m = track(monitor(pool, { intervalMs: 5, window: 6 }));
    await until(() => pool.calls >= 40, 10_000, '40 samples');
    m.stop();
    expect(growth).toBeGreaterThanOrEqual(1);
    expect(growth).toBeLessThanOrEqual(Math.floor(pool.calls / 6));
  });

  it('has a default threshold of max(1 KiB/s, 1% of usedBytes per window span)', async () => {
    // 4 B per 5 ms sample: at most 800 B/s, under the 1 KiB/s floor.
    const slow = fakePool((k) => 4096 + 4 * k);
    // 64 KiB per sample on 100 GiB: far under 1% of it per window span.
    const big = fakePool((k) => 100 * 1024 * MiB + k * 64 * KiB);
    // 64 KiB per sample on 1 MiB: far over both.
    const fast = fakePool((k) => 1 * MiB + k * 64 * KiB);
    const seen = new Map<object, number>();
    for (const p of [slow, big, fast]) {
      seen.set(p, 0);
      p.on('growth', () => seen.set(p, (seen.get(p) ?? 0) + 1));
      track(monitor(p, { intervalMs: 5, window: 5 }));
    }
    await until(() => Math.min(slow.calls, big.calls, fast.calls) >= 25, 10_000, '25 samples each');
    expect(seen.get(slow)).toBe(0);
    expect(seen.get(big)).toBe(0);
    expect(seen.get(fast)).toBeGreaterThan(0);
  });

  it('takes a threshold in bytes per second', async () => {
    const high = fakePool((k) => k * 64 * KiB);
    const low = fakePool((k) => 4096 + 5 * k);
    let highGrowth = 0;
    let lowGrowth = 0;
    high.on('growth', () => highGrowth++);
    low.on('growth', (e: GrowthInfo) => {
      lowGrowth++;
      expect(e.slopeBytesPerSecond).toBeGreaterThan(10);
    });
    track(monitor(high, { intervalMs: 5, window: 5, threshold: 1e15 }));
    track(monitor(low, { intervalMs: 5, window: 5, threshold: 10 }));
    await until(() => Math.min(high.calls, low.calls) >= 25, 10_000, '25 samples each');
    expect(highGrowth).toBe(0);
    expect(lowGrowth).toBeGreaterThan(0);
  });

  it('stops itself when the pool closes', async () => {
    const { pool, samples } = counted(track(new Pool({ name: 'closing' })));
    track(monitor(pool, { intervalMs: 5, window: 5 }));
    await until(() => samples() >= 3, 10_000, '3 samples');
    pool.close();
    const at = samples();
    await new Promise((r) => setTimeout(r, 60));
    // At most the sample already under way when close() ran.
    expect(samples() - at).toBeLessThanOrEqual(1);
    const settled = samples();
    await new Promise((r) => setTimeout(r, 60));
    expect(samples()).toBe(settled);
  });

  it('stops on stop() and on Symbol.dispose, idempotently', async () => {
    const a = counted(track(new Pool({ name: 'a' })));
    const m = monitor(a.pool, { intervalMs: 5, window: 5 });
    await until(() => a.samples() >= 2, 10_000, '2 samples');
    m.stop();
    m.stop();
    const at = a.samples();
    const b = counted(track(new Pool({ name: 'b' })));
    {
      using _m = monitor(b.pool, { intervalMs: 5, window: 5 });
      await until(() => b.samples() >= 2, 10_000, '2 samples');
    }
    const bt = b.samples();
    await new Promise((r) => setTimeout(r, 50));
    expect(a.samples()).toBe(at);
    expect(b.samples()).toBe(bt);
  });

  it('checks its arguments', () => {
    const pool = track(new Pool());
    const type = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    const range = expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
    expect(() => monitor({} as Pool, { intervalMs: 10, window: 5 })).toThrow(type);
    expect(() => monitor(pool, null as never)).toThrow(type);
    expect(() => monitor(pool, { intervalMs: '10' as never, window: 5 })).toThrow(type);
    expect(() => monitor(pool, { intervalMs: 10, window: undefined as never })).toThrow(type);
    expect(() => monitor(pool, { intervalMs: 10, window: 5, threshold: '1' as never })).toThrow(type);
    expect(() => monitor(pool, { intervalMs: 0, window: 5 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 1.5, window: 5 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 2 ** 31, window: 5 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 10, window: 2 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 10, window: 100_001 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 10, window: 5, threshold: -1 })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 10, window: 5, threshold: NaN })).toThrow(range);
    expect(() => monitor(pool, { intervalMs: 10, window: 5, threshold: Infinity })).toThrow(
      /The value of "options.threshold" is out of range/,
    );
  });

  it('never keeps the process alive: a child that only starts a monitor exits on its own', () => {
    const script = `
      const { Pool } = require(${JSON.stringify(path.join(DIST, 'index.js'))});
      const { monitor } = require(${JSON.stringify(path.join(DIST, 'observe', 'monitor.js'))});
      const pool = new Pool({ name: 'child' });
      monitor(pool, { intervalMs: 10, window: 5 });
      console.log('started');
    `;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      encoding: 'utf8',
      timeout: 10_000,
      killSignal: 'SIGKILL',
    });
    expect(r.error).toBeUndefined();
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('started\n');
    expect(r.status).toBe(0);
  });
});
