// Guarded pools (`guard: true`): every allocation is an ArrayBuffer of its
// own, detached when the memory goes back, so a Buffer kept past free(),
// reset() or close() reads as empty instead of seeing someone else's bytes.
import { MessageChannel } from 'node:worker_threads';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, expectThrow } from './helpers.js';

const pools: Pool[] = [];
function make(options?: PoolOptions): Pool {
  const pool = new Pool(options);
  pools.push(pool);
  return pool;
}
function guarded(options?: PoolOptions): Pool {
  return make({ guard: true, name: 'guarded', ...options });
}
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

/** Asserts everything a detached (given back) view must look like. */
function expectDetached(view: ArrayBufferView): void {
  expect(view.buffer.byteLength).toBe(0);
  if (view instanceof DataView) {
    // A DataView over a detached ArrayBuffer throws on every access.
    expect(() => view.byteLength).toThrow(TypeError);
    expect(() => view.getUint8(0)).toThrow(TypeError);
    return;
  }
  expect(view.byteLength).toBe(0);
  const arr = view as unknown as { length: number; [i: number]: unknown };
  expect(arr.length).toBe(0);
  expect(arr[0]).toBeUndefined();
}

/** "segment:offset" of the allocations the pool's dump lists. */
function slots(pool: Pool): Map<string, { offset: number; size: number }> {
  return new Map(pool.dump().allocations.map((a) => [`${a.segment}:${a.offset}`, a]));
}

/** The dump key of the one allocation `make` adds to the pool. */
function blockOf(pool: Pool, fn: () => unknown): string {
  const before = slots(pool);
  fn();
  const added = [...slots(pool).keys()].filter((k) => !before.has(k));
  expect(added.length, 'exactly one new allocation in the dump').toBe(1);
  return added[0]!;
}

const SIZES: [string, number][] = [
  ['empty (0 B)', 0],
  ['small (1 B)', 1],
  ['small (40 B)', 40],
  ['small (5000 B)', 5000],
  ['large (100 KiB)', 100 * KiB],
  ['huge (2 MiB + 1)', 2 * MiB + 1],
];

describe('guard: true gives every allocation an ArrayBuffer of its own', () => {
  it.each(SIZES)('alloc() and allocUnsafe() of a %s buffer: buf.buffer is exactly the buffer, at byteOffset 0', (_label, size) => {
    const pool = guarded();
    for (const buf of [pool.alloc(size), pool.allocUnsafe(size)]) {
      expect(buf.length).toBe(size);
      expect(buf.byteOffset).toBe(0);
      expect(buf.buffer.byteLength).toBe(buf.length);
    }
  });

  it('different allocations never share an ArrayBuffer, even in the same slab', () => {
    const pool = guarded();
    const bufs = [...Array(64).keys()].map((i) => pool.allocUnsafe(16 + (i % 3)).fill(i));
    expect(new Set(bufs.map((b) => b.buffer)).size).toBe(bufs.length);
    bufs.forEach((b, i) => expect(b.every((x) => x === i)).toBe(true));
    expect(pool.stats().guard).toBe(true);
  });
});

describe('free() in a guarded pool', () => {
  it.each(SIZES.filter(([, s]) => s > 0))('free() of a %s buffer gives the memory back and detaches the view', (_label, size) => {
    const pool = guarded();
    const buf = pool.alloc(size).fill(0x41);
    expect(pool.stats().liveAllocations).toBe(1);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().usedBytes).toBe(0);
    expectDetached(buf);
    expect(pool.owns(buf)).toBe(false);
  });

  it('a freed Buffer reads as length 0: index reads give undefined, readUInt8(0) throws RangeError', () => {
    const pool = guarded();
    const buf = pool.from('guarded bytes');
    pool.free(buf);
    expect(buf.length).toBe(0);
    expect(buf[0]).toBeUndefined();
    expect(buf[5]).toBeUndefined();
    expect(() => buf.readUInt8(0)).toThrow(RangeError);
    expect(() => buf.readUInt32LE(0)).toThrow(RangeError);
    expect(buf.toString()).toBe('');
  });

  it('writes through a freed Buffer are dropped and do not reach the allocation that reuses its slot', () => {
    const pool = guarded();
    const other = pool.alloc(64).fill(0x5b);
    let stale!: Buffer;
    const staleSlot = blockOf(pool, () => (stale = pool.alloc(64).fill(0x11)));
    pool.free(stale);
    let next!: Buffer;
    const nextSlot = blockOf(pool, () => (next = pool.alloc(64)));
    expect(nextSlot, 'the freed slot is reused (precondition)').toBe(staleSlot);
    stale[0] = 1;
    stale[63] = 2;
    expect(() => stale.writeUInt8(1, 0)).toThrow(RangeError);
    expect(() => stale.fill(0xee)).toThrow(TypeError);  // V8: no fill() on a detached ArrayBuffer
    expect(stale[0]).toBeUndefined();
    expect(stale.length).toBe(0);
    expect(next.every((b) => b === 0)).toBe(true);
    expect(other.every((b) => b === 0x5b)).toBe(true);
  });

  it('free() twice throws ERR_DOUBLE_FREE, as do retain(), release() and refCount() of the freed Buffer', () => {
    const pool = guarded();
    const buf = pool.alloc(100);
    const keep = pool.alloc(100).fill(7);
    pool.free(buf);
    expectThrow(() => pool.free(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.retain(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.release(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.refCount(buf), PoolError, 'ERR_DOUBLE_FREE');
    expect(pool.stats().liveAllocations).toBe(1);
    expect(keep.every((b) => b === 7)).toBe(true);
  });

  it('free() of a slice or another view of the bytes throws ERR_FOREIGN_BUFFER and leaves the allocation live', () => {
    const pool = guarded();
    const buf = pool.alloc(100).fill(3);
    const views: ArrayBufferView[] = [
      buf.subarray(1),
      buf.subarray(0),
      buf.subarray(0, 50),
      new Uint8Array(buf.buffer),
      new DataView(buf.buffer),
    ];
    for (const v of views) {
      expectThrow(() => pool.free(v), PoolError, 'ERR_FOREIGN_BUFFER');
      expectThrow(() => pool.release(v), PoolError, 'ERR_FOREIGN_BUFFER');
      expect(pool.owns(v)).toBe(false);
    }
    expect(buf.length).toBe(100);
    expect(buf.every((b) => b === 3)).toBe(true);
    expect(pool.refCount(buf)).toBe(1);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
    // The slices share the detached ArrayBuffer: they are empty too.
    expectDetached(views[0]!);
    expectDetached(views[4]!);
  });

  it('free() of a plain Buffer or of another pool\'s buffer throws ERR_FOREIGN_BUFFER', () => {
    const pool = guarded();
    const other = guarded({ name: 'other' });
    const theirs = other.alloc(10);
    expectThrow(() => pool.free(Buffer.alloc(10)), PoolError, 'ERR_FOREIGN_BUFFER');
    expectThrow(() => pool.free(theirs), PoolError, 'ERR_FOREIGN_BUFFER');
    expect(theirs.length).toBe(10);
    expect(other.owns(theirs)).toBe(true);
  });
});

describe('retain() and release() in a guarded pool', () => {
  it('the view stays attached until the last release()', () => {
    const pool = guarded();
    const buf = pool.from('refcounted');
    expect(pool.retain(buf)).toBe(2);
    expect(pool.retain(buf)).toBe(3);
    expect(pool.release(buf)).toBe(false);
    expect(buf.toString()).toBe('refcounted');
    expect(pool.release(buf)).toBe(false);
    expect(pool.refCount(buf)).toBe(1);
    expect(buf.toString()).toBe('refcounted');
    expect(buf.buffer.byteLength).toBe(10);
    expect(pool.release(buf)).toBe(true);
    expectDetached(buf);
    expect(pool.stats().liveAllocations).toBe(0);
    expectThrow(() => pool.release(buf), PoolError, 'ERR_DOUBLE_FREE');
  });

  it('free() of a retained Buffer detaches it at once, whatever its count', () => {
    const pool = guarded();
    const buf = pool.alloc(32);
    pool.retain(buf);
    pool.retain(buf);
    pool.free(buf);
    expectDetached(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('reset() and close() of a guarded pool', () => {
  it('reset() detaches every live guarded view, huge ones too, and the pool keeps working', () => {
    const pool = guarded();
    const bufs = [pool.alloc(10), pool.alloc(5000), pool.alloc(100 * KiB), pool.alloc(2 * MiB), pool.allocTyped(Float64Array, 8)];
    pool.retain(bufs[0]!);
    pool.reset();
    for (const b of bufs) expectDetached(b);
    expect(pool.stats().liveAllocations).toBe(0);
    expectThrow(() => pool.free(bufs[1]!), PoolError, 'ERR_DOUBLE_FREE');
    const fresh = pool.alloc(10).fill(9);
    expect(fresh.length).toBe(10);
    expect(fresh.every((b) => b === 9)).toBe(true);
    pool.free(fresh);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('close() detaches every live guarded view and later calls throw ERR_POOL_CLOSED', () => {
    const pool = guarded();
    const first = pool.alloc(10);
    const bufs = [first, pool.alloc(5000), pool.alloc(100 * KiB), pool.alloc(2 * MiB), pool.allocTyped(Int32Array, 8)];
    const slice = first.subarray(2);
    pool.close();
    for (const b of bufs) expectDetached(b);
    expectDetached(slice);
    expect(() => first.readUInt8(0)).toThrow(RangeError);
    expectThrow(() => pool.free(first), PoolError, 'ERR_POOL_CLOSED');
    expectThrow(() => pool.alloc(1), PoolError, 'ERR_POOL_CLOSED');
  });
});

describe('huge allocations in a guarded pool', () => {
  it('work like any other and are detached and unmapped by free()', () => {
    const pool = guarded();
    const small = pool.alloc(100).fill(1);
    const huge = pool.allocUnsafe(3 * MiB + 5).fill(0x77);
    expect(huge.length).toBe(3 * MiB + 5);
    expect(huge.buffer.byteLength).toBe(3 * MiB + 5);
    expect(huge[3 * MiB + 4]).toBe(0x77);
    expect(pool.stats().hugeAllocations).toBe(1);
    const mapped = pool.stats().mappedBytes;
    pool.free(huge);
    expectDetached(huge);
    expect(pool.stats().hugeAllocations).toBe(0);
    pool.trim();  // the mapping was kept as a spare; trim() unmaps it
    expect(pool.stats().mappedBytes).toBeLessThan(mapped);
    expectThrow(() => pool.free(huge), PoolError, 'ERR_DOUBLE_FREE');
    expect(small.every((b) => b === 1)).toBe(true);
    const again = pool.alloc(3 * MiB);
    expect(again.every((b) => b === 0)).toBe(true);
  });
});

describe('Scope, from() and allocTyped() over a guarded pool', () => {
  it('closing a Scope detaches what it handed out, except a buffer someone retained', () => {
    const pool = guarded();
    const scope = pool.scope();
    const a = scope.alloc(10).fill(1);
    const b = scope.allocUnsafe(20).fill(2);
    const c = scope.from('kept');
    expect(new Set([a.buffer, b.buffer, c.buffer]).size).toBe(3);
    pool.retain(c);
    scope.close();
    expectDetached(a);
    expectDetached(b);
    expect(c.toString()).toBe('kept');
    expect(pool.stats().liveAllocations).toBe(1);
    expect(pool.release(c)).toBe(true);
    expectDetached(c);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('a Scope closed after one of its buffers was freed skips that one', () => {
    const pool = guarded();
    const scope = pool.scope();
    const a = scope.alloc(10);
    const b = scope.alloc(10);
    pool.free(a);
    scope.close();
    expectDetached(b);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('from() copies into an allocation of its own, and free() detaches it', () => {
    const pool = guarded();
    const src = Buffer.from('copy me');
    const buf = pool.from(src);
    expect(buf.buffer).not.toBe(src.buffer);
    expect(buf.buffer.byteLength).toBe(7);
    expect(buf.toString()).toBe('copy me');
    pool.free(buf);
    expectDetached(buf);
    expect(src.toString()).toBe('copy me');
  });

  it('from() of hex that decodes shorter than its bound returns exactly the decoded bytes and leaves one allocation', () => {
    const pool = guarded();
    const buf = pool.from('aabbzz', 'hex');
    expect([...buf]).toEqual([0xaa, 0xbb]);
    expect(buf.buffer.byteLength).toBe(2);
    expect(pool.stats().liveAllocations).toBe(1);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('allocTyped() returns a zero-filled view over an ArrayBuffer of its own, detached by free()', () => {
    const pool = guarded();
    const f = pool.allocTyped(Float64Array, 5);
    const i = pool.allocTyped(Int16Array, 3);
    expect(f).toBeInstanceOf(Float64Array);
    expect(f.length).toBe(5);
    expect(f.byteOffset).toBe(0);
    expect(f.buffer.byteLength).toBe(40);
    expect([...f]).toEqual([0, 0, 0, 0, 0]);
    expect(f.buffer).not.toBe(i.buffer);
    f[4] = 1.5;
    expect(f[4]).toBe(1.5);
    expect(pool.refCount(f)).toBe(1);
    pool.free(f);
    expect(f.length).toBe(0);
    expect(f[4]).toBeUndefined();
    expectThrow(() => pool.free(f), PoolError, 'ERR_DOUBLE_FREE');
    expect(pool.owns(i)).toBe(true);
    pool.free(i);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('options', () => {
  it("guard: true with backing 'heap' throws TypeError ERR_INVALID_ARG_VALUE", () => {
    expectThrow(() => new Pool({ guard: true, backing: 'heap' }), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it.each([['yes'], [1]])('guard: %j throws TypeError ERR_INVALID_ARG_TYPE', (value) => {
    expectThrow(() => new Pool({ guard: value as unknown as boolean }), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('stats().guard says whether the pool is guarded', () => {
    expect(guarded().stats().guard).toBe(true);
    expect(make().stats().guard).toBe(false);
  });
});

describe('transfers', () => {
  it('postMessage(buf, [buf.buffer]) of a guarded Buffer does not detach it', async () => {
    const pool = guarded();
    const buf = pool.from('stay here');
    const { port1, port2 } = new MessageChannel();
    try {
      const received = new Promise<unknown>((resolve) => port2.once('message', resolve));
      let threw = false;
      // Node 20 leaves an untransferable buffer out of the transfer list (the
      // message carries a copy); later versions throw DataCloneError.
      try {
        port1.postMessage(buf, [buf.buffer as ArrayBuffer]);
      } catch (err) {
        threw = true;
        expect((err as Error).name).toBe('DataCloneError');
      }
      expect(buf.length).toBe(9);
      expect(buf.buffer.byteLength).toBe(9);
      expect(buf.toString()).toBe('stay here');
      if (!threw) {
        const copy = (await received) as Uint8Array;
        expect(Buffer.from(copy).toString()).toBe('stay here');
      }
      expect(pool.refCount(buf)).toBe(1);
      pool.free(buf);
      expectDetached(buf);
    } finally {
      port1.close();
      port2.close();
    }
  });
});
