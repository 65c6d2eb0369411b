// The TCP client of `npm run bench:service`, one variant per process: it
// connects to a local server that sends length-prefixed frames (a 4-byte
// little-endian length, then that many bytes) until it has sent `total`
// bytes of frames, reads every frame whole, checks its first and last byte,
// and prints what it measured of itself as one JSON line.
//
//   node dist/bench/service/tcp-client.js <pool|buffer|ideal> <port> <frameSize> <total>
//
// pool:   net.Socket's onread option with pool.onread(): every read lands in
//         a fresh pool Buffer; a frame inside one read is a subarray of it,
//         one spread over reads is copied into a pool Buffer of its size;
//         each read's Buffer is freed once its frames are handled
// buffer: the default 'data' events: Node's own read buffers, a frame over
//         several of them joined with Buffer.concat
// ideal:  the bound no allocator can beat: onread into one Buffer reused for
//         every read (Node's own onread pattern), a frame over several reads
//         copied into one frame Buffer reused for every frame; nothing is
//         allocated per read or per frame
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';

import { Pool, tuneMalloc } from '../../lib/index.js';

// `npm run bench:service -- --tune-malloc`: both versions alike.
if (process.env.MMAP_POOL_BENCH_TUNE_MALLOC === '1') tuneMalloc({ trimThreshold: 64 * 1024 * 1024, mmapThreshold: 4 * 1024 * 1024 });

const [variant, portText, frameText, totalText] = process.argv.slice(2);
if (variant !== 'pool' && variant !== 'buffer' && variant !== 'ideal') throw new Error('usage: tcp-client.js <pool|buffer|ideal> <port> <frameSize> <total>');
const port = Number(portText);
const frameSize = Number(frameText);
const total = Number(totalText);
// The size of each read: 64 KiB, as Node's own reads for 'data' events.
const READ = 64 * 1024;

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

let frames = 0;
let bad = 0;
let bytes = 0;
/** The work per frame: a look at its first and last byte (the server writes its length's low byte there). */
function frame(view: Uint8Array): void {
  frames++;
  bytes += view.length;
  const tag = view.length & 0xff;
  if (view[0] !== tag || view[view.length - 1] !== tag) bad++;
}

const pool = new Pool({ name: 'tcp-client', leakDetection: 'disabled' });
const cpu0 = process.cpuUsage();
const faults0 = process.resourceUsage().minorPageFault;
const t0 = process.hrtime.bigint();

function report(): void {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({
    seconds, frames, bytes, bad, cpuUs: cpu.user + cpu.system, gcMs,
    minorFaults: process.resourceUsage().minorPageFault - faults0,
    maxRssKiB: process.resourceUsage().maxRSS,
    poolLive: pool.stats().liveAllocations,
  })}\n`);
}

// Frame assembly, shared by the variants: `want` bytes of the current
// frame (or of its length prefix) still to come.
const header = Buffer.alloc(4);
let headerHave = 0;
let partial: Uint8Array | undefined;     // the pool and ideal variants' frame being filled
let partialHave = 0;
let kept = Buffer.alloc(0);              // the ideal variant's one frame Buffer
let pieces: Buffer[] = [];                // the Buffer variant's pieces of the frame
let piecesHave = 0;
let want = -1;                            // the current frame's length, -1 while reading its prefix

function consume(chunk: Buffer, end: number): void {
  let o = 0;
  while (o < end) {
    if (want < 0) {
      const n = Math.min(4 - headerHave, end - o);
      chunk.copy(header, headerHave, o, o + n);
      headerHave += n;
      o += n;
      if (headerHave < 4) return;
      want = header.readUInt32LE(0);
      headerHave = 0;
      continue;
    }
    const have = variant === 'buffer' ? piecesHave : partialHave;
    const n = Math.min(want - have, end - o);
    if (have === 0 && n === want) {
      frame(chunk.subarray(o, o + n));     // whole inside this read: no copy
    } else if (variant === 'pool') {
      if (partial === undefined) partial = pool.allocUnsafe(want);
      partial.set(chunk.subarray(o, o + n), partialHave);
      partialHave += n;
      if (partialHave === want) {
        frame(partial);
        pool.free(partial);
        partial = undefined;
        partialHave = 0;
      }
    } else if (variant === 'ideal') {
      if (kept.length < want) kept = Buffer.allocUnsafeSlow(want);
      kept.set(chunk.subarray(o, o + n), partialHave);
      partialHave += n;
      if (partialHave === want) {
        frame(kept.subarray(0, want));
        partialHave = 0;
      }
    } else {
      pieces.push(chunk.subarray(o, o + n));
      piecesHave += n;
      if (piecesHave === want) {
        frame(Buffer.concat(pieces, want));
        pieces = [];
        piecesHave = 0;
      }
    }
    o += n;
    if ((variant === 'buffer' ? piecesHave : partialHave) === 0) want = -1;
  }
}

const socket = variant === 'pool'
  ? net.connect({
    host: '127.0.0.1', port,
    onread: pool.onread(READ, (nread, buf) => {
      consume(buf, nread);
      pool.free(buf);
    }),
  })
  : variant === 'ideal'
    ? net.connect({ host: '127.0.0.1', port, onread: { buffer: Buffer.allocUnsafeSlow(READ), callback: (nread, buf) => {
      consume(buf as Buffer, nread);
      return true;
    } } })
    : net.connect({ host: '127.0.0.1', port });
if (variant === 'buffer') socket.on('data', (chunk: Buffer) => consume(chunk, chunk.length));
socket.on('close', () => {
  if (bytes !== total || frames * frameSize !== total) bad++;
  // After the reader's own 'close' listener has freed the Buffer of the read that never came.
  setImmediate(() => {
    report();
    pool.close();
  });
});
