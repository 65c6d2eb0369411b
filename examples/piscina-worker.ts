// The piscina task of examples/piscina-bodies.ts: the CRC-32 of one request
// body (node:zlib), given either as a Buffer (piscina's postMessage copied it)
// or as a BufferHandle of the shared pool named by workerData.pool.
//
// Threads: runs in piscina's worker threads; each attaches to the shared pool
// once, when piscina loads this file, and its attachment ends when piscina
// terminates the worker.
import { workerData } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

import { Pool, type BufferHandle, type PoolHandle } from '../lib/index.js';

export type BodyTask = { body: Uint8Array } | { handle: BufferHandle };

const handle = (workerData as { pool?: PoolHandle } | undefined)?.pool;
const pool = handle !== undefined ? Pool.attach(handle) : undefined;

export default function bodyCrc(task: BodyTask): number {
  if ('body' in task) return crc32(task.body);
  const body = pool!.adopt(task.handle);
  try {
    return crc32(body);
  } finally {
    // The last reference: the block goes back to the pool from this thread.
    pool!.release(body);
  }
}
