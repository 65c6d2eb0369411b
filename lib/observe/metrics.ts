// Metrics: pool stats in Prometheus's text exposition format (0.0.4), and as
// a prom-client collector.
//
// Both read pool.stats() when asked (at scrape time) and keep no values.
// Every series carries a `pool` label, the pool's name. Pools sharing a name
// are told apart by a suffix: the first keeps the name, the next gets
// "<name>#2", then "<name>#3", skipping any label that is another pool's own
// name. toPrometheus() labels its arguments in order, closed ones included,
// so a pool keeps its label while others close; registerMetrics() labels a
// pool once, when it is added. Closed pools are left out of the output:
// their counters have stopped, and a series that ends reads as "gone" in
// Prometheus rather than as a pool with nothing mapped. The same Pool passed
// twice is counted once.
//
// prom-client is an optional peer dependency and is never imported here:
// registerMetrics() hands the user's Registry plain collector objects of the
// shape its registerMetric() takes (name, help, type, aggregator, get(),
// reset()), the shape prom-client's own Gauge and Counter have.
import { dispose } from '../dispose.js';
import { invalidArgType, type Caller } from '../errors.js';
import type { PoolStats } from './stats.js';

/** What the metrics need of a pool: its stats. A Pool is one. */
export interface StatsSource {
  stats(): PoolStats;
}


type Labels = Record<string, string>;

interface Sample {
  labels: Labels;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

type Scalar = Exclude<{ [K in keyof PoolStats]: PoolStats[K] extends number | null ? K : never }[keyof PoolStats], undefined>;

/** The per-pool families, in output order: name, HELP text, type and the stats field they show. */
const SCALARS: readonly { name: string; help: string; type: 'gauge' | 'counter'; field: Scalar }[] = [
  { name: 'mmap_pool_mapped_bytes', type: 'gauge', field: 'mappedBytes',
    help: 'Bytes mapped from the OS: chunks, huge mappings and spare huge mappings.' },
  { name: 'mmap_pool_used_bytes', type: 'gauge', field: 'usedBytes',
    help: 'Sum of the requested sizes of the live allocations.' },
  { name: 'mmap_pool_allocated_bytes', type: 'gauge', field: 'allocatedBytes',
    help: 'Bytes of the live allocations after rounding to size classes and pages.' },
  { name: 'mmap_pool_peak_used_bytes', type: 'gauge', field: 'peakUsedBytes',
    help: 'Highest used bytes the pool has reached.' },
  { name: 'mmap_pool_live_allocations', type: 'gauge', field: 'liveAllocations',
    help: 'Allocations alive now.' },
  { name: 'mmap_pool_chunks', type: 'gauge', field: 'chunks',
    help: 'Chunks mapped now.' },
  { name: 'mmap_pool_huge_allocations', type: 'gauge', field: 'hugeAllocations',
    help: 'Live allocations above hugeThreshold, each with a mapping of its own.' },
  { name: 'mmap_pool_spare_bytes', type: 'gauge', field: 'spareBytes',
    help: 'Bytes mapped for freed huge allocations, kept for the next one of the same size.' },
  { name: 'mmap_pool_free_bytes', type: 'gauge', field: 'freeBytes',
    help: 'Bytes in free page runs of the chunks.' },
  { name: 'mmap_pool_cached_bytes', type: 'gauge', field: 'cachedBytes',
    help: 'Bytes of freed blocks kept on the JS side for reuse (the block cache); trim() gives them back.' },
  { name: 'mmap_pool_resident_bytes', type: 'gauge', field: 'residentBytes',
    help: 'Bytes of mapped memory resident in RAM; no sample where the OS does not tell.' },
  { name: 'mmap_pool_max_bytes', type: 'gauge', field: 'maxBytes',
    help: 'The cap on mapped bytes (maxBytes option); no sample for a pool without one.' },
  { name: 'mmap_pool_allocations_total', type: 'counter', field: 'totalAllocations',
    help: 'Allocations made since the pool was created.' },
  { name: 'mmap_pool_frees_total', type: 'counter', field: 'totalFrees',
    help: 'Allocations given back since the pool was created.' },
];

const CLASS_LIVE = {
  name: 'mmap_pool_class_live_allocations',
  help: 'Live allocations per size class; class_bytes is the size requests round up to.',
} as const;
const CLASS_CAPACITY = {
  name: 'mmap_pool_class_capacity',
  help: 'Slots in the slabs of a size class (equal to live allocations for page-run classes); classes with none are left out.',
} as const;

/** The metric names, in the order toPrometheus() writes them. */
export const METRIC_NAMES: readonly string[] = [...SCALARS.map((s) => s.name), CLASS_LIVE.name, CLASS_CAPACITY.name];

function checkPools(pools: readonly unknown[], caller: Caller): StatsSource[] {
  pools.forEach((p, i) => {
    if (p === null || typeof p !== 'object' || typeof (p as StatsSource).stats !== 'function') {
      throw invalidArgType(`pools[${i}]`, 'an instance of Pool', p, caller);
    }
  });
  return [...new Set(pools as StatsSource[])];
}

/**
 * A label for a pool named `name`: the name itself when free, else
 * "<name>#2", "<name>#3", ... skipping labels already `taken` and labels
 * that are some pool's own name (`names`), so such a pool keeps its name.
 */
function uniqueLabel(name: string, taken: ReadonlySet<string>, names: ReadonlySet<string>): string {
  let label = name;
  for (let n = 2; taken.has(label) || (label !== name && names.has(label)); n++) label = `${name}#${n}`;
  return label;
}

/** The `pool` label of each stats row, in order. */
function poolLabels(all: readonly PoolStats[]): string[] {
  const names = new Set(all.map((s) => s.name));
  const taken = new Set<string>();
  return all.map(({ name }) => {
    const label = uniqueLabel(name, taken, names);
    taken.add(label);
    return label;
  });
}

/** The metric families of these open pools' stats, each under its label. */
function collect(open: readonly { label: string; s: PoolStats }[]): Family[] {
  const families: Family[] = SCALARS.map(({ name, help, type, field }) => ({
    name,
    help,
    type,
    samples: open
      // No sample for a pool without maxBytes, or whose resident bytes are unknown.
      .filter(({ s }) => Number.isFinite(s[field]))
      .map(({ label, s }) => ({ labels: { pool: label }, value: s[field] as number })),
  }));
  const live: Sample[] = [];
  const capacity: Sample[] = [];
  for (const { label, s } of open) {
    for (const c of s.classes) {
      if (c.capacity <= 0) continue;
      const l = { pool: label, class_bytes: String(c.size) };
      live.push({ labels: l, value: c.live });
      capacity.push({ labels: l, value: c.capacity });
    }
  }
  families.push({ ...CLASS_LIVE, type: 'gauge', samples: live }, { ...CLASS_CAPACITY, type: 'gauge', samples: capacity });
  return families;
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaping: backslash and newline. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/**
 * The pools' stats in the Prometheus text exposition format, version 0.0.4:
 * serve it with `Content-Type: text/plain; version=0.0.4; charset=utf-8`.
 *
 * Families: gauges `mmap_pool_mapped_bytes`, `_used_bytes`, `_allocated_bytes`,
 * `_peak_used_bytes`, `_live_allocations`, `_chunks`, `_huge_allocations`,
 * `_free_bytes`, `_max_bytes` (no sample for a pool without maxBytes);
 * counters `mmap_pool_allocations_total`, `mmap_pool_frees_total`; and per
 * size class with capacity, `mmap_pool_class_live_allocations` and
 * `mmap_pool_class_capacity` labelled `class_bytes`. Each sample is labelled
 * `pool="<name>"`; pools sharing a name get "<name>#2", "<name>#3" in
 * argument order. Closed pools are left out, and a family with no sample is
 * left out whole. Values are read from stats() during the call.
 *
 * @throws TypeError ERR_INVALID_ARG_TYPE when an argument is not a Pool
 */
export function toPrometheus(...pools: StatsSource[]): string {
  const all = checkPools(pools, toPrometheus).map((p) => p.stats());
  const labels = poolLabels(all);
  const open = all.map((s, i) => ({ label: labels[i], s })).filter(({ s }) => !s.closed);
  const lines: string[] = [];
  for (const f of collect(open)) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const { labels, value } of f.samples) {
      const text = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      lines.push(`${f.name}{${text}} ${formatValue(value)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * The part of a prom-client Registry (v15) that registerMetrics() uses. The
 * metric type is what prom-client's own metrics have in common, so that its
 * Registry type fits; what is passed is a PromCollector.
 */
export interface MetricsRegistry {
  registerMetric(metric: { get(): Promise<unknown>; reset(): void }): void;
  removeSingleMetric(name: string): void;
}

/** One metric family as prom-client's Registry reads it: what its Gauge and Counter look like to it. */
export interface PromCollector {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  aggregator: 'sum';
  get(): Promise<{
    name: string;
    help: string;
    type: 'gauge' | 'counter';
    aggregator: 'sum';
    values: { labels: Labels; value: number }[];
  }>;
  reset(): void;
}

/** What registerMetrics() returns: a way to take its pools out again. */
export interface MetricsRegistration extends Disposable {
  /** Stops reporting the pools this call added; the families leave the registry with the last pool. Idempotent. */
  unregister(): void;
}

interface RegistryState {
  /** The pools reported, each with the label it was given when added. */
  entries: { pool: StatsSource; label: string }[];
  /** The families of the scrape under way, shared by every collector until the next microtask. */
  snapshot: Map<string, Family> | undefined;
}

const states = new WeakMap<MetricsRegistry, RegistryState>();

function familiesOf(state: RegistryState): Map<string, Family> {
  if (state.snapshot === undefined) {
    // One scrape calls every collector's get() in the same tick: read the
    // pools once for all of them, so the families agree with each other.
    const open: { label: string; s: PoolStats }[] = [];
    state.entries = state.entries.filter(({ pool, label }) => {
      const s = pool.stats();
      if (!s.closed) open.push({ label, s });
      return !s.closed;  // a closed pool is done: let it go
    });
    state.snapshot = new Map(collect(open).map((f) => [f.name, f]));
    queueMicrotask(() => {
      state.snapshot = undefined;
    });
  }
  return state.snapshot;
}

function collector(state: RegistryState, name: string, help: string, type: 'gauge' | 'counter'): PromCollector {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get() {
      const f = familiesOf(state).get(name);
      // `this.name`: for OpenMetrics output prom-client renames counters (drops _total).
      return Promise.resolve({
        name: this.name,
        help,
        type,
        aggregator: 'sum' as const,
        values: (f?.samples ?? []).map((v) => ({ labels: { ...v.labels }, value: v.value })),
      });
    },
    reset() {
      // Values come from the pools at each scrape: nothing is kept to reset.
    },
  };
}

/**
 * Registers the pools' metrics (the families toPrometheus() writes) with a
 * prom-client Registry (`new Registry()`, or prom-client's global
 * `register`; prom-client 15). Values are read from stats() each time the
 * registry is scraped. prom-client itself is never loaded by mmap-pool: it
 * stays an optional peer dependency.
 *
 * Each pool gets its `pool` label when added and keeps it: a pool whose name
 * is already reported in this registry gets "<name>#2" (then #3, ...). The
 * same pool added twice is reported once. Calling again with the same
 * registry adds pools to the same families. A pool found closed at a scrape
 * is left out and dropped from the registry.
 *
 * @returns a registration whose unregister() (or `using`) stops reporting
 * these pools; the families leave the registry with the last pool
 * @throws TypeError ERR_INVALID_ARG_TYPE when `registry` is not a prom-client
 * Registry or an argument is not a Pool; prom-client's own Error (and no
 * change to the registry) when another metric already has one of these names
 */
export function registerMetrics(registry: MetricsRegistry, ...pools: StatsSource[]): MetricsRegistration {
  if (
    registry === null || typeof registry !== 'object' ||
    typeof registry.registerMetric !== 'function' || typeof registry.removeSingleMetric !== 'function'
  ) {
    throw invalidArgType('registry', 'a prom-client Registry', registry, registerMetrics);
  }
  const added = checkPools(pools, registerMetrics);
  let state = states.get(registry);
  if (state === undefined) {
    const fresh: RegistryState = { entries: [], snapshot: undefined };
    const collectors = [
      ...SCALARS.map((f) => collector(fresh, f.name, f.help, f.type)),
      collector(fresh, CLASS_LIVE.name, CLASS_LIVE.help, 'gauge'),
      collector(fresh, CLASS_CAPACITY.name, CLASS_CAPACITY.help, 'gauge'),
    ];
    let registered = 0;
    try {
      for (const c of collectors) {
        registry.registerMetric(c);
        registered++;
      }
    } catch (err) {
      // A name clash: leave the registry as it was.
      for (const name of METRIC_NAMES.slice(0, registered)) registry.removeSingleMetric(name);
      throw err;
    }
    states.set(registry, (state = fresh));
  }
  const st = state;
  const mine = added.filter((p) => !st.entries.some((e) => e.pool === p));
  const names = new Set([...st.entries.map((e) => e.pool), ...mine].map((p) => p.stats().name));
  const taken = new Set(st.entries.map((e) => e.label));
  for (const pool of mine) {
    const label = uniqueLabel(pool.stats().name, taken, names);
    taken.add(label);
    st.entries.push({ pool, label });
  }
  let active = true;
  const unregister = (): void => {
    if (!active) return;
    active = false;
    st.entries = st.entries.filter((e) => !mine.includes(e.pool));
    if (st.entries.length === 0 && states.get(registry) === st) {
      states.delete(registry);
      for (const name of METRIC_NAMES) registry.removeSingleMetric(name);
    }
  };
  return { unregister, [dispose]: unregister };
}
