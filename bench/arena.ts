// Builds and runs native/test/bench_arena.cc (the Arena's alloc+free pairs
// without Node) with CMake in build-native/bench; returns its figures, or why
// there are none (no cmake, a failed build) so the report can say so.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export interface ArenaFigure {
  size: number;
  kind: 'small' | 'large';
  /** The lowest of the passes' medians. */
  pairNs: number;
  batchNs: number;
  /** Each pass's median (bench_arena.cc: why the lowest is reported). */
  pairPasses?: number[];
  batchPasses?: number[];
}

export interface ArenaResult {
  compiler?: string;
  batch?: number;
  rounds?: number;
  passes?: number;
  figures: ArenaFigure[];
  /** Set when the benchmark did not run: why. */
  skipped?: string;
}

/** "17.6 ns (18.9, 17.6, 18.3)": a figure and, when the run gave them, each pass's (after `label`). */
export function nsWithPasses(ns: number, passes?: number[], label = ''): string {
  return `${ns.toFixed(1)} ns` + (passes !== undefined ? ` (${label}${passes.map((x) => x.toFixed(1)).join(', ')})` : '');
}

/** Goal of the issue for small classes, ns per pair. */
export const ARENA_SMALL_GOAL_NS = 20;

const root = join(__dirname, '..', '..');
const buildDir = join(root, 'build-native', 'bench');

function run(cmd: string, args: string[], timeoutMs: number): { ok: boolean; out: string; missing: boolean } {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: timeoutMs });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`, missing };
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export function runArenaBench(log: (line: string) => void = () => {}): ArenaResult {
  const version = run('cmake', ['--version'], 10_000);
  if (version.missing) return { figures: [], skipped: 'cmake is not installed (Debian: apt-get install cmake g++)' };
  log('bench_arena: configuring and building (cmake, Release, -O2)');
  const configure = run('cmake', ['-S', 'native/test', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release'], 120_000);
  if (!configure.ok) return { figures: [], skipped: `cmake configure failed:\n${tail(configure.out)}` };
  const build = run('cmake', ['--build', buildDir, '--target', 'bench_arena', '-j', '2'], 600_000);
  if (!build.ok) return { figures: [], skipped: `the bench_arena build failed:\n${tail(build.out)}` };
  log('bench_arena: running');
  const bench = run(join(buildDir, 'bench_arena'), ['--json'], 120_000);
  if (!bench.ok) return { figures: [], skipped: `bench_arena failed:\n${tail(bench.out)}` };
  const parsed = JSON.parse(bench.out.trim().split('\n').pop()!) as {
    compiler: string; rounds: number; passes: number; batch: number; results: ArenaFigure[];
  };
  return { compiler: parsed.compiler, rounds: parsed.rounds, passes: parsed.passes, batch: parsed.batch, figures: parsed.results };
}
