// The HTTP services of `npm run bench:service`, one variant per process.
//
//   node dist/bench/service/http-server.js <pool|buffer|ideal> transform
//   node dist/bench/service/http-server.js <pool|buffer|ideal> file <path>
//
// transform: POST a body, get a transformed copy back.
//   pool:   the body in one pool Buffer (pool.collect, sized by Content-Length),
//           the response in another, released when the response is done
//           (pool.releaseAfter); the body freed once transformed
//   buffer: the idiomatic Node version: chunks concatenated (Buffer.concat),
//           the response from Buffer.allocUnsafe, both left to the collector
//   ideal:  the bound no allocator can beat: each connection keeps one body
//           Buffer and one response Buffer for all its requests (it has one
//           request at a time), so the service allocates nothing of its own
//           and leaves the collector nothing; what it costs is Node's HTTP
//           stack and the transform. Not a pattern to copy: a Buffer still
//           being written when the next request arrives would be overwritten.
// file: GET answers with the whole file at <path>.
//   pool:   pool.readFile(), released when the response is done
//   buffer: fs.promises.readFile()
//   ideal:  the file read once at start, the same Buffer for every response
//           (reading and allocating cost nothing: the bound for any allocator)
//
// It prints `ready <port>` when listening. GET /stats answers with what the
// process measured of itself since the previous GET /stats: CPU time, wall
// time, collector time, minor page faults, requests, and the peak RSS so far.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';

import { Pool, tuneMalloc } from '../../lib/index.js';

// `npm run bench:service -- --tune-malloc`: both versions alike.
if (process.env.MMAP_POOL_BENCH_TUNE_MALLOC === '1') tuneMalloc({ trimThreshold: 64 * 1024 * 1024, mmapThreshold: 4 * 1024 * 1024 });

const [variant, service, filePath] = process.argv.slice(2);
if ((variant !== 'pool' && variant !== 'buffer' && variant !== 'ideal') ||
  (service !== 'transform' && !(service === 'file' && filePath !== undefined))) {
  throw new Error('usage: http-server.js <pool|buffer|ideal> transform | <pool|buffer|ideal> file <path>');
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

/** The transform: every byte xor 0x5a, the same work in both variants. */
function transform(from: Uint8Array, to: Uint8Array): void {
  for (let i = 0; i < from.length; i++) to[i] = from[i] ^ 0x5a;
}

const pool = new Pool({ name: 'service', leakDetection: 'disabled' });
let requests = 0;
let mark = { cpu: process.cpuUsage(), wall: process.hrtime.bigint(), gc: 0, faults: process.resourceUsage().minorPageFault, requests: 0 };

async function handlePool(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const length = Number(req.headers['content-length']);
  const body = await pool.collect(req, { sizeHint: Number.isInteger(length) ? length : undefined });
  const out = pool.allocUnsafe(body.length);
  transform(body, out);
  pool.free(body);
  pool.releaseAfter(res, out);
  res.end(out);
}

async function handleBuffer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const out = Buffer.allocUnsafe(body.length);
  transform(body, out);
  res.end(out);
}

/** A connection's own two Buffers, reused by each of its requests (the 'ideal' variant). */
const kept = new WeakMap<object, { body: Buffer; out: Buffer }>();

async function handleIdeal(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const length = Number(req.headers['content-length']);
  let own = kept.get(req.socket);
  if (own === undefined || own.body.length < length) {
    own = { body: Buffer.allocUnsafeSlow(length), out: Buffer.allocUnsafeSlow(length) };
    kept.set(req.socket, own);
  }
  let filled = 0;
  for await (const c of req) {
    own.body.set(c as Buffer, filled);
    filled += (c as Buffer).length;
  }
  const out = own.out.subarray(0, filled);
  transform(own.body.subarray(0, filled), out);
  res.end(out);
}

async function filePool(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const data = await pool.readFile(filePath);
  pool.releaseAfter(res, data);
  res.end(data);
}

async function fileBuffer(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  res.end(await readFile(filePath));
}

const cached = service === 'file' && variant === 'ideal' ? readFileSync(filePath) : Buffer.alloc(0);

async function fileIdeal(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  res.end(cached);
}

const handle = service === 'file'
  ? (variant === 'pool' ? filePool : variant === 'ideal' ? fileIdeal : fileBuffer)
  : (variant === 'pool' ? handlePool : variant === 'ideal' ? handleIdeal : handleBuffer);

// Requests not done yet: their response has not closed, or their handler
// has not returned. When a run ends, autocannon drops its connections: the
// last responses are still being written (an 8 MiB file to a socket that
// went away), and a handler may still be reading its file for a response
// that has closed already. GET /stats waits for both, so that a live pool
// allocation it reports is a leak, not a request in flight.
let inFlight = 0;

async function drained(): Promise<void> {
  for (let waited = 0; inFlight > 0 && waited < 30_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function stats(res: http.ServerResponse): Promise<void> {
  await drained();
  const now = { cpu: process.cpuUsage(), wall: process.hrtime.bigint(), gc: gcMs, faults: process.resourceUsage().minorPageFault, requests };
  const cpu = process.cpuUsage(mark.cpu);
  res.end(JSON.stringify({
    cpuUs: cpu.user + cpu.system,
    wallUs: Number(now.wall - mark.wall) / 1000,
    gcMs: now.gc - mark.gc,
    minorFaults: now.faults - mark.faults,
    requests: now.requests - mark.requests,
    maxRssKiB: process.resourceUsage().maxRSS,
    poolLive: pool.stats().liveAllocations,
    inFlight,
  }));
  mark = now;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    void stats(res);
    return;
  }
  requests++;
  inFlight++;
  let pending = 2;  // the response's 'close' and the handler's end
  const settle = (): void => {
    if (--pending === 0) inFlight--;
  };
  res.once('close', settle);
  handle(req, res).catch((err: Error) => {
    res.statusCode = 500;
    res.end(String(err.message));
  }).finally(settle);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
