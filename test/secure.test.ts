// Secure pools (`secure: true`): memory locked in RAM, left out of core
// dumps, followed by an inaccessible guard page, and wiped when freed.
// What the kernel sees (/proc/self/maps, smaps, VmLck) and what a too-low
// locked-memory limit does are checked in child processes
// (test/fixtures/secure.js), which load the compiled library
// (dist/lib/index.js, written by `tsc -p tsconfig.json`, which `npm test`
// runs first) through MMAP_POOL_LIB.
import * as fs from 'node:fs';
import * as os from 'node:os';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Pool, type PoolOptions } from '../lib/index.js';
import { LIB, resultOf, run, type Outcome } from './fixture-run.js';
import { KiB, MiB, allZero, expectThrow } from './helpers.js';

const linux = process.platform === 'linux';

const pools: Pool[] = [];
// Small chunks keep the locked total far below any usual RLIMIT_MEMLOCK.
function secure(options?: PoolOptions): Pool {
  const pool = new Pool({ secure: true, chunkSize: 256 * KiB, name: 'secure', ...options });
  pools.push(pool);
  return pool;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

// Every secure allocation has an ArrayBuffer of its own: where it sits is
// told by dump() ('segment:offset'), not by buf.buffer.
function places(pool: Pool): string[] {
  return pool.dump().allocations.map((a) => `${a.segment}:${a.offset}`);
}

/** What `make` returns, with the place of the one allocation it adds. */
function placed<T>(pool: Pool, make: () => T): [T, string] {
  const before = new Set(places(pool));
  const value = make();
  const added = places(pool).filter((p) => !before.has(p));
  expect(added, 'one allocation added').toHaveLength(1);
  return [value, added[0]!];
}

describe.each(['anonymous', 'file'] as const)("secure: true, backing '%s'", (backing) => {
  it('data round-trips through small, large and huge allocations', () => {
    const pool = secure({ backing });
    const text = pool.from('correct horse battery staple');
    const large = pool.allocUnsafe(100 * KiB);
    for (let i = 0; i < large.length; i++) large[i] = (i * 7) & 0xff;
    const huge = pool.alloc(MiB + 1).fill(0x3d);
    expect(text.toString()).toBe('correct horse battery staple');
    expect(large.every((b, i) => b === ((i * 7) & 0xff))).toBe(true);
    expect(huge.every((b) => b === 0x3d)).toBe(true);
    expect(pool.stats().secure).toBe(true);
    expect(pool.stats().backing).toBe(backing);
  });

  it.each([
    ['small (40 B)', 40],
    ['small (5000 B)', 5000],
    ['large (100 KiB)', 100 * KiB],
  ])('a freed %s slot comes back zeroed even from allocUnsafe()', (_label, size) => {
    const pool = secure({ backing });
    const keep = pool.alloc(16).fill(1);
    const [dirty, slot] = placed(pool, () => pool.allocUnsafe(size).fill(0xaa));
    pool.free(dirty);
    expect(dirty.length, 'its own ArrayBuffer is detached').toBe(0);
    const [again, slotAgain] = placed(pool, () => pool.allocUnsafe(size));
    expect(slotAgain, 'the slot just freed is reused (precondition)').toBe(slot);
    expect(allZero(again)).toBe(true);
    expect(keep.every((b) => b === 1)).toBe(true);
  });

  it('a smaller allocation in a freed slot sees zeros in all of it', () => {
    const pool = secure({ backing });
    const [dirty, slot] = placed(pool, () => pool.allocUnsafe(48).fill(0xaa));
    pool.free(dirty);
    const [again, slotAgain] = placed(pool, () => pool.allocUnsafe(33));  // same 48-byte class
    expect(slotAgain).toBe(slot);
    expect(allZero(again)).toBe(true);
  });

  it('a slot freed by the last release() comes back zeroed', () => {
    const pool = secure({ backing });
    const [dirty, slot] = placed(pool, () => pool.allocUnsafe(64).fill(0xaa));
    pool.retain(dirty);
    expect(pool.release(dirty)).toBe(false);
    expect(pool.release(dirty)).toBe(true);
    const [again, slotAgain] = placed(pool, () => pool.allocUnsafe(64));
    expect(slotAgain).toBe(slot);
    expect(allZero(again)).toBe(true);
  });

  it('after reset() every slot comes back zeroed from allocUnsafe()', () => {
    const pool = secure({ backing });
    const sizes = [40, 40, 300, 5000, 100 * KiB];
    const dirty = sizes.map((s) => placed(pool, () => pool.allocUnsafe(s).fill(0xaa)));
    pool.reset();
    const again = sizes.map((s) => placed(pool, () => pool.allocUnsafe(s)));
    again.forEach(([b, slot], i) => {
      expect(slot, `allocation ${i} reuses its old slot (precondition)`).toBe(dirty[i]![1]);
      expect(allZero(b), `allocation ${i} (${sizes[i]} B)`).toBe(true);
    });
  });
});

describe('secure: true with other options', () => {
  it('a guarded secure pool wipes a slot on free() and detaches the freed view', () => {
    const pool = secure({ guard: true });
    const dirty = pool.allocUnsafe(64).fill(0xaa);
    const slot = pool.dump().allocations.map((a) => `${a.segment}:${a.offset}`);
    pool.free(dirty);
    expect(dirty.length).toBe(0);
    const again = pool.allocUnsafe(64);
    expect(pool.dump().allocations.map((a) => `${a.segment}:${a.offset}`), 'same slot (precondition)').toEqual(slot);
    expect(allZero(again)).toBe(true);
  });

  it("secure: true with backing 'heap' throws TypeError ERR_INVALID_ARG_VALUE", () => {
    expectThrow(() => new Pool({ secure: true, backing: 'heap' }), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it.each([['yes'], [1]])('secure: %j throws TypeError ERR_INVALID_ARG_TYPE', (value) => {
    expectThrow(() => new Pool({ secure: value as unknown as boolean }), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('stats().secure is true for a secure pool and false otherwise', () => {
    expect(secure().stats().secure).toBe(true);
    const plain = new Pool();
    pools.push(plain);
    expect(plain.stats().secure).toBe(false);
  });
});

// ---- child processes --------------------------------------------------------

interface Mapping {
  start: number;
  size: number;
  perms: string;
  locked: number;
  rss: number;
  vmFlags: string[];
  /** Whether the mapping holds the random bytes written into the pool's Buffer. */
  holdsMarker: boolean;
  next?: { adjacent: boolean; perms: string; size: number; locked: number };
}

interface MapsResult {
  pageSize: number;
  chunkSize: number;
  hugeSize: number;
  chunk: Mapping[];
  huge: Mapping[];
  chunkLockedNow: number | null;
  intact: boolean;
  vmLck: { atStart: number; afterChunk: number; afterHuge: number; afterHugeFree: number; afterClose: number };
}

interface Attempt {
  threw: boolean;
  isPoolError?: boolean;
  name?: string;
  code?: string;
  syscall?: string;
  errno?: number;
  message?: string;
}

interface MemlockResult {
  hasIpcLock: boolean;
  limits: string;
  first: Attempt;
  second: Attempt;
  mappedAfterFailure: number;
  liveAfterFailure: number;
  smallAttempt: Attempt;
  smallWorks: boolean;
  plainWorks: boolean;
}

/** Command prefix: run without CAP_IPC_LOCK (root's way past RLIMIT_MEMLOCK) and with RLIMIT_MEMLOCK at 64 KiB. */
const LOW_MEMLOCK = ['prlimit', '--memlock=65536:65536', 'setpriv', '--inh-caps=-all', '--bounding-set=-ipc_lock'];

describe.runIf(linux)('secure mappings seen from /proc (child process)', () => {
  beforeAll(() => {
    if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
  });

  let maps: MapsResult;
  let outcome: Outcome;
  beforeAll(() => {
    outcome = run('secure.js', ['maps'], { timeout: 30_000 });
    maps = resultOf<MapsResult>(outcome);
  });

  it('the child ends normally with nothing on stderr and the data intact', () => {
    expect(outcome.stderr).toBe('');
    expect(outcome.signal).toBeNull();
    expect(outcome.status).toBe(0);
    expect(maps.intact).toBe(true);
  });

  /**
   * The one new read/write mapping that holds the Buffer's random bytes; it
   * must be exactly `size` bytes. Found by content, not size: other threads
   * (an ASan runtime's allocator among them) map memory of a chunk's size too.
   */
  function only(list: Mapping[], size: number): Mapping {
    const found = list.filter((m) => m.holdsMarker);
    expect(found.length, `new rw-p mappings holding the marker: ${JSON.stringify(list.map((m) => m.size))}`).toBe(1);
    expect(found[0]!.size).toBe(size);
    return found[0]!;
  }

  it("the chunk's read/write mapping is followed by a '---p' guard page of the page size", () => {
    const chunk = only(maps.chunk, maps.chunkSize);
    expect(chunk.next?.adjacent).toBe(true);
    expect(chunk.next?.perms).toBe('---p');
    expect(chunk.next?.size).toBe(maps.pageSize);
  });

  it("the huge allocation's mapping (size rounded up to pages) is followed by a '---p' guard page of the page size", () => {
    const mapped = Math.ceil(maps.hugeSize / maps.pageSize) * maps.pageSize;
    const huge = only(maps.huge, mapped);
    expect(huge.next?.adjacent).toBe(true);
    expect(huge.next?.perms).toBe('---p');
    expect(huge.next?.size).toBe(maps.pageSize);
  });

  it('the chunk and the huge mapping are locked in RAM entirely (smaps Locked:, VmFlags lo) and kept out of core dumps (dd)', () => {
    const chunk = only(maps.chunk, maps.chunkSize);
    const huge = only(maps.huge, Math.ceil(maps.hugeSize / maps.pageSize) * maps.pageSize);
    for (const m of [chunk, huge]) {
      expect(m.locked).toBeGreaterThan(0);
      expect(m.locked).toBe(m.size / KiB);
      expect(m.vmFlags).toContain('lo');
      expect(m.vmFlags).toContain('dd');
      // The guard page is not locked memory.
      expect(m.next?.locked).toBe(0);
    }
    expect(maps.chunkLockedNow).toBe(maps.chunkSize / KiB);
  });

  it('VmLck grows by exactly the chunk and the huge mapping, and drops back on free() and close()', () => {
    const huge = Math.ceil(maps.hugeSize / maps.pageSize) * maps.pageSize;
    const { atStart, afterChunk, afterHuge, afterHugeFree, afterClose } = maps.vmLck;
    expect(afterChunk - atStart).toBe(maps.chunkSize / KiB);
    expect(afterHuge - afterChunk).toBe(huge / KiB);
    expect(afterHugeFree).toBe(afterChunk);
    expect(afterClose).toBe(atStart);
  });
});

describe.runIf(linux)('a locked-memory limit too low for a secure chunk (child process)', () => {
  let outcome: Outcome;
  let res: MemlockResult;
  beforeAll(() => {
    if (!fs.existsSync(LIB)) throw new Error(`${LIB} is missing: run \`npx tsc -p tsconfig.json\` first`);
    outcome = run('secure.js', ['memlock'], { prefix: LOW_MEMLOCK, timeout: 30_000 });
    res = resultOf<MemlockResult>(outcome);
  });

  it('the child really runs without CAP_IPC_LOCK and with RLIMIT_MEMLOCK 64 KiB (precondition)', () => {
    expect(res.hasIpcLock).toBe(false);
    expect(res.limits).toMatch(/^Max locked memory\s+65536\s+65536\s+bytes/);
  });

  it("new Pool({ secure: true }).alloc(10) throws PoolError ERR_MAP_FAILED, syscall 'mlock', errno ENOMEM or EPERM", () => {
    for (const attempt of [res.first, res.second]) {
      expect(attempt.threw).toBe(true);
      expect(attempt.isPoolError).toBe(true);
      expect(attempt.name).toBe('PoolError');
      expect(attempt.code).toBe('ERR_MAP_FAILED');
      expect(attempt.syscall).toBe('mlock');
      expect([os.constants.errno.ENOMEM, os.constants.errno.EPERM]).toContain(attempt.errno);
      expect(attempt.message).toMatch(/mlock failed \((ENOMEM|EPERM)\)/);
    }
  });

  it('the failed allocation leaves nothing mapped and nothing live', () => {
    expect(res.mappedAfterFailure).toBe(0);
    expect(res.liveAfterFailure).toBe(0);
  });

  it('the child does not crash: exit code 0, nothing on stderr', () => {
    expect(outcome.signal).toBeNull();
    expect(outcome.stderr).toBe('');
    expect(outcome.status).toBe(0);
  });

  it('in the same child a non-secure pool still works, and so does a secure pool whose 64 KiB chunk fits the limit', () => {
    expect(res.plainWorks).toBe(true);
    expect(res.smallAttempt.threw).toBe(false);
    expect(res.smallWorks).toBe(true);
  });
});
