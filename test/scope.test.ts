// Scope: allocations that go back to the pool together (close() or `using`).
import { afterEach, describe, expect, it } from 'vitest';

import { Pool, PoolError, Scope, type PoolOptions } from '../lib/index.js';
import { expectThrow, KiB, MiB, make } from './helpers.js';

function expectPoolError(fn: () => unknown, code: string): void {
  expectThrow(fn, PoolError, code);
}

describe('Scope', () => {
  it('pool.scope() returns an open Scope', () => {
    const scope = make().scope();
    expect(scope).toBeInstanceOf(Scope);
    expect(scope.closed).toBe(false);
  });

  it('buffers from scope.alloc(), allocUnsafe() and from() are released by close(); the pool\'s own are not', () => {
    const pool = make();
    const outside = pool.from('outside');
    const scope = pool.scope();
    const a = scope.alloc(40);
    const b = scope.allocUnsafe(100 * KiB);
    const c = scope.from('in the scope');
    const d = scope.from([1, 2, 3]);
    const h = scope.alloc(2 * MiB);
    expect(a.length).toBe(40);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.length).toBe(100 * KiB);
    expect(c.toString()).toBe('in the scope');
    expect([...d]).toEqual([1, 2, 3]);
    for (const buf of [a, b, c, d, h]) expect(pool.owns(buf)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(6);

    scope.close();
    expect(scope.closed).toBe(true);
    for (const buf of [a, b, c, d, h]) expect(pool.owns(buf)).toBe(false);
    const s = pool.stats();
    expect(s.liveAllocations).toBe(1);
    expect(s.usedBytes).toBe(outside.length);
    expect(s.hugeAllocations).toBe(0);
    expect(h.length).toBe(0); // a huge buffer's view is detached when it goes
    expect(pool.owns(outside)).toBe(true);
    expect(outside.toString()).toBe('outside');
    expect(() => pool.free(a)).toThrow(PoolError);
  });

  it('close() twice is quiet and frees nothing more', () => {
    const pool = make();
    const scope = pool.scope();
    scope.alloc(16);
    scope.close();
    const frees = pool.stats().totalFrees;
    expect(() => scope.close()).not.toThrow();
    expect(pool.stats().totalFrees).toBe(frees);
  });

  it('a scope buffer freed individually before close() is skipped, and the others are still released', () => {
    const pool = make();
    const scope = pool.scope();
    const a = scope.alloc(64);
    const b = scope.alloc(64);
    const h = scope.alloc(2 * MiB);
    pool.free(a);
    pool.free(h);
    expect(() => scope.close()).not.toThrow();
    expect(pool.owns(b)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(0);
    expect(pool.stats().totalFrees).toBe(3);
  });

  it('a scope buffer freed individually whose memory was then handed out again is skipped: close() leaves the new owner alive', () => {
    const pool = make();
    const scope = pool.scope();
    const a = scope.alloc(64);
    pool.free(a);
    const other = pool.alloc(64).fill(0x42); // not the scope's
    expect(other.buffer === a.buffer && other.byteOffset === a.byteOffset, 'slot reused (precondition)').toBe(true);
    scope.close();
    expect(pool.owns(other)).toBe(true);
    expect(pool.stats().liveAllocations).toBe(1);
    expect(other.every((x) => x === 0x42)).toBe(true);
  });

  it('close() after the pool closed is quiet', () => {
    const pool = make();
    const scope = pool.scope();
    const a = scope.alloc(64);
    pool.close();
    expect(() => scope.close()).not.toThrow();
    expect(scope.closed).toBe(true);
    expect(a.length).toBe(0);
  });

  it('close() after pool.reset() is quiet', () => {
    const pool = make();
    const scope = pool.scope();
    scope.alloc(64);
    scope.alloc(2 * MiB);
    pool.reset();
    expect(() => scope.close()).not.toThrow();
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('a buffer someone retained survives the scope\'s close() (refCount 2 -> 1) until its last release()', () => {
    const pool = make();
    const scope = pool.scope();
    const kept = scope.from('kept');
    const dropped = scope.alloc(8);
    expect(pool.retain(kept)).toBe(2);
    scope.close();
    expect(pool.owns(dropped)).toBe(false);
    expect(pool.owns(kept)).toBe(true);
    expect(pool.refCount(kept)).toBe(1);
    expect(kept.toString()).toBe('kept');
    expect(pool.release(kept)).toBe(true);
    expect(pool.owns(kept)).toBe(false);
  });

  it('a retained huge buffer survives the scope\'s close() with its view attached', () => {
    const pool = make();
    const scope = pool.scope();
    const big = scope.alloc(2 * MiB).fill(7);
    pool.retain(big);
    scope.close();
    expect(big.length).toBe(2 * MiB);
    expect(big[2 * MiB - 1]).toBe(7);
    expect(pool.refCount(big)).toBe(1);
  });

  it.each([
    ['alloc(16)', (s: Scope) => s.alloc(16)],
    ['allocUnsafe(16)', (s: Scope) => s.allocUnsafe(16)],
    ["from('x')", (s: Scope) => s.from('x')],
  ])('%s on a closed scope throws PoolError ERR_POOL_CLOSED and allocates nothing', (_label, call) => {
    const pool = make();
    const scope = pool.scope();
    scope.close();
    expectPoolError(() => call(scope), 'ERR_POOL_CLOSED');
    expect(pool.stats().totalAllocations).toBe(0);
  });

  it('alloc on a scope whose pool closed throws PoolError ERR_POOL_CLOSED', () => {
    const pool = make();
    const scope = pool.scope();
    pool.close();
    expectPoolError(() => scope.alloc(16), 'ERR_POOL_CLOSED');
    expectPoolError(() => scope.from('x'), 'ERR_POOL_CLOSED');
  });

  it('a failed scope.alloc() records nothing and close() still releases the rest', () => {
    const pool = make();
    const scope = pool.scope();
    const a = scope.alloc(16);
    expect(() => scope.alloc(-1)).toThrow(RangeError);
    expect(() => scope.from(5 as unknown as string)).toThrow(TypeError);
    expect(() => scope.close()).not.toThrow();
    expect(pool.owns(a)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('two scopes of one pool release only their own buffers', () => {
    const pool = make();
    const s1 = pool.scope();
    const s2 = pool.scope();
    const a = s1.alloc(32);
    const b = s2.alloc(32);
    s1.close();
    expect(pool.owns(a)).toBe(false);
    expect(pool.owns(b)).toBe(true);
    s2.close();
    expect(pool.owns(b)).toBe(false);
  });

  it('`using` releases the scope\'s buffers at the end of the block', () => {
    const pool = make();
    let a: Buffer;
    let escaped: Scope;
    {
      using scope = pool.scope();
      escaped = scope;
      a = scope.alloc(64);
      expect(pool.owns(a)).toBe(true);
    }
    expect(escaped.closed).toBe(true);
    expect(pool.owns(a)).toBe(false);
    expect(pool.stats().liveAllocations).toBe(0);
  });

  it('[Symbol.dispose]() closes the scope', () => {
    const pool = make();
    const scope = pool.scope();
    const a = scope.alloc(64);
    scope[Symbol.dispose]();
    expect(scope.closed).toBe(true);
    expect(pool.owns(a)).toBe(false);
  });

  it('`using` releases the scope\'s buffers when the block throws', () => {
    const pool = make();
    let a: Buffer | undefined;
    expect(() => {
      using scope = pool.scope();
      a = scope.alloc(64);
      throw new Error('boom');
    }).toThrow('boom');
    expect(a).toBeDefined();
    expect(pool.owns(a!)).toBe(false);
  });
});
