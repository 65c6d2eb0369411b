// Running a test/fixtures script in a child process, judged by how it ended
// (exit code, signal, stderr) and by the JSON of its 'result ' line. The
// child loads the compiled library (dist/, which `npm test` builds first)
// through MMAP_POOL_LIB, with a clean environment: no NODE_OPTIONS or loader
// hooks from the test runner.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const LIB = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
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
  /** Milliseconds before the child is killed with SIGKILL (default 20 s). */
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
    timeout: opts.timeout ?? 20_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,  // a --trace-* flag's output
  });
  if (r.error) throw r.error;
  const command = [...Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`), ...argv].join(' ');
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, command };
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
