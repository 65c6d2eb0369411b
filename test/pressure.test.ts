// 'pressure' events: fired when mapped memory crosses a share of maxBytes,
// once per crossing within the cooldown, also on diagnostics_channel.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

import { afterEach, describe, expect, it } from 'vitest';

import { binding } from '../lib/native/binding.js';
import { Pool } from '../lib/index.js';
import { KiB, MiB } from './helpers.js';

const pools: Pool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

// 1 MiB cap, 64 KiB chunks; huge buffers above 32 KiB map exactly their size
// rounded to the mapping granularity (the page on POSIX, 64 KiB on Windows),
// so mappedBytes is easy to steer.
const mapped = (size: number): number => Math.ceil(size / binding.mapGranularity) * binding.mapGranularity;

function make(extra: object = {}): { pool: Pool; events: { level: string; ratio: number; mappedBytes: number }[] } {
  const pool = new Pool({ chunkSize: 64 * KiB, hugeThreshold: 32 * KiB, maxBytes: 1 * MiB, ...extra });
  pools.push(pool);
  const events: { level: string; ratio: number; mappedBytes: number }[] = [];
  pool.on('pressure', (e) => events.push(e));
  return { pool, events };
}

describe("'pressure' events", () => {
  it('fire at 0.8 (warning) and 0.95 (critical) of maxBytes, once per crossing', () => {
    const { pool, events } = make();
    const a = pool.allocUnsafe(700 * KiB);   // 68%: nothing
    expect(events).toEqual([]);
    const b = pool.allocUnsafe(128 * KiB);   // 81%: warning
    expect(events.map((e) => e.level)).toEqual(['warning']);
    const warnedAt = mapped(700 * KiB) + mapped(128 * KiB);  // 828 KiB (Windows: 832 KiB)
    expect(events[0].mappedBytes).toBe(warnedAt);
    expect(events[0].ratio).toBeCloseTo(warnedAt / MiB, 6);
    const c = pool.allocUnsafe(40 * KiB);    // 85%: still warning, no new event
    expect(events.map((e) => e.level)).toEqual(['warning']);
    const d = pool.allocUnsafe(112 * KiB);   // 96%: critical
    expect(events.map((e) => e.level)).toEqual(['warning', 'critical']);
    for (const buf of [a, b, c, d]) pool.free(buf);
  });

  it('a pool hovering around a threshold does not flood: the same level fires again only after the cooldown', async () => {
    const { pool, events } = make({ cooldownMs: 200 });
    const base = pool.allocUnsafe(768 * KiB);
    for (let i = 0; i < 20; i++) pool.free(pool.allocUnsafe(64 * KiB));  // 75% <-> 81.25%
    expect(events.map((e) => e.level)).toEqual(['warning']);
    await new Promise((r) => setTimeout(r, 250));
    pool.free(pool.allocUnsafe(64 * KiB));
    expect(events.map((e) => e.level)).toEqual(['warning', 'warning']);
    pool.free(base);
  });

  it('no events without maxBytes, or below the thresholds', () => {
    const unlimited = new Pool({ hugeThreshold: 32 * KiB });
    pools.push(unlimited);
    let fired = 0;
    unlimited.on('pressure', () => fired++);
    unlimited.free(unlimited.allocUnsafe(8 * MiB));
    const { pool, events } = make();
    pool.free(pool.allocUnsafe(500 * KiB));
    expect(fired).toBe(0);
    expect(events).toEqual([]);
  });

  it('thresholds are options, validated', () => {
    const { pool, events } = make({ thresholds: { warning: 0.25, critical: 0.5 } });
    const a = pool.allocUnsafe(300 * KiB);
    const b = pool.allocUnsafe(300 * KiB);
    expect(events.map((e) => e.level)).toEqual(['warning', 'critical']);
    pool.free(a);
    pool.free(b);
    for (const thresholds of [{ warning: 0 }, { critical: 1.5 }, { warning: 0.9, critical: 0.5 }]) {
      expect(() => new Pool({ maxBytes: MiB, thresholds })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(() => new Pool({ thresholds: { warning: '0.5' as unknown as number } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Pool({ cooldownMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it("are published on the 'mmap-pool:pressure' diagnostics channel with the pool's name", () => {
    const seen: unknown[] = [];
    const listener = (m: unknown): void => {
      seen.push(m);
    };
    subscribe('mmap-pool:pressure', listener);
    try {
      const { pool } = make({ name: 'watched' });
      pool.free(pool.allocUnsafe(900 * KiB));
    } finally {
      unsubscribe('mmap-pool:pressure', listener);
    }
    expect(seen).toEqual([expect.objectContaining({ pool: 'watched', level: 'warning', maxBytes: MiB })]);
  });
});
