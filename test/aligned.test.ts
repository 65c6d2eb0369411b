// Aligned allocations: alloc(size, { align }) and allocUnsafe(size, { align })
// for every power of two up to the page size, and allocTyped(Type, length),
// which aligns a TypedArray to its element size.
import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions, type TypedArrayConstructor } from '../lib/index.js';
import { KiB, MiB, allZero, expectThrow, make } from './helpers.js';

/** Fails if two of the views share a byte (views over different ArrayBuffers never do). */
function expectDisjoint(views: ArrayBufferView[]): void {
  const byBuffer = new Map<ArrayBufferLike, [number, number][]>();
  for (const v of views) {
    if (v.byteLength === 0) continue;
    const list = byBuffer.get(v.buffer) ?? [];
    list.push([v.byteOffset, v.byteOffset + v.byteLength]);
    byBuffer.set(v.buffer, list);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < list.length; i++) {
      expect(list[i]![0], `[${list[i - 1]}] overlaps [${list[i]}]`).toBeGreaterThanOrEqual(list[i - 1]![1]);
    }
  }
}

// require('os') has no page size; every pool's stats() has.
const probe = new Pool({ name: 'page-size-probe' });
const PAGE = probe.stats().pageSize;
probe.close();
const ALIGNS: number[] = [];
for (let a = 1; a <= PAGE; a *= 2) ALIGNS.push(a);
const SIZES = [1, 7, 100, 3000, 5000, 40000];
const ROUNDS = 12;

describe('alloc(size, { align })', () => {
  it('the page size is a power of two of at least 4 KiB, so the aligns tried go up to it', () => {
    expect(PAGE).toBeGreaterThanOrEqual(4096);
    expect(PAGE & (PAGE - 1)).toBe(0);
    expect(ALIGNS.at(-1)).toBe(PAGE);
  });

  it.each(ALIGNS)('align %i: byteOffset is a multiple of it for many allocations in a row, zero-filled and disjoint', (align) => {
    const pool = make();
    const live: Buffer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const size of SIZES) {
        // An odd-sized allocation in between, so the aligned ones do not
        // simply follow each other in one slab.
        live.push(pool.allocUnsafe(1 + (round % 5) * 2).fill(0xff));
        const buf = pool.alloc(size, { align });
        expect(buf.length).toBe(size);
        expect(buf.byteOffset % align, `alloc(${size}, { align: ${align} }) at byteOffset ${buf.byteOffset}`).toBe(0);
        expect(allZero(buf)).toBe(true);
        live.push(buf);
      }
    }
    expectDisjoint(live);
    live.forEach((b, i) => b.fill(i & 0xff));
    live.forEach((b, i) => expect(b.every((x) => x === (i & 0xff))).toBe(true));
    for (const b of live) pool.free(b);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it.each(ALIGNS)('align %i: allocUnsafe() aligns the same way, also in slots that were used before', (align) => {
    const pool = make();
    const live: Buffer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const size of SIZES) {
        live.push(pool.allocUnsafe(3));
        const buf = pool.allocUnsafe(size, { align }).fill(0xaa);
        expect(buf.length).toBe(size);
        expect(buf.byteOffset % align, `allocUnsafe(${size}, { align: ${align} }) at byteOffset ${buf.byteOffset}`).toBe(0);
        live.push(buf);
      }
      // Give half back now and then, so later rounds reuse freed slots.
      if (round % 3 === 2) for (const b of live.splice(0, live.length / 2)) pool.free(b);
    }
    expectDisjoint(live);
    for (const b of live) pool.free(b);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it.each(ALIGNS)('align %i in a guarded pool: byteOffset is 0, the slot is aligned, slots never overlap, free() works', (align) => {
    const pool = make({ guard: true });
    const live: { buf: Buffer; segment: number; offset: number; size: number }[] = [];
    for (let round = 0; round < 4; round++) {
      for (const size of SIZES) {
        pool.allocUnsafe(1 + round);  // odd-sized, left live
        const before = new Set(pool.dump().allocations.map((a) => `${a.segment}:${a.offset}`));
        const buf = pool.alloc(size, { align });
        const added = pool.dump().allocations.filter((a) => !before.has(`${a.segment}:${a.offset}`));
        expect(added.length).toBe(1);
        const slot = added[0]!;
        expect(buf.byteOffset).toBe(0);
        expect(buf.buffer.byteLength).toBe(size);
        expect(slot.size).toBe(size);
        expect(slot.offset % align, `slot of alloc(${size}, { align: ${align} }) at offset ${slot.offset}`).toBe(0);
        live.push({ buf, segment: slot.segment, offset: slot.offset, size });
      }
    }
    // No two live slots of the pool (the odd-sized ones included) overlap.
    const all = pool.dump().allocations.slice().sort((a, b) => a.segment - b.segment || a.offset - b.offset);
    for (let i = 1; i < all.length; i++) {
      if (all[i]!.segment !== all[i - 1]!.segment) continue;
      expect(all[i]!.offset).toBeGreaterThanOrEqual(all[i - 1]!.offset + all[i - 1]!.size);
    }
    live.forEach((l, i) => l.buf.fill(i + 1));
    live.forEach((l, i) => expect(l.buf.every((x) => x === i + 1)).toBe(true));
    const before = pool.stats().liveAllocations;
    for (const l of live) {
      pool.free(l.buf);
      expect(l.buf.length).toBe(0);
    }
    expect(pool.stats().liveAllocations).toBe(before - live.length);
  });

  it.each(['anonymous', 'file', 'heap'] as const)("backing '%s': byteOffset honours align up to the page size", (backing) => {
    const pool = make({ backing });
    const live: Buffer[] = [];
    for (const align of [32, 64, 256, PAGE]) {
      for (const size of SIZES) {
        live.push(pool.allocUnsafe(5));
        const buf = pool.alloc(size, { align });
        expect(buf.byteOffset % align).toBe(0);
        live.push(buf);
      }
    }
    expectDisjoint(live);
  });

  it('with 64 KiB chunks and a 16 KiB huge threshold, 40000-byte and page-aligned requests still align', () => {
    const pool = make({ chunkSize: 64 * KiB, hugeThreshold: 16 * KiB });
    for (const size of [1, 7, 100, 3000, 5000, 16 * KiB, 40000, 200 * KiB]) {
      for (const align of [16, 64, PAGE]) {
        const buf = pool.alloc(size, { align });
        expect(buf.byteOffset % align).toBe(0);
        expect(buf.length).toBe(size);
        pool.free(buf);
      }
    }
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('alloc(0, { align }) returns an empty Buffer that can be freed', () => {
    const pool = make();
    const buf = pool.alloc(0, { align: PAGE });
    expect(buf.length).toBe(0);
    expect(buf.byteOffset % PAGE).toBe(0);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('{ align: undefined } and {} mean no alignment demand', () => {
    const pool = make();
    expect(pool.alloc(5, {}).length).toBe(5);
    expect(pool.alloc(5, { align: undefined }).length).toBe(5);
    expect(pool.allocUnsafe(5, {}).length).toBe(5);
  });
});

describe('a bad align', () => {
  const outOfRange: [string, unknown][] = [
    ['3', 3],
    ['0', 0],
    ['-1', -1],
    ['1.5', 1.5],
    ['pageSize * 2', PAGE * 2],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-8', -8],
  ];
  it.each(outOfRange)('align %s throws RangeError ERR_OUT_OF_RANGE and allocates nothing', (_label, align) => {
    const pool = make();
    expectThrow(() => pool.alloc(8, { align: align as number }), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => pool.allocUnsafe(8, { align: align as number }), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  const wrongType: [string, unknown][] = [
    ["'8'", '8'],
    ['null', null],
    ['8n', 8n],
    ['{}', {}],
    ['true', true],
  ];
  it.each(wrongType)('align %s throws TypeError ERR_INVALID_ARG_TYPE and allocates nothing', (_label, align) => {
    const pool = make();
    expectThrow(() => pool.alloc(8, { align: align as number }), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectThrow(() => pool.allocUnsafe(8, { align: align as number }), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it.each([['null', null], ['8', 8], ["'x'", 'x']])('options %s (not an object) throws TypeError ERR_INVALID_ARG_TYPE', (_label, options) => {
    const pool = make();
    expectThrow(() => pool.alloc(8, options as { align?: number }), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it('a failed aligned call leaves the other allocations and their bytes alone', () => {
    const pool = make();
    const keep = pool.alloc(64, { align: 64 }).fill(0x3c);
    expectThrow(() => pool.alloc(64, { align: 48 }), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pool.stats().liveAllocations).toBe(1);
    expect(keep.every((b) => b === 0x3c)).toBe(true);
  });
});

type AnyTyped = ArrayBufferView & { length: number; [i: number]: number | bigint };
const Float16 = (globalThis as { Float16Array?: TypedArrayConstructor<AnyTyped> }).Float16Array;
const TYPES: [string, TypedArrayConstructor<AnyTyped>][] = (
  [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array,
    ...(Float16 === undefined ? [] : [Float16]),
  ] as unknown as TypedArrayConstructor<AnyTyped>[]
).map((T) => [(T as unknown as { name: string }).name, T]);

describe('allocTyped(Type, length)', () => {
  it('the list of constructors tried has every TypedArray of this Node', () => {
    const names = TYPES.map(([n]) => n);
    expect(names).toEqual(expect.arrayContaining(['Int8Array', 'Uint8ClampedArray', 'Float64Array', 'BigInt64Array', 'BigUint64Array']));
    expect(names.includes('Float16Array')).toBe(typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'function');
  });

  it.each(TYPES)('%s: the right type and length, zero-filled even over memory that was written', (_name, Type) => {
    const pool = make();
    const length = 7;
    const dirty = pool.allocUnsafe(length * Type.BYTES_PER_ELEMENT).fill(0xff);
    pool.free(dirty);
    const view = pool.allocTyped(Type, length);
    expect(view.buffer === dirty.buffer && view.byteOffset === dirty.byteOffset, 'reuses the written slot (precondition)').toBe(true);
    expect(view).toBeInstanceOf(Type);
    expect(Object.getPrototypeOf(view)).toBe(Type.prototype);
    expect(view.length).toBe(length);
    expect(view.byteLength).toBe(length * Type.BYTES_PER_ELEMENT);
    expect(allZero(view)).toBe(true);
    expect(pool.owns(view)).toBe(true);
    expect(pool.refCount(view)).toBe(1);
  });

  it.each(TYPES)('%s: byteOffset is a multiple of BYTES_PER_ELEMENT after odd-sized allocations, and free() takes it back', (_name, Type) => {
    const pool = make();
    const views: AnyTyped[] = [];
    for (let i = 0; i < 40; i++) {
      pool.allocUnsafe(1 + 2 * (i % 9));  // 1, 3, 5, ... 17 bytes
      if (i % 10 === 9) pool.allocUnsafe(3001);
      const length = [1, 3, 17, 100, 5001][i % 5]!;
      const view = pool.allocTyped(Type, length);
      expect(view.length).toBe(length);
      expect(view.byteOffset % Type.BYTES_PER_ELEMENT, `byteOffset ${view.byteOffset}`).toBe(0);
      views.push(view);
    }
    const huge = pool.allocTyped(Type, Math.ceil((MiB + 1) / Type.BYTES_PER_ELEMENT));
    expect(huge.byteOffset % Type.BYTES_PER_ELEMENT).toBe(0);
    views.push(huge);
    expectDisjoint(views);
    const live = pool.stats().liveAllocations;
    for (const v of views) pool.free(v);
    expect(pool.stats().liveAllocations).toBe(live - views.length);
    expect(huge.length).toBe(0);  // a huge allocation's view is detached by free()
  });

  it('a TypedArray of length 0 can be made and freed', () => {
    const pool = make();
    const view = pool.allocTyped(Float64Array, 0);
    expect(view).toBeInstanceOf(Float64Array);
    expect(view.length).toBe(0);
    pool.free(view);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('values written through the view land in pool memory and survive other allocations', () => {
    const pool = make();
    const f = pool.allocTyped(Float64Array, 4);
    f.set([1.5, -2, Math.PI, 1e300]);
    const b = pool.allocTyped(BigInt64Array, 2);
    b.set([-5n, 2n ** 62n]);
    pool.alloc(1000).fill(0xff);
    expect([...f]).toEqual([1.5, -2, Math.PI, 1e300]);
    expect([...b]).toEqual([-5n, 2n ** 62n]);
  });

  it('allocTyped(Buffer, n) is accepted (Buffer is a Uint8Array subclass) and returns a zero-filled, freeable Buffer', () => {
    const pool = make();
    const dirty = pool.allocUnsafe(24).fill(0xee);
    pool.free(dirty);
    const buf = pool.allocTyped(Buffer as unknown as TypedArrayConstructor<Buffer>, 24);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(24);
    expect(buf.buffer === dirty.buffer && buf.byteOffset === dirty.byteOffset).toBe(true);
    expect(allZero(buf)).toBe(true);
    expect(pool.owns(buf)).toBe(true);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it.each([
    ['Object', Object],
    ['DataView', DataView],
    ['ArrayBuffer', ArrayBuffer],
    ['Array', Array],
    ['null', null],
    ['undefined', undefined],
    ["'Float64Array'", 'Float64Array'],
    ['an instance (new Float64Array(1))', new Float64Array(1)],
    ['a look-alike class', class { static BYTES_PER_ELEMENT = 8; }],
  ])('allocTyped(%s, 3) throws TypeError ERR_INVALID_ARG_TYPE', (_label, Type) => {
    const pool = make();
    expectThrow(() => pool.allocTyped(Type as unknown as TypedArrayConstructor<Uint8Array>, 3), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it.each([
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-0.5', -0.5],
  ])('allocTyped(Float64Array, %s) throws RangeError ERR_OUT_OF_RANGE', (_label, length) => {
    const pool = make();
    expectThrow(() => pool.allocTyped(Float64Array, length), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it.each([
    ["'5'", '5'],
    ['null', null],
    ['5n', 5n],
    ['undefined', undefined],
    ['{}', {}],
  ])('allocTyped(Float64Array, %s) throws TypeError ERR_INVALID_ARG_TYPE', (_label, length) => {
    const pool = make();
    expectThrow(() => pool.allocTyped(Float64Array, length as number), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it('a length whose bytes pass maxBytes throws RangeError ERR_OUT_OF_RANGE, one that fits does not', () => {
    const pool = make({ maxBytes: 1 * MiB });
    expectThrow(() => pool.allocTyped(Float64Array, MiB / 8 + 1), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => pool.allocTyped(Uint16Array, MiB / 2 + 1), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pool.allocTyped(Uint8Array, 1000).length).toBe(1000);
  });

  it.each([false, true])('a freed typed view given to free() again throws ERR_DOUBLE_FREE (guard: %s)', (guard) => {
    const pool = make({ guard });
    const view = pool.allocTyped(Uint32Array, 10);
    const other = pool.allocTyped(Uint32Array, 10).fill(0xdeadbeef);
    pool.free(view);
    expectThrow(() => pool.free(view), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.release(view), PoolError, 'ERR_DOUBLE_FREE');
    expect(pool.owns(view)).toBe(false);
    expect(other.every((x) => x === 0xdeadbeef)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(1);
  });

  it('a typed view over the bytes of a live allocation is not the allocation: ERR_FOREIGN_BUFFER', () => {
    const pool = make();
    const view = pool.allocTyped(Float64Array, 4);
    const alias = new Float64Array(view.buffer, view.byteOffset, view.length);
    expectThrow(() => pool.free(alias), PoolError, 'ERR_FOREIGN_BUFFER');
    expectThrow(() => pool.free(view.subarray(1)), PoolError, 'ERR_FOREIGN_BUFFER');
    pool.free(view);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});
