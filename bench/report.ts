// RESULTS.md from one full run of bench/run.ts.
import type { CaseResult } from './harness.js';
import type { ArenaResult } from './arena.js';
import { ARENA_SMALL_GOAL_NS, nsWithPasses } from './arena.js';
import type { SpeedCase, SpeedResult } from './cases.js';
import { fmtNs, ratio, verdict } from './format.js';
import type { ReclaimResult } from './reclaim.js';
import { renderThreads } from './threads-report.js';
import type { ThreadsResult } from './threads.js';

export interface Machine {
  date: string;
  node: string;
  platform: string;
  cpu: string;
  cores: number;
  memory: string;
  loadStart: number[];
  loadEnd: number[];
  seconds: number;
  /** The commit measured, and whether lib/ or native/ had uncommitted changes. */
  revision: string;
}

export interface FullRun {
  machine: Machine;
  cases: SpeedCase[];
  speed: SpeedResult[];
  reclaim: ReclaimResult[];
  arena: ArenaResult;
  lifetimes: CaseResult[];
  /** Shared pools across worker threads (bench/threads.ts). */
  threads?: ThreadsResult;
}

/** The pool's RSS after trim() may be at most this many times its RSS before. */
export const RECLAIM_GOAL = 1.05;
/** stats().usedBytes / stats().mappedBytes at the end of the churn case. */
export const EFFICIENCY_GOAL = 0.75;

const goalText = (g: number): string => `>= ${g}x`;
const mb = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;
const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' / ');

function ns(v: number): string {
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

export function renderResults(run: FullRun): string {
  const m = run.machine;
  const out: string[] = [];
  const p = (...lines: string[]): void => {
    out.push(...lines);
  };
  p('# Benchmark results', '');
  p('Figures are nanoseconds per operation, medians of interleaved rounds in one',
    'process (`bench/harness.ts` over tinybench), so the variants of a case saw',
    'the same machine state. Absolute times are notes; the comparisons are the',
    'claims.', '');
  p('`npm run bench` runs everything below and rewrites this file and',
    '`bench/ratios.svg`; `npm run bench -- <name>` runs one case and only prints',
    '(`npm run bench -- --list` names them); `npm run bench -- --quick` is the',
    'short comparison that ends `npm start`.', '');

  p('## Machine', '');
  p(`- ${m.date} · Node ${m.node} · ${m.platform}`);
  p(`- ${m.cpu}, ${m.cores} cores, ${m.memory} RAM`);
  p(`- load average (1 / 5 / 15 min) at the start ${load(m.loadStart)}, at the end ${load(m.loadEnd)}` +
    (m.loadStart[0] > m.cores * 0.5 ? ': above half the cores, so other work may have shared the machine (a load average counts runnable threads of the whole system, not only other programs), which is why only ratios are claimed' : ''));
  p(`- code measured: ${m.revision}`);
  p(`- the whole run took ${Math.round(m.seconds)} s`, '');

  // Against Buffer.
  p('## Against Buffer', '');
  p('ratio = Buffer time / pool time: above 1 the pool is faster. Pools run with',
    "`leakDetection: 'disabled'` except in the row that says `'simple'` (the",
    'default, which tracks 1 allocation in 128). The goals are those of the',
    'performance issue.', '');
  p('| case | pool, per op | Buffer, per op | ratio | goal | | ratio of means |');
  p('|---|---:|---:|---:|---|---|---:|');
  const goals = run.speed.filter((r): r is SpeedResult & { goal: number } => r.goal !== undefined);
  const notes = run.speed.filter((r) => r.goal === undefined);
  for (const r of goals) {
    p(`| ${r.label} | ${fmtNs(r.poolNs)} | ${fmtNs(r.bufferNs)} | **${ratio(r.ratio)}** | ${goalText(r.goal)} | ${verdict(r.ratio >= r.goal)} | ${ratio(r.meanRatio)} |`);
  }
  p('');
  const met = goals.filter((r) => r.ratio >= r.goal).length;
  p(`${met} of ${goals.length} speed goals met. "Ratio of means" takes each round's`,
    'mean instead of its median, so it counts the garbage collector pauses a',
    "median leaves out (Buffer's side pays for them); the goals are judged on",
    'the medians. Why a pair costs what it does: bench/NOTES.md.', '');
  p('![Ratios per case, with each goal marked](ratios.svg)', '');

  if (notes.length > 0) {
    p('### Pool options and other notes (no goals)', '');
    p('The same work with other pool options (`chunkSize`, `prefault`, `hugePages`),',
      'and measurements the issue sets no goal for. "Pool vs base" is the base',
      "case's pool time over this row's, in the same run: above 1 the option made",
      'the pool faster. What they mean: bench/NOTES.md, "huge allocations:',
      'prefault, hugePages, chunk size".', '');
    p('| case | pool, per op | Buffer, per op | ratio | pool vs base | ratio of means |');
    p('|---|---:|---:|---:|---:|---:|');
    for (const r of notes) {
      const base = run.speed.find((b) => b.id === r.variantOf);
      const vs = base !== undefined ? `${(base.poolNs / r.poolNs).toFixed(2)}x` : '(base)';
      p(`| ${r.label} | ${fmtNs(r.poolNs)} | ${fmtNs(r.bufferNs)} | **${ratio(r.ratio)}** | ${vs} | ${ratio(r.meanRatio)} |`);
    }
    p('');
    for (const r of notes.filter((n) => n.efficiency !== undefined)) {
      p(`- ${r.label}: usedBytes / mappedBytes = ${r.efficiency!.ratio.toFixed(2)}; ${r.notes.join('; ')}`);
    }
    if (notes.some((n) => n.efficiency !== undefined)) p('');
  }

  const churn = goals.find((r) => r.efficiency !== undefined);
  if (churn?.efficiency !== undefined) {
    const e = churn.efficiency;
    p(`**Memory efficiency under churn**: stats().usedBytes / stats().mappedBytes = **${e.ratio.toFixed(2)}** at the end of`,
      `the churn run (goal >= ${EFFICIENCY_GOAL}: ${verdict(e.ratio >= EFFICIENCY_GOAL)}); usedBytes ${mb(e.usedBytes)},`,
      `allocatedBytes (after rounding to size classes) ${mb(e.allocatedBytes)}, mappedBytes ${mb(e.mappedBytes)}.`, '');
  }

  p('What each case does, one operation per side (pool | Buffer):', '');
  for (const c of run.cases) p(`- **${c.label}** (\`${c.id}\`): ${c.work}`);
  p('', 'Both sides add each Buffer\'s length (or a byte of it) to a sink, so neither',
    'can be optimised away; the sink is kept below 2^30, a V8 small integer, so that',
    'adding to it allocates nothing.', '');

  // Reclaim.
  p('## Reclaim', '');
  p('Allocate and touch 1 GiB in 64 KiB buffers, let it all go, and read RSS. Each',
    'side runs in its own `node --expose-gc` child (bench/reclaim.ts). Pool (default options):',
    '`free()` of every buffer, then `trim()`, RSS read right after `trim()`.',
    'Buffer: every reference dropped, then `gc()`, RSS read right after it.',
    '"Before" is read after a warm-up of 100 rounds of the same code on 64 buffers',
    '(4 MiB) and two `gc()`s, so that what V8 spends compiling the round is in it.',
    '"Later" is 200 ms on, after another `gc()`.', '');
  p('| side | RSS before | peak | after | after / before | later | goal | |');
  p('|---|---:|---:|---:|---:|---:|---|---|');
  for (const r of run.reclaim) {
    const rel = r.after / r.before;
    const goal = r.side === 'pool' ? `<= ${RECLAIM_GOAL}` : '(for comparison)';
    const v = r.side === 'pool' ? verdict(rel <= RECLAIM_GOAL) : '';
    p(`| ${r.side} | ${mb(r.before)} | ${mb(r.peak)} | ${mb(r.after)} | **${rel.toFixed(3)}** | ${mb(r.settled)} | ${goal} | ${v} |`);
  }
  const pool = run.reclaim.find((r) => r.side === 'pool');
  if (pool !== undefined) {
    p('', `The pool's trim() gave back ${mb(pool.trimmed ?? 0)}; mappedBytes after it: ${mb(pool.mappedAfter ?? 0)}.` +
      ' What RSS keeps beyond that is the process\'s own heaps (bench/NOTES.md).');
  }
  p('');

  // Arena.
  p('## The Arena without Node', '');
  p('`native/test/bench_arena.cc`: alloc+free pairs straight on `alloc::Arena`',
    '(pool defaults: 4 MiB chunks, 1 MiB huge threshold), built at -O2 by CMake in',
    '`build-native/bench`. "pair": free right after alloc (the same slot every',
    `time); "batch": ${run.arena.batch ?? 256} allocs, then their frees. ns per pair: the median of ${run.arena.rounds ?? 9} rounds,`,
    `measured in ${run.arena.passes ?? 1} passes over every case; the lowest pass counts and every pass is listed (a`,
    'neighbour on this shared machine slows whole passes; the lowest is what the code costs with the core to',
    "itself, as Python's timeit advises the minimum).", '');
  if (run.arena.skipped !== undefined) {
    p(`Skipped: ${run.arena.skipped.split('\n')[0]}`);
    const rest = run.arena.skipped.split('\n').slice(1);
    if (rest.length > 0) p('', '```', ...rest, '```');
  } else {
    p(`Compiler: ${run.arena.compiler}.`, '');
    p('| size | class | pair | batch | goal (pair) | |');
    p('|---:|---|---:|---:|---|---|');
    for (const f of run.arena.figures) {
      const small = f.kind === 'small';
      p(`| ${f.size.toLocaleString('en-US')} B | ${f.kind} | ${nsWithPasses(f.pairNs, f.pairPasses)} | ` +
        `${nsWithPasses(f.batchNs, f.batchPasses)} | ` +
        `${small ? `<= ${ARENA_SMALL_GOAL_NS} ns` : '(none)'} | ${small ? verdict(f.pairNs <= ARENA_SMALL_GOAL_NS) : ''} |`);
    }
  }
  p('');

  // Lifetime costs.
  p('## Lifetime costs (bench/lifetimes.ts)', '');
  p('What the lifetime-safety features cost, measured in this run.', '');
  p('| case | figures | cost |', '|---|---|---|');
  const [serial, guard, levels, yard] = run.lifetimes;
  if (serial !== undefined) {
    const d = serial.ns[1] - serial.ns[0];
    p(`| serial and block id on each Buffer (PoolBuffer's private fields: set by its constructor, read at free) vs a bare view | ${ns(serial.ns[0])} ns vs ${ns(serial.ns[1])} ns | ` +
      `**${d.toFixed(1)} ns** per alloc+free pair, ${d <= 15 ? 'under' : '**over**'} the 15 ns budget |`);
  }
  if (guard !== undefined) {
    const d = guard.ns[1] - guard.ns[0];
    p(`| alloc+free 64 B, default vs \`guard: true\` | ${ns(guard.ns[0])} ns vs ${ns(guard.ns[1])} ns | ` +
      `**about ${d >= 1000 ? `${(d / 1000).toFixed(1)} µs` : `${Math.round(d)} ns`}** per pair for guarded allocations (an external ArrayBuffer made and detached each time) |`);
  }
  if (levels !== undefined) {
    const names = ['disabled', 'simple', 'advanced', 'paranoid'];
    const extra = (i: number): string => {
      const d = levels.ns[i] - levels.ns[0];
      return Math.abs(d) >= 1000 ? `+${(d / 1000).toFixed(0)} µs` : `${d >= 0 ? '+' : ''}${Math.round(d)} ns`;
    };
    p(`| alloc+free 64 B by \`leakDetection\` | ${levels.ns.map((v, i) => `${names[i]} ${ns(v)}`).join(' · ')} ns | ` +
      `simple ${extra(1)}, advanced ${extra(2)}, paranoid ${extra(3)} per pair |`);
  }
  if (yard !== undefined) p(`| yardstick: \`Buffer.allocUnsafe(64)\` | ${ns(yard.ns[0])} ns | |`);
  p('', 'The other side of the serial check is one integer compare, against the slot',
    'cache\'s table (sizes up to 64 KiB) or in the allocator under the lock it',
    'already holds: not measurable apart from the pair.', '');
  if (run.threads !== undefined) p(...renderThreads(run.threads));
  return out.join('\n');
}
