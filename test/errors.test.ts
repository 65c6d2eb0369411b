// Every error of README's "Errors" table, and the rule that a failed call
// changes nothing: every other allocation keeps its bytes.
import { mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, type PoolOptions } from '../lib/index.js';
import { KiB, MiB, expectThrow, make } from './helpers.js';

/**
 * Live buffers of several kinds (small slab slots, a large page run, a huge
 * mapping of its own), each filled with its own pattern, and a copy of what
 * they must hold.
 */
class Witness {
  readonly items: { buf: Buffer; expected: Buffer }[] = [];

  constructor(readonly pool: Pool, sizes: number[]) {
    sizes.forEach((size, i) => {
      const buf = pool.allocUnsafe(size);
      for (let j = 0; j < size; j++) buf[j] = (j * (i + 3) + i * 101 + 7) & 255;
      this.items.push({ buf, expected: Buffer.from(buf) });
    });
  }

  /** Every buffer still has its length, its pattern and one reference. */
  verify(): void {
    for (const { buf, expected } of this.items) {
      expect(buf.length).toBe(expected.length);
      expect(buf.equals(expected)).toBe(true);
      expect(this.pool.owns(buf)).toBe(true);
      expect(this.pool.refCount(buf)).toBe(1);
    }
  }
}

// Small (two classes), large (a page run) and huge (above the 1 MiB default threshold).
const WITNESS_SIZES = [1, 40, 3000, 100 * KiB, 2 * MiB];

const nonBuffers: [string, unknown][] = [
  ['5', 5],
  ["'x'", 'x'],
  ['{}', {}],
  ['null', null],
  ['undefined', undefined],
  ['an ArrayBuffer', new ArrayBuffer(16)],
  ['[1, 2, 3]', [1, 2, 3]],
];

type BufferMethod = 'free' | 'retain' | 'release' | 'refCount';
const bufferMethods: BufferMethod[] = ['free', 'retain', 'release', 'refCount'];
function callWith(pool: Pool, method: BufferMethod, buf: unknown): unknown {
  return (pool[method] as (b: unknown) => unknown).call(pool, buf);
}

describe('PoolError', () => {
  it('is an Error subclass named PoolError whose code is stable', () => {
    const err = new PoolError('ERR_DOUBLE_FREE', 'x');
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(PoolError);
    expect(err.name).toBe('PoolError');
    expect(err.code).toBe('ERR_DOUBLE_FREE');
    expect(String(err)).toMatch(/^PoolError: x/);
  });
});

describe('bad sizes', () => {
  let pool: Pool;
  let witness: Witness;
  beforeEach(() => {
    pool = make();
    witness = new Witness(pool, WITNESS_SIZES);
  });

  for (const method of ['alloc', 'allocUnsafe'] as const) {
    describe(method, () => {
      it.each([
        ['-1', -1],
        ['1.5', 1.5],
        ['NaN', NaN],
        ['Infinity', Infinity],
        ['-Infinity', -Infinity],
        ['2**53', 2 ** 53],
        ['-0.5', -0.5],
      ])(`${method}(%s) throws RangeError ERR_OUT_OF_RANGE and changes nothing`, (_label, size) => {
        const before = pool.stats();
        expectThrow(() => pool[method](size), RangeError, 'ERR_OUT_OF_RANGE');
        const after = pool.stats();
        expect(after.liveAllocations).toBe(before.liveAllocations);
        expect(after.usedBytes).toBe(before.usedBytes);
        expect(after.totalAllocations).toBe(before.totalAllocations);
        witness.verify();
      });

      it.each([
        ["'5'", '5'],
        ['null', null],
        ['undefined', undefined],
        ['{}', {}],
        ['5n', 5n],
        ['[5]', [5]],
        ['true', true],
      ])(`${method}(%s) throws TypeError ERR_INVALID_ARG_TYPE and changes nothing`, (_label, size) => {
        const before = pool.stats();
        expectThrow(() => pool[method](size as unknown as number), TypeError, 'ERR_INVALID_ARG_TYPE');
        const after = pool.stats();
        expect(after.liveAllocations).toBe(before.liveAllocations);
        expect(after.totalAllocations).toBe(before.totalAllocations);
        witness.verify();
      });

      it(`${method}() of a size over maxBytes throws RangeError ERR_OUT_OF_RANGE and changes nothing`, () => {
        const capped = make({ maxBytes: 4 * MiB, chunkSize: MiB, hugeThreshold: 256 * KiB });
        const held = new Witness(capped, [40, 3000, 100 * KiB, 300 * KiB]);
        const before = capped.stats();
        const err = expectThrow(() => capped[method](4 * MiB + 1), RangeError, 'ERR_OUT_OF_RANGE');
        expect(err.message).toMatch(/size/);
        expectThrow(() => capped[method](64 * MiB), RangeError, 'ERR_OUT_OF_RANGE');
        const after = capped.stats();
        expect(after.mappedBytes).toBe(before.mappedBytes);
        expect(after.liveAllocations).toBe(before.liveAllocations);
        held.verify();
        witness.verify();
      });
    });
  }

  it('from() of a value whose byte length is over maxBytes throws RangeError ERR_OUT_OF_RANGE', () => {
    const capped = make({ maxBytes: MiB });
    const held = new Witness(capped, [40, 100 * KiB]);
    expectThrow(() => capped.from(new Uint8Array(MiB + 1)), RangeError, 'ERR_OUT_OF_RANGE');
    expectThrow(() => capped.from('a'.repeat(MiB + 1)), RangeError, 'ERR_OUT_OF_RANGE');
    held.verify();
  });
});

describe('arguments that are not buffers', () => {
  let pool: Pool;
  let witness: Witness;
  beforeEach(() => {
    pool = make();
    witness = new Witness(pool, WITNESS_SIZES);
  });

  for (const method of bufferMethods) {
    it.each(nonBuffers)(`${method}(%s) throws TypeError ERR_INVALID_ARG_TYPE and changes nothing`, (_label, value) => {
      const before = pool.stats();
      expectThrow(() => callWith(pool, method, value), TypeError, 'ERR_INVALID_ARG_TYPE');
      expect(pool.stats().liveAllocations).toBe(before.liveAllocations);
      expect(pool.stats().totalFrees).toBe(before.totalFrees);
      witness.verify();
    });
  }
});

describe('ERR_FOREIGN_BUFFER', () => {
  let pool: Pool;
  let witness: Witness;
  beforeEach(() => {
    pool = make();
    witness = new Witness(pool, WITNESS_SIZES);
  });

  const foreign: [string, () => ArrayBufferView][] = [
    ['a Buffer.alloc(16)', () => Buffer.alloc(16)],
    ['a Buffer.allocUnsafe(16) (from Node\'s own pool)', () => Buffer.allocUnsafe(16)],
    ['a Uint8Array(16)', () => new Uint8Array(16)],
    ['a DataView', () => new DataView(new ArrayBuffer(16))],
  ];

  for (const method of bufferMethods) {
    it.each(foreign)(`${method}() of %s throws PoolError ERR_FOREIGN_BUFFER`, (_label, makeBuf) => {
      expectThrow(() => callWith(pool, method, makeBuf()), PoolError, 'ERR_FOREIGN_BUFFER');
      witness.verify();
    });
  }

  // Index 0: 1 B, 1: 40 B, 2: 3000 B (small), 3: 100 KiB (large), 4: 2 MiB (huge).
  const kinds: [string, number][] = [
    ['small (40 B)', 1],
    ['small (3000 B)', 2],
    ['large (100 KiB)', 3],
    ['huge (2 MiB)', 4],
  ];

  for (const method of bufferMethods) {
    it.each(kinds)(`${method}() of a slice buf.subarray(1) of a %s buffer throws ERR_FOREIGN_BUFFER`, (_label, index) => {
      const { buf } = witness.items[index];
      expectThrow(() => callWith(pool, method, buf.subarray(1)), PoolError, 'ERR_FOREIGN_BUFFER');
      witness.verify();
    });

    it.each(kinds)(`${method}() of a slice buf.subarray(0, n - 1) of a %s buffer throws ERR_FOREIGN_BUFFER`, (_label, index) => {
      const { buf } = witness.items[index];
      expectThrow(() => callWith(pool, method, buf.subarray(0, buf.length - 1)), PoolError, 'ERR_FOREIGN_BUFFER');
      witness.verify();
    });
  }

  it('free() of a slice in the middle of a large buffer (another page) throws ERR_FOREIGN_BUFFER', () => {
    const { buf } = witness.items[3];
    expectThrow(() => pool.free(buf.subarray(64 * KiB, 64 * KiB + 16)), PoolError, 'ERR_FOREIGN_BUFFER');
    witness.verify();
  });

  it('free() of a slot-sized view of a slab that spans two slots throws ERR_FOREIGN_BUFFER', () => {
    const a = pool.alloc(48);
    const b = pool.alloc(48);
    // Only meaningful when the two are neighbours; they are in a fresh slab.
    expect(b.buffer).toBe(a.buffer);
    const straddling = new Uint8Array(a.buffer, Math.min(a.byteOffset, b.byteOffset) + 24, 48);
    expectThrow(() => pool.free(straddling), PoolError, 'ERR_FOREIGN_BUFFER');
    expect(pool.owns(a)).toBe(true);
    expect(pool.owns(b)).toBe(true);
    witness.verify();
  });

  for (const method of bufferMethods) {
    it(`${method}() of a buffer from another pool throws ERR_FOREIGN_BUFFER and leaves both pools intact`, () => {
      const other = make();
      const theirs = new Witness(other, [40, 100 * KiB, 2 * MiB]);
      for (const { buf } of theirs.items) {
        expectThrow(() => callWith(pool, method, buf), PoolError, 'ERR_FOREIGN_BUFFER');
      }
      theirs.verify();
      witness.verify();
    });
  }

  it('free() of a buffer from another pool with identical options and the same offset throws ERR_FOREIGN_BUFFER', () => {
    const a = make();
    const b = make();
    const mine = a.alloc(64);
    const theirs = b.alloc(64);
    expect(theirs.byteOffset).toBe(mine.byteOffset);
    expectThrow(() => a.free(theirs), PoolError, 'ERR_FOREIGN_BUFFER');
    expect(b.owns(theirs)).toBe(true);
    expect(a.owns(mine)).toBe(true);
  });
});

describe('ERR_DOUBLE_FREE', () => {
  let pool: Pool;
  let witness: Witness;
  beforeEach(() => {
    pool = make();
    witness = new Witness(pool, WITNESS_SIZES);
  });

  const sizes: [string, number][] = [
    ['small (40 B)', 40],
    ['large (100 KiB)', 100 * KiB],
    ['huge (2 MiB, above hugeThreshold)', 2 * MiB],
  ];

  it.each(sizes)('a second free() of a %s buffer throws ERR_DOUBLE_FREE and changes nothing', (_label, size) => {
    const buf = pool.alloc(size);
    pool.free(buf);
    const before = pool.stats();
    expectThrow(() => pool.free(buf), PoolError, 'ERR_DOUBLE_FREE');
    const after = pool.stats();
    expect(after.totalFrees).toBe(before.totalFrees);
    expect(after.liveAllocations).toBe(before.liveAllocations);
    expect(after.usedBytes).toBe(before.usedBytes);
    witness.verify();
  });

  it.each(sizes)('release(), retain() and refCount() of a freed %s buffer throw ERR_DOUBLE_FREE', (_label, size) => {
    const buf = pool.alloc(size);
    pool.free(buf);
    expectThrow(() => pool.release(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.retain(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.refCount(buf), PoolError, 'ERR_DOUBLE_FREE');
    witness.verify();
  });

  it.each(sizes)('release() after the last release() of a %s buffer throws ERR_DOUBLE_FREE', (_label, size) => {
    const buf = pool.alloc(size);
    expect(pool.release(buf)).toBe(true);
    expectThrow(() => pool.release(buf), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.free(buf), PoolError, 'ERR_DOUBLE_FREE');
    witness.verify();
  });

  it('a second free() of a size-0 buffer throws ERR_DOUBLE_FREE', () => {
    const buf = pool.alloc(0);
    pool.free(buf);
    expectThrow(() => pool.free(buf), PoolError, 'ERR_DOUBLE_FREE');
    witness.verify();
  });

  // The stale Buffer object was freed once; its memory now belongs to a new
  // allocation at the same offset with the same length. Freeing the stale one
  // again is still "freeing memory twice", and must not take the new one.
  it.each([
    ['small (40 B)', 40],
    ['large (100 KiB)', 100 * KiB],
  ])('a second free() of a %s buffer whose memory was handed out again throws ERR_DOUBLE_FREE and leaves the new owner alive', (_label, size) => {
    const stale = pool.allocUnsafe(size);
    pool.free(stale);
    const fresh = pool.alloc(size);
    fresh.fill(0x5a);
    const reused = fresh.buffer === stale.buffer && fresh.byteOffset === stale.byteOffset;
    expect(reused, 'the allocator reuses the slot just freed (precondition)').toBe(true);
    expectThrow(() => pool.free(stale), PoolError, 'ERR_DOUBLE_FREE');
    expect(pool.owns(fresh)).toBe(true);
    expect(pool.refCount(fresh)).toBe(1);
    const next = pool.alloc(size);
    const overlaps = next.buffer === fresh.buffer && next.byteOffset === fresh.byteOffset;
    expect(overlaps, 'a later allocation must not get the live one\'s memory').toBe(false);
    expect(fresh.every((b) => b === 0x5a)).toBe(true);
    witness.verify();
  });
});

describe('ERR_POOL_CLOSED', () => {
  let pool: Pool;
  let buf: Buffer;
  beforeEach(() => {
    pool = make();
    buf = pool.alloc(64);
    pool.close();
  });

  const calls: [string, (p: Pool, b: Buffer) => unknown][] = [
    ['alloc(16)', (p) => p.alloc(16)],
    ['alloc(0)', (p) => p.alloc(0)],
    ['alloc(2 MiB)', (p) => p.alloc(2 * MiB)],
    ['allocUnsafe(16)', (p) => p.allocUnsafe(16)],
    ["from('x')", (p) => p.from('x')],
    ['from([1, 2])', (p) => p.from([1, 2])],
    ['from(Uint8Array)', (p) => p.from(new Uint8Array(4))],
    ['free(buf)', (p, b) => p.free(b)],
    ['retain(buf)', (p, b) => p.retain(b)],
    ['release(buf)', (p, b) => p.release(b)],
    ['refCount(buf)', (p, b) => p.refCount(b)],
    ['scope()', (p) => p.scope()],
    ['reset()', (p) => p.reset()],
    ['trim()', (p) => p.trim()],
  ];

  it.each(calls)('%s after close() throws PoolError ERR_POOL_CLOSED', (_label, call) => {
    expectThrow(() => call(pool, buf), PoolError, 'ERR_POOL_CLOSED');
  });

  it('closing one pool leaves another pool\'s buffers intact, and the other still allocates', () => {
    const other = make();
    const theirs = new Witness(other, WITNESS_SIZES);
    const third = make();
    third.alloc(100);
    third.close();
    expectThrow(() => third.alloc(16), PoolError, 'ERR_POOL_CLOSED');
    theirs.verify();
    expect(other.alloc(16).length).toBe(16);
  });

  it('stats(), dump(), owns() and close() do not throw after close()', () => {
    expect(pool.stats().closed).toBe(true);
    expect(pool.dump().closed).toBe(true);
    expect(pool.owns(buf)).toBe(false);
    expect(() => pool.close()).not.toThrow();
  });
});

describe('ERR_POOL_EXHAUSTED', () => {
  it('alloc past maxBytes throws PoolError ERR_POOL_EXHAUSTED, damages nothing, and works again after a free', () => {
    const pool = make({ maxBytes: 4 * MiB, chunkSize: MiB, hugeThreshold: 256 * KiB });
    const held = new Witness(pool, [1, 40, 3000, 100 * KiB, 300 * KiB]);
    const big = pool.allocUnsafe(2 * MiB + 512 * KiB); // huge: mapped 1 MiB + 300 KiB + 2.5 MiB so far
    big.fill(0xee);
    held.verify();

    // A huge allocation that would pass the cap.
    const before = pool.stats();
    const err = expectThrow(() => pool.alloc(300 * KiB), PoolError, 'ERR_POOL_EXHAUSTED');
    expect(err.message).toMatch(/maxBytes/);
    expect(pool.stats().mappedBytes).toBe(before.mappedBytes);
    expect(pool.stats().liveAllocations).toBe(before.liveAllocations);
    held.verify();

    // Large runs until the only chunk is full and a second would pass the cap.
    const filler: Buffer[] = [];
    let exhausted: unknown;
    for (let i = 0; i < 64 && exhausted === undefined; i++) {
      try {
        filler.push(pool.allocUnsafe(200 * KiB).fill(i));
      } catch (e) {
        exhausted = e;
      }
    }
    expect(exhausted).toBeInstanceOf(PoolError);
    expect((exhausted as PoolError).code).toBe('ERR_POOL_EXHAUSTED');
    expect(filler.length).toBeGreaterThan(0);
    expect(pool.stats().mappedBytes).toBeLessThanOrEqual(4 * MiB);
    // Small allocations that need a new slab are refused the same way.
    expectThrow(() => {
      for (let i = 0; i < 100_000; i++) pool.alloc(20 * KiB);
    }, PoolError, 'ERR_POOL_EXHAUSTED');
    held.verify();
    expect(big.every((b) => b === 0xee)).toBe(true);
    filler.forEach((f, i) => expect(f.every((b) => b === i)).toBe(true));

    pool.free(big);
    const again = pool.alloc(300 * KiB);
    expect(again.length).toBe(300 * KiB);
    held.verify();
  });
});

describe('ERR_MAP_FAILED', () => {
  it("a 'file' pool whose dir does not exist fails at the first alloc with ERR_MAP_FAILED, errno ENOENT, syscall 'open' (Windows: GetLastError() 3, ERROR_PATH_NOT_FOUND, from CreateFileW)", () => {
    const bystander = make();
    const held = new Witness(bystander, WITNESS_SIZES);
    const missing = join(tmpdir(), `mmap-pool-missing-${process.pid}-${Date.now()}`);
    const pool = make({ backing: 'file', dir: missing });
    for (const size of [16, 100 * KiB, 2 * MiB]) {
      const err = expectThrow(() => pool.alloc(size), PoolError, 'ERR_MAP_FAILED') as PoolError;
      if (process.platform === 'win32') {
        expect(err.errno).toBe(3);  // ERROR_PATH_NOT_FOUND
        expect(err.syscall).toBe('CreateFileW');
        expect(err.message).toMatch(/CreateFileW failed \(Windows error 3\)/);
      } else {
        expect(err.errno).toBe(osConstants.errno.ENOENT);
        if (process.platform === 'linux') expect(err.syscall).toBe('open');
        else expect(typeof err.syscall).toBe('string');
        expect(err.message).toMatch(/ENOENT/);
      }
      const s = pool.stats();
      expect(s.liveAllocations).toBe(0);
      expect(s.mappedBytes).toBe(0);
      expect(s.chunks).toBe(0);
      expect(s.usedBytes).toBe(0);
      held.verify();
    }
    expect(pool.closed).toBe(false);
    expect(pool.trim()).toBe(0);
    expect(() => pool.reset()).not.toThrow();
    expect(pool.dump().allocations).toEqual([]);
  });

  // Not on Windows: a directory holding open files cannot be removed there,
  // and the pool's temp files stay open (and named) while it lives.
  it.skipIf(process.platform === 'win32')("a 'file' pool whose dir went away keeps its live buffers' bytes when a new mapping is refused (not on Windows: a directory with open files cannot be removed)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmap-pool-err-'));
    try {
      const pool = make({ backing: 'file', dir, chunkSize: MiB, hugeThreshold: 256 * KiB });
      const held = new Witness(pool, [1, 40, 3000, 100 * KiB, 300 * KiB]);
      rmdirSync(dir); // empty: the temp files never had a name
      const before = pool.stats();
      for (const size of [300 * KiB, 2 * MiB]) {
        const err = expectThrow(() => pool.alloc(size), PoolError, 'ERR_MAP_FAILED') as PoolError;
        expect(err.errno).toBe(osConstants.errno.ENOENT);
        if (process.platform === 'linux') expect(err.syscall).toBe('open');
        held.verify();
      }
      // A large run that needs a second chunk.
      expectThrow(() => {
        for (let i = 0; i < 64; i++) pool.allocUnsafe(200 * KiB).fill(0xcc);
      }, PoolError, 'ERR_MAP_FAILED');
      held.verify();
      const after = pool.stats();
      expect(after.mappedBytes).toBe(before.mappedBytes);
      expect(after.chunks).toBe(before.chunks);
      // Memory the pool already has is still handed out.
      const small = pool.from('still works');
      expect(small.toString()).toBe('still works');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
