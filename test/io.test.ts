// Pool memory in Node I/O: collect() of streams and HTTP request bodies,
// readFile() of paths and FileHandles, onread() for net.Socket, and
// releaseAfter() for responses, over real sockets, files and HTTP on
// loopback. Every failure path must leave nothing allocated.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';

import { PoolError, type Pool } from '../lib/index.js';
import { expectThrow, KiB, make, MiB } from './helpers.js';

const live = (pool: Pool): number => pool.stats().liveAllocations;

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** An HTTP server on loopback whose handler is `handle`; closed by the caller. */
async function serve(handle: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** POSTs `body` to the server and resolves with the response body. */
async function post(port: number, body: Buffer, headers: Record<string, string> = {}): Promise<Buffer> {
  const req = http.request({ host: '127.0.0.1', port, agent: false, method: 'POST', headers: { 'content-length': String(body.length), ...headers } });
  req.end(body);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('collect(source)', () => {
  it('an HTTP request body, sized by Content-Length: one pool Buffer with every byte, exactly as long', async () => {
    const pool = make({ name: 'collect-http' });
    const body = randomBytes(300 * KiB);
    let got: Buffer | undefined;
    const { server, port } = await serve(async (req, res) => {
      got = await pool.collect(req, { sizeHint: Number(req.headers['content-length']) });
      res.end('ok');
    });
    try {
      expect((await post(port, body)).toString()).toBe('ok');
    } finally {
      server.close();
    }
    expect(got?.equals(body)).toBe(true);
    expect(got?.length).toBe(body.length);
    expect(pool.owns(got)).toBe(true);
    expect(live(pool)).toBe(1);
    pool.free(got as Buffer);
    expect(live(pool)).toBe(0);
  });

  it('without a size hint: it grows by doubling, frees what it outgrew, and ends with the exact length', async () => {
    const pool = make({ name: 'collect-grow' });
    const chunks = Array.from({ length: 40 }, (_, i) => randomBytes(7 * KiB + i));
    const buf = await pool.collect(Readable.from(chunks));
    expect(buf.equals(Buffer.concat(chunks))).toBe(true);
    expect(live(pool)).toBe(1);
    expect(pool.stats().totalAllocations).toBeGreaterThan(2);  // it grew
    pool.free(buf);
  });

  it('an async generator, an empty source (a 0-byte Buffer the pool can free) and a wrong size hint', async () => {
    const pool = make({ name: 'collect-misc' });
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2, 3]);
      yield Buffer.from([4, 5]);
    }
    const a = await pool.collect(gen(), { sizeHint: 1 });
    expect([...a]).toEqual([1, 2, 3, 4, 5]);
    const empty = await pool.collect(Readable.from([]));
    expect(empty.length).toBe(0);
    const b = await pool.collect(gen(), { sizeHint: 1000 });
    expect([...b]).toEqual([1, 2, 3, 4, 5]);
    expect(live(pool)).toBe(3);
    for (const x of [a, empty, b]) pool.free(x);
    expect(live(pool)).toBe(0);
  });

  it('past `limit`: RangeError ERR_OUT_OF_RANGE, nothing allocated, and the source destroyed', async () => {
    const pool = make({ name: 'collect-limit' });
    const source = Readable.from(Array.from({ length: 10 }, () => randomBytes(64 * KiB)), { objectMode: false });
    const err = await rejection(pool.collect(source, { limit: 200 * KiB }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.code).toBe('ERR_OUT_OF_RANGE');
    expect(live(pool)).toBe(0);
    expect(source.destroyed).toBe(true);
  });

  it("the source's own error is rethrown, with nothing allocated", async () => {
    const pool = make({ name: 'collect-error' });
    const boom = new Error('source failed');
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield randomBytes(100 * KiB);
      throw boom;
    }
    expect(await rejection(pool.collect(gen()))).toBe(boom);
    expect(live(pool)).toBe(0);
  });

  it('an abort while the source is quiet: an AbortError (ABORT_ERR, the reason as cause), nothing allocated, the stream destroyed', async () => {
    const pool = make({ name: 'collect-abort' });
    const source = new PassThrough();
    source.write(randomBytes(10 * KiB));
    const ac = new AbortController();
    const p = pool.collect(source, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    const reason = new Error('client went away');
    ac.abort(reason);
    const err = await rejection(p);
    expect(err.name).toBe('AbortError');
    expect(err.code).toBe('ABORT_ERR');
    expect(err.cause).toBe(reason);
    expect(live(pool)).toBe(0);
    expect(source.destroyed).toBe(true);
  });

  it('an already aborted signal rejects before anything is read or allocated', async () => {
    const pool = make({ name: 'collect-aborted' });
    const source = Readable.from([Buffer.from('x')]);
    const err = await rejection(pool.collect(source, { signal: AbortSignal.abort() }));
    expect(err.name).toBe('AbortError');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it('bad arguments and chunks that are not bytes: coded errors, nothing allocated', async () => {
    const pool = make({ name: 'collect-args' });
    const e1 = await rejection(pool.collect(42 as never));
    expect([e1.constructor, e1.code]).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE']);
    const e2 = await rejection(pool.collect(Readable.from([]), { limit: -1 }));
    expect([e2.constructor, e2.code]).toEqual([RangeError, 'ERR_OUT_OF_RANGE']);
    const e3 = await rejection(pool.collect(Readable.from([]), { signal: {} as AbortSignal }));
    expect(e3.code).toBe('ERR_INVALID_ARG_TYPE');
    const e4 = await rejection(pool.collect(Readable.from([Buffer.from('ab'), 'text'])));
    expect([e4.constructor, e4.code]).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE']);
    expect(live(pool)).toBe(0);
  });

  it('a closed pool rejects with ERR_POOL_CLOSED', async () => {
    const pool = make({ name: 'collect-closed' });
    pool.close();
    const err = await rejection(pool.collect(Readable.from([Buffer.from('x')])));
    expect(err).toBeInstanceOf(PoolError);
    expect(err.code).toBe('ERR_POOL_CLOSED');
  });
});

describe('readFile(file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mmap-pool-io-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a path: the whole file in one pool Buffer of its size', async () => {
    const pool = make({ name: 'read-path' });
    const bytes = randomBytes(MiB + 123);
    const file = path.join(dir, 'one.bin');
    writeFileSync(file, bytes);
    const buf = await pool.readFile(file);
    expect(buf.equals(bytes)).toBe(true);
    expect(pool.owns(buf)).toBe(true);
    expect(live(pool)).toBe(1);
    pool.free(buf);
  });

  it('a FileHandle: read from its current position, and left open', async () => {
    const pool = make({ name: 'read-handle' });
    const bytes = randomBytes(200 * KiB);
    const file = path.join(dir, 'two.bin');
    writeFileSync(file, bytes);
    const fh = await open(file, 'r');
    try {
      await fh.read(Buffer.alloc(1000), 0, 1000, null);
      const buf = await pool.readFile(fh);
      expect(buf.equals(bytes.subarray(1000))).toBe(true);
      expect((await fh.stat()).size).toBe(bytes.length);  // still open
      pool.free(buf);
    } finally {
      await fh.close();
    }
  });

  it.runIf(process.platform === 'linux')('a file that reports size 0 (/proc/self/cmdline) is read to its end', async () => {
    const pool = make({ name: 'read-proc' });
    const buf = await pool.readFile('/proc/self/cmdline');
    expect(buf.length).toBeGreaterThan(0);
    expect(buf.toString('latin1')).toContain('node');
    expect(live(pool)).toBe(1);
    pool.free(buf);
  });

  it("an empty file: a 0-byte Buffer; Node's own errors (ENOENT, EISDIR) with nothing allocated", async () => {
    const pool = make({ name: 'read-errors' });
    const empty = path.join(dir, 'empty.bin');
    writeFileSync(empty, '');
    const e = await pool.readFile(empty);
    expect(e.length).toBe(0);
    pool.free(e);
    const missing = await rejection(pool.readFile(path.join(dir, 'missing')));
    expect(missing.code).toBe('ENOENT');
    const isDir = await rejection(pool.readFile(dir));
    expect(isDir.code).toBe('EISDIR');
    expect(live(pool)).toBe(0);
  });

  it('a close that fails after every byte was read: the close error, and nothing allocated', async () => {
    const pool = make({ name: 'read-close' });
    const file = path.join(dir, 'close.bin');
    writeFileSync(file, randomBytes(8 * KiB));
    // fs.promises.open as readFile() sees it (a builtin's ESM bindings follow
    // its exports after syncBuiltinESMExports()), with handles whose close()
    // closes and then fails.
    const fsp = require('node:fs/promises') as { open: typeof open };
    const realOpen = fsp.open;
    fsp.open = (async (...args: Parameters<typeof open>) => {
      const fh = await realOpen(...args);
      const close = fh.close.bind(fh);
      fh.close = async (): Promise<void> => {
        await close();
        throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
      };
      return fh;
    }) as typeof open;
    syncBuiltinESMExports();
    try {
      expect((await rejection(pool.readFile(file))).code).toBe('EIO');
    } finally {
      fsp.open = realOpen;
      syncBuiltinESMExports();
    }
    expect(live(pool)).toBe(0);
  });

  it('an abort: an AbortError, nothing allocated; bad arguments are coded errors', async () => {
    const pool = make({ name: 'read-abort' });
    const file = path.join(dir, 'three.bin');
    writeFileSync(file, randomBytes(64 * KiB));
    const ac = new AbortController();
    const p = pool.readFile(file, { signal: ac.signal });
    ac.abort();
    expect((await rejection(p)).name).toBe('AbortError');
    expect((await rejection(pool.readFile(file, { signal: AbortSignal.abort() }))).code).toBe('ABORT_ERR');
    expect((await rejection(pool.readFile(42 as never))).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(live(pool)).toBe(0);
  });
});

/** A TCP server on loopback that writes `data` to each client in `pieces` writes and ends. */
async function sender(data: Buffer, pieces: number): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});  // a client that stops reading (the exhausted pool) resets it
    const step = Math.ceil(data.length / pieces);
    for (let o = 0; o < data.length; o += step) socket.write(data.subarray(o, o + step));
    socket.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

describe('onread(size, callback)', () => {
  it('every read lands in a fresh pool Buffer the callback owns; the one still pending is freed at close', async () => {
    const pool = make({ name: 'onread' });
    const data = randomBytes(2 * MiB);
    const { server, port } = await sender(data, 64);
    const parts: Buffer[] = [];
    const seen = new Set<Buffer>();
    let foreign = 0;
    try {
      const socket = net.connect({
        host: '127.0.0.1', port,
        onread: pool.onread(16 * KiB, (nread, buf) => {
          if (!pool.owns(buf) || buf.length !== 16 * KiB) foreign++;
          seen.add(buf);
          parts.push(Buffer.from(buf.subarray(0, nread)));
          pool.free(buf);
        }),
      });
      await once(socket, 'close');
    } finally {
      server.close();
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(foreign).toBe(0);
    expect(seen.size).toBe(parts.length);  // never the same Buffer twice
    expect(live(pool)).toBe(0);
  });

  it('a socket that closes before its first read: reader.release() on close frees the pending Buffer', async () => {
    const pool = make({ name: 'onread-early' });
    const server = net.createServer((socket) => socket.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const reader = pool.onread(4 * KiB, () => {
        throw new Error('no read expected');
      });
      const socket = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, onread: reader });
      socket.on('error', () => {});
      socket.on('close', () => reader.release());
      await once(socket, 'close');
      expect(live(pool)).toBe(0);
      reader.release();  // idempotent
    } finally {
      server.close();
    }
  });

  it('a pool that runs out mid-stream ends the socket with ERR_POOL_EXHAUSTED (its error event), never the process', async () => {
    const pool = make({ name: 'onread-full', maxBytes: 1 * MiB, chunkSize: 1 * MiB, hugeThreshold: 256 * KiB });
    const { server, port } = await sender(randomBytes(4 * MiB), 256);
    const kept: Buffer[] = [];
    try {
      const socket = net.connect({ host: '127.0.0.1', port, onread: pool.onread(200 * KiB, (_n, buf) => void kept.push(buf)) });
      const [err] = (await once(socket, 'error')) as [Error & { code?: string }];
      expect(err).toBeInstanceOf(PoolError);
      expect(err.code).toBe('ERR_POOL_EXHAUSTED');
      for (const b of kept) expect(pool.owns(b)).toBe(true);
    } finally {
      server.close();
    }
    for (const b of kept) pool.free(b);
  });

  it('bad arguments: coded errors', () => {
    const pool = make({ name: 'onread-args' });
    expectThrow(() => pool.onread(0, () => {}), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => pool.onread('1' as never, () => {}), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectThrow(() => pool.onread(10, undefined as never), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

describe('releaseAfter(stream, buf)', () => {
  it('a response written with res.end(buf): the Buffer goes back once the response is done', async () => {
    const pool = make({ name: 'release-after' });
    const bodies: Buffer[] = [];
    const { server, port } = await serve(async (req, res) => {
      const body = await pool.collect(req);
      const out = pool.allocUnsafe(body.length);
      for (let i = 0; i < body.length; i++) out[i] = body[i] ^ 0xff;
      pool.free(body);
      pool.releaseAfter(res, out);
      res.end(out);
    });
    try {
      for (let i = 0; i < 5; i++) bodies.push(await post(port, Buffer.alloc(64 * KiB, i)));
    } finally {
      server.close();
    }
    bodies.forEach((b, i) => expect(b.equals(Buffer.alloc(64 * KiB, i ^ 0xff))).toBe(true));
    await new Promise((r) => setImmediate(r));
    expect(live(pool)).toBe(0);
  });

  it("a client that went away before the response: released all the same (a write callback would never fire)", async () => {
    const pool = make({ name: 'release-gone' });
    let handled!: () => void;
    const done = new Promise<void>((r) => {
      handled = r;
    });
    const { server, port } = await serve((req, res) => {
      const buf = pool.allocUnsafe(256 * KiB);
      pool.releaseAfter(res, buf);
      req.socket.destroy();  // the client has gone
      setTimeout(() => {
        res.end(buf);
        handled();
      }, 50);
    });
    try {
      const req = http.request({ host: '127.0.0.1', port, agent: false, method: 'GET' });
      req.on('error', () => {});
      req.end();
      await done;
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      server.close();
    }
    expect(live(pool)).toBe(0);
  });

  it('a response already closed when releaseAfter() is called: released at once, not held for a close that has passed', async () => {
    const pool = make({ name: 'release-closed-res' });
    let handled!: (n: number) => void;
    const done = new Promise<number>((r) => {
      handled = r;
    });
    const { server, port } = await serve((req, res) => {
      res.once('close', () => {
        const buf = pool.allocUnsafe(1 * KiB);
        pool.retain(buf);
        pool.releaseAfter(res, buf);  // one reference of two
        setImmediate(() => {
          handled(pool.refCount(buf));
          pool.release(buf);
        });
      });
      req.socket.destroy();
    });
    try {
      const req = http.request({ host: '127.0.0.1', port, agent: false, method: 'GET' });
      req.on('error', () => {});
      req.end();
      expect(await done, 'releaseAfter() gave back its one reference').toBe(1);
    } finally {
      server.close();
    }
    expect(live(pool)).toBe(0);
  });

  it('a pool closed before the stream is done: no uncaught exception; bad arguments and foreign Buffers are refused at once', async () => {
    const pool = make({ name: 'release-closed' });
    const stream = new PassThrough();
    pool.releaseAfter(stream, pool.allocUnsafe(100));
    pool.close();
    stream.destroy();
    await new Promise((r) => setImmediate(r));
    const other = make({ name: 'release-args' });
    expectThrow(() => other.releaseAfter({} as never, other.allocUnsafe(10)), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectThrow(() => other.releaseAfter(new PassThrough(), Buffer.alloc(10)), PoolError, 'ERR_FOREIGN_BUFFER');
  });
});
