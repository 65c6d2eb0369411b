// ObjectPool: reuse, the idle cap, release() errors, leases, stats, close().
import { describe, expect, it } from 'vitest';

import { PoolError } from '../lib/errors.js';
import { ObjectPool, type ObjectPoolStats } from '../lib/object-pool.js';
import { expectThrow } from './helpers.js';

interface Thing {
  id: number;
  data: number[];
}

/** A pool of Things numbered in the order the factory made them. */
function things(options?: { max?: number; reset?: (t: Thing) => void; name?: string }): ObjectPool<Thing> {
  let next = 0;
  return new ObjectPool<Thing>(() => ({ id: next++, data: [] }), options);
}

/** created === idle + inUse + dropped, and inUse === acquired - released, whatever happened. */
function expectBalanced(s: ObjectPoolStats): void {
  expect(s.created).toBe(s.idle + s.inUse + s.dropped);
  expect(s.inUse).toBe(s.acquired - s.released);
}

describe('ObjectPool constructor', () => {
  it('a factory that is not a function throws TypeError ERR_INVALID_ARG_TYPE', () => {
    for (const bad of [undefined, null, 1, 'f', {}, [() => ({})]]) {
      expectThrow(() => new ObjectPool(bad as unknown as () => object), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
  });

  it('options that are not an object throw TypeError ERR_INVALID_ARG_TYPE', () => {
    for (const bad of [null, 1, 'x', true]) {
      expectThrow(() => new ObjectPool(() => ({}), bad as unknown as object), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
  });

  it('max that is not a positive integer or Infinity throws RangeError ERR_OUT_OF_RANGE', () => {
    for (const bad of [0, -1, 1.5, NaN, -Infinity, 2 ** 53]) {
      const err = expectThrow(() => new ObjectPool(() => ({}), { max: bad }), RangeError, 'ERR_OUT_OF_RANGE');
      expect(err.message).toContain('"options.max"');
    }
  });

  it('max that is not a number throws TypeError ERR_INVALID_ARG_TYPE', () => {
    for (const bad of ['3', 3n, null, {}]) {
      expectThrow(() => new ObjectPool(() => ({}), { max: bad as unknown as number }), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
  });

  it('reset that is not a function throws TypeError ERR_INVALID_ARG_TYPE', () => {
    for (const bad of [null, 1, 'reset', {}]) {
      const err = expectThrow(
        () => new ObjectPool(() => ({}), { reset: bad as unknown as () => void }),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      expect(err.message).toContain('"options.reset" property');
    }
  });

  it('name that is not a string throws TypeError ERR_INVALID_ARG_TYPE', () => {
    expectThrow(() => new ObjectPool(() => ({}), { name: 7 as unknown as string }), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('valid options are accepted and shown by stats(); the defaults are max Infinity and name "default"', () => {
    expect(new ObjectPool(() => ({})).stats()).toMatchObject({ name: 'default', max: Infinity });
    expect(new ObjectPool(() => ({}), {}).stats()).toMatchObject({ name: 'default', max: Infinity });
    const pool = new ObjectPool(() => ({}), { max: 1, name: 'things', reset: () => {} });
    expect(pool.stats()).toMatchObject({ name: 'things', max: 1 });
    expect(pool.name).toBe('things');
    expect(new ObjectPool(() => ({}), { max: Infinity }).stats().max).toBe(Infinity);
  });

  it('the constructor does not call the factory', () => {
    let calls = 0;
    const pool = new ObjectPool(() => ({ n: calls++ }));
    expect(calls).toBe(0);
    expect(pool.stats().created).toBe(0);
  });
});

describe('ObjectPool acquire() and release()', () => {
  it('acquire() with nothing idle returns a new object from the factory', () => {
    const pool = things();
    const a = pool.acquire();
    const b = pool.acquire();
    expect(a.id).toBe(0);
    expect(b.id).toBe(1);
    expect(a).not.toBe(b);
  });

  it('acquire() after release() returns the same object, without calling the factory', () => {
    let calls = 0;
    const pool = new ObjectPool(() => ({ n: calls++ }));
    const a = pool.acquire();
    pool.release(a);
    expect(pool.acquire()).toBe(a);
    expect(calls).toBe(1);
  });

  it('release() calls reset once with the released object, before it is handed out again', () => {
    const seen: Thing[] = [];
    const pool = things({
      reset: (t) => {
        seen.push(t);
        t.data.length = 0;
      },
    });
    const a = pool.acquire();
    a.data.push(1, 2, 3);
    expect(seen).toEqual([]);
    pool.release(a);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(a);
    const again = pool.acquire();
    expect(again).toBe(a);
    expect(again.data).toEqual([]);
  });

  it('acquire() does not call reset', () => {
    let resets = 0;
    const pool = things({ reset: () => void resets++ });
    pool.acquire();
    pool.acquire();
    expect(resets).toBe(0);
  });

  it('idle objects are handed out last released, first acquired (LIFO)', () => {
    const pool = things();
    const [a, b, c] = [pool.acquire(), pool.acquire(), pool.acquire()];
    pool.release(a);
    pool.release(b);
    pool.release(c);
    expect(pool.acquire()).toBe(c);
    expect(pool.acquire()).toBe(b);
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire().id).toBe(3);
  });

  it('release() keeps at most max objects idle and drops the rest', () => {
    const pool = things({ max: 2 });
    const out = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    for (const t of out) pool.release(t);
    expect(pool.stats()).toMatchObject({ idle: 2, inUse: 0, dropped: 2, released: 4 });
    // The first two released were kept; the last two were dropped.
    const again = [pool.acquire(), pool.acquire()];
    expect(again).toContain(out[0]);
    expect(again).toContain(out[1]);
    expect(pool.acquire().id).toBe(4);
  });

  it('reset is called also for an object dropped because max are idle', () => {
    const seen: Thing[] = [];
    const pool = things({ max: 1, reset: (t) => void seen.push(t) });
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b);
    expect(seen).toEqual([a, b]);
    expect(pool.stats()).toMatchObject({ idle: 1, dropped: 1 });
  });

  it('an object dropped for lack of room is not handed out again', () => {
    const pool = things({ max: 1 });
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b);
    const seen = new Set([pool.acquire(), pool.acquire(), pool.acquire()]);
    expect(seen.has(a)).toBe(true);
    expect(seen.has(b)).toBe(false);
  });

  it('release() of an object already released throws PoolError ERR_DOUBLE_FREE', () => {
    const pool = things();
    const a = pool.acquire();
    pool.release(a);
    const err = expectThrow(() => pool.release(a), PoolError, 'ERR_DOUBLE_FREE');
    expect(err.message).toContain('already released');
  });

  it('release() of an object released and dropped throws ERR_DOUBLE_FREE too', () => {
    const pool = things({ max: 1 });
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b); // dropped: one is idle already
    expectThrow(() => pool.release(b), PoolError, 'ERR_DOUBLE_FREE');
  });

  it('a refused release() changes nothing: the idle object is not kept twice', () => {
    const pool = things();
    const a = pool.acquire();
    pool.release(a);
    const before = pool.stats();
    expectThrow(() => pool.release(a), PoolError, 'ERR_DOUBLE_FREE');
    expect(pool.stats()).toEqual(before);
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire()).not.toBe(a);
  });

  it('release() of an object that never came from this pool throws PoolError ERR_FOREIGN_BUFFER', () => {
    const pool = things();
    pool.acquire();
    const err = expectThrow(() => pool.release({ id: 0, data: [] }), PoolError, 'ERR_FOREIGN_BUFFER');
    expect(err.message).toContain('not handed out by object pool "default"');
    expect(pool.stats()).toMatchObject({ inUse: 1, released: 0 });
  });

  it('release() of an object from another pool throws ERR_FOREIGN_BUFFER', () => {
    const one = things({ name: 'one' });
    const two = things({ name: 'two' });
    const a = one.acquire();
    expectThrow(() => two.release(a), PoolError, 'ERR_FOREIGN_BUFFER');
    one.release(a);
  });

  it('release() of a non-object throws TypeError ERR_INVALID_ARG_TYPE', () => {
    const pool = things();
    pool.acquire();
    for (const bad of [undefined, null, 0, 'thing', true, Symbol('x'), 1n]) {
      const err = expectThrow(() => pool.release(bad as unknown as Thing), TypeError, 'ERR_INVALID_ARG_TYPE');
      expect(err.message).toContain('"obj" argument');
    }
  });

  it('functions are objects: a pool of functions hands them out and takes them back', () => {
    const pool = new ObjectPool(() => () => 42);
    const f = pool.acquire();
    expect(f()).toBe(42);
    pool.release(f);
    expect(pool.acquire()).toBe(f);
    expectThrow(() => pool.release(() => 42), PoolError, 'ERR_FOREIGN_BUFFER');
  });

  it('an error from the factory propagates from acquire() and changes nothing', () => {
    let fail = true;
    const pool = new ObjectPool(() => {
      if (fail) throw new Error('no more things');
      return {};
    });
    expect(() => pool.acquire()).toThrow('no more things');
    expect(pool.stats()).toMatchObject({ created: 0, acquired: 0, inUse: 0 });
    fail = false;
    pool.acquire();
    expect(pool.stats()).toMatchObject({ created: 1, acquired: 1, inUse: 1 });
  });

  it('a factory that returns a non-object makes acquire() throw TypeError ERR_INVALID_RETURN_VALUE', () => {
    for (const bad of [undefined, null, 3, 'x']) {
      const pool = new ObjectPool(() => bad as unknown as object);
      expectThrow(() => pool.acquire(), TypeError, 'ERR_INVALID_RETURN_VALUE');
      expect(pool.stats()).toMatchObject({ created: 0, acquired: 0, inUse: 0 });
    }
  });

  it('a factory that returns an object this pool has out makes acquire() throw ERR_INVALID_RETURN_VALUE', () => {
    const only = {};
    const pool = new ObjectPool(() => only);
    expect(pool.acquire()).toBe(only);
    expectThrow(() => pool.acquire(), TypeError, 'ERR_INVALID_RETURN_VALUE');
    expect(pool.stats()).toMatchObject({ created: 1, acquired: 1, inUse: 1 });
    pool.release(only);
    expect(pool.acquire()).toBe(only);
  });
});

describe('ObjectPool reset that throws', () => {
  it('the error propagates from release(), the object counts as released and is dropped', () => {
    const boom = new Error('cannot reset');
    const pool = things({ reset: () => { throw boom; } });
    const a = pool.acquire();
    expect(() => pool.release(a)).toThrow(boom);
    expect(pool.stats()).toMatchObject({ idle: 0, inUse: 0, released: 1, dropped: 1 });
    expectBalanced(pool.stats());
  });

  it('the dropped object is not handed out again', () => {
    let failNext = true;
    const pool = things({
      reset: () => {
        if (failNext) throw new Error('cannot reset');
      },
    });
    const a = pool.acquire();
    expect(() => pool.release(a)).toThrow('cannot reset');
    failNext = false;
    const b = pool.acquire();
    expect(b).not.toBe(a);
    expect(b.id).toBe(1);
  });

  it('releasing the object again throws ERR_DOUBLE_FREE', () => {
    const pool = things({ reset: () => { throw new Error('cannot reset'); } });
    const a = pool.acquire();
    expect(() => pool.release(a)).toThrow('cannot reset');
    expectThrow(() => pool.release(a), PoolError, 'ERR_DOUBLE_FREE');
  });
});

describe('ObjectPool lease()', () => {
  it('`using` releases the leased object at the end of the block', () => {
    let resets = 0;
    const pool = things({ reset: () => void resets++ });
    let held: Thing;
    {
      using lease = pool.lease();
      held = lease.value;
      expect(pool.stats().inUse).toBe(1);
      expect(resets).toBe(0);
    }
    expect(resets).toBe(1);
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 1, released: 1 });
    expect(pool.acquire()).toBe(held);
  });

  it('`using` releases the leased object when the block throws', () => {
    const pool = things();
    let held: Thing | undefined;
    expect(() => {
      using lease = pool.lease();
      held = lease.value;
      throw new Error('boom');
    }).toThrow('boom');
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 1 });
    expect(pool.acquire()).toBe(held);
  });

  it('lease().value is an object acquired like acquire() would (idle first)', () => {
    const pool = things();
    const a = pool.acquire();
    pool.release(a);
    const lease = pool.lease();
    expect(lease.value).toBe(a);
    expect(pool.stats()).toMatchObject({ inUse: 1, acquired: 2 });
  });

  it('[Symbol.dispose]() releases once; a second call is quiet and changes nothing', () => {
    let resets = 0;
    const pool = things({ reset: () => void resets++ });
    const lease = pool.lease();
    lease[Symbol.dispose]();
    const after = pool.stats();
    expect(after).toMatchObject({ inUse: 0, idle: 1, released: 1 });
    expect(() => lease[Symbol.dispose]()).not.toThrow();
    expect(pool.stats()).toEqual(after);
    expect(resets).toBe(1);
  });

  it('disposing a lease whose object was released by hand is quiet', () => {
    const pool = things();
    const lease = pool.lease();
    pool.release(lease.value);
    expect(() => lease[Symbol.dispose]()).not.toThrow();
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 1, released: 1 });
  });

  it('disposing a stale lease does not take the object back from its new holder', () => {
    const pool = things();
    const lease = pool.lease();
    const obj = lease.value;
    pool.release(obj);
    const again = pool.acquire(); // the same object, someone else's now
    expect(again).toBe(obj);
    lease[Symbol.dispose]();
    expect(pool.stats()).toMatchObject({ inUse: 1, idle: 0 });
    pool.release(again); // still out, so this is not a double free
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 1 });
  });

  it('lease() on a closed pool throws ERR_POOL_CLOSED', () => {
    const pool = things();
    pool.close();
    const err = expectThrow(() => pool.lease(), PoolError, 'ERR_POOL_CLOSED');
    expect(err.message).toContain('lease()');
  });

  it('disposing a lease after close() drops its object without error', () => {
    const pool = things();
    const lease = pool.lease();
    pool.close();
    expect(() => lease[Symbol.dispose]()).not.toThrow();
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 0, dropped: 1 });
  });

  it('an error from reset propagates from the lease\'s dispose, and a second dispose is quiet', () => {
    const pool = things({ reset: () => { throw new Error('cannot reset'); } });
    const lease = pool.lease();
    expect(() => lease[Symbol.dispose]()).toThrow('cannot reset');
    expect(() => lease[Symbol.dispose]()).not.toThrow();
    expect(pool.stats()).toMatchObject({ inUse: 0, idle: 0, released: 1, dropped: 1 });
  });
});

describe('ObjectPool stats()', () => {
  it('counts created, acquired, released, dropped, idle and inUse', () => {
    const pool = things({ max: 1, name: 'counted' });
    expect(pool.stats()).toEqual({
      name: 'counted', idle: 0, inUse: 0, created: 0, acquired: 0, released: 0, dropped: 0, max: 1,
    });
    const a = pool.acquire();
    const b = pool.acquire();
    expect(pool.stats()).toEqual({
      name: 'counted', idle: 0, inUse: 2, created: 2, acquired: 2, released: 0, dropped: 0, max: 1,
    });
    pool.release(a); // kept
    pool.release(b); // dropped: max is 1
    expect(pool.stats()).toEqual({
      name: 'counted', idle: 1, inUse: 0, created: 2, acquired: 2, released: 2, dropped: 1, max: 1,
    });
    const c = pool.acquire(); // reused, not created
    expect(c).toBe(a);
    expect(pool.stats()).toEqual({
      name: 'counted', idle: 0, inUse: 1, created: 2, acquired: 3, released: 2, dropped: 1, max: 1,
    });
    pool.release(c);
    pool.close(); // the idle one is dropped
    expect(pool.stats()).toEqual({
      name: 'counted', idle: 0, inUse: 0, created: 2, acquired: 3, released: 3, dropped: 2, max: 1,
    });
  });

  it('stays balanced through a mixed run of acquires, releases, failed releases and a close', () => {
    let n = 0;
    const pool = things({
      max: 3,
      reset: (t) => {
        if (t.id % 5 === 4) throw new Error('odd one out');
      },
    });
    const out: Thing[] = [];
    for (let i = 0; i < 200; i++) {
      if (out.length === 0 || (i * 7919) % 3 !== 0) out.push(pool.acquire());
      else {
        const t = out.splice((i * 31) % out.length, 1)[0]!;
        try {
          pool.release(t);
        } catch {
          n++;
        }
      }
      expectBalanced(pool.stats());
    }
    expect(n).toBeGreaterThan(0);
    pool.close();
    for (const t of out) {
      try {
        pool.release(t);
      } catch {
        // reset's own error: the object still counts as released
      }
    }
    const s = pool.stats();
    expectBalanced(s);
    expect(s).toMatchObject({ idle: 0, inUse: 0, dropped: s.created });
  });

  it('returns a fresh object each call (changing it does not change the pool)', () => {
    const pool = things();
    const s = pool.stats();
    s.idle = 99;
    expect(pool.stats().idle).toBe(0);
  });
});

describe('ObjectPool close()', () => {
  it('close() drops the idle objects and sets closed', () => {
    const pool = things();
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b);
    expect(pool.closed).toBe(false);
    pool.close();
    expect(pool.closed).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 0, dropped: 2 });
  });

  it('acquire() after close() throws PoolError ERR_POOL_CLOSED and does not call the factory', () => {
    let calls = 0;
    const pool = new ObjectPool(() => ({ n: calls++ }));
    pool.release(pool.acquire());
    pool.close();
    const err = expectThrow(() => pool.acquire(), PoolError, 'ERR_POOL_CLOSED');
    expect(err.message).toContain('acquire()');
    expect(calls).toBe(1);
    expect(pool.stats().acquired).toBe(1);
  });

  it('release() after close() of an object still out drops it without error, after reset', () => {
    const seen: Thing[] = [];
    const pool = things({ reset: (t) => void seen.push(t) });
    const a = pool.acquire();
    pool.close();
    expect(() => pool.release(a)).not.toThrow();
    expect(seen).toEqual([a]);
    expect(pool.stats()).toMatchObject({ idle: 0, inUse: 0, released: 1, dropped: 1 });
  });

  it('release() after close() still refuses a double release and a foreign object', () => {
    const pool = things();
    const a = pool.acquire();
    pool.close();
    pool.release(a);
    expectThrow(() => pool.release(a), PoolError, 'ERR_DOUBLE_FREE');
    expectThrow(() => pool.release({ id: 9, data: [] }), PoolError, 'ERR_FOREIGN_BUFFER');
    expectThrow(() => pool.release(1 as unknown as Thing), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('close() is idempotent', () => {
    const pool = things();
    pool.release(pool.acquire());
    pool.close();
    const after = pool.stats();
    expect(() => pool.close()).not.toThrow();
    expect(pool.stats()).toEqual(after);
    expect(pool.closed).toBe(true);
  });

  it('[Symbol.dispose]() closes the pool', () => {
    const pool = things();
    pool.release(pool.acquire());
    pool[Symbol.dispose]();
    expect(pool.closed).toBe(true);
    expect(pool.stats().idle).toBe(0);
  });

  it('`using` closes the pool at the end of the block', () => {
    let escaped: ObjectPool<Thing>;
    {
      using pool = things();
      escaped = pool;
      pool.release(pool.acquire());
    }
    expect(escaped.closed).toBe(true);
    expect(escaped.stats()).toMatchObject({ idle: 0, dropped: 1 });
    expectThrow(() => escaped.acquire(), PoolError, 'ERR_POOL_CLOSED');
  });

  it('stats() works after close()', () => {
    const pool = things({ name: 'after' });
    pool.acquire();
    pool.close();
    expect(pool.stats()).toMatchObject({ name: 'after', inUse: 1, created: 1 });
  });
});
