// `npm run bench:service`: the HTTP services of bench/service/http-server.ts
// measured as services, pool version against the idiomatic Buffer version,
// with autocannon as the load generator, on loopback. A third version of
// each allocates nothing of its own: the bound for any allocator.
//
//   transform  POST a body, get a transformed copy: 1 KiB, 64 KiB, 256 KiB, 1 MiB
//   file       GET a whole file: 64 KiB, 1 MiB, 8 MiB
//   tcp        a client reading length-prefixed frames of 1 KiB, 64 KiB, 1 MiB
//              (bench/service/tcp-client.ts: onread against 'data' events)
//
//   npm run bench:service                 all, 3 pairs of 10 s runs per size;
//                                         rewrites the service section of bench/RESULTS.md
//   npm run bench:service -- --smoke      one pair of 1 s runs at the smallest two sizes; prints only
//   npm run bench:service -- --pairs 5 --seconds 15 --services file
//   npm run bench:service -- --tune-malloc every version with tuneMalloc({ trimThreshold: 64 MiB,
//                                         mmapThreshold: 4 MiB }); prints only
//
// Each run is its own server process, started fresh, warmed for a second,
// then measured: requests per second and latency from autocannon; CPU time,
// collector time, minor page faults and peak RSS from the server itself;
// the CPU the load generator used from this process. The versions alternate
// (buffer, pool, no allocation in odd pairs; the reverse in even ones), and
// each ratio is taken within its pair; the table shows the median over the
// pairs. Every run first checks one response byte for byte.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import autocannon from 'autocannon';

import { renderRatios } from '../chart.js';
import { sizeText } from '../format.js';
import { revision } from '../revision.js';
import { withServiceBlock } from './results-block.js';

/** 'ideal': the transform service with no allocation of its own (bench/service/http-server.ts), the bound for any allocator. */
type Variant = 'pool' | 'buffer' | 'ideal';
interface Run {
  reqPerSec: number;
  /** The measured program's CPU time over wall time (the server; the client for tcp): 1 is one core kept busy. */
  programCores: number;
  /** The same for the load generator: autocannon in this process, or the frame server for tcp. */
  loadCores: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
  /** Collector time per request (per frame for tcp): the two versions serve different numbers in a run. */
  gcUsPerReq: number;
  faultsPerReq: number;
  maxRssMiB: number;
  errors: number;
  errorText?: string;
  poolLive: number;
  /** Requests not done (response open or handler running) when the server reported (it waits up to 30 s for them). */
  inFlight: number;
}

const KiB = 1024;
const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
function opt(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
type Service = 'transform' | 'file' | 'tcp';
const SIZES: Record<Service, number[]> = {
  transform: smoke ? [1024, 65536] : [1024, 65536, 262144, 1048576],
  file: smoke ? [65536] : [65536, 1048576, 8388608],
  tcp: smoke ? [65536] : [1024, 65536, 1048576],
};
const SERVICES = opt('--services', 'transform,file,tcp').split(',') as Service[];
/** Bytes of frames the TCP server sends per run. */
const TCP_TOTAL = smoke ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
const tcpClientJs = join(__dirname, 'tcp-client.js');
const PAIRS = Number(opt('--pairs', smoke ? '1' : '3'));
const SECONDS = Number(opt('--seconds', smoke ? '1' : '10'));
const CONNECTIONS = 32;
const custom = args.some((a) => a.startsWith('--') && a !== '--smoke');
/** Both versions of every program call tuneMalloc() at start (docs/services.md, "glibc's heap"). */
const childEnv = args.includes('--tune-malloc') ? { ...process.env, MMAP_POOL_BENCH_TUNE_MALLOC: '1' } : process.env;
const serverJs = join(__dirname, 'http-server.js');

async function request(port: number, method: string, path: string, body?: Buffer): Promise<Buffer> {
  const req = http.request({ host: '127.0.0.1', port, method, path, agent: false,
    headers: body === undefined ? {} : { 'content-length': String(body.length) } });
  req.end(body);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function start(variant: Variant, service: Service, file: string): Promise<{ child: ChildProcess; port: number }> {
  const args = service === 'file' ? [serverJs, variant, 'file', file] : [serverJs, variant, 'transform'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const m = /^ready (\d+)$/.exec(line);
    if (m !== null) return { child, port: Number(m[1]) };
  }
  throw new Error(`the ${variant} server exited before it was ready`);
}

/** CPU time since `cpu` was taken over the wall time since `t0`, in cores. */
function cores(cpu: NodeJS.CpuUsage, t0: bigint): number {
  return (cpu.user + cpu.system) / (Number(process.hrtime.bigint() - t0) / 1000);
}

const scratch = mkdtempSync(join(tmpdir(), 'mmap-pool-service-'));

async function runOne(variant: Variant, service: Service, size: number): Promise<Run> {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + 7) & 0xff;
  const file = join(scratch, `${size}.bin`);
  if (service === 'file') writeFileSync(file, body);
  const { child, port } = await start(variant, service, file);
  try {
    const answer = service === 'file' ? await request(port, 'GET', '/') : await request(port, 'POST', '/', body);
    const expected = service === 'file' ? body : body.map((b) => b ^ 0x5a);
    if (!answer.equals(expected)) throw new Error(`the ${variant} ${service} server answered wrongly (${size} bytes)`);
    // A request may wait long on a loaded 2-core machine (8 MiB files, 32 at
    // once): autocannon's 10 s timeout would count it failed.
    const load = service === 'file'
      ? { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, method: 'GET', timeout: 60 }
      : { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, method: 'POST', body, timeout: 60,
          headers: { 'content-type': 'application/octet-stream' } };
    await autocannon({ ...load, duration: 1 });  // warm-up
    await request(port, 'GET', '/stats');        // starts the server's counts afresh
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const r = await autocannon({ ...load, duration: SECONDS });
    const loadCores = cores(process.cpuUsage(cpu0), t0);
    const s = JSON.parse((await request(port, 'GET', '/stats')).toString()) as
      { cpuUs: number; wallUs: number; gcMs: number; minorFaults: number; requests: number; maxRssKiB: number; poolLive: number; inFlight: number };
    const n = Math.max(1, s.requests);
    return {
      reqPerSec: r.requests.total / SECONDS,
      programCores: s.cpuUs / s.wallUs,
      loadCores,
      p50: r.latency.p50,
      p99: r.latency.p99,
      cpuUsPerReq: s.cpuUs / n,
      gcUsPerReq: (s.gcMs * 1000) / n,
      faultsPerReq: s.minorFaults / n,
      maxRssMiB: s.maxRssKiB / 1024,
      errors: r.errors + r.timeouts + r.non2xx,
      errorText: `${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} answers not 2xx`,
      poolLive: s.poolLive,
      inFlight: s.inFlight,
    };
  } finally {
    child.kill();
    await once(child, 'exit');
  }
}

/** The TCP frame server: sends `total` bytes of frames of `size` (length prefix not counted), then ends. */
async function frameServer(size: number, total: number): Promise<{ server: net.Server; port: number }> {
  const frame = Buffer.alloc(4 + size, size & 0xff);
  frame.writeUInt32LE(size, 0);
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let left = total / size;
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!socket.write(frame)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function runTcp(variant: Variant, size: number): Promise<Run> {
  const { server, port } = await frameServer(size, TCP_TOTAL);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  try {
    const child = spawn(process.execPath, [tcpClientJs, variant, String(port), String(size), String(TCP_TOTAL)],
      { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv });
    let out = '';
    (child.stdout as NodeJS.ReadableStream).on('data', (c: Buffer) => {
      out += c.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    const loadCores = cores(process.cpuUsage(cpu0), t0);
    if (code !== 0) throw new Error(`the ${variant} TCP client exited with ${code}`);
    const s = JSON.parse(out) as { seconds: number; frames: number; bytes: number; bad: number; cpuUs: number;
      gcMs: number; minorFaults: number; maxRssKiB: number; poolLive: number };
    if (s.bad > 0 || s.bytes !== TCP_TOTAL) throw new Error(`the ${variant} TCP client read ${s.bytes} bytes, ${s.bad} frames wrong`);
    const n = Math.max(1, s.frames);
    return {
      reqPerSec: s.frames / s.seconds, programCores: s.cpuUs / (s.seconds * 1e6), loadCores, p50: NaN, p99: NaN, cpuUsPerReq: s.cpuUs / n, gcUsPerReq: (s.gcMs * 1000) / n,
      faultsPerReq: s.minorFaults / n, maxRssMiB: s.maxRssKiB / 1024, errors: 0, poolLive: s.poolLive, inFlight: 0,
    };
  } finally {
    server.close();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratio = (pool: number, buffer: number): number => (buffer === 0 ? (pool === 0 ? 1 : Infinity) : pool / buffer);
const fx = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

interface Row {
  service: Service;
  size: number;
  pool: Run[];
  buffer: Run[];
  /** The version that allocates nothing (see the header of each program), in the same pairs. */
  ideal: Run[];
}

/** One goal of a row: `ratio` (pool / Buffer, median of pairs) against `goal`, at least or at most. */
interface Goal {
  metric: string;
  ratio: number;
  goal: number;
  atMost: boolean;
  met: boolean;
}

/** The goals, per service and size. */
function goals(row: Row): Goal[] {
  const r = (f: (x: Run) => number): number => median(row.pool.map((p, i) => ratio(f(p), f(row.buffer[i]))));
  const out: Goal[] = [];
  const add = (metric: string, value: number, goal: number, atMost: boolean): void => {
    out.push({ metric, ratio: value, goal, atMost, met: atMost ? value <= goal : value >= goal });
  };
  if (row.size < 64 * KiB) add(row.service === 'transform' ? 'req/s' : 'throughput', r((x) => x.reqPerSec), 0.95, false);
  else if (row.service === 'file' || row.service === 'tcp') add('throughput', r((x) => x.reqPerSec), 1.3, false);
  else {
    add('req/s', r((x) => x.reqPerSec), 1.1, false);
    add('CPU per request', r((x) => x.cpuUsPerReq), 0.9, true);
  }
  add('GC time per request', r((x) => x.gcUsPerReq), 0.5, true);
  if (row.service !== 'tcp') add('p99', r((x) => x.p99), 1.0, true);
  return out;
}

const goalText = (g: Goal): string => `${g.metric} ${g.atMost ? '<=' : '>='} ${g.goal}x: ${g.met ? 'met' : '**not met**'}`;

/**
 * bench/service-ratios.svg: one bar per goal, each turned so that right of
 * 1x means the pool did better (req/s and throughput pool / Buffer; CPU,
 * GC time and p99 Buffer / pool).
 */
function chart(rows: Row[], subtitle: string): string {
  return renderRatios(rows.flatMap((row) => goals(row).map((g) => ({
    label: `${row.service} ${sizeText(row.size)} · ${g.metric}`,
    ratio: g.atMost ? 1 / g.ratio : g.ratio,
    goal: g.atMost ? 1 / g.goal : g.goal,
  }))), {
    title: 'mmap-pool vs Buffer in services: how many times better',
    subtitle,
    axis: 'req/s, throughput: pool / Buffer; CPU per request, GC time, p99: Buffer / pool (log scale, median of pairs)',
  });
}

/** The median over the pairs of `of` / Buffer for `f`. */
function pairRatio(row: Row, of: Run[], f: (x: Run) => number): number {
  return median(of.map((p, i) => ratio(f(p), f(row.buffer[i]))));
}

const coresText = (runs: Run[]): string =>
  `${fixed(median(runs.map((x) => x.programCores)), 2)} / ${fixed(median(runs.map((x) => x.loadCores)), 2)}`;

function table(rows: Row[]): string {
  const lines = [
    '| service, size | req/s pool / Buffer | CPU per request | p50 | p99 | GC time per request | minor faults per request | peak RSS | cores busy, program / load: pool; Buffer | no allocation / Buffer: req/s; CPU; GC | goals |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of rows) {
    const r = (f: (x: Run) => number): string => fx(pairRatio(row, row.pool, f));
    const abs = (f: (x: Run) => number, digits: number): string =>
      `${fixed(median(row.pool.map(f)), digits)} / ${fixed(median(row.buffer.map(f)), digits)}`;
    const met = goals(row).map(goalText).join('; ');
    lines.push(`| ${row.service} ${sizeText(row.size)} | ${r((x) => x.reqPerSec)} (${abs((x) => x.reqPerSec, 0)}) | ${r((x) => x.cpuUsPerReq)} (${abs((x) => x.cpuUsPerReq, 0)} µs) | ` +
      `${r((x) => x.p50)} | ${r((x) => x.p99)} (${abs((x) => x.p99, 0)} ms) | ${r((x) => x.gcUsPerReq)} (${abs((x) => x.gcUsPerReq, 1)} µs) | ` +
      `${abs((x) => x.faultsPerReq, 1)} | ${r((x) => x.maxRssMiB)} (${abs((x) => x.maxRssMiB, 0)} MiB) | ` +
      `${coresText(row.pool)}; ${coresText(row.buffer)} | ${idealText(row)} | ${met} |`);
  }
  return lines.join('\n');
}

function idealText(row: Row): string {
  const r = (f: (x: Run) => number): string => fx(pairRatio(row, row.ideal, f));
  return `${r((x) => x.reqPerSec)}; ${r((x) => x.cpuUsPerReq)}; ${r((x) => x.gcUsPerReq)}`;
}

/**
 * What bounded each row, from the cores each side kept busy (a side at 0.85
 * of a core or more is saturated), then what the version that allocates
 * nothing did: the most any allocator could gain there.
 */
function bounds(rows: Row[]): string {
  const out: string[] = [];
  for (const row of rows) {
    const prog = median(row.buffer.map((x) => x.programCores));
    const load = median(row.buffer.map((x) => x.loadCores));
    const who = row.service === 'tcp' ? 'the client' : 'the server';
    const busy = `${who} ${fixed(prog, 2)} cores, the load generator ${fixed(load, 2)}`;
    const side = prog >= 0.85 && load >= 0.85 ? `both sides, the machine's 2 cores (${busy})`
      : load >= 0.85 ? `the load generator (${busy}): req/s measures it as much as the service; CPU per request is the comparison`
        : prog >= 0.85 ? `${who} (${busy})`
          : `neither side's CPU (${busy})`;
    let line = `- **${row.service} ${sizeText(row.size)}**, Buffer version: bound by ${side}.`;
    if (row.ideal.length > 0) {
      const r = (f: (x: Run) => number): string => fx(pairRatio(row, row.ideal, f));
      line += ` No allocation / Buffer: req/s ${r((x) => x.reqPerSec)}, CPU per request ${r((x) => x.cpuUsPerReq)}, ` +
        `GC time per request ${r((x) => x.gcUsPerReq)}.`;
    }
    out.push(line);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const startLoad = loadavg().map((l) => l.toFixed(2)).join(' / ');
  const rows: Row[] = [];
  for (const service of SERVICES) for (const size of SIZES[service]) {
    const row: Row = { service, size, pool: [], buffer: [], ideal: [] };
    for (let p = 0; p < PAIRS; p++) {
      const order: Variant[] = p % 2 === 0 ? ['buffer', 'pool', 'ideal'] : ['ideal', 'pool', 'buffer'];
      for (const v of order) {
        const r = service === 'tcp' ? await runTcp(v, size) : await runOne(v, service, size);
        if (r.errors > 0) throw new Error(`${v} at ${sizeText(size)}: ${r.errors} failed requests (${r.errorText ?? ''})`);
        if (v === 'pool' && r.poolLive !== 0) {
          throw new Error(`pool at ${sizeText(size)}: ${r.poolLive} allocations still live after the run (${r.inFlight} requests not done)`);
        }
        row[v].push(r);
        console.log(`${service} ${sizeText(size)} pair ${p + 1} ${v}: ${r.reqPerSec.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(0)} µs CPU/req, ` +
          `p99 ${r.p99} ms, GC ${r.gcUsPerReq.toFixed(1)} µs/req, ${r.faultsPerReq.toFixed(1)} faults/req, RSS ${r.maxRssMiB.toFixed(0)} MiB`);
      }
    }
    rows.push(row);
  }
  rmSync(scratch, { recursive: true, force: true });
  const text = table(rows);
  const why = bounds(rows);
  console.log(`\n${text}\n\n${why}`);
  if (smoke || custom) return;
  const machine = `${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ${process.platform}-${process.arch} · ${cpus().length} cores`;
  const body = [
    '## Services under autocannon',
    '',
    'Two HTTP servers (bench/service/http-server.ts). *transform* reads a',
    'request body and answers with a transformed copy: the pool version reads',
    'the body with `pool.collect()` and answers from a pool Buffer released by',
    '`pool.releaseAfter()`; the Buffer version concatenates the chunks and',
    'answers from `Buffer.allocUnsafe`. *file* answers a GET with a whole file:',
    '`pool.readFile()` + `releaseAfter()` against `fs.promises.readFile()`.',
    '*tcp* is a client reading length-prefixed frames from a local server',
    '(bench/service/tcp-client.ts): `pool.onread()` against `\'data\'` events;',
    'its "requests" are frames, its time is the whole transfer, and it has no latency.',
    'autocannon, in the driver process,',
    `drives each with ${CONNECTIONS} connections, ${SECONDS} s per run after a 1 s`,
    `warm-up, on loopback; ${PAIRS} pairs per size, the two versions alternating,`,
    'each in a fresh server process. Ratios are pool / Buffer within a pair, the',
    'median over the pairs (for req/s above 1 is better, for the others below 1);',
    'in brackets the medians of pool and Buffer themselves.',
    '',
    `- ${machine} · code measured: ${revision(join(__dirname, '..', '..', '..'))} · load average at the start ${startLoad}, at the end ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`,
    '',
    text,
    '',
    '![Each goal as a bar: right of 1x the pool did better](service-ratios.svg)',
    '',
    '### What bounds each row',
    '',
    '"Cores busy" is CPU time over wall time while measured, median over the',
    'pairs: the measured program (the server; for tcp the client) and the load',
    'generator (autocannon, in the driver process; for tcp the frame server).',
    'On 2 cores the two share the machine. *No allocation* is a third version',
    'of each program, run in the same pairs, that allocates nothing of its own:',
    'transform keeps one body and one response Buffer per connection, file',
    'answers every request with one Buffer read at start, tcp reads into one',
    'Buffer through `onread` and assembles frames in one more. What it spends is',
    'Node\'s own I/O and the work, so its ratios to Buffer are the most any',
    'allocator could gain in that service. (A bound, not a pattern: transform\'s',
    'response still being written when the next request arrives would be',
    'overwritten.)',
    '',
    why,
    '',
  ].join('\n');
  writeFileSync(join(__dirname, '..', '..', '..', 'bench', 'service-ratios.svg'), chart(rows, `${machine} · ${PAIRS} pairs of ${SECONDS} s runs`));
  const file = join(__dirname, '..', '..', '..', 'bench', 'RESULTS.md');
  writeFileSync(file, withServiceBlock(readFileSync(file, 'utf8'), body));
  console.log('wrote the service section of bench/RESULTS.md');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
