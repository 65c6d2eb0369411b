// The addon's NativePool as lib/ uses it (lib/native/binding.ts; not public API):
// the block cache's side of it (setScratch, refill, flush), and that a
// malformed call to a method off the hot path throws rather than aborts the
// process (the binding is reachable by its file path).
import { afterEach, describe, expect, it } from 'vitest';

import { binding, NativeStatus, type NativePool, type NativePoolOptions } from '../lib/native/binding.js';
import { HANDLE_SPAN, handleOf, offsetOf, segmentOf } from '../lib/native/handle.js';
import { NATIVE_STATS_FIELDS } from '../lib/native/shapes.js';
import { MiB } from './helpers.js';

const OPTIONS: NativePoolOptions = {
  backing: 'anonymous', dir: '', chunkSize: 4 * MiB, hugeThreshold: 1 * MiB, maxBytes: 1024 * MiB,
  secure: false, hugePages: false, prefault: false,
};

const natives: NativePool[] = [];
afterEach(() => {
  for (const n of natives.splice(0)) n.close();
});
function native(): NativePool {
  const n = new binding.NativePool(OPTIONS);
  natives.push(n);
  return n;
}

/** Live allocations, as the allocator counts them: its class rows and huge allocations. */
function live(n: NativePool): number {
  const s = n.stats();
  return s.classes.reduce((sum, c) => sum + c.live, 0) + s.hugeAllocations;
}

describe('what C++ and TypeScript each write down once', () => {
  it('the handle layout: lib/native/handle.ts and native/addon/handle.h agree, and a handle from alloc() decodes to its segment and offset', () => {
    expect(binding.contract.handleSpan).toBe(HANDLE_SPAN);
    const n = native();
    const a = n.alloc(100, false, 1, 0);
    const b = n.alloc(100, false, 2, 0);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(handleOf(segmentOf(a), offsetOf(a))).toBe(a);
    expect(segmentOf(b)).toBe(segmentOf(a));
    expect(offsetOf(b) - offsetOf(a)).toBe(112);  // the 100-byte class is 112 bytes
  });

  it("the status codes: lib/native/binding.ts NativeStatus is alloc::Status, name for name", () => {
    expect(binding.contract.status).toEqual({ ...NativeStatus });
  });

  it('the stats shape: lib/native/shapes.ts NATIVE_STATS_FIELDS is what native/alloc/arena.h reports, and stats() sets exactly those fields', () => {
    expect(binding.contract.statsFields).toEqual([...NATIVE_STATS_FIELDS]);
    const n = native();
    n.alloc(100, false, 1, 0);
    expect(Object.keys(n.stats())).toEqual([...NATIVE_STATS_FIELDS]);
    // The pool counts what the program holds itself: the allocator does not report it.
    expect(n.stats()).not.toHaveProperty('usedBytes');
    expect(n.stats()).not.toHaveProperty('totalAllocations');
  });
});

describe("the allocator's statuses each mean one thing", () => {
  it('alloc() over maxBytes is TooLarge, align above the page size BadAlign, and neither changes the stats', () => {
    const n = native();
    n.alloc(16, false, 1, 0);
    const before = n.stats();
    expect(n.alloc(2048 * MiB, false, 2, 0)).toBe(NativeStatus.TooLarge);
    expect(n.alloc(100, false, 3, binding.pageSize * 2)).toBe(NativeStatus.BadAlign);
    expect(n.alloc(2 * MiB, false, 4, binding.pageSize * 2)).toBe(NativeStatus.BadAlign);
    expect(n.stats()).toEqual(before);
  });
});

describe('NativePool.dump()', () => {
  it('returns plain objects (no JSON text): every chunk with its runs, every huge mapping, every live allocation', () => {
    const n = native();
    const small = n.alloc(100, false, 7, 0);
    const large = n.alloc(40000, false, 8, 0);
    const huge = n.alloc(2 * MiB + 1, false, 9, 0);
    const d = n.dump();
    expect(typeof d).toBe('object');
    expect(Object.keys(d)).toEqual(['pageSize', 'chunkSize', 'hugeThreshold', 'spareBytes', 'chunks', 'huge', 'allocations']);
    expect(d).toMatchObject({ pageSize: binding.pageSize, chunkSize: 4 * MiB, hugeThreshold: 1 * MiB, spareBytes: 0 });
    expect(d.chunks).toHaveLength(1);
    const kinds = d.chunks[0].runs.map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['slab', 'large', 'free']));
    expect(d.chunks[0].runs.find((r) => r.kind === 'free')).toEqual({ page: expect.any(Number), pages: expect.any(Number), kind: 'free' });
    expect(d.huge).toEqual([{ id: segmentOf(huge), size: 2 * MiB + 1, mappedBytes: expect.any(Number) }]);
    const bySerial = new Map(d.allocations.map((a) => [a.serial, a]));
    expect(bySerial.get(7)).toEqual({ segment: segmentOf(small), offset: offsetOf(small), size: 100, classSize: 112, serial: 7, ageMs: expect.any(Number) });
    expect(bySerial.get(8)).toMatchObject({ segment: segmentOf(large), offset: offsetOf(large), size: 40000, serial: 8 });
    expect(bySerial.get(9)).toMatchObject({ segment: segmentOf(huge), offset: 0, size: 2 * MiB + 1, classSize: null, serial: 9 });
  });
});

describe('new NativePool(options)', () => {
  it('throws a TypeError for malformed options instead of aborting', () => {
    const bad: unknown[] = [undefined, 42, {}, { ...OPTIONS, backing: 1 }, { ...OPTIONS, chunkSize: '4' }, { ...OPTIONS, maxBytes: undefined }];
    for (const options of bad) {
      expect(() => new binding.NativePool(options as NativePoolOptions)).toThrow(TypeError);
    }
    native();  // and the well-formed one works
  });
});

describe("the allocator's side of the block cache (NativePool setScratch, refill, flush)", () => {
  it('setScratch() takes a Float64Array and nothing else', () => {
    const n = native();
    for (const bad of [new Uint8Array(16), new Float32Array(16), new BigInt64Array(4), new ArrayBuffer(64), {}, undefined]) {
      expect(n.setScratch(bad as Float64Array)).toBe(false);
    }
    expect(n.setScratch(new Float64Array(16))).toBe(true);
  });

  it('refill() writes the handles it brings into the scratch array; flush() takes blocks back from it', () => {
    const n = native();
    const scratch = new Float64Array(16);
    n.setScratch(scratch);
    expect(n.refill(64, 3, 0, true, 0)).toBe(3);
    const handles = Array.from(scratch.subarray(0, 3));
    expect(new Set(handles).size).toBe(3);
    for (const h of handles) expect(h).toBeGreaterThanOrEqual(0);
    expect(live(n)).toBe(3);
    handles.forEach((h, i) => scratch.set([h, 64], 2 * i));
    expect(n.flush(3)).toBe(0);
    expect(live(n)).toBe(0);
    // refill() gives back what it is handed first, then brings new blocks.
    expect(n.refill(64, 2, 0, true, 0)).toBe(2);
    const [a, b] = scratch;
    scratch.set([a, 64]);
    expect(n.refill(64, 1, 1, true, 0)).toBe(1);
    expect(live(n)).toBe(2);
    expect([a, b]).toContain(scratch[0]);  // the freed block came straight back
  });

  it('refill() without a scratch array brings nothing and changes nothing', () => {
    const n = native();
    expect(n.refill(64, 3, 0, true, 0)).toBe(0);
    expect(n.flush(3)).toBe(0);
    expect(live(n)).toBe(0);
    expect(n.stats().chunks).toBe(0);
  });

  it('each pool writes into its own scratch array', () => {
    const n1 = native();
    const n2 = native();
    const s1 = new Float64Array(8);
    const s2 = new Float64Array(8);
    n1.setScratch(s1);
    n2.setScratch(s2);
    expect(n1.refill(64, 2, 0, true, 0)).toBe(2);
    const before = Array.from(s1);
    expect(n2.refill(4096, 4, 0, true, 0)).toBe(4);
    expect(Array.from(s1)).toEqual(before);
    expect(s2.subarray(0, 4).every((h) => h >= 0)).toBe(true);
  });
});
