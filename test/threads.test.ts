// Shared pools across worker threads: new Pool({ shared: true }),
// pool.handle, Pool.attach(), share() and adopt(), with real
// worker_threads (test/fixtures/shared-worker.js runs in each worker and
// loads the compiled library, dist/, like the fixtures of child processes).
// The cases that end workers abruptly, count /proc and stress many threads
// run in a child process: test/fixtures/threads.js.
//
// Threads: this file's pools are used from the test's thread and from the
// workers it starts.
import { Worker } from 'node:worker_threads';
import * as crypto from 'node:crypto';
import * as os from 'node:os';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, type BufferHandle, type PoolHandle } from '../lib/index.js';
import { fixture, LIB, resultOf, run, runAsync } from './fixture-run.js';

const linux = process.platform === 'linux';

interface Reply {
  seq: number;
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
}

/** A worker attached to a shared pool, driven one command at a time. */
class Remote {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, (r: Reply) => void>();
  #seq = 0;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (r: Reply) => {
      const done = this.#waiting.get(r.seq);
      this.#waiting.delete(r.seq);
      done?.(r);
    });
  }

  static start(handle: PoolHandle): Promise<Remote> {
    const worker = new Worker(fixture('shared-worker.js'), { workerData: { lib: LIB, pool: handle } });
    const remote = new Remote(worker);
    return new Promise((resolve, reject) => {
      remote.#waiting.set(0, (r) => (r.ok ? resolve(remote) : reject(new Error(r.message))));
      worker.once('error', reject);
    });
  }

  /** The command's answer: { ok, value } or { ok: false, code }. */
  attempt(op: string, args?: Record<string, unknown>): Promise<Reply> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#waiting.set(seq, resolve);
      this.#worker.postMessage({ seq, op, args });
    });
  }

  /** The command's value; rejects when it threw in the worker. */
  async call(op: string, args?: Record<string, unknown>): Promise<unknown> {
    const r = await this.attempt(op, args);
    if (!r.ok) throw Object.assign(new Error(`${op}: ${r.code}: ${r.message}`), { code: r.code });
    return r.value;
  }

  /** Resolves with the exit code. */
  exit(): Promise<number> {
    return new Promise((resolve) => this.#worker.once('exit', resolve));
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

const pools: Pool[] = [];
const remotes: Remote[] = [];

function sharedPool(options: ConstructorParameters<typeof Pool>[0] = {}): Pool {
  const pool = new Pool({ shared: true, leakDetection: 'disabled', ...options });
  pools.push(pool);
  return pool;
}

async function attached(pool: Pool): Promise<Remote> {
  const r = await Remote.start(pool.handle);
  remotes.push(r);
  return r;
}

afterEach(async () => {
  await Promise.all(remotes.splice(0).map((r) => r.terminate()));
  for (const p of pools.splice(0)) p.close();
});

describe('new Pool({ shared: true })', () => {
  it('refuses the heap backing and a shared option that is not a boolean', () => {
    expect(() => new Pool({ shared: true, backing: 'heap' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' }));
    expect(() => new Pool({ shared: 1 as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('handle is a plain object that structuredClone() copies as it is', () => {
    const pool = sharedPool();
    const h = pool.handle;
    expect(structuredClone(h)).toEqual(h);
    expect(Object.getPrototypeOf(h)).toBe(Object.prototype);
    expect(pool.stats().attachments).toBe(1);
  });

  it('share(), adopt() and handle throw ERR_INVALID_STATE on a pool that is not shared', () => {
    const pool = new Pool({ leakDetection: 'disabled' });
    pools.push(pool);
    const buf = pool.alloc(8);
    expect(() => pool.share(buf)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    expect(() => pool.handle).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    const other = sharedPool();
    const h = other.share(other.alloc(8));
    expect(() => pool.adopt(h)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  });

  it('in one thread: adopt() gives a second view over the same bytes with the shared reference', () => {
    const pool = sharedPool();
    const buf = pool.alloc(100).fill(1);
    const view = pool.adopt(pool.share(buf));
    expect(view).not.toBe(buf);
    view[5] = 42;
    expect(buf[5]).toBe(42);
    expect(pool.refCount(buf)).toBe(2);
    expect(pool.release(view)).toBe(false);
    expect(pool.release(buf)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('a Buffer handed to a worker thread', () => {
  it('is the same memory: the worker writes what main reads, and a write after adopt() shows on the other side', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(4096).fill(0x11);
    const h = pool.share(buf);
    expect(await remote.call('adopt', { h, name: 'b' })).toEqual({ length: 4096, first: 0x11 });
    await remote.call('fill', { name: 'b', value: 0x22 });
    expect(buf.every((b) => b === 0x22)).toBe(true);
    // No copy: a byte written in main now is what the worker reads next.
    buf[4000] = 0x99;
    expect(await remote.call('read', { name: 'b', at: 4000 })).toBe(0x99);
    // Node's own APIs read the worker's view: the same hash as main's bytes.
    expect(await remote.call('hash', { name: 'b' })).toBe(crypto.createHash('sha256').update(buf).digest('hex'));
    expect(await remote.call('gzip', { name: 'b' })).toBe(true);
  });

  it('counts references exactly across threads: release() in either thread frees at the last one', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(300).fill(3);
    const h = pool.share(buf);
    expect(pool.refCount(buf)).toBe(2);
    await remote.call('adopt', { h, name: 'b' });
    expect(await remote.call('refCount', { name: 'b' })).toBe(2);
    expect(pool.release(buf)).toBe(false);
    expect(await remote.call('refCount', { name: 'b' })).toBe(1);
    expect(pool.stats().liveAllocations).toBe(1);
    expect(await remote.call('release', { name: 'b' })).toBe(true);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(() => pool.refCount(buf)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
  });

  it('a Buffer allocated in the worker is freed in main, and stats() and dump() are the whole pool seen from either thread', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    await remote.call('alloc', { name: 'w', size: 50_000, fill: 0x5a });
    const h = (await remote.call('share', { name: 'w' })) as BufferHandle;
    await remote.call('release', { name: 'w' });
    const view = pool.adopt(h);
    expect(view.length).toBe(50_000);
    expect(view.every((b) => b === 0x5a)).toBe(true);
    const remoteStats = (await remote.call('stats')) as ReturnType<Pool['stats']>;
    expect(remoteStats.liveAllocations).toBe(1);
    expect(remoteStats.attachments).toBe(2);
    expect(pool.stats().usedBytes).toBe(50_000);
    // dump() in main lists the allocation the worker made.
    expect(pool.dump().allocations.map((a) => a.size)).toEqual([50_000]);
    pool.free(view);
    expect(pool.stats().liveAllocations).toBe(0);
    expect((await remote.call('stats') as ReturnType<Pool['stats']>).liveAllocations).toBe(0);
  });

  it('a huge allocation shared and freed in the worker reads as fresh zero pages in main, never a fault', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const big = pool.alloc(3 * 1024 * 1024).fill(0x44);
    await remote.call('adopt', { h: pool.share(big), name: 'big' });
    await remote.call('free', { name: 'big' });
    expect(() => pool.free(big)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
    // POSIX puts fresh zero pages under the retired range at once; Windows
    // cannot replace a view in place and keeps the old bytes until the
    // collector has taken every ArrayBuffer over it (docs/design.md,
    // "Retirement"). Either way the memory is reachable: reading and
    // writing never fault.
    const zeros = big.every((b) => b === 0);
    if (process.platform !== 'win32') expect(big.length === 0 || zeros).toBe(true);
    if (big.length > 0) big[0] = 1;
    expect(big.length === 0 || big[0] === 1).toBe(true);
  });

  it('guard, secure and file-backed shared pools hand Buffers across too', async () => {
    // The file-backed pool's temp file goes in the default directory: under
    // Wine its name stays until the view is unmapped (docs/platforms.md), so
    // a directory of the test's own could not be removed at its end.
    {
      for (const options of [{ guard: true }, { secure: true, chunkSize: 256 * 1024 }, { backing: 'file' as const }]) {
        const pool = sharedPool(options);
        const remote = await attached(pool);
        const buf = pool.alloc(1000).fill(7);
        await remote.call('adopt', { h: pool.share(buf), name: 'b' });
        await remote.call('write', { name: 'b', at: 999, value: 8 });
        expect(buf[999]).toBe(8);
        expect(await remote.call('free', { name: 'b' })).toBeUndefined();
        expect(() => pool.free(buf)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
        await remote.terminate();
        pool.close();
      }
    }
  });
});

describe('handles that must be refused', () => {
  it('a BufferHandle adopted twice: ERR_DOUBLE_FREE, with the count unchanged', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(64);
    const h = pool.share(buf);
    await remote.call('adopt', { h, name: 'b' });
    const again = await remote.attempt('adopt', { h, name: 'c' });
    expect(again).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    expect(() => pool.adopt(h)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
    expect(pool.refCount(buf)).toBe(2);
  });

  it('a stale BufferHandle (its Buffer freed since, the memory reused): ERR_DOUBLE_FREE', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(64);
    const h = pool.share(buf);
    pool.free(buf);
    const reuse = pool.alloc(64);  // most likely the same slot, under another serial
    expect(await remote.attempt('adopt', { h, name: 'b' })).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    expect(pool.refCount(reuse)).toBe(1);
  });

  it('forged BufferHandles: ERR_FOREIGN_BUFFER; malformed ones: ERR_INVALID_ARG_TYPE', async () => {
    const pool = sharedPool();
    const other = sharedPool();
    const buf = pool.alloc(64);
    const h = pool.share(buf);
    const flip = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
    for (const forged of [
      { ...h, check: flip(h.check) },
      { ...h, share: h.share + 1 },
      { ...h, token: flip(h.token) },
      { ...h, pool: h.pool + 1000 },
    ]) {
      expect(() => pool.adopt(forged)).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    }
    expect(() => other.adopt(h)).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    for (const bad of [null, 7, {}, { ...h, check: 'xyz' }, { ...h, type: 'mmap-pool:pool' }]) {
      expect(() => pool.adopt(bad as unknown as BufferHandle)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
    // None of that touched the real share.
    expect(pool.refCount(pool.adopt(h))).toBe(2);
  });

  it('Pool.attach(): a forged handle is ERR_FOREIGN_BUFFER, a pool whose attachments all ended ERR_POOL_CLOSED', async () => {
    const pool = sharedPool();
    const h = pool.handle;
    const flip = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
    expect(() => Pool.attach({ ...h, token: flip(h.token) })).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    expect(() => Pool.attach({ ...h, pool: 1e9 })).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    expect(() => Pool.attach({ type: 'nope' } as unknown as PoolHandle)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const second = Pool.attach(h);
    expect(pool.stats().attachments).toBe(2);
    second.close();
    expect(pool.stats().attachments).toBe(1);
    pool.close();
    expect(() => Pool.attach(h)).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
    expect(() => pool.handle).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
  });
});

describe('attachments', () => {
  it("a worker's close() detaches its own views and ends its attachment; main's views stay", async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(200).fill(9);
    await remote.call('adopt', { h: pool.share(buf), name: 'b' });
    expect(pool.stats().attachments).toBe(2);
    await remote.call('close');
    expect(pool.stats().attachments).toBe(1);
    // The worker's view reads as length 0 now; main's bytes are untouched.
    expect(await remote.attempt('read', { name: 'b', at: 0 })).toMatchObject({ ok: true, value: undefined });
    expect(buf.every((b) => b === 9)).toBe(true);
    // The reference the worker held stays until a thread frees the Buffer.
    expect(pool.refCount(buf)).toBe(2);
    pool.free(buf);
  });

  it('main closing first leaves the memory to the worker still attached; its close() ends the pool', async () => {
    const pool = sharedPool();
    const h = pool.handle;
    const remote = await attached(pool);
    const buf = pool.alloc(20_000).fill(0x6b);
    await remote.call('adopt', { h: pool.share(buf), name: 'b' });
    pool.close();
    expect(buf.length).toBe(0);  // main's own view is detached
    expect(await remote.call('hash', { name: 'b' })).toBe(crypto.createHash('sha256').update(Buffer.alloc(20_000, 0x6b)).digest('hex'));
    expect(await remote.call('alloc', { name: 'more', size: 100_000, fill: 1 })).toBe(100_000);
    const stats = (await remote.call('stats')) as ReturnType<Pool['stats']>;
    expect(stats.attachments).toBe(1);
    expect(stats.liveAllocations).toBe(2);
    const again = Pool.attach(h);  // the pool lives while any thread is attached
    expect(again.stats().attachments).toBe(2);
    again.close();
    await remote.call('close');
    expect(() => Pool.attach(h)).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
  });

  it("a worker that is terminated ends its attachment; main's views keep their bytes", async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(5000).fill(0x31);
    await remote.call('adopt', { h: pool.share(buf), name: 'b' });
    await remote.call('alloc', { name: 'own', size: 100, fill: 1 });
    await remote.terminate();
    expect(pool.stats().attachments).toBe(1);
    expect(buf.every((b) => b === 0x31)).toBe(true);
    expect(pool.release(buf)).toBe(false);
    expect(pool.release(buf)).toBe(true);
  });
});

describe('per-thread block caches', () => {
  it("a worker that allocated and freed through its cache, then was terminated, leaves nothing live: its blocks serve main's allocations", async () => {
    // One chunk's worth of memory in all: main can take 200 blocks of 4 KiB
    // only if the 200 the worker kept went back when it was terminated.
    const pool = sharedPool({ chunkSize: 1024 * 1024, maxBytes: 1024 * 1024 });
    const remote = await attached(pool);
    const cached = (await remote.call('churn', { n: 600, sizes: [4096, 64, 4000], keep: 200 })) as number;
    expect(cached).toBeGreaterThan(0);  // the worker's cache holds free blocks
    const live = pool.stats();
    expect(live.liveAllocations).toBe(200);
    expect(live.usedBytes).toBe(67 * 4096 + 67 * 64 + 66 * 4000);
    await remote.terminate();
    const after = pool.stats();
    expect(after.attachments).toBe(1);
    expect(after.liveAllocations).toBe(0);
    expect(after.usedBytes).toBe(0);
    expect(pool.dump().allocations).toEqual([]);
    const mine: Buffer[] = [];
    for (let i = 0; i < 200; i++) mine.push(pool.alloc(4096).fill(i));
    expect(pool.stats().liveAllocations).toBe(200);
    for (const b of mine) pool.free(b);
    expect(pool.stats().usedBytes).toBe(0);
  });

  it('a Pool collected without close(): its cached blocks go back when none of its Buffers is alive, and stay while one is (child process)', () => {
    const free = run('threads-collected.js', ['free'], { execArgv: ['--expose-gc'], timeout: 30_000 });
    expect(free.stderr).toBe('');
    expect(free.status).toBe(0);
    expect(resultOf(free)).toEqual({ attachments: 1, allocations: 0, liveAllocations: 0, intact: true });
    const keep = run('threads-collected.js', ['keep'], { execArgv: ['--expose-gc'], timeout: 30_000 });
    expect(keep.stderr).toBe('');
    expect(keep.status).toBe(0);
    const r = resultOf<{ attachments: number; allocations: number; liveAllocations: number; intact: boolean }>(keep);
    expect(r.attachments).toBe(1);
    expect(r.allocations).toBeGreaterThan(1);  // the kept block, and the cache's others with it
    expect(r.liveAllocations).toBe(1);
    expect(r.intact).toBe(true);
  });

  it("reset() in main frees main's allocations but not a block the worker's cache handed out: the worker's Buffer keeps its bytes", async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    await remote.call('alloc', { name: 'w', size: 64, fill: 7 });
    pool.alloc(64);
    pool.alloc(100_000);
    pool.reset();
    expect(await remote.call('refCount', { name: 'w' })).toBe(1);
    const mine: Buffer[] = [];
    for (let i = 0; i < 50; i++) mine.push(pool.alloc(64).fill(0xee));
    expect(await remote.call('read', { name: 'w', at: 63 })).toBe(7);
    const s = pool.stats();
    expect([s.liveAllocations, s.usedBytes]).toEqual([51, 51 * 64]);
    await remote.call('free', { name: 'w' });
    for (const b of mine) pool.free(b);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('stats().usedBytes and liveAllocations are exact across threads after frees in each', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const both = async (): Promise<[number, number][]> => {
      const w = (await remote.call('stats')) as ReturnType<Pool['stats']>;
      const m = pool.stats();
      return [[m.liveAllocations, m.usedBytes], [w.liveAllocations, w.usedBytes]];
    };
    const a = pool.alloc(100);
    const b = pool.alloc(5000);
    await remote.call('alloc', { name: 'x', size: 64 });
    await remote.call('alloc', { name: 'y', size: 20_000 });
    expect(await both()).toEqual([[4, 25_164], [4, 25_164]]);
    // main's b to the worker, freed there; the worker's y to main, freed here.
    await remote.call('adopt', { h: pool.share(b), name: 'b' });
    pool.release(b);
    const y = pool.adopt((await remote.call('share', { name: 'y' })) as BufferHandle);
    await remote.call('release', { name: 'y' });
    expect(await both()).toEqual([[4, 25_164], [4, 25_164]]);
    await remote.call('free', { name: 'b' });
    pool.free(y);
    expect(await both()).toEqual([[2, 164], [2, 164]]);
    pool.free(a);
    await remote.call('free', { name: 'x' });
    expect(await both()).toEqual([[0, 0], [0, 0]]);
    const s = pool.stats();
    expect([s.totalAllocations, s.totalFrees]).toEqual([4, 4]);
  });

  it('share() of a cached block, freed in the other thread: the stale view in the first is refused, and the newer owner keeps its memory', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const buf = pool.alloc(64).fill(5);
    expect(pool.stats().cachedBytes).toBeGreaterThan(0);  // it came from main's cache
    await remote.call('adopt', { h: pool.share(buf), name: 'b' });
    pool.release(buf);
    await remote.call('free', { name: 'b' });
    // The worker's cache may take that very slot again.
    for (let i = 0; i < 8; i++) await remote.call('alloc', { name: `n${i}`, size: 64, fill: i });
    expect(() => pool.free(buf)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
    expect(() => pool.release(buf)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
    expect(() => pool.share(buf)).toThrow(expect.objectContaining({ code: 'ERR_DOUBLE_FREE' }));
    for (let i = 0; i < 8; i++) {
      expect(await remote.call('refCount', { name: `n${i}` })).toBe(1);
      expect(await remote.call('read', { name: `n${i}`, at: 63 })).toBe(i);
    }
    expect(pool.stats().liveAllocations).toBe(8);
  });
});

describe('deferred frees (a Buffer adopted as its only reference)', () => {
  /** `n` allocations of 64 B made in main, each handed to the worker as its only reference; main keeps its stale views. */
  async function handOver(pool: Pool, remote: Remote, n: number): Promise<Buffer[]> {
    const stale: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const b = pool.alloc(64).fill(i);
      const h = pool.share(b);
      pool.release(b);
      stale.push(b);
      await remote.call('adopt', { h, name: `a${i}` });
    }
    return stale;
  }

  const doubleFree = expect.objectContaining({ code: 'ERR_DOUBLE_FREE' });

  it('free() in the worker is counted at once in every thread; the allocator gets it with the batch, and a second free is ERR_DOUBLE_FREE', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const stale = await handOver(pool, remote, 10);
    for (let i = 0; i < 10; i++) await remote.call('free', { name: `a${i}` });
    const s = pool.stats();
    expect([s.liveAllocations, s.usedBytes, s.totalFrees]).toEqual([0, 0, s.totalAllocations]);
    // Not given back yet: the allocations still live (main's stale views name them).
    expect(pool.refCount(stale[0])).toBe(1);
    expect(await remote.attempt('free', { name: 'a0' })).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    expect(await remote.attempt('release', { name: 'a1' })).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    expect(await remote.attempt('refCount', { name: 'a2' })).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    expect(await remote.attempt('share', { name: 'a3' })).toMatchObject({ ok: false, code: 'ERR_DOUBLE_FREE' });
    // The worker's stats() gives its batch back first.
    await remote.call('stats');
    for (const b of stale) expect(() => pool.refCount(b)).toThrow(doubleFree);
    pool.trim();  // main's own cache's blocks go back too
    expect(pool.dump().allocations).toEqual([]);
    expect(pool.stats().usedBytes).toBe(0);
  });

  it('release() of the only reference is deferred the same way; retain() or share() first makes it a reference like any other', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const stale = await handOver(pool, remote, 3);
    expect(await remote.call('release', { name: 'a0' })).toBe(true);
    expect(pool.refCount(stale[0])).toBe(1);  // deferred
    // a1 shared: two references, so the worker's release() only drops its own.
    const back = pool.adopt(await remote.call('share', { name: 'a1' }) as BufferHandle);
    expect(await remote.call('release', { name: 'a1' })).toBe(false);
    expect(pool.refCount(back)).toBe(1);
    expect(pool.release(back)).toBe(true);  // adopted with another reference out: freed now, not deferred
    expect(() => pool.refCount(stale[1])).toThrow(doubleFree);
    await remote.call('free', { name: 'a2' });
    await remote.call('stats');
    expect(() => pool.refCount(stale[0])).toThrow(doubleFree);
    expect(() => pool.refCount(stale[2])).toThrow(doubleFree);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it("another shared pool's Buffer, adopted as the only reference there, is still ERR_FOREIGN_BUFFER here, never deferred", () => {
    const a = sharedPool({ name: 'a' });
    const b = sharedPool({ name: 'b' });
    const x = a.alloc(64).fill(3);
    const h = a.share(x);
    a.release(x);
    const v = a.adopt(h);  // a's only reference: its free would be deferred in a
    b.free(b.alloc(64));  // b has a chunk with the same id, and serials from the same start
    expect(() => b.free(v)).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    expect(() => b.release(v)).toThrow(expect.objectContaining({ code: 'ERR_FOREIGN_BUFFER' }));
    expect(a.refCount(v)).toBe(1);
    expect(v[63]).toBe(3);
    a.free(v);
    expect(a.stats().liveAllocations).toBe(0);
  });

  it('a batch not full goes back by itself within a moment, with no call to the pool', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const stale = await handOver(pool, remote, 2);
    await remote.call('free', { name: 'a0' });
    expect(pool.refCount(stale[0])).toBe(1);
    let back = false;
    for (let waited = 0; waited < 5000 && !back; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      back = !pool.owns(stale[0]);
    }
    expect(back).toBe(true);
    expect(pool.refCount(stale[1])).toBe(1);  // never freed: untouched
  });

  it('a worker terminated with frees waiting: they are given back all the same, and nothing is left', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    const stale = await handOver(pool, remote, 20);
    for (let i = 0; i < 20; i++) await remote.call('free', { name: `a${i}` });
    expect(pool.refCount(stale[19])).toBe(1);
    await remote.terminate();
    for (const b of stale) expect(() => pool.refCount(b)).toThrow(doubleFree);
    pool.trim();  // main's own cache's blocks go back too
    expect(pool.dump().allocations).toEqual([]);
    const s = pool.stats();
    expect([s.attachments, s.liveAllocations, s.usedBytes]).toEqual([1, 0, 0]);
  });

  it('a stale view freed in another thread while the batch waits (a double free): counts stay exact, and a MMAP_POOL_DOUBLE_FREE warning says so', async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    await remote.call('alloc', { name: 'b', size: 64, fill: 1 });
    const h = await remote.call('share', { name: 'b' });
    expect(await remote.call('release', { name: 'b' })).toBe(false);  // the worker keeps a stale view
    const mine = pool.adopt(h as BufferHandle);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    pool.free(mine);  // deferred
    await remote.call('free', { name: 'b' });  // the stale view: the allocation still lives, so this frees it
    const s = pool.stats();  // main's batch goes back: its entry is refused and counted back
    expect([s.liveAllocations, s.usedBytes, s.totalFrees]).toEqual([0, 0, s.totalAllocations]);
    expect(await warned).toMatchObject({ code: 'MMAP_POOL_DOUBLE_FREE' });
    pool.trim();  // main's own cache's blocks go back too
    expect(pool.dump().allocations).toEqual([]);
  });

  it("reset() in main while the worker's batch waits: counts exact once it goes back, and no warning", async () => {
    const pool = sharedPool();
    const remote = await attached(pool);
    await handOver(pool, remote, 5);
    for (let i = 0; i < 5; i++) await remote.call('free', { name: `a${i}` });
    pool.alloc(100_000);
    pool.reset();
    let warnings = 0;
    const count = (): void => void warnings++;
    process.on('warning', count);
    try {
      await remote.call('stats');  // the worker's batch goes back: all refused (the reset freed them)
      const s = pool.stats();
      expect([s.liveAllocations, s.usedBytes, s.totalFrees]).toEqual([0, 0, s.totalAllocations]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toBe(0);
    } finally {
      process.off('warning', count);
    }
  });
});

describe.runIf(linux)('threads ending abruptly, and what is left (child process; Linux: reads /proc)', () => {
  /** fds, mapping lines, and `pool`: mappings of the sizes the fixture's pool maps. */
  interface Snapshot {
    fds: number;
    maps: number;
    pool: number;
  }

  // Every mapping of the pool gone, no fd left; threads leave lines of their
  // own behind: glibc keeps the heaps it made for threads (up to 8 per core,
  // two lines each: the part in use and the reserve), as in
  // test/lifecycle.test.ts. Under QEMU more of them stay than natively.
  const threadHeapLines = 2 * 8 * os.availableParallelism() + 8;
  const expectNothingLeft = (res: Result): void => {
    expect(res.open.pool).toBeGreaterThan(res.before.pool);
    expect(res.after.pool).toBe(res.before.pool);
    expect(res.after.fds).toBe(res.before.fds);
    expect(res.after.maps - res.before.maps).toBeLessThanOrEqual(threadHeapLines);
  };

  interface Result {
    codes: number[];
    intact: boolean;
    attachments: number;
    before: Snapshot;
    open: Snapshot;
    after: Snapshot;
    errors: string[];
    exchanged?: number;
    terminated?: number;
  }

  it('worker.terminate() x30 in the middle of shared-pool calls: no crash, main\'s views intact, nothing left after close()', async () => {
    const r = await runAsync('threads.js', ['terminate-busy', '30'], { execArgv: ['--expose-gc'], timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const res = resultOf<Result>(r);
    expect(res.codes).toEqual(new Array(30).fill(1));
    expect(res.intact).toBe(true);
    expect(res.attachments).toBe(1);
    expectNothingLeft(res);
  });

  it('several workers exchanging Buffers at random, writing and checking patterns, freeing in the other thread, some terminated', async () => {
    const r = await runAsync('threads.js', ['stress', '4'], { execArgv: ['--expose-gc'], timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const res = resultOf<Result>(r);
    expect(res.errors).toEqual([]);
    expect(res.exchanged).toBeGreaterThanOrEqual(3000);
    expect(res.terminated).toBeGreaterThanOrEqual(8);
    expect(res.intact).toBe(true);
    expect(res.attachments).toBe(1);
    expectNothingLeft(res);
  });
});
