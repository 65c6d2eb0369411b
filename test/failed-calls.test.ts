// A failed call changes nothing, including calls that fail in user code the
// pool calls (valueOf, Symbol.toPrimitive, getters, an options getter, a
// typed array's constructor): stats(), dump() and every other allocation
// are exactly as before. And allocTyped() sizes its memory by the built-in
// element size of the constructor's TypedArray, never by what the
// constructor says, and accepts only the view it asked for.
import { describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, expectThrow, make } from './helpers.js';

class Hook extends Error {}
function boom(): never {
  throw new Hook('user code threw');
}

/** Everything a failed call must leave as it was: every stats() figure but residentBytes (the OS's measure), dump()'s chunks and allocations (less their age). */
function snapshot(pool: Pool): unknown {
  const { residentBytes: _resident, ...stats } = pool.stats();
  const dump = pool.dump();
  return {
    stats,
    chunks: dump.chunks,
    allocations: dump.allocations.map(({ ageMs: _age, ...a }) => a),
  };
}

interface Scene {
  pool: Pool;
  live: Buffer[];
}

/**
 * A pool with live allocations of each kind (cached, page run, huge), each
 * filled with its own byte, and the sizes the failing calls ask for used
 * once already (so a call that gives its memory back leaves the block cache,
 * the chunks and the spare huge mapping as they were: the freed 2 MiB one
 * is kept as a spare, which the failing call takes and gives back).
 */
function scene(options: PoolOptions = {}): Scene {
  const pool = make({ chunkSize: 4 * MiB, hugeThreshold: 1 * MiB, ...options });
  const warm = [3, 100, 100 * KiB, 2 * MiB].map((size) => pool.allocUnsafe(size));
  const live = [pool.alloc(100), pool.alloc(100 * KiB), pool.alloc(2 * MiB), pool.alloc(3)];
  for (const b of warm) pool.free(b);
  live.forEach((b, i) => b.fill(i + 1));
  return { pool, live };
}

/** `fail` throws (an instance of `cls`) and leaves the pool exactly as it was; the pool then still works. */
function expectNoChange(s: Scene, fail: () => unknown, cls: new (...args: never[]) => Error = Hook): Error {
  const before = snapshot(s.pool);
  let caught: unknown;
  try {
    fail();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'the call threw').toBeInstanceOf(cls);
  expect(snapshot(s.pool)).toEqual(before);
  s.live.forEach((b, i) => expect(b.every((x) => x === i + 1), `live allocation ${i} intact`).toBe(true));
  for (const size of [3, 100, 100 * KiB, 2 * MiB]) {
    const b = s.pool.alloc(size);
    expect(b.length).toBe(size);
    s.pool.free(b);
  }
  expect(s.pool.stats().liveAllocations).toBe(s.live.length);
  expect(s.pool.dump().allocations.length).toBe(s.live.length);
  return caught as Error;
}

const POOLS: [string, PoolOptions][] = [['default', {}], ['guard: true', { guard: true }]];

describe.each(POOLS)('failed calls change nothing (%s pool)', (_label, options) => {
  describe('from() with user code that throws in the conversion', () => {
    it.each<[string, () => unknown]>([
      ['an array element whose valueOf() throws', () => [1, 2, { valueOf: boom }]],
      ['an array element whose Symbol.toPrimitive throws', () => [1, { [Symbol.toPrimitive]: boom }, 3]],
      ['an array-like whose element getter throws', () => ({ length: 3, 0: 1, get 1() { return boom(); }, 2: 3 })],
      ['an object whose valueOf() throws', () => ({ valueOf: boom })],
      ['an object whose Symbol.toPrimitive throws', () => ({ [Symbol.toPrimitive]: boom })],
      ['a String object whose valueOf() throws', () => Object.assign(new String('abc'), { valueOf: boom })],
    ])('%s', (_what, value) => {
      const s = scene(options);
      expectNoChange(s, () => s.pool.from(value() as ArrayLike<number>));
    });

    it('an array of 3 with a throwing element leaves liveAllocations as it was (issue repro)', () => {
      const s = scene(options);
      const live = s.pool.stats().liveAllocations;
      expect(() => s.pool.from([1, 2, { valueOf() { throw 1; } }] as unknown as number[])).toThrow();
      expect(s.pool.stats().liveAllocations).toBe(live);
    });
  });

  describe('alloc() and allocUnsafe() with an options getter that throws', () => {
    it.each([3, 100, 100 * KiB, 2 * MiB])('size %d', (size) => {
      const s = scene(options);
      const opts = { get align(): number { return boom(); } };
      expectNoChange(s, () => s.pool.alloc(size, opts));
      expectNoChange(s, () => s.pool.allocUnsafe(size, opts));
    });
  });

  describe("allocTyped() whose constructor throws", () => {
    class Throws extends Uint8Array {
      constructor(..._args: unknown[]) {
        boom();
        super(0);
      }
    }
    it.each([3, 100, 100 * KiB, 2 * MiB])('length %d: the memory goes back, the block and its serial too', (length) => {
      const s = scene(options);
      expectNoChange(s, () => s.pool.allocTyped(Throws, length));
    });

    it('100 calls leave dump() and stats() agreeing on the one live allocation (issue repro)', () => {
      const pool = make(options);
      const keep = pool.alloc(16);
      for (let i = 0; i < 100; i++) expect(() => pool.allocTyped(Throws, 16)).toThrow(Hook);
      expect(pool.stats().liveAllocations).toBe(1);
      expect(pool.dump().allocations.length).toBe(1);
      pool.free(keep);
      expect(pool.dump().allocations.length).toBe(0);
    });
  });

  describe('allocTyped() whose constructor returns something else than the view it was asked for: ERR_INVALID_ARG_TYPE', () => {
    const bad: [string, new (ab: ArrayBuffer, offset: number, length: number) => ArrayBufferView][] = [
      ['a view of another buffer', class extends Uint8Array {
        constructor(_ab: ArrayBuffer, _offset: number, length: number) { super(length); }
      }],
      ['a view at another offset', class extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) { super(ab, offset === 0 ? 1 : offset - 1, length - 1); }
      }],
      ['a shorter view', class extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) { super(ab, offset, length - 1); }
      }],
      ['a view of another element type over the same bytes', class extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) { super(0); return new Uint16Array(ab, offset, length / 2); }
      }],
      ['a plain object', class extends Uint8Array {
        constructor() { super(0); return { length: 64 } as unknown as Uint8Array; }
      }],
      ['a DataView', class extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) { super(0); return new DataView(ab, offset, length) as unknown as Uint8Array; }
      }],
      ['a Proxy of the right view', class extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) { super(ab, offset, length); return new Proxy(this, {}); }
      }],
      ['a view with lying getters', class extends Uint8Array {
        constructor(_ab: ArrayBuffer, _offset: number, length: number) { super(length); }
        get buffer(): ArrayBufferLike { return LAST_AB ?? super.buffer; }
      }],
    ];
    let LAST_AB: ArrayBuffer | undefined;
    it.each(bad)('%s', (_what, Type) => {
      const s = scene(options);
      for (const length of [100, 100 * KiB, 2 * MiB]) {
        const err = expectNoChange(s, () => s.pool.allocTyped(Type, length), TypeError);
        expect((err as { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
      }
    });

    it('a view handed out before (a constructor that returns the same object twice)', () => {
      let first: Uint8Array | undefined;
      class Same extends Uint8Array {
        constructor(ab: ArrayBuffer, offset: number, length: number) {
          super(ab, offset, length);
          if (first !== undefined) return first;
          first = this;
        }
      }
      const s = scene(options);
      const a = s.pool.allocTyped(Same, 64);
      s.live.push(a as unknown as Buffer);
      a.fill(s.live.length);
      const err = expectNoChange(s, () => s.pool.allocTyped(Same, 64), TypeError);
      expect((err as { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
    });
  });
});

describe("allocTyped() uses the built-in TypedArray's element size, never BYTES_PER_ELEMENT", () => {
  it.each<[string, number]>([['0.25', 0.25], ['NaN', NaN], ['8', 8], ['-1', -1]])(
    'a Uint8Array subclass claiming %s bytes per element gets `length` bytes, and fill() stays in them', (_label, claimed) => {
      class Q extends Uint8Array {
        static override get BYTES_PER_ELEMENT(): number { return claimed; }
      }
      const pool = make({ leakDetection: 'disabled' });
      const before = pool.alloc(64).fill(1);
      const q = pool.allocTyped(Q, 64);
      const after = pool.alloc(64).fill(2);
      expect(q).toBeInstanceOf(Q);
      expect(q.length).toBe(64);
      expect(q.byteLength).toBe(64);
      q.fill(0xee);
      expect(before.every((b) => b === 1)).toBe(true);
      expect(after.every((b) => b === 2)).toBe(true);
      expect(pool.stats().usedBytes).toBe(3 * 64);
      for (const v of [before, q, after]) pool.free(v);
      expect(pool.stats().usedBytes).toBe(0);
    });

  it('a Float64Array subclass claiming 1 byte per element gets 8 bytes per element, 8-aligned', () => {
    class D extends Float64Array {
      static override get BYTES_PER_ELEMENT(): number { return 1; }
    }
    const pool = make();
    for (const length of [3, 20 * KiB, 300 * KiB]) {
      const d = pool.allocTyped(D, length);
      expect(d.length).toBe(length);
      expect(d.byteLength).toBe(8 * length);
      expect(d.byteOffset % 8).toBe(0);
      expect(pool.stats().usedBytes).toBe(8 * length);
      pool.free(d);
    }
  });

  it('BYTES_PER_ELEMENT is not even read (a throwing getter changes nothing)', () => {
    class T extends Int16Array {
      static override get BYTES_PER_ELEMENT(): number { return boom(); }
    }
    const pool = make();
    const t = pool.allocTyped(T, 10);
    expect(t.byteLength).toBe(20);
    pool.free(t);
  });

  it('every built-in TypedArray gets its own element size; Buffer gets 1', () => {
    const pool = make();
    const types = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
      Float32Array, Float64Array, BigInt64Array, BigUint64Array, Buffer] as const;
    for (const T of types) {
      const v = pool.allocTyped(T as unknown as Uint8ArrayConstructor, 5);
      expect(v.byteLength, T.name).toBe(5 * (T === Buffer ? 1 : (T as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT));
      pool.free(v);
    }
  });

  it.each<[string, unknown]>([
    ['a plain class', class {}],
    ['DataView', DataView],
    ['Array', Array],
    ['an arrow function', () => 0],
    ['a function whose prototype extends Uint8Array.prototype but is no TypedArray constructor', Object.assign(function F() {}, { prototype: Object.create(Uint8Array.prototype) })],
    ['a number', 8],
  ])('%s is refused with ERR_INVALID_ARG_TYPE and changes nothing', (_what, Type) => {
    const s = scene();
    expectNoChange(s, () => s.pool.allocTyped(Type as Uint8ArrayConstructor, 8), TypeError);
    expectThrow(() => s.pool.allocTyped(Type as Uint8ArrayConstructor, 8), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

describe('user code that re-enters the pool in the middle of an allocation', () => {
  it.each([64, 100 * KiB, 2 * MiB])('a typed array constructor that resets the pool: allocTyped(%d) still returns a live, exact, freeable view', (length) => {
    const pool = make({ chunkSize: 4 * MiB, hugeThreshold: 1 * MiB });
    let calls = 0;
    class Resets extends Uint8Array {
      constructor(ab: ArrayBuffer, offset: number, n: number) {
        if (calls++ === 0) pool.reset();
        super(ab, offset, n);
      }
    }
    const other = pool.alloc(64);
    const v = pool.allocTyped(Resets, length);
    expect(calls).toBe(2);
    expect(v.length).toBe(length);
    expect(pool.owns(v)).toBe(true);
    expect(pool.owns(other)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(1);
    expect(pool.dump().allocations.length).toBe(1);
    pool.free(v);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('a typed array constructor that closes the pool: ERR_POOL_CLOSED', () => {
    const pool = make();
    class Closes extends Uint8Array {
      constructor(ab: ArrayBuffer, offset: number, n: number) {
        pool.close();
        super(ab, offset, n);
      }
    }
    expectThrow(() => pool.allocTyped(Closes, 64), PoolError, 'ERR_POOL_CLOSED');
    expectThrow(() => pool.allocTyped(Closes, 200 * KiB), PoolError, 'ERR_POOL_CLOSED');
  });
});
