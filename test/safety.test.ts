// Lifetime safety that the core pool already promises: stale Buffers, views
// that are not the object handed out, transfers, and room made under maxBytes.
import { MessageChannel } from 'node:worker_threads';

import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError } from '../lib/index.js';
import { KiB, MiB, make } from './helpers.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as PoolError).code;
  }
  return undefined;
}

describe('stale Buffers', () => {
  for (const [label, size] of [['small', 40], ['large', 100 * KiB]] as const) {
    it(`release(), retain() and refCount() of a stale ${label} Buffer throw ERR_DOUBLE_FREE and leave the new owner alone`, () => {
      const pool = make();
      const stale = pool.allocUnsafe(size);
      pool.free(stale);
      const owner = pool.alloc(size).fill(0x5a);
      expect(owner.buffer === stale.buffer && owner.byteOffset === stale.byteOffset, 'slot reused (precondition)').toBe(true);
      expect(codeOf(() => pool.retain(stale))).toBe('ERR_DOUBLE_FREE');
      expect(codeOf(() => pool.release(stale))).toBe('ERR_DOUBLE_FREE');
      expect(codeOf(() => pool.refCount(stale))).toBe('ERR_DOUBLE_FREE');
      expect(pool.owns(stale)).toBe(false);
      expect(pool.refCount(owner)).toBe(1);
      expect(pool.stats().liveAllocations).toBe(1);
      expect(owner.every((b) => b === 0x5a)).toBe(true);
    });
  }
});

describe('views that are not the Buffer handed out', () => {
  it('a Uint8Array over exactly the bytes of a live allocation is refused with ERR_FOREIGN_BUFFER', () => {
    const pool = make();
    const buf = pool.alloc(64);
    const alias = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    expect(codeOf(() => pool.free(alias))).toBe('ERR_FOREIGN_BUFFER');
    expect(pool.owns(alias)).toBe(false);
    expect(pool.owns(buf)).toBe(true);
    pool.free(buf);
    expect(pool.stats().liveAllocations).toBe(0);
  });
});

describe('from() follows Buffer.from', () => {
  it('a null or empty encoding means utf8', () => {
    const pool = make();
    expect(pool.from('héllo', null as unknown as BufferEncoding).equals(Buffer.from('héllo'))).toBe(true);
    expect(pool.from('héllo', '' as BufferEncoding).equals(Buffer.from('héllo'))).toBe(true);
  });

  it('a String object is copied as its string', () => {
    const pool = make();
    // eslint-disable-next-line no-new-wrappers
    const buf = pool.from(new String('ab') as unknown as string);
    expect([...buf]).toEqual([0x61, 0x62]);
  });
});

describe('transfers', () => {
  it('postMessage(buf, [buf.buffer]) cannot detach a chunk under other allocations', async () => {
    const pool = make();
    const a = pool.from('first');
    const b = pool.from('second');
    const { port1, port2 } = new MessageChannel();
    try {
      // Node 20 leaves an untransferable buffer out of the transfer list;
      // later versions throw DataCloneError. Either way nothing is detached.
      try {
        port1.postMessage(a, [a.buffer as ArrayBuffer]);
      } catch (err) {
        expect((err as Error).name).toBe('DataCloneError');
      }
      expect(a.buffer.byteLength).toBeGreaterThan(0);
      expect(a.toString()).toBe('first');
      expect(b.toString()).toBe('second');
      pool.free(a);
      pool.free(b);
    } finally {
      port1.close();
      port2.close();
    }
  });
});

describe('maxBytes', () => {
  it('after ERR_POOL_EXHAUSTED, freeing everything makes room for a huge allocation without trim()', () => {
    const pool = make({ chunkSize: 256 * KiB, hugeThreshold: 64 * KiB, maxBytes: 2 * MiB });
    const held: Buffer[] = [];
    let code: string | undefined;
    for (;;) {
      code = codeOf(() => held.push(pool.allocUnsafe(100 * KiB / 2)));
      if (code !== undefined) break;
    }
    expect(code).toBe('ERR_POOL_EXHAUSTED');
    expect(pool.stats().chunks).toBeGreaterThan(1);
    for (const buf of held) pool.free(buf);
    const huge = pool.alloc(2 * MiB - 64 * KiB);
    expect(huge.length).toBe(2 * MiB - 64 * KiB);
    expect(pool.stats().chunks).toBe(0);
    // Views of the chunks given back to make room were detached.
    expect(held[0].length).toBe(0);
    expect(codeOf(() => pool.free(held[0]))).toBe('ERR_DOUBLE_FREE');
    pool.free(huge);
    expect(pool.alloc(10).length).toBe(10);
  });
});
