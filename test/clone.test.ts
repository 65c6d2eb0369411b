// What a clone of a pool Buffer carries: structuredClone(), a
// MessageChannel's postMessage() and a worker thread's postMessage() copy
// the whole ArrayBuffer a view is over. A `secure: true` allocation has an
// ArrayBuffer of its own, so a clone holds its bytes and nothing else; in
// other pools it is the whole chunk, and a copy of the bytes (slice) is the
// way to send only them.
import { MessageChannel, Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { KiB, make } from './helpers.js';

/** A worker that answers each message (a Uint8Array) with the ArrayBuffer it received. */
const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (view) => parentPort.postMessage({ byteLength: view.buffer.byteLength, buffer: view.buffer }));
`;

async function viaChannel(view: Uint8Array): Promise<Uint8Array> {
  const { port1, port2 } = new MessageChannel();
  try {
    const got = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
    port1.postMessage(view);
    return await got;
  } finally {
    port1.close();
    port2.close();
  }
}

async function viaWorker(view: Uint8Array): Promise<{ byteLength: number; buffer: ArrayBuffer }> {
  const worker = new Worker(ECHO, { eval: true });
  try {
    const got = new Promise<{ byteLength: number; buffer: ArrayBuffer }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    worker.postMessage(view);
    return await got;
  } finally {
    await worker.terminate();
  }
}

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

// 256 KiB chunks (the locked total stays small) and so a 256 KiB huge threshold.
const SIZES: [string, number][] = [['40 B', 40], ['5000 B', 5000], ['100 KiB', 100 * KiB], ['300 KiB (huge)', 300 * KiB]];

describe.each(['anonymous', 'file'] as const)("a secure allocation's clones carry its bytes only (backing '%s')", (backing) => {
  it.each(SIZES)('%s: buf.buffer, structuredClone(), MessageChannel and Worker postMessage() hold exactly its bytes', async (_label, size) => {
    const pool = make({ secure: true, backing, chunkSize: 256 * KiB, name: 'secure-clone' });
    const before = pool.allocUnsafe(size).fill(0x11);
    const buf = pool.allocUnsafe(size);
    const after = pool.allocUnsafe(size).fill(0x22);
    const bytes = pattern(size);
    buf.set(bytes);

    expect(buf.buffer.byteLength).toBe(size);
    expect(buf.byteOffset).toBe(0);
    expect(buf.buffer).not.toBe(before.buffer);
    expect(buf.buffer).not.toBe(after.buffer);

    const cloned = structuredClone(buf);
    expect(cloned.buffer.byteLength).toBe(size);
    expect(Buffer.from(cloned.buffer).equals(bytes)).toBe(true);

    const received = await viaChannel(buf);
    expect(received.buffer.byteLength).toBe(size);
    expect(Buffer.from(received.buffer).equals(bytes)).toBe(true);

    const echoed = await viaWorker(buf);
    expect(echoed.byteLength, 'the ArrayBuffer the worker received').toBe(size);
    expect(Buffer.from(echoed.buffer).equals(bytes)).toBe(true);

    // Freed: its own ArrayBuffer is detached, nothing reaches the bytes through it.
    pool.free(buf);
    expect(buf.length).toBe(0);
    expect(buf.buffer.byteLength).toBe(0);
    expect(before.every((b) => b === 0x11) && after.every((b) => b === 0x22)).toBe(true);
    pool.free(before);
    pool.free(after);
  });

  it('from(), allocTyped() and release() in a secure pool: own ArrayBuffers too, detached at the last release', () => {
    const pool = make({ secure: true, backing, chunkSize: 256 * KiB });
    const text = pool.from('correct horse battery staple');
    expect(text.buffer.byteLength).toBe(text.length);
    const floats = pool.allocTyped(Float64Array, 10);
    expect(floats.buffer.byteLength).toBe(80);
    expect(structuredClone(floats).buffer.byteLength).toBe(80);
    pool.retain(text);
    expect(pool.release(text)).toBe(false);
    expect(text.length).toBe(28);
    expect(pool.release(text)).toBe(true);
    expect(text.length).toBe(0);
    pool.free(floats);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('clones of Buffers from other pools', () => {
  it("carry the whole chunk (as Node's own pooled Buffers carry their 8 KiB pool); a slice() copy carries only the bytes", async () => {
    const pool = make({ chunkSize: 256 * KiB });
    const neighbour = pool.alloc(64).fill(0x5a);
    const buf = pool.from('just these bytes');
    expect(structuredClone(buf).buffer.byteLength).toBe(256 * KiB);
    const copy = Uint8Array.prototype.slice.call(buf);
    const sent = await viaChannel(copy);
    expect(sent.buffer.byteLength).toBe(buf.length);
    expect(Buffer.from(sent.buffer).toString()).toBe('just these bytes');
    pool.free(buf);
    pool.free(neighbour);
  });
});
