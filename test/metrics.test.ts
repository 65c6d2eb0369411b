// Metrics: toPrometheus() against the text exposition format 0.0.4 (checked
// by a parser here and by promtool), and registerMetrics() with the real
// prom-client.
//
// promtool comes from Debian's `prometheus` package. Where it is not on
// PATH, the two promtool cases are skipped and say so (a new user's
// `npm test` needs nothing but Node and a compiler); with
// MMAP_POOL_REQUIRE_PROMTOOL=1, which .ci/run sets, they run and a missing
// promtool fails them.
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

import { Gauge, Registry, type OpenMetricsContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { Pool, type PoolOptions } from '../lib/index.js';
import { hold, KiB, make, MiB } from './helpers.js';
import { METRIC_NAMES, registerMetrics, toPrometheus } from '../lib/observe/metrics.js';


/** A pool with small, large and huge allocations, some freed. */
function busy(name: string, options: PoolOptions = {}): Pool {
  const pool = make({ name, ...options });
  const bufs = hold(Array.from({ length: 300 }, (_, i) => pool.alloc(8 + ((i * 37) % 900))));
  bufs.push(pool.alloc(64 * KiB), pool.alloc(200 * KiB), pool.alloc(2 * MiB));
  for (let i = 0; i < bufs.length; i += 4) pool.free(bufs[i]);
  return pool;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  help: Map<string, string[]>;
  type: Map<string, string[]>;
  samples: Sample[];
}

/** A strict reader of the text format: throws on any line it does not understand. */
function parse(text: string): Exposition {
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  const push = (m: Map<string, string[]>, k: string, v: string): void => {
    m.set(k, [...(m.get(k) ?? []), v]);
  };
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      push(out.help, m[1], m[2]);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      push(out.type, m[1], m[2]);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a line of the text format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (!l) throw new Error(`bad labels in ${JSON.stringify(line)}`);
      expect(labels).not.toHaveProperty(l[1]);
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`);
    out.samples.push({ name: m[1], labels, value });
  }
  return out;
}

function value(e: Exposition, name: string, labels: Record<string, string>): number | undefined {
  return e.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

function findOnPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, cmd);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const PROMTOOL = findOnPath('promtool');
const PROMTOOL_REQUIRED = process.env.MMAP_POOL_REQUIRE_PROMTOOL === '1';
/** The promtool cases run where promtool is on PATH, and always where CI requires it. */
const promtoolIt = PROMTOOL !== undefined || PROMTOOL_REQUIRED ? it : it.skip;
if (PROMTOOL === undefined && !PROMTOOL_REQUIRED) {
  console.warn('test/metrics.test.ts: promtool is not on PATH, so the exposition text is not checked by promtool ' +
    '(2 cases skipped; Debian/Ubuntu: apt-get install -y --no-install-recommends prometheus)');
}

describe('toPrometheus', () => {
  it('writes # HELP and # TYPE once per family, before its samples', () => {
    const text = toPrometheus(busy('a'), busy('b', { maxBytes: 64 * MiB }));
    const e = parse(text);
    for (const name of METRIC_NAMES) {
      expect(e.help.get(name), name).toHaveLength(1);
      expect(e.type.get(name), name).toHaveLength(1);
    }
    expect([...e.help.keys()]).toEqual(METRIC_NAMES);
    // Each family's samples follow its TYPE line, contiguously.
    const lines = text.trimEnd().split('\n');
    let current = '';
    const seen = new Set<string>();
    for (const line of lines) {
      const t = /^# TYPE (\S+)/.exec(line);
      if (t) {
        expect(seen.has(t[1])).toBe(false);
        seen.add(t[1]);
        current = t[1];
      } else if (!line.startsWith('#')) {
        expect(line.startsWith(`${current}{`)).toBe(true);
      }
    }
  });

  it('types counters as counter with names ending in _total, and everything else as gauge', () => {
    const e = parse(toPrometheus(busy('a')));
    for (const [name, [type]] of e.type) {
      if (name.endsWith('_total')) expect(type, name).toBe('counter');
      else expect(type, name).toBe('gauge');
    }
    expect(e.type.get('mmap_pool_allocations_total')).toEqual(['counter']);
    expect(e.type.get('mmap_pool_frees_total')).toEqual(['counter']);
  });

  it('reports the values of stats(), one sample per pool', () => {
    const a = busy('a', { maxBytes: 128 * MiB });
    const b = busy('b');
    const e = parse(toPrometheus(a, b));
    for (const pool of [a, b]) {
      const s = pool.stats();
      const at = (name: string): number | undefined => value(e, name, { pool: s.name });
      expect(at('mmap_pool_mapped_bytes')).toBe(s.mappedBytes);
      expect(at('mmap_pool_used_bytes')).toBe(s.usedBytes);
      expect(at('mmap_pool_allocated_bytes')).toBe(s.allocatedBytes);
      expect(at('mmap_pool_peak_used_bytes')).toBe(s.peakUsedBytes);
      expect(at('mmap_pool_live_allocations')).toBe(s.liveAllocations);
      expect(at('mmap_pool_chunks')).toBe(s.chunks);
      expect(at('mmap_pool_huge_allocations')).toBe(s.hugeAllocations);
      expect(at('mmap_pool_free_bytes')).toBe(s.freeBytes);
      expect(at('mmap_pool_cached_bytes')).toBe(s.cachedBytes);
      expect(at('mmap_pool_allocations_total')).toBe(s.totalAllocations);
      expect(at('mmap_pool_frees_total')).toBe(s.totalFrees);
      const classes = s.classes.filter((c) => c.capacity > 0);
      expect(classes.length).toBeGreaterThan(3);
      for (const c of classes) {
        const labels = { pool: s.name, class_bytes: String(c.size) };
        expect(value(e, 'mmap_pool_class_live_allocations', labels)).toBe(c.live);
        expect(value(e, 'mmap_pool_class_capacity', labels)).toBe(c.capacity);
      }
      const classSamples = e.samples.filter((x) => x.name === 'mmap_pool_class_capacity' && x.labels.pool === s.name);
      expect(classSamples).toHaveLength(classes.length);
    }
    expect(value(e, 'mmap_pool_max_bytes', { pool: 'a' })).toBe(128 * MiB);
  });

  it('leaves out the mmap_pool_max_bytes sample of a pool without maxBytes', () => {
    const e = parse(toPrometheus(busy('capped', { maxBytes: 32 * MiB }), busy('open')));
    expect(e.samples.filter((s) => s.name === 'mmap_pool_max_bytes').map((s) => s.labels.pool)).toEqual(['capped']);
    // No sample at all: the family is left out whole.
    expect(toPrometheus(busy('open2'))).not.toContain('mmap_pool_max_bytes');
  });

  it('reads stats() at each call', () => {
    const pool = make({ name: 'live' });
    const before = parse(toPrometheus(pool));
    hold(pool.alloc(1000));
    const after = parse(toPrometheus(pool));
    expect(value(before, 'mmap_pool_used_bytes', { pool: 'live' })).toBe(0);
    expect(value(after, 'mmap_pool_used_bytes', { pool: 'live' })).toBe(1000);
    expect(value(after, 'mmap_pool_allocations_total', { pool: 'live' })).toBe(1);
  });

  it('escapes backslash, double quote and newline in label values', () => {
    const pool = make({ name: 'a\\b"c\nd' });
    const text = toPrometheus(pool);
    expect(text).toContain('mmap_pool_used_bytes{pool="a\\\\b\\"c\\nd"} 0\n');
    expect(parse(text).samples.every((s) => s.labels.pool === 'a\\b"c\nd')).toBe(true);
  });

  it('tells pools with the same name apart by a #n suffix, in argument order', () => {
    const first = make({ name: 'x' });
    const second = make({ name: 'x' });
    const literal = make({ name: 'x#2' });
    const third = make({ name: 'x' });
    hold([second.alloc(2), literal.alloc(3), third.alloc(4)]);
    const e = parse(toPrometheus(first, second, literal, third));
    const used = e.samples.filter((s) => s.name === 'mmap_pool_used_bytes');
    // "x#2" is some pool's own name: the second "x" skips it.
    expect(used.map((s) => [s.labels.pool, s.value])).toEqual([['x', 0], ['x#3', 2], ['x#2', 3], ['x#4', 4]]);
    // No duplicate series in any family.
    const keys = e.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Deterministic: the same call gives the same labels.
    expect(toPrometheus(first, second, literal, third)).toBe(toPrometheus(first, second, literal, third));
  });

  it('counts the same pool passed twice once', () => {
    const pool = busy('twice');
    expect(toPrometheus(pool, pool)).toBe(toPrometheus(pool));
  });

  it('leaves out closed pools, and the others keep their labels', () => {
    const a = make({ name: 'dup' });
    const b = make({ name: 'dup' });
    hold(b.alloc(10));
    a.close();
    const e = parse(toPrometheus(a, b));
    expect([...new Set(e.samples.map((s) => s.labels.pool))]).toEqual(['dup#2']);
    expect(value(e, 'mmap_pool_used_bytes', { pool: 'dup#2' })).toBe(10);
    b.close();
    expect(toPrometheus(a, b)).toBe('');
    expect(toPrometheus()).toBe('');
  });

  it('throws ERR_INVALID_ARG_TYPE for an argument that is not a pool', () => {
    expect(() => toPrometheus({} as Pool)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }));
    expect(() => toPrometheus(make(), null as unknown as Pool)).toThrow(/The "pools\[1\]" argument must be an instance of Pool/);
  });

  promtoolIt('passes `promtool check metrics` with no lint problems (skipped without promtool)', () => {
    const promtool = PROMTOOL;
    expect(
      promtool,
      'promtool is not on PATH: install it (Debian/Ubuntu: apt-get install -y --no-install-recommends prometheus)',
    ).toBeDefined();
    const odd = make({ name: 'we"ird\\na\nme' });
    hold(odd.alloc(5));
    const text = toPrometheus(busy('a', { maxBytes: 64 * MiB }), busy('a'), busy('b'), odd);
    const r = spawnSync(promtool as string, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('registerMetrics with prom-client', () => {
  /** The samples of a prom-client exposition, in toPrometheus() order. */
  const samplesOf = (text: string): Sample[] => parse(text).samples;

  it('serves the same samples as toPrometheus(), read at scrape time', async () => {
    const registry = new Registry();
    const a = busy('a', { maxBytes: 64 * MiB });
    const b = busy('b');
    registerMetrics(registry, a, b);
    expect(registry.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(samplesOf(await registry.metrics())).toEqual(samplesOf(toPrometheus(a, b)));
    hold(a.alloc(12345));
    const later = parse(await registry.metrics());
    expect(value(later, 'mmap_pool_used_bytes', { pool: 'a' })).toBe(a.stats().usedBytes);
    expect(later.samples).toEqual(samplesOf(toPrometheus(a, b)));
    for (const name of METRIC_NAMES) expect(later.help.get(name), name).toHaveLength(1);
  });

  promtoolIt('passes promtool through prom-client too (skipped without promtool)', async () => {
    const promtool = PROMTOOL;
    expect(promtool, 'promtool is not on PATH: apt-get install -y --no-install-recommends prometheus').toBeDefined();
    const registry = new Registry();
    registerMetrics(registry, busy('a'), busy('b', { maxBytes: 16 * MiB }));
    const r = spawnSync(promtool as string, ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('works with getMetricsAsJSON, default labels and OpenMetrics output', async () => {
    const pool = busy('j');
    const registry = new Registry();
    registry.setDefaultLabels({ service: 'api' });
    registerMetrics(registry, pool);
    const json = await registry.getMetricsAsJSON();
    const used = json.find((m) => m.name === 'mmap_pool_used_bytes');
    expect(used?.type).toBe('gauge');
    expect(used?.values).toEqual([{ labels: { pool: 'j', service: 'api' }, value: pool.stats().usedBytes }]);
    expect(await registry.metrics()).toContain(`mmap_pool_chunks{pool="j",service="api"} ${pool.stats().chunks}\n`);

    const om = new Registry<OpenMetricsContentType>();
    om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    registerMetrics(om, pool);
    const text = await om.metrics();
    expect(text).toContain('# TYPE mmap_pool_allocations counter\n');
    expect(text).toContain(`mmap_pool_allocations_total{pool="j"} ${pool.stats().totalAllocations}\n`);
    expect(text.endsWith('# EOF\n')).toBe(true);
  });

  it('adds pools to the same families when called again, with unique labels', async () => {
    const registry = new Registry();
    const one = make({ name: 'p' });
    const two = make({ name: 'p' });
    hold(two.alloc(7));
    registerMetrics(registry, one);
    const second = registerMetrics(registry, two, one);
    const e = parse(await registry.metrics());
    expect(e.samples.filter((s) => s.name === 'mmap_pool_used_bytes').map((s) => [s.labels.pool, s.value]))
      .toEqual([['p', 0], ['p#2', 7]]);
    second.unregister();
    second.unregister();
    const after = parse(await registry.metrics());
    expect(after.samples.filter((s) => s.name === 'mmap_pool_used_bytes').map((s) => s.labels.pool)).toEqual(['p']);
  });

  it('takes its families out of the registry when the last pool is unregistered', async () => {
    const registry = new Registry();
    {
      using _registration = registerMetrics(registry, busy('gone'));
      expect(registry.getSingleMetric('mmap_pool_chunks')).toBeDefined();
    }
    expect(registry.getSingleMetric('mmap_pool_chunks')).toBeUndefined();
    expect(await registry.metrics()).toBe('\n');
    registerMetrics(registry, busy('back'));
    expect(await registry.metrics()).toContain('mmap_pool_chunks{pool="back"}');
  });

  it('leaves closed pools out of the scrape', async () => {
    const registry = new Registry();
    const a = busy('open');
    const b = busy('shut');
    registerMetrics(registry, a, b);
    b.close();
    const e = parse(await registry.metrics());
    expect(new Set(e.samples.map((s) => s.labels.pool))).toEqual(new Set(['open']));
  });

  it('throws prom-client\'s error on a name clash and leaves the registry as it was', async () => {
    const registry = new Registry();
    new Gauge({ name: 'mmap_pool_chunks', help: 'someone else', registers: [registry] });
    expect(() => registerMetrics(registry, busy('c'))).toThrow(/already been registered/);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['mmap_pool_chunks']);
  });

  it('throws ERR_INVALID_ARG_TYPE for a registry that is not one', () => {
    expect(() => registerMetrics({} as Registry, make())).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => registerMetrics(null as unknown as Registry)).toThrow(/"registry" argument must be a prom-client Registry/);
    expect(() => registerMetrics(new Registry(), 'pool' as unknown as Pool)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
