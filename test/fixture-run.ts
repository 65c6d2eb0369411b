// Running a test/fixtures script in a child process, judged by how it ended
// (exit code, signal, stderr) and by the JSON of its 'result ' line. The
// child loads the compiled library (dist/, which `npm test` builds first)
// through MMAP_POOL_LIB, with a clean environment: no NODE_OPTIONS or loader
// hooks from the test runner.
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const LIB = path.join(__dirname, '..', 'dist', 'lib', 'index.js');

/**
 * How many times slower than native this run is: the children's timeouts
 * are multiplied by it. 1 unless MMAP_POOL_TEST_SLOWDOWN says otherwise
 * (scripts/test-arm64.sh sets it: Node under QEMU user mode).
 */
export const SLOWDOWN = slowdown(process.env.MMAP_POOL_TEST_SLOWDOWN);

function slowdown(text: string | undefined): number {
  if (text === undefined || text === '') return 1;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 1) throw new Error(`MMAP_POOL_TEST_SLOWDOWN=${text}: not a number >= 1`);
  return n;
}
const FIXTURES = path.join(__dirname, 'fixtures');

export interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command line that was run, for error messages (set by run()). */
  command?: string;
}

export interface RunOptions {
  /** Node options before the fixture's path, e.g. ['--expose-gc']. */
  execArgv?: string[];
  /** Milliseconds before the child is killed with SIGKILL (default 20 s), times SLOWDOWN. */
  timeout?: number;
  /** Variables added to (or overriding) the clean childEnv(). */
  env?: Record<string, string>;
  /** A wrapper command the child is started under, before process.execPath (e.g. ['prlimit', '--memlock=0:0']). */
  prefix?: string[];
}

export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, MMAP_POOL_LIB: LIB, ...extra };
}

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** Runs a fixture to its end (or kills it after `timeout` ms). */
export function run(name: string, args: string[], opts: RunOptions = {}): Outcome {
  const argv = [...(opts.prefix ?? []), process.execPath, ...(opts.execArgv ?? []), fixture(name), ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: childEnv(opts.env),
    encoding: 'utf8',
    timeout: (opts.timeout ?? 20_000) * SLOWDOWN,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,  // a --trace-* flag's output
  });
  if (r.error) throw r.error;
  const command = [...Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`), ...argv].join(' ');
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, command };
}

/**
 * run(), without blocking the test worker while the child runs. For the
 * children that can take over a minute on a slow machine (Node under QEMU):
 * vitest's worker answers its runner's calls only between synchronous
 * stretches, and fails the run ("Timeout calling onTaskUpdate") when one
 * goes unanswered for 60 s.
 */
export function runAsync(name: string, args: string[], opts: RunOptions = {}): Promise<Outcome> {
  const argv = [...(opts.prefix ?? []), process.execPath, ...(opts.execArgv ?? []), fixture(name), ...args];
  const command = [...Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`), ...argv].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const ms = (opts.timeout ?? 20_000) * SLOWDOWN;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${command}: killed after ${ms} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      else resolve({ status, signal, stdout, stderr, command });
    });
  });
}

/** The JSON a fixture printed on its 'result ' line; without one, an error showing how the child ended. */
export function resultOf<T>(out: Outcome): T {
  const line = out.stdout.split('\n').find((l) => l.startsWith('result '));
  if (line === undefined) {
    throw new Error(
      `no result line in child output${out.command === undefined ? '' : ` of ${out.command}`}` +
        ` (status ${out.status}, signal ${out.signal})\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`,
    );
  }
  return JSON.parse(line.slice('result '.length)) as T;
}
