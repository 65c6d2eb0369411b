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
}

export function childEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, MMAP_POOL_LIB: LIB };
}

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** Runs a fixture to its end (or kills it after `timeout` ms). */
export function run(name: string, args: string[], opts: { execArgv?: string[]; timeout?: number } = {}): Outcome {
  const r = spawnSync(process.execPath, [...(opts.execArgv ?? []), fixture(name), ...args], {
    env: childEnv(),
    encoding: 'utf8',
    timeout: opts.timeout ?? 20_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,  // a --trace-* flag's output
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON a fixture printed on its 'result ' line. */
export function resultOf<T>(stdout: string): T {
  const line = stdout.split('\n').find((l) => l.startsWith('result '));
  if (line === undefined) throw new Error(`no result line in child output:\n${stdout}`);
  return JSON.parse(line.slice('result '.length)) as T;
}
