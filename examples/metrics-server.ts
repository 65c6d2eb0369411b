// A tiny metrics endpoint: two pools doing some work on a timer, their stats
// served at /metrics in Prometheus's text format.
//
//   node dist/examples/metrics-server.js [port]     (or PORT=9464; 0 picks a free port)
//   curl http://127.0.0.1:9464/metrics
//
// Listens on 127.0.0.1 only. SIGTERM or SIGINT closes the server and the
// pools and the process exits 0. The work timer is unref'd: the open server
// is what keeps the process alive.
import { createServer } from 'node:http';

import { Pool } from '../lib/index.js';
import { toPrometheus } from '../lib/observe/metrics.js';

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function portFrom(text: string | undefined): number {
  const port = Number(text ?? 9464);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || text === '') {
    console.error(`metrics-server: the port must be an integer from 0 to 65535, not ${JSON.stringify(text)}`);
    process.exit(1);
  }
  return port;
}

const port = portFrom(process.argv[2] ?? process.env.PORT);

const requests = new Pool({ name: 'requests', chunkSize: 1024 * 1024 });
const cache = new Pool({ name: 'cache', maxBytes: 64 * 1024 * 1024 });

// Work: request buffers come and go; the cache fills up to a bound.
let seed = 1;
const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const inFlight: Buffer[] = [];
const cached: Buffer[] = [];
const work = setInterval(() => {
  for (let i = 0; i < 20; i++) inFlight.push(requests.allocUnsafe(64 + Math.floor(random() * 8000)));
  while (inFlight.length > 200) requests.free(inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]);
  cached.push(cache.allocUnsafe(1024 * (1 + Math.floor(random() * 64))));
  if (cached.length > 500) cache.free(cached.shift() as Buffer);
}, 50);
work.unref();

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  const body = toPrometheus(requests, cache);
  res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
});

server.on('error', (err) => {
  console.error(`metrics-server: ${err.message}`);
  process.exitCode = 1;
  shutdown();
});

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  console.log(`listening on http://127.0.0.1:${actual}/metrics`);
});

let stopping = false;
function shutdown(): void {
  if (stopping) return;
  stopping = true;
  clearInterval(work);
  server.close(() => {
    requests.close();
    cache.close();
  });
  // Keep-alive connections would hold close() open until they time out.
  server.closeAllConnections();
}

process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
