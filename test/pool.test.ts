// Pool: every method of README's "API at a glance".
import * as assert from 'node:assert';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, type Backing, type PoolOptions } from '../lib/index.js';
import { KEEPS_SPARES, KiB, MiB, WINE, allZero, collectedUnderWine, expectThrow, make } from './helpers.js';

function pattern(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 13 + seed * 7 + (i >> 8)) & 255;
  return out;
}

function sameMemory(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

/** The running Node's major version. */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

const SIZES: [string, number][] = [
  ['small (40 B)', 40],
  ['small (5000 B)', 5000],
  ['large (100 KiB)', 100 * KiB],
  ['huge (2 MiB)', 2 * MiB],
];

describe('alloc()', () => {
  it.each(SIZES)('alloc() of a %s buffer returns that many zero bytes', (_label, size) => {
    const buf = make().alloc(size);
    expect(buf.length).toBe(size);
    expect(allZero(buf)).toBe(true);
  });

  it.each([
    ['small (40 B)', 40],
    ['small (5000 B)', 5000],
    ['large (100 KiB)', 100 * KiB],
  ])('alloc() of a %s buffer is zero-filled even when it reuses memory that was written', (_label, size) => {
    const pool = make();
    const dirty = pool.allocUnsafe(size);
    dirty.fill(0xff);
    pool.free(dirty);
    const buf = pool.alloc(size);
    expect(sameMemory(buf, dirty), 'the slot just freed is reused (precondition)').toBe(true);
    expect(buf.length).toBe(size);
    expect(allZero(buf)).toBe(true);
  });

  it('alloc() of a huge buffer after a huge buffer was written and freed is zero-filled', () => {
    const pool = make();
    const dirty = pool.allocUnsafe(2 * MiB);
    dirty.fill(0xff);
    pool.free(dirty);
    expect(allZero(pool.alloc(2 * MiB))).toBe(true);
  });

  it('alloc() of a smaller size in a written slot zeroes the whole new buffer', () => {
    const pool = make();
    const dirty = pool.allocUnsafe(48);
    dirty.fill(0xab);
    pool.free(dirty);
    const buf = pool.alloc(33); // same 48-byte class
    expect(sameMemory(buf, dirty)).toBe(true);
    expect(allZero(buf)).toBe(true);
  });

  it('alloc() of a large buffer in pages that slabs used before is zero-filled', () => {
    // `align` above 16 bypasses the block cache: this is the allocator's own
    // zeroing of pages it knows were written.
    const pool = make({ chunkSize: 64 * KiB, hugeThreshold: 64 * KiB });
    const keep = pool.alloc(16); // keeps the chunk
    const small: Buffer[] = [];
    for (let i = 0; i < 700; i++) small.push(pool.allocUnsafe(48, { align: 32 }).fill(0xee));
    for (const b of small) pool.free(b);
    const big = pool.alloc(40 * KiB, { align: 4096 });
    const lo = big.byteOffset;
    const hi = lo + big.length;
    const reused = small.some((b) => b.buffer === big.buffer && b.byteOffset < hi && b.byteOffset + b.length > lo);
    expect(reused, 'the large run reuses pages of the freed slabs (precondition)').toBe(true);
    expect(allZero(big)).toBe(true);
    expect(pool.owns(keep)).toBe(true);
  });

  it('alloc() after reset() returns zeros in memory that was written before the reset', () => {
    const pool = make();
    const a = pool.allocUnsafe(100 * KiB).fill(0x77);
    const b = pool.allocUnsafe(64).fill(0x77);
    pool.reset();
    const a2 = pool.alloc(100 * KiB);
    const b2 = pool.alloc(64);
    expect(sameMemory(a2, a) || sameMemory(b2, b)).toBe(true);
    expect(allZero(a2)).toBe(true);
    expect(allZero(b2)).toBe(true);
  });

  it('alloc() after trim() discarded written free pages returns zeros', () => {
    const pool = make();
    const keep = pool.alloc(64).fill(1); // keeps the chunk mapped
    const a = pool.allocUnsafe(100 * KiB).fill(0x99);
    pool.free(a);
    pool.trim();
    const a2 = pool.alloc(100 * KiB);
    expect(allZero(a2)).toBe(true);
    expect(keep.every((x) => x === 1)).toBe(true);
  });

  it('distinct live allocations do not share bytes', () => {
    const pool = make();
    const bufs = SIZES.map(([, size], i) => pool.allocUnsafe(size).fill(i + 1));
    bufs.forEach((b, i) => expect(b.every((x) => x === i + 1)).toBe(true));
  });
});

describe('allocUnsafe()', () => {
  it.each(SIZES)('allocUnsafe() of a %s buffer returns a writable Buffer of that length', (_label, size) => {
    const buf = make().allocUnsafe(size);
    expect(buf.length).toBe(size);
    const p = pattern(size, 3);
    p.copy(buf);
    expect(buf.equals(p)).toBe(true);
  });
});

describe('size 0', () => {
  it('alloc(0) returns an empty Buffer that can be freed', () => {
    const pool = make();
    const buf = pool.alloc(0);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(0);
    expect(pool.owns(buf)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(1);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('allocUnsafe(0) and from(\'\') and from([]) return empty Buffers that can be freed', () => {
    const pool = make();
    const bufs = [pool.allocUnsafe(0), pool.from(''), pool.from([]), pool.from(new Uint8Array(0))];
    for (const buf of bufs) {
      expect(buf.length).toBe(0);
      pool.free(buf);
    }
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().totalFrees).toBe(4);
  });

  it('two size-0 allocations are two allocations', () => {
    const pool = make();
    const a = pool.alloc(0);
    const b = pool.alloc(0);
    expect(pool.stats().liveAllocations).toBe(2);
    pool.free(a);
    expect(pool.owns(b)).toBe(true);
    pool.free(b);
  });
});

describe('from()', () => {
  it('from(string) copies UTF-8 bytes like Buffer.from', () => {
    const s = 'héllo wörld € 𝄞';
    const buf = make().from(s);
    expect(buf.equals(Buffer.from(s))).toBe(true);
    expect(buf.toString()).toBe(s);
  });

  it.each([
    ['hex', 'deadbeef00ff'],
    ['base64', 'aGVsbG8gd29ybGQ='],
    ['base64url', 'aGVsbG8gd29ybGQ'],
    ['latin1', 'caf\u00e9'],
    ['utf16le', 'hi \u20ac'],
    ['ascii', 'plain'],
    ['utf8', 'caf\u00e9'],
  ] as [BufferEncoding, string][])("from(string, '%s') decodes like Buffer.from", (encoding, s) => {
    const buf = make().from(s, encoding);
    const expected = Buffer.from(s, encoding);
    expect(buf.length).toBe(expected.length);
    expect(buf.equals(expected)).toBe(true);
  });

  // Buffer.byteLength() only estimates these; Buffer.from() returns what was
  // actually decoded. A longer result would end in bytes of an earlier allocation.
  it.each([
    ['hex', 'zz'],
    ['hex', 'abzz'],
    ['hex', 'ab c'],
    ['base64', 'a$$$'],
    ['base64', 'aGVs bG8='],
    ['base64', 'aGVsbG8=\n'],
  ] as [BufferEncoding, string][])("from(%s string %j with characters that do not decode) is exactly Buffer.from's bytes, with no stale tail", (encoding, s) => {
    const pool = make();
    const estimate = Buffer.byteLength(s, encoding);
    const dirty = pool.allocUnsafe(estimate).fill(0xee);
    pool.free(dirty);
    const buf = pool.from(s, encoding);
    const expected = Buffer.from(s, encoding);
    expect(buf.length).toBe(expected.length);
    expect(buf.equals(expected)).toBe(true);
    expect(pool.stats().usedBytes).toBe(expected.length);
  });

  it('from(Uint8Array) copies the bytes, and later changes to the source do not show', () => {
    const src = new Uint8Array([1, 2, 3, 250]);
    const buf = make().from(src);
    expect([...buf]).toEqual([1, 2, 3, 250]);
    src[0] = 99;
    expect(buf[0]).toBe(1);
  });

  it('from(Uint16Array) copies its bytes (not its element values)', () => {
    const src = new Uint16Array([0x0102, 0xfffe, 7]);
    const buf = make().from(src);
    expect(buf.length).toBe(6);
    expect(buf.equals(Buffer.from(src.buffer, src.byteOffset, src.byteLength))).toBe(true);
  });

  it('from(DataView) over part of an ArrayBuffer copies exactly that part', () => {
    const ab = new ArrayBuffer(16);
    new Uint8Array(ab).forEach((_, i, a) => (a[i] = i + 10));
    const buf = make().from(new DataView(ab, 4, 6));
    expect([...buf]).toEqual([14, 15, 16, 17, 18, 19]);
  });

  it('from(ArrayBuffer) copies the whole ArrayBuffer', () => {
    const ab = new Uint8Array([9, 8, 7, 6, 5]).buffer;
    const buf = make().from(ab);
    expect([...buf]).toEqual([9, 8, 7, 6, 5]);
    expect(buf.buffer).not.toBe(ab);
  });

  it('from([1, 2, 256]) gives 1, 2, 0 like Buffer.from', () => {
    const buf = make().from([1, 2, 256]);
    expect([...buf]).toEqual([1, 2, 0]);
    expect(buf.equals(Buffer.from([1, 2, 256]))).toBe(true);
  });

  it('from([-1, 1.7, 300]) truncates each value like Buffer.from', () => {
    const values = [-1, 1.7, 300];
    expect(make().from(values).equals(Buffer.from(values))).toBe(true);
  });

  it('from(a pool Buffer) is a copy in a different place', () => {
    const pool = make();
    const a = pool.from('abc');
    const b = pool.from(a);
    expect(b.toString()).toBe('abc');
    expect(sameMemory(a, b)).toBe(false);
    a[0] = 0x7a;
    expect(b.toString()).toBe('abc');
  });

  it('from() of a large and of a huge source copies every byte', () => {
    const pool = make();
    for (const size of [100 * KiB, 2 * MiB]) {
      const src = pattern(size, size & 255);
      const buf = pool.from(src);
      expect(buf.equals(src)).toBe(true);
    }
  });

  it.each([
    ['5', 5],
    ['null', null],
    ['undefined', undefined],
    ['true', true],
    ['a Symbol', Symbol('x')],
  ])('from(%s) throws TypeError ERR_INVALID_ARG_TYPE and allocates nothing', (_label, value) => {
    const pool = make();
    expectThrow(() => pool.from(value as unknown as string), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it('from(string, unknown encoding) throws TypeError ERR_UNKNOWN_ENCODING and allocates nothing', () => {
    const pool = make();
    expectThrow(() => pool.from('abc', 'nope' as BufferEncoding), TypeError, 'ERR_UNKNOWN_ENCODING');
    expect(pool.stats().totalAllocations).toBe(0);
  });
});

describe('the Buffers handed out', () => {
  it.each(SIZES)('a %s buffer is a real Buffer, not over Node\'s own 8 KiB pool', (_label, size) => {
    const pool = make();
    const nodePool = Buffer.allocUnsafe(1).buffer;
    for (const buf of [pool.alloc(size), pool.allocUnsafe(size), pool.from(new Uint8Array(size))]) {
      expect(Buffer.isBuffer(buf)).toBe(true);
      expect(buf).toBeInstanceOf(Buffer);
      expect(buf.buffer).not.toBe(nodePool);
      expect(buf.buffer.byteLength).toBeGreaterThanOrEqual(Math.max(size, pool.stats().pageSize));
      expect(buf.buffer.byteLength).not.toBe(Buffer.poolSize);
    }
  });

  it.each(SIZES)('a %s buffer looks like Node\'s own: constructor Buffer, inspect() <Buffer ...>, no property of the pool\'s on it', (_label, size) => {
    // 'paranoid' tracks every allocation: tracking must leave no mark on the Buffer either.
    for (const options of [{}, { guard: true }, { leakDetection: 'paranoid' }] as PoolOptions[]) {
      const pool = make(options);
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7) & 255));
      for (const buf of [pool.alloc(size).fill(bytes), pool.allocUnsafe(size).fill(bytes), pool.from(bytes)]) {
        expect(buf.constructor).toBe(Buffer);
        expect(Object.getOwnPropertySymbols(buf)).toEqual([]);
        expect(inspect(buf).startsWith('<Buffer')).toBe(true);
        expect(buf.equals(bytes)).toBe(true);
        expect(() => assert.deepEqual(buf, bytes)).not.toThrow();
        if (size <= 5000) expect(buf).toStrictEqual(Buffer.from(bytes));  // (vitest compares element by element)
        // Node 20's deepStrictEqual compares prototypes, and the pool's is a
        // subclass of Buffer's (README, "API at a glance"); Node 22 and later
        // compare them as Buffers.
        expect(Object.getPrototypeOf(Object.getPrototypeOf(buf))).toBe(Buffer.prototype);
        if (NODE_MAJOR >= 22) expect(() => assert.deepStrictEqual(buf, bytes)).not.toThrow();
        // A view made from it is a plain Buffer the pool does not own.
        const sub = buf.subarray(0);
        expect(Object.getPrototypeOf(sub)).toBe(Buffer.prototype);
        expect(pool.owns(sub)).toBe(false);
        expect(pool.owns(buf)).toBe(true);
        pool.free(buf);
      }
    }
  });

  it('small and large buffers share their chunk\'s ArrayBuffer of chunkSize bytes', () => {
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const a = pool.alloc(40);
    const b = pool.alloc(100 * KiB);
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer.byteLength).toBe(MiB);
  });

  it('a huge buffer has an ArrayBuffer of its own', () => {
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const a = pool.alloc(40);
    const h = pool.alloc(300 * KiB);
    expect(h.buffer).not.toBe(a.buffer);
    expect(h.byteOffset).toBe(0);
    expect(h.buffer.byteLength).toBeGreaterThanOrEqual(300 * KiB);
  });
});

describe('retain(), release() and refCount()', () => {
  it.each(SIZES)('a %s buffer: refCount 1, retain -> 2, release -> false, release -> true and freed', (_label, size) => {
    const pool = make();
    const buf = pool.alloc(size);
    expect(pool.refCount(buf)).toBe(1);
    expect(pool.retain(buf)).toBe(2);
    expect(pool.refCount(buf)).toBe(2);
    expect(pool.release(buf)).toBe(false);
    expect(pool.refCount(buf)).toBe(1);
    expect(pool.owns(buf)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(1);
    expect(pool.release(buf)).toBe(true);
    expect(pool.owns(buf)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(0);
    expectThrow(() => pool.refCount(buf), PoolError, 'ERR_DOUBLE_FREE');
  });

  it('retain() counts up one by one and release() counts back down', () => {
    const pool = make();
    const buf = pool.alloc(64);
    for (let n = 2; n <= 10; n++) expect(pool.retain(buf)).toBe(n);
    for (let n = 9; n >= 1; n--) expect(pool.release(buf)).toBe(false);
    expect(pool.refCount(buf)).toBe(1);
    expect(pool.release(buf)).toBe(true);
  });

  it('a retained buffer keeps its bytes until its last release()', () => {
    const pool = make();
    const buf = pool.from('keep me');
    pool.retain(buf);
    pool.release(buf);
    const other = pool.alloc(7); // must not land on buf
    expect(sameMemory(other, buf)).toBe(false);
    expect(buf.toString()).toBe('keep me');
  });

  it.each(SIZES)('free() of a %s buffer frees it even with refCount 2', (_label, size) => {
    const pool = make();
    const buf = pool.alloc(size);
    pool.retain(buf);
    expect(pool.refCount(buf)).toBe(2);
    pool.free(buf);
    expect(pool.owns(buf)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().usedBytes).toBe(0);
    expectThrow(() => pool.refCount(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.release(buf), PoolError, 'ERR_DOUBLE_FREE');
  });

  it('a reference count does not carry over to the next allocation in the same slot', () => {
    const pool = make();
    const a = pool.alloc(64);
    pool.retain(a);
    pool.free(a);
    const b = pool.alloc(64);
    expect(sameMemory(a, b)).toBe(true);
    expect(pool.refCount(b)).toBe(1);
    expect(pool.release(b)).toBe(true);
  });

  it('release() of a huge buffer to 0 detaches its view (length 0)', () => {
    const pool = make();
    const buf = pool.alloc(2 * MiB);
    pool.retain(buf);
    expect(pool.release(buf)).toBe(false);
    expect(buf.length).toBe(2 * MiB);
    expect(pool.release(buf)).toBe(true);
    expect(buf.length).toBe(0);
  });
});

describe('free()', () => {
  it('free() of a huge buffer detaches its view at once and keeps the mapping as a spare until trim()', () => {
    const pool = make();
    const buf = pool.alloc(2 * MiB);
    const mapped = pool.stats().mappedBytes;
    pool.free(buf);
    expect(buf.length).toBe(0);
    let s = pool.stats();
    expect(s.hugeAllocations).toBe(0);
    expect(s.hugeBytes).toBe(0);
    expect(s.spareBytes).toBe(KEEPS_SPARES ? 2 * MiB : 0);
    expect(s.mappedBytes).toBe(KEEPS_SPARES ? mapped : mapped - 2 * MiB);
    expect(pool.trim()).toBeGreaterThanOrEqual(KEEPS_SPARES ? 2 * MiB : 0);
    s = pool.stats();
    expect(s.spareBytes).toBe(0);
    expect(s.mappedBytes).toBeLessThanOrEqual(mapped - 2 * MiB);
  });

  it.each([
    ['secure', { secure: true }],
    ['file', { backing: 'file' as const }],
    ['heap', { backing: 'heap' as const }],
  ])('free() of a huge buffer in a %s pool unmaps it at once: no spare is kept', (_name, opts) => {
    const pool = make({ ...opts, chunkSize: 64 * KiB, hugeThreshold: 32 * KiB, leakDetection: 'disabled' });
    const buf = pool.alloc(256 * KiB);
    const mapped = pool.stats().mappedBytes;
    pool.free(buf);
    expect(buf.length).toBe(0);
    expect(pool.stats().spareBytes).toBe(0);
    expect(pool.stats().mappedBytes).toBeLessThanOrEqual(mapped - 256 * KiB);
  });

  it('free() of a small buffer gives its slot to the next allocation of that class', () => {
    const pool = make();
    const a = pool.alloc(100);
    pool.free(a);
    const b = pool.alloc(100);
    expect(sameMemory(a, b)).toBe(true);
  });
});

describe('owns()', () => {
  it('is true for a live buffer of each kind', () => {
    const pool = make();
    for (const [, size] of SIZES) expect(pool.owns(pool.alloc(size))).toBe(true);
    expect(pool.owns(pool.alloc(0))).toBe(true);
  });

  it('is false for a slice, a freed buffer, a foreign buffer, a non-buffer, and another pool\'s buffer', () => {
    const pool = make();
    const buf = pool.alloc(64);
    expect(pool.owns(buf.subarray(1))).toBe(false);
    expect(pool.owns(buf.subarray(0, 63))).toBe(false);
    expect(pool.owns(Buffer.alloc(64))).toBe(false);
    expect(pool.owns(Buffer.allocUnsafe(64))).toBe(false);
    for (const v of [5, 'x', {}, null, undefined, new ArrayBuffer(8)]) expect(pool.owns(v)).toBe(false);
    expect(pool.owns(make().alloc(64))).toBe(false);
    const freed = pool.alloc(128);
    pool.free(freed);
    expect(pool.owns(freed)).toBe(false);
    const huge = pool.alloc(2 * MiB);
    pool.free(huge);
    expect(pool.owns(huge)).toBe(false);
    expect(pool.owns(buf)).toBe(true);
  });

  it('is false for every buffer after close()', () => {
    const pool = make();
    const bufs = SIZES.map(([, size]) => pool.alloc(size));
    pool.close();
    for (const buf of bufs) expect(pool.owns(buf)).toBe(false);
  });
});

describe('reset()', () => {
  it('frees everything, keeps the chunks mapped, detaches huge views, and old buffers then throw ERR_DOUBLE_FREE', () => {
    const pool = make();
    const small = pool.alloc(40);
    const large = pool.alloc(100 * KiB);
    const huge = pool.alloc(2 * MiB);
    const before = pool.stats();
    expect(before.chunks).toBe(1);
    pool.reset();
    const s = pool.stats();
    expect(s.liveAllocations).toBe(0);
    expect(s.usedBytes).toBe(0);
    expect(s.allocatedBytes).toBe(0);
    expect(s.hugeAllocations).toBe(0);
    expect(s.totalFrees).toBe(before.totalFrees + 3);
    expect(s.chunks).toBe(1);
    expect(s.mappedBytes).toBe(s.chunkSize);
    expect(huge.length).toBe(0);
    expect(small.length).toBe(40); // chunk memory stays mapped
    expect(pool.owns(small)).toBe(false);
    expectThrow(() => pool.free(small), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.free(large), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.free(huge), PoolError, 'ERR_DOUBLE_FREE');
    expect(s.classes.every((c) => c.live === 0)).toBe(true);
  });

  it.each([
    ['a pool of one thread', {}],
    ['a guard pool (no block cache)', { guard: true }],
    ['a shared pool (counts in its figures, the cache\'s apart)', { shared: true }],
  ] as [string, PoolOptions][])('stats() after reset() of %s count every live allocation freed once, keep the peak, and count on from there', (_label, options) => {
    const pool = make({ leakDetection: 'disabled', ...options });
    const live = [pool.alloc(40), pool.allocUnsafe(5000), pool.alloc(100 * KiB), pool.alloc(2 * MiB), pool.from('abc')];
    const typed = pool.allocTyped(Float64Array, 10);
    pool.retain(live[0]);
    pool.release(live[0]);
    pool.free(pool.alloc(64));
    pool.free(pool.alloc(200 * KiB));
    const before = pool.stats();
    expect([before.liveAllocations, before.totalAllocations, before.totalFrees]).toEqual([6, 8, 2]);
    expect(before.usedBytes).toBe(40 + 5000 + 100 * KiB + 2 * MiB + 3 + 80);
    pool.reset();
    const s = pool.stats();
    expect([s.liveAllocations, s.usedBytes, s.allocatedBytes]).toEqual([0, 0, 0]);
    expect([s.totalAllocations, s.totalFrees, s.peakUsedBytes]).toEqual([8, 8, before.peakUsedBytes]);
    const again = [pool.alloc(64), pool.allocUnsafe(3000)];
    let n = pool.stats();
    expect([n.liveAllocations, n.usedBytes, n.totalAllocations, n.totalFrees]).toEqual([2, 3064, 10, 8]);
    for (const b of again) pool.free(b);
    n = pool.stats();
    expect([n.liveAllocations, n.usedBytes, n.totalAllocations, n.totalFrees]).toEqual([0, 0, 10, 10]);
    void typed;
  });

  it('the pool allocates normally after reset()', () => {
    const pool = make();
    for (let i = 0; i < 100; i++) pool.alloc(100 + i);
    pool.reset();
    const bufs = SIZES.map(([, size], i) => pool.allocUnsafe(size).fill(i + 1));
    bufs.forEach((b, i) => expect(b.every((x) => x === i + 1)).toBe(true));
    expect(pool.stats().liveAllocations).toBe(SIZES.length);
  });
});

describe('trim()', () => {
  it('after freeing everything returns > 0, unmaps every chunk and detaches their views; the pool still allocates', () => {
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const bufs = [pool.alloc(40), pool.alloc(5000), pool.alloc(100 * KiB), pool.alloc(700 * KiB), pool.alloc(300 * KiB)];
    expect(pool.stats().chunks).toBeGreaterThanOrEqual(1);
    for (const b of bufs) pool.free(b);
    const released = pool.trim();
    expect(released).toBeGreaterThan(0);
    const s = pool.stats();
    expect(s.mappedBytes).toBe(0);
    expect(s.chunks).toBe(0);
    for (const b of bufs) expect(b.length).toBe(0);
    const again = pool.from('after trim');
    expect(again.toString()).toBe('after trim');
    expect(pool.stats().chunks).toBe(1);
    expectThrow(() => pool.free(bufs[0]), PoolError, 'ERR_DOUBLE_FREE');
  });

  it('trim() with live allocations keeps their bytes and their chunk', () => {
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const keep = pool.from(pattern(3000, 1));
    const gone = pool.allocUnsafe(200 * KiB).fill(0xaa);
    pool.free(gone);
    const released = pool.trim(); // the freed run's pages were touched: they go back
    expect(released).toBeGreaterThan(0);
    expect(pool.stats().chunks).toBe(1);
    expect(keep.equals(pattern(3000, 1))).toBe(true);
    expect(pool.owns(keep)).toBe(true);
  });

  it('trim() of an empty new pool returns 0', () => {
    expect(make().trim()).toBe(0);
  });
});

describe('stats()', () => {
  it('tracks a known sequence of allocations and frees', () => {
    const pool = make(); // 4 MiB chunks, huge above 1 MiB
    const a = pool.alloc(40);
    const b = pool.alloc(40);
    const c = pool.alloc(100 * KiB);
    const d = pool.alloc(2 * MiB);
    let s = pool.stats();
    const used = 40 + 40 + 100 * KiB + 2 * MiB;
    expect(s.usedBytes).toBe(used);
    expect(s.allocatedBytes).toBeGreaterThanOrEqual(used);
    expect(s.liveAllocations).toBe(4);
    expect(s.totalAllocations).toBe(4);
    expect(s.totalFrees).toBe(0);
    expect(s.peakUsedBytes).toBe(used);
    expect(s.chunks).toBe(1);
    expect(s.hugeAllocations).toBe(1);
    expect(s.hugeBytes).toBeGreaterThanOrEqual(2 * MiB);
    expect(s.mappedBytes).toBe(s.chunkSize + s.hugeBytes);

    pool.free(d);
    s = pool.stats();
    expect(s.usedBytes).toBe(used - 2 * MiB);
    expect(s.peakUsedBytes).toBe(used);
    expect(s.liveAllocations).toBe(3);
    expect(s.totalFrees).toBe(1);
    expect(s.hugeAllocations).toBe(0);
    expect(s.hugeBytes).toBe(0);
    expect(s.spareBytes).toBe(KEEPS_SPARES ? 2 * MiB : 0);  // its mapping, kept for the next 2 MiB allocation
    expect(s.mappedBytes).toBe(s.chunkSize + s.spareBytes);

    pool.free(a);
    pool.free(c);
    s = pool.stats();
    expect(s.usedBytes).toBe(40);
    expect(s.allocatedBytes).toBe(48);
    expect(s.liveAllocations).toBe(1);
    expect(s.totalAllocations).toBe(4);
    expect(s.totalFrees).toBe(3);
    pool.free(b);
    s = pool.stats();
    expect(s.usedBytes).toBe(0);
    expect(s.allocatedBytes).toBe(0);
    expect(s.peakUsedBytes).toBe(used);
  });

  it('classes rows have size, live and capacity with live <= capacity; a 40-byte allocation counts in the 48-byte class', () => {
    const pool = make();
    const a = pool.alloc(40);
    const bufs = [pool.alloc(40), pool.alloc(33), pool.alloc(16), pool.alloc(100 * KiB), a];
    const s = pool.stats();
    expect(s.classes.length).toBeGreaterThan(0);
    let prev = 0;
    for (const row of s.classes) {
      expect(Object.keys(row).sort()).toEqual(['capacity', 'live', 'size']);
      expect(row.size).toBeGreaterThan(prev);
      prev = row.size;
      expect(row.live).toBeLessThanOrEqual(row.capacity);
    }
    const row48 = s.classes.find((c) => c.size === 48);
    expect(row48?.live).toBe(3); // 40, 40, 33
    expect(row48?.capacity).toBeGreaterThanOrEqual(3);
    expect(s.classes.find((c) => c.size === 16)?.live).toBe(1);
    const largeRow = s.classes.find((c) => c.size >= 100 * KiB);
    expect(largeRow?.live).toBe(1);
    expect(s.classes.reduce((n, c) => n + c.live, 0)).toBe(5);
    pool.free(a);
    expect(pool.stats().classes.find((c) => c.size === 48)?.live).toBe(2);
    expect(bufs.length).toBe(5);
  });

  it('reports the options, pageSize and the closed flag', () => {
    const pool = make({ chunkSize: 2 * MiB, hugeThreshold: 512 * KiB, maxBytes: 64 * MiB, name: 'p' });
    const s = pool.stats();
    expect(s).toMatchObject({ name: 'p', chunkSize: 2 * MiB, hugeThreshold: 512 * KiB, maxBytes: 64 * MiB, closed: false });
    expect(s.pageSize).toBeGreaterThan(0);
    expect(Number.isInteger(Math.log2(s.pageSize))).toBe(true);
    pool.close();
    expect(pool.stats().closed).toBe(true);
  });
});

describe('dump()', () => {
  it('lists one allocation per live allocation, chunk runs cover the chunk, and it round-trips through JSON', () => {
    const pool = make({ chunkSize: MiB, hugeThreshold: 256 * KiB });
    const bufs = [pool.alloc(40), pool.alloc(40), pool.alloc(3000), pool.alloc(100 * KiB), pool.alloc(300 * KiB), pool.alloc(0)];
    pool.free(bufs[1]);
    const live = bufs.filter((_, i) => i !== 1);
    const d = pool.dump();

    expect(d.allocations.length).toBe(live.length);
    expect(d.allocations.map((a) => a.size).sort((x, y) => x - y)).toEqual(live.map((b) => b.length).sort((x, y) => x - y));
    for (const buf of live) {
      const entry = d.allocations.find((a) => a.offset === buf.byteOffset && a.size === buf.length);
      expect(entry, `allocation of ${buf.length} at ${buf.byteOffset}`).toBeDefined();
    }
    const hugeEntry = d.allocations.find((a) => a.size === 300 * KiB);
    expect(hugeEntry?.classSize).toBeNull();
    expect(d.huge.length).toBe(1);
    expect(d.huge[0].size).toBe(300 * KiB);
    expect(d.huge[0].mappedBytes).toBeGreaterThanOrEqual(300 * KiB);
    for (const a of d.allocations) if (a.classSize !== null) expect(a.classSize).toBeGreaterThanOrEqual(a.size);

    expect(d.chunks.length).toBe(1);
    for (const chunk of d.chunks) {
      expect(chunk.size).toBe(MiB);
      let next = 0;
      let free = 0;
      for (const run of chunk.runs) {
        expect(run.page).toBe(next);
        next += run.pages;
        if (run.kind === 'free') free += run.pages;
        else expect(run.live).toBeLessThanOrEqual(run.capacity);
      }
      expect(next).toBe(MiB / d.pageSize);
      expect(chunk.freePages).toBe(free);
    }
    expect(d.name).toBe('default');
    expect(d.closed).toBe(false);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });

  it('of an empty pool has no chunks, no huge mappings and no allocations', () => {
    const d = make().dump();
    expect(d.chunks).toEqual([]);
    expect(d.huge).toEqual([]);
    expect(d.allocations).toEqual([]);
  });
});

describe('close()', () => {
  it('is idempotent and sets closed', () => {
    const pool = make();
    pool.alloc(16);
    expect(pool.closed).toBe(false);
    pool.close();
    expect(pool.closed).toBe(true);
    expect(() => pool.close()).not.toThrow();
    expect(pool.closed).toBe(true);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(0);
    expect(s.mappedBytes).toBe(0);
  });

  it.each(SIZES)('a %s view kept past close() reads length 0 and its read/write methods throw RangeError', (_label, size) => {
    const pool = make();
    const buf = pool.alloc(size);
    buf[0] = 1;
    pool.close();
    expect(buf.length).toBe(0);
    expect(buf.byteLength).toBe(0);
    expect(buf[0]).toBeUndefined();
    expect(() => buf.readUInt8(0)).toThrow(RangeError);
    expect(() => buf.writeUInt32LE(1, 0)).toThrow(RangeError);
    expect(buf.toString()).toBe('');
  });

  it('a slice kept past close() reads length 0 too', () => {
    const pool = make();
    const slice = pool.alloc(64).subarray(8, 16);
    pool.close();
    expect(slice.length).toBe(0);
    expect(() => slice.readUInt8(0)).toThrow(RangeError);
  });

  it('[Symbol.dispose]() closes the pool', () => {
    const pool = make();
    const buf = pool.alloc(16);
    pool[Symbol.dispose]();
    expect(pool.closed).toBe(true);
    expect(buf.length).toBe(0);
  });

  it('`using` closes the pool at the end of the block', () => {
    let buf: Buffer;
    let escaped: Pool;
    {
      using pool = new Pool();
      escaped = pool;
      buf = pool.alloc(16);
      expect(pool.closed).toBe(false);
    }
    expect(escaped.closed).toBe(true);
    expect(buf.length).toBe(0);
  });
});

describe('events', () => {
  it('Pool extends EventEmitter', () => {
    const pool = make();
    expect(pool).toBeInstanceOf(EventEmitter);
    let got: unknown;
    pool.on('custom', (v) => (got = v));
    expect(pool.emit('custom', 42)).toBe(true);
    expect(got).toBe(42);
  });
});

describe('backings', () => {
  const backings: Backing[] = ['anonymous', 'file', 'heap'];

  /** The round trip in `pool`, which it closes while the Buffers are reachable. */
  function roundTrip(pool: Pool, backing: Backing, dir: string): void {
    expect(pool.stats().backing).toBe(backing);
    expect(pool.dump().backing).toBe(backing);
    const sizes = [1, 40, 3000, 100 * KiB, 300 * KiB, 2 * MiB];
    const bufs = sizes.map((size, i) => {
      const buf = i % 2 === 0 ? pool.alloc(size) : pool.allocUnsafe(size);
      if (i % 2 === 0) expect(allZero(buf)).toBe(true);
      pattern(size, i).copy(buf);
      return buf;
    });
    bufs.forEach((buf, i) => expect(buf.equals(pattern(sizes[i], i))).toBe(true));
    // Free every other one, allocate again, and check the survivors.
    for (let i = 0; i < bufs.length; i += 2) pool.free(bufs[i]);
    const again = sizes.map((size) => pool.alloc(size));
    for (const buf of again) expect(allZero(buf)).toBe(true);
    for (let i = 1; i < bufs.length; i += 2) expect(bufs[i].equals(pattern(sizes[i], i))).toBe(true);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(sizes.length + 3);
    // The file backing's temp files have no name in dir on POSIX (unlinked
    // at once); on Windows they keep theirs until the last handle closes
    // (FILE_FLAG_DELETE_ON_CLOSE): one per chunk and huge mapping. Under
    // Wine the freed 300 KiB one's stays too while `bufs` holds it
    // (helpers.ts, WINE).
    if (backing === 'file' && process.platform === 'win32') {
      const names = readdirSync(dir);
      expect(names.length).toBe(s.chunks + s.hugeAllocations + (WINE ? 1 : 0));
      for (const name of names) expect(name).toMatch(/^\.mmap-pool-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+\.tmp$/);
    } else {
      expect(readdirSync(dir)).toEqual([]);
    }
    pool.close();
    // Under Wine a name goes only with the Buffers over it (helpers.ts, WINE).
    if (!WINE) expect(readdirSync(dir)).toEqual([]);
    for (const buf of [...bufs, ...again]) expect(buf.length).toBe(0);
  }

  it.each(backings)("the '%s' backing round-trips small, large and huge data and stats() reports it", async (backing) => {
    const dir = mkdtempSync(join(tmpdir(), 'mmap-pool-backing-'));
    try {
      roundTrip(make({ backing, dir, chunkSize: MiB, hugeThreshold: 256 * KiB }), backing, dir);
      await collectedUnderWine(() => readdirSync(dir).length === 0);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("two 'file' pools do not share memory", () => {
    const a = make({ backing: 'file' });
    const b = make({ backing: 'file' });
    const x = a.alloc(4096).fill(1);
    const y = b.alloc(4096).fill(2);
    expect(x.byteOffset).toBe(y.byteOffset);
    expect(x.every((v) => v === 1)).toBe(true);
    expect(y.every((v) => v === 2)).toBe(true);
  });

  it("the 'heap' backing's trim() unmaps empty chunks and the pool keeps working", () => {
    const pool = make({ backing: 'heap', chunkSize: MiB });
    const buf = pool.alloc(1000);
    pool.free(buf);
    expect(pool.trim()).toBeGreaterThan(0);
    expect(pool.stats().mappedBytes).toBe(0);
    expect(buf.length).toBe(0);
    expect(pool.from('heap again').toString()).toBe('heap again');
  });
});
