// examples/metrics-server: started as a user would start it (the compiled
// dist/examples/metrics-server.js, written by `tsc -p tsconfig.json`) on port
// 0, scraped over 127.0.0.1, then stopped with SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import * as path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

const SERVER = path.join(__dirname, '..', 'dist', 'examples', 'metrics-server.js');
// On Windows child.kill(signal) is TerminateProcess: the example's SIGTERM and
// SIGINT handlers never run there, and the child ends as killed by that
// signal (no exit code). Everything before the signal runs everywhere.
const win32 = process.platform === 'win32';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Started {
  child: ChildProcess;
  url: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  expect(existsSync(SERVER), `${SERVER} is missing: run \`npx tsc -p tsconfig.json\` first`).toBe(true);
  const child = spawn(process.execPath, [SERVER, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within 10 s; stdout: ${stdout}; stderr: ${stderr}`)), 10_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+)\/metrics)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], exit });
      }
    });
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited early (${code ?? signal}); stdout: ${stdout}; stderr: ${stderr}`));
    });
  });
}

function fetchText(url: string): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ res, body })).on('error', reject);
    }).on('error', reject);
  });
}

describe('examples/metrics-server', () => {
  it('serves pool metrics at /metrics and exits 0 on SIGTERM (on Windows: is terminated, no handler runs)', async () => {
    const { child, url, exit } = await start(['0']);
    expect(Number(new URL(url).port)).toBeGreaterThan(0);
    const { res, body } = await fetchText(url);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const pool of ['requests', 'cache']) {
      expect(body).toMatch(new RegExp(`^mmap_pool_mapped_bytes\\{pool="${pool}"\\} \\d+$`, 'm'));
      expect(body).toMatch(new RegExp(`^mmap_pool_allocations_total\\{pool="${pool}"\\} \\d+$`, 'm'));
    }
    expect(body).toContain('# TYPE mmap_pool_frees_total counter\n');
    expect(body).toMatch(/^mmap_pool_max_bytes\{pool="cache"\} 67108864$/m);
    const notFound = await fetchText(url.replace('/metrics', '/'));
    expect(notFound.res.statusCode).toBe(404);
    child.kill('SIGTERM');
    const { code, signal, stderr } = await exit;
    expect(stderr).toBe('');
    expect({ code, signal }).toEqual(win32 ? { code: null, signal: 'SIGTERM' } : { code: 0, signal: null });
  });

  it('takes the port from PORT and stops on SIGINT too (on Windows: is terminated, no handler runs)', async () => {
    const { child, url, exit } = await start([], { PORT: '0' });
    expect(new URL(url).hostname).toBe('127.0.0.1');
    const { res } = await fetchText(url);
    expect(res.statusCode).toBe(200);
    child.kill('SIGINT');
    expect(await exit).toMatchObject(win32 ? { code: null, signal: 'SIGINT' } : { code: 0, signal: null });
  });

  it('refuses a port that is not one, with exit code 1', async () => {
    const child = spawn(process.execPath, [SERVER, 'eighty'], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/port must be an integer from 0 to 65535/);
  });
});
