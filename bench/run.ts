// The benchmark suite: `npm run bench` (= tsc, then node dist/bench/run.js).
//
//   npm run bench                      everything; rewrites bench/RESULTS.md and bench/ratios.svg
//   npm run bench -- pair-4k churn     only these cases (a prefix names a group: `pair`); prints only
//   npm run bench -- --quick [case..]  short timings, default the tour's three cases; prints only
//   npm run bench -- --list            the case names
//
// Cases: the speed cases of bench/cases.ts (pool vs Buffer, interleaved in
// this process), reclaim (bench/reclaim.ts, two child processes), arena
// (native/test/bench_arena.cc through CMake; skipped with a note when cmake
// is missing), lifetimes (bench/lifetimes.ts) and the shared pool across
// worker threads (bench/threads.ts: `npm run bench -- threads`, in child
// processes: bench/threads-apart.ts).
import { writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';

import { runArenaBench, type ArenaResult, ARENA_SMALL_GOAL_NS, nsWithPasses } from './arena.js';
import { renderRatios } from './chart.js';
import { revision } from './revision.js';
import { runSpeedCase, speedCases, type SpeedResult } from './cases.js';
import { runLifetimes } from './lifetimes.js';
import { fmtNs } from './format.js';
import { formatVsBuffer, QUICK_CASES, QUICK_OPTIONS } from './quick.js';
import { runReclaim, type ReclaimResult } from './reclaim.js';
import { renderResults, RECLAIM_GOAL, type FullRun } from './report.js';
import type { CaseResult } from './harness.js';
import { serviceBlock } from './service/results-block.js';
import { THREAD_CASES, type ThreadsResult } from './threads.js';
import { runThreadsApart } from './threads-apart.js';

const OTHER = [
  { id: 'reclaim', what: 'RSS after freeing 1 GiB of 64 KiB buffers: pool + trim() vs Buffer + gc() (child processes)' },
  { id: 'arena', what: 'native/test/bench_arena.cc: Arena alloc+free pairs in C++, without Node (needs cmake)' },
  { id: 'lifetimes', what: 'bench/lifetimes.ts: serial and block id tags, guard: true, leakDetection levels' },
  ...THREAD_CASES,
];
const ALL_IDS = [...speedCases.map((c) => c.id), ...OTHER.map((o) => o.id)];

const benchDir = join(__dirname, '..', '..', 'bench');

function usage(): string {
  return [
    'usage: npm run bench [-- [--quick] [--list] [case ...]]',
    '  no case: everything, and bench/RESULTS.md + bench/ratios.svg are rewritten',
    '  case:    only these (a prefix selects every case it starts: "pair"); prints only',
    `  --quick: short timings (default cases: ${QUICK_CASES.join(', ')}); prints only`,
    '',
    'cases:',
    ...speedCases.map((c) => `  ${c.id.padEnd(20)}${c.label}: ${c.work}`),
    ...OTHER.map((o) => `  ${o.id.padEnd(20)}${o.what}`),
  ].join('\n');
}

function select(names: string[]): string[] {
  const chosen = new Set<string>();
  for (const n of names) {
    const hits = ALL_IDS.includes(n) ? [n] : ALL_IDS.filter((id) => id.startsWith(n));
    if (hits.length === 0) throw new Error(`no case named "${n}"\n\n${usage()}`);
    for (const h of hits) chosen.add(h);
  }
  return ALL_IDS.filter((id) => chosen.has(id));
}

function speedLine(r: SpeedResult, base?: SpeedResult): string {
  const head = `${r.label}: pool ${fmtNs(r.poolNs)}, Buffer ${fmtNs(r.bufferNs)} -> ${r.ratio.toPrecision(3)}x `;
  if (r.goal === undefined) {
    // A note: no goal; a variant says how its pool side compares with its base case's.
    const vs = base !== undefined ? `; pool ${(base.poolNs / r.poolNs).toPrecision(3)}x as fast as in ${base.label}` : '';
    return `${head}(a note, no goal${vs}; ratio of means ${r.meanRatio.toPrecision(3)}x)`;
  }
  return `${head}(goal >= ${r.goal}x: ${r.ratio >= r.goal ? 'met' : 'NOT met'}; ratio of means ${r.meanRatio.toPrecision(3)}x)`;
}

function reclaimLine(r: ReclaimResult): string {
  const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
  const rel = r.after / r.before;
  return `reclaim ${r.side}: RSS before ${mb(r.before)}, peak ${mb(r.peak)}, after ${mb(r.after)} ` +
    `(${rel.toFixed(3)}x of before${r.side === 'pool' ? `; goal <= ${RECLAIM_GOAL}: ${rel <= RECLAIM_GOAL ? 'met' : 'NOT met'}` : ''}), ` +
    `200 ms later ${mb(r.settled)}`;
}

function arenaLines(a: ArenaResult): string[] {
  if (a.skipped !== undefined) return [`arena: skipped: ${a.skipped}`];
  return a.figures.map((f) => `arena ${f.size} B (${f.kind}): pair ${nsWithPasses(f.pairNs, f.pairPasses, 'passes ')}, batch ${f.batchNs.toFixed(1)} ns` +
    (f.kind === 'small' ? ` (goal <= ${ARENA_SMALL_GOAL_NS} ns: ${f.pairNs <= ARENA_SMALL_GOAL_NS ? 'met' : 'NOT met'})` : ''));
}

function lifetimeLines(results: CaseResult[]): string[] {
  return results.map((r) => `lifetimes: ${r.name}: ${r.ns.map((v) => `${v.toFixed(1)} ns`).join(' | ')}`);
}

async function main(argv: string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('--'));
  const names = argv.filter((a) => !a.startsWith('--'));
  for (const f of flags) {
    if (!['--quick', '--list', '--help'].includes(f)) {
      console.error(`unknown option ${f}\n\n${usage()}`);
      return 2;
    }
  }
  if (flags.includes('--list') || flags.includes('--help')) {
    console.log(usage());
    return 0;
  }
  const quick = flags.includes('--quick');
  let ids: string[];
  try {
    ids = select(names.length > 0 ? names : quick ? QUICK_CASES : ALL_IDS);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const full = !quick && names.length === 0;

  const t0 = process.hrtime.bigint();
  const loadStart = loadavg();
  console.log(`mmap-pool bench: ${ids.join(', ')}${quick ? ' (quick)' : ''}`);
  console.log(`${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, load ${loadStart.map((l) => l.toFixed(2)).join(' ')}, Node ${process.version}`);

  // First, each in a process of its own, so that they run beside nothing
  // another case left behind (bench/threads-apart.ts).
  let threads: ThreadsResult | undefined;
  if (THREAD_CASES.some((t) => ids.includes(t.id))) threads = runThreadsApart(ids);

  const speed: SpeedResult[] = [];
  for (const c of speedCases.filter((s) => ids.includes(s.id))) {
    const r = await runSpeedCase(c, quick ? QUICK_OPTIONS : undefined);
    speed.push(r);
    console.log(quick ? formatVsBuffer(r) : speedLine(r, speed.find((b) => b.id === r.variantOf)));
    for (const n of r.notes) console.log(`  ${n}`);
    if (r.efficiency !== undefined) {
      const verdict = r.goal === undefined ? 'a note' : `goal >= 0.75: ${r.efficiency.ratio >= 0.75 ? 'met' : 'NOT met'}`;
      console.log(`  memory efficiency: usedBytes / mappedBytes = ${r.efficiency.ratio.toFixed(2)} (${verdict})`);
    }
  }
  let reclaim: ReclaimResult[] = [];
  if (ids.includes('reclaim')) {
    reclaim = runReclaim();
    for (const r of reclaim) console.log(reclaimLine(r));
  }
  let arena: ArenaResult = { figures: [], skipped: 'not run' };
  if (ids.includes('arena')) {
    arena = runArenaBench((line) => console.log(line));
    for (const line of arenaLines(arena)) console.log(line);
  }
  let lifetimes: CaseResult[] = [];
  if (ids.includes('lifetimes')) {
    lifetimes = await runLifetimes();
    for (const line of lifetimeLines(lifetimes)) console.log(line);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`done in ${seconds.toFixed(1)} s`);

  if (full) {
    const date = new Date().toISOString().slice(0, 10);
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const run: FullRun = {
      machine: {
        date, node: process.version, platform: `${platform()}-${arch()} (kernel ${release()})`,
        cpu, cores: cpus().length, memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
        loadStart, loadEnd: loadavg(), seconds, revision: revision(join(benchDir, '..')),
      },
      cases: speedCases, speed, reclaim, arena, lifetimes, threads,
    };
    // The service section is `npm run bench:service`'s: kept as it is.
    const service = serviceBlock(join(benchDir, 'RESULTS.md'));
    writeFileSync(join(benchDir, 'RESULTS.md'), renderResults(run) + (service === '' ? '' : `\n${service}`));
    writeFileSync(join(benchDir, 'ratios.svg'), renderRatios(
      // Goal cases only: the notes are in RESULTS.md's table of variants.
      speed.flatMap((r) => (r.goal === undefined ? [] : [{ label: r.label, ratio: r.ratio, goal: r.goal, meanRatio: r.meanRatio }])),
      {
        title: 'mmap-pool vs Buffer: speed ratio per case',
        subtitle: `${date} · Node ${process.version} · ${cpu} x${cpus().length} · pools with leakDetection 'disabled' unless the row says otherwise`,
      },
    ));
    console.log('wrote bench/RESULTS.md and bench/ratios.svg');
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
