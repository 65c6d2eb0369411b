// The worker side of bench/threads.ts: attaches to the shared pool named by
// workerData.pool and answers its parent's commands, one at a time.
//
// Threads: runs in one worker thread; the pool it attaches to is shared with
// the main thread and the other bench worker. Times are read with
// performance.timeOrigin + performance.now(), a clock every thread of the
// process shares, so the parent can put two workers' intervals side by side.
import { Buffer } from 'node:buffer';
import { parentPort, workerData } from 'node:worker_threads';

import { Pool, type BufferHandle } from '../lib/index.js';

/** Commands and their answers; `trip-*` answers with what it received, back. */
export type Command =
  | { op: 'trip-share'; h: BufferHandle }
  | { op: 'trip-copy'; body: Uint8Array }
  | { op: 'trip-transfer'; body: ArrayBuffer }
  | { op: 'pairs'; size: number; count: number; gate: Int32Array }
  | { op: 'alloc-share'; size: number; count: number }
  | { op: 'adopt-free'; handles: BufferHandle[] }
  | { op: 'alloc-free'; size: number; count: number }
  | { op: 'close' };

/** A time on the clock all threads share, ms. */
const now = (): number => performance.timeOrigin + performance.now();

const pool = Pool.attach((workerData as { pool: Parameters<typeof Pool.attach>[0] }).pool);
const port = parentPort!;
let sink = 0;

/** `count` alloc/free pairs of `size`, once `gate[0]` turns 1 (so that two workers start together); `gate[1]` counts those waiting. */
function pairs(size: number, count: number, gate: Int32Array): { start: number; end: number } {
  Atomics.add(gate, 1, 1);
  Atomics.wait(gate, 0, 0);
  const start = now();
  for (let i = 0; i < count; i++) {
    const b = pool.allocUnsafe(size);
    sink = (sink + b.length) & 0x3fffffff;
    pool.free(b);
  }
  return { start, end: now() };
}

port.on('message', (c: Command) => {
  switch (c.op) {
    case 'trip-share': {
      const b = pool.adopt(c.h);
      b[0] = (b[0] + 1) & 0xff;
      const back = pool.share(b);
      pool.release(b);
      port.postMessage(back);
      return;
    }
    case 'trip-copy':
      c.body[0] = (c.body[0] + 1) & 0xff;
      port.postMessage(c.body);
      return;
    case 'trip-transfer': {
      const v = new Uint8Array(c.body);
      v[0] = (v[0] + 1) & 0xff;
      port.postMessage(c.body, [c.body]);
      return;
    }
    case 'pairs':
      port.postMessage(pairs(c.size, c.count, c.gate));
      return;
    case 'alloc-share': {
      // Allocates here; each allocation's only reference leaves in a handle.
      const handles: BufferHandle[] = new Array(c.count);
      for (let i = 0; i < c.count; i++) {
        const b = pool.allocUnsafe(c.size);
        b[0] = i & 0xff;
        handles[i] = pool.share(b);
        pool.release(b);
      }
      port.postMessage(handles);
      return;
    }
    case 'adopt-free': {
      // Adopting is not timed: the free of a block another thread allocated is.
      const bufs: Buffer[] = c.handles.map((h) => pool.adopt(h));
      const start = now();
      for (const b of bufs) pool.free(b);
      port.postMessage({ start, end: now() });
      return;
    }
    case 'alloc-free': {
      const bufs: Buffer[] = new Array(c.count);
      for (let i = 0; i < c.count; i++) {
        bufs[i] = pool.allocUnsafe(c.size);
        bufs[i][0] = i & 0xff;
      }
      const start = now();
      for (const b of bufs) pool.free(b);
      port.postMessage({ start, end: now() });
      return;
    }
    case 'close':
      pool.close();
      port.close();
      return;
  }
});
port.postMessage('ready');
