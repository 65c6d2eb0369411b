// Pool options: the public type, the defaults, and their validation.
import { constants as bufferConstants } from 'node:buffer';
import { tmpdir } from 'node:os';

import { invalidArgType, invalidArgValue, outOfRange, type Caller } from './errors.js';
import { LEAK_LEVELS, type LeakDetection } from './observe/leaks.js';
import type { PressureThresholds } from './observe/pressure.js';

export type Backing = 'anonymous' | 'file' | 'heap';

export interface PoolOptions {
  /** Where the memory comes from. Default: 'file' on Windows, 'anonymous' elsewhere. */
  backing?: Backing;
  /**
   * Directory for the 'file' backing's temp files: nameless on POSIX (unlinked
   * from the start); on Windows named `.mmap-pool-<pid>-<n>-<time>.tmp` while
   * the pool holds them, deleted by the system with their last handle. Default: os.tmpdir().
   */
  dir?: string;
  /** Bytes per chunk: a power of two from 64 KiB to 1 GiB. Default: 4 MiB, or less to fit `maxBytes`. */
  chunkSize?: number;
  /** Sizes above this get a mapping of their own. 0 .. chunkSize; default: 1 MiB (at most chunkSize). */
  hugeThreshold?: number;
  /** Cap on mapped bytes; at least 64 KiB. Default: Infinity. */
  maxBytes?: number;
  /** Label in stats and dumps. Default: 'default'. */
  name?: string;
  /**
   * Every allocation gets an ArrayBuffer of its own, detached by free(), so a
   * Buffer used after free reads as empty instead of seeing someone else's
   * bytes. About a microsecond more per allocation. Default: false.
   */
  guard?: boolean;
  /**
   * Memory locked in RAM (mlock / VirtualLock), left out of core dumps,
   * followed by an inaccessible guard page, and wiped when freed. As with
   * `guard`, every allocation gets an ArrayBuffer of its own, detached by
   * free(), so buf.buffer, structuredClone() and postMessage() reach its
   * bytes only. Needs a locked-memory limit (ulimit -l) large enough for the
   * chunks. Default: false.
   */
  secure?: boolean;
  /**
   * Ask the kernel for transparent huge pages (2 MiB on x86-64): chunks and
   * huge mappings of at least that size start on a 2 MiB boundary and are
   * advised MADV_HUGEPAGE (Linux). Far fewer page faults on freshly mapped
   * memory, at the cost of memory made resident 2 MiB at a time. What the
   * kernel does is its setting (/sys/kernel/mm/transparent_hugepage/enabled
   * 'always' or 'madvise'; for 'file' pools, the file system: a tmpfs
   * follows its huge= mount option). A no-op, never an error, where there
   * are none to ask for (Windows, macOS, 'heap'): stats().hugePages says
   * whether it is in force. Default: false.
   */
  hugePages?: boolean;
  /**
   * Fault every page of a new chunk or huge mapping in when it is mapped
   * (Linux: MADV_POPULATE_WRITE; elsewhere one write per page), so later
   * writes take no page faults: memory is resident from the start.
   * Best effort: never an error. No-op for 'heap'. Default: false.
   */
  prefault?: boolean;
  /**
   * One pool for every thread of the process: `pool.handle` goes to a
   * worker (postMessage), `Pool.attach(handle)` there uses the same memory
   * and allocator, and `share()` / `adopt()` hand a Buffer across without a
   * copy (docs/threads.md). Any backing but 'heap'. Default: false.
   */
  shared?: boolean;
  /** Netty's levels: 'disabled' | 'simple' (1 in 128 tracked) | 'advanced' (+ stacks) | 'paranoid' (all). Default 'simple'. */
  leakDetection?: LeakDetection;
  /** Shares of maxBytes at which 'pressure' events fire. Default { warning: 0.8, critical: 0.95 }. */
  thresholds?: PressureThresholds;
  /** A pressure level fires again only after this many ms. Default 30000. */
  cooldownMs?: number;
}

export interface ResolvedOptions {
  backing: Backing;
  dir: string;
  chunkSize: number;
  hugeThreshold: number;
  maxBytes: number;
  name: string;
  guard: boolean;
  secure: boolean;
  hugePages: boolean;
  prefault: boolean;
  shared: boolean;
  leakDetection: LeakDetection;
  warning: number;
  critical: number;
  cooldownMs: number;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const MIN_CHUNK = 64 * KiB;
export const MAX_CHUNK = 1024 * MiB;
export const DEFAULT_CHUNK = 4 * MiB;
export const DEFAULT_HUGE_THRESHOLD = 1 * MiB;
/** The largest Buffer this Node can make. */
export const MAX_BUFFER = bufferConstants.MAX_LENGTH;

const BACKINGS: readonly Backing[] = ['anonymous', 'file', 'heap'];

export function defaultBacking(): Backing {
  return process.platform === 'win32' ? 'file' : 'anonymous';
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function integer(options: PoolOptions, key: 'chunkSize' | 'hugeThreshold' | 'maxBytes'): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw invalidArgType(`options.${key}`, 'of type number', value);
  return value;
}

/**
 * Fills in defaults and checks every option.
 * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE, RangeError ERR_OUT_OF_RANGE
 */
export function resolveOptions(options: PoolOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object') {
    throw invalidArgType('options', 'of type object', options);
  }
  const { backing, dir, name, guard, secure, hugePages, prefault, shared } = memoryOptions(options);
  const { maxBytes, chunkSize, hugeThreshold } = sizeOptions(options);
  const { leakDetection, warning, critical, cooldownMs } = watchOptions(options);
  return {
    backing, dir, chunkSize, hugeThreshold, maxBytes, name, guard, secure, hugePages, prefault, shared,
    leakDetection, warning, critical, cooldownMs,
  };
}

/** What memory a pool maps and how: backing, dir, name and the boolean switches. */
function memoryOptions(options: PoolOptions): Pick<ResolvedOptions, 'backing' | 'dir' | 'name' | 'guard' | 'secure' | 'hugePages' | 'prefault' | 'shared'> {
  const backing = options.backing ?? defaultBacking();
  if (typeof backing !== 'string') throw invalidArgType('options.backing', 'of type string', backing);
  if (!BACKINGS.includes(backing)) {
    throw invalidArgValue('options.backing', backing, `must be one of ${BACKINGS.map((b) => `'${b}'`).join(', ')}`);
  }
  const dir = options.dir ?? tmpdir();
  if (typeof dir !== 'string') throw invalidArgType('options.dir', 'of type string', dir);
  if (dir.length === 0 || dir.includes('\0')) {
    throw invalidArgValue('options.dir', dir, 'must be a non-empty path without null bytes');
  }
  const name = options.name ?? 'default';
  if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
  const guard = options.guard ?? false;
  if (typeof guard !== 'boolean') throw invalidArgType('options.guard', 'of type boolean', guard);
  const secure = options.secure ?? false;
  if (typeof secure !== 'boolean') throw invalidArgType('options.secure', 'of type boolean', secure);
  const hugePages = options.hugePages ?? false;
  if (typeof hugePages !== 'boolean') throw invalidArgType('options.hugePages', 'of type boolean', hugePages);
  const prefault = options.prefault ?? false;
  if (typeof prefault !== 'boolean') throw invalidArgType('options.prefault', 'of type boolean', prefault);
  const shared = options.shared ?? false;
  if (typeof shared !== 'boolean') throw invalidArgType('options.shared', 'of type boolean', shared);
  if (backing === 'heap' && shared) {
    throw invalidArgValue('options.backing', backing, `cannot be 'heap' with shared: true (other threads cannot reach V8 heap memory)`);
  }
  if (backing === 'heap' && (guard || secure)) {
    throw invalidArgValue('options.backing', backing, `cannot be 'heap' with ${guard ? 'guard' : 'secure'}: true (both need mapped memory)`);
  }
  return { backing, dir, name, guard, secure, hugePages, prefault, shared };
}

/** maxBytes, then chunkSize (which must fit in it) and hugeThreshold (which must fit in a chunk). */
function sizeOptions(options: PoolOptions): Pick<ResolvedOptions, 'maxBytes' | 'chunkSize' | 'hugeThreshold'> {
  const maxBytes = integer(options, 'maxBytes') ?? Infinity;
  if (!(maxBytes === Infinity || (Number.isSafeInteger(maxBytes) && maxBytes >= MIN_CHUNK))) {
    throw outOfRange('options.maxBytes', `an integer >= ${MIN_CHUNK}, or Infinity`, maxBytes);
  }

  let chunkSize = integer(options, 'chunkSize');
  if (chunkSize === undefined) {
    chunkSize = DEFAULT_CHUNK;
    while (chunkSize > maxBytes) chunkSize /= 2;  // a small cap gets smaller chunks
  } else if (!isPowerOfTwo(chunkSize) || chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) {
    throw outOfRange('options.chunkSize', `a power of two >= ${MIN_CHUNK} && <= ${MAX_CHUNK}`, chunkSize);
  } else if (chunkSize > maxBytes) {
    throw outOfRange('options.chunkSize', `<= options.maxBytes (${maxBytes})`, chunkSize);
  }

  const hugeThreshold = integer(options, 'hugeThreshold') ?? Math.min(DEFAULT_HUGE_THRESHOLD, chunkSize);
  if (!Number.isInteger(hugeThreshold) || hugeThreshold < 0 || hugeThreshold > chunkSize) {
    throw outOfRange('options.hugeThreshold', `an integer >= 0 && <= ${chunkSize} (chunkSize)`, hugeThreshold);
  }
  return { maxBytes, chunkSize, hugeThreshold };
}

/** What the pool watches for: leak detection, the pressure thresholds and their cooldown. */
function watchOptions(options: PoolOptions): Pick<ResolvedOptions, 'leakDetection' | 'warning' | 'critical' | 'cooldownMs'> {
  const leakDetection = options.leakDetection ?? 'simple';
  if (typeof leakDetection !== 'string') throw invalidArgType('options.leakDetection', 'of type string', leakDetection);
  if (!LEAK_LEVELS.includes(leakDetection)) {
    throw invalidArgValue('options.leakDetection', leakDetection, `must be one of ${LEAK_LEVELS.map((l) => `'${l}'`).join(', ')}`);
  }
  const thresholds = options.thresholds ?? {};
  if (thresholds === null || typeof thresholds !== 'object') throw invalidArgType('options.thresholds', 'of type object', thresholds);
  const warning = share(thresholds.warning, 0.8, 'options.thresholds.warning');
  const critical = share(thresholds.critical, 0.95, 'options.thresholds.critical');
  if (warning > critical) throw outOfRange('options.thresholds.warning', `<= options.thresholds.critical (${critical})`, warning);
  const cooldownMs = options.cooldownMs ?? 30_000;
  if (typeof cooldownMs !== 'number') throw invalidArgType('options.cooldownMs', 'of type number', cooldownMs);
  if (!(cooldownMs >= 0 && cooldownMs !== Infinity)) throw outOfRange('options.cooldownMs', 'a finite number >= 0', cooldownMs);
  return { leakDetection, warning, critical, cooldownMs };
}

function share(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!(value > 0 && value <= 1)) throw outOfRange(name, '> 0 && <= 1', value);
  return value;
}

export interface AllocOptions {
  /** A power of two up to the page size: the Buffer's byteOffset (and address) is a multiple of it. */
  align?: number;
}

/**
 * The error for a size (or, by `name`, another count) that is not an
 * integer 0 .. `max` in a pool of `maxBytes`: past maxBytes but within the
 * Buffer limit, the message names maxBytes.
 */
export function sizeError(size: unknown, caller: Caller, maxBytes: number, name = 'size', max = Math.min(maxBytes, MAX_BUFFER)): Error {
  if (typeof size !== 'number') return invalidArgType(name, 'of type number', size, caller);
  if (name === 'size' && size > maxBytes && size <= MAX_BUFFER && Number.isInteger(size)) {
    return outOfRange(name, `<= maxBytes (${maxBytes})`, size, caller);
  }
  return outOfRange(name, `an integer >= 0 && <= ${max}`, size, caller);
}

/** The `align` of alloc()'s options, checked; 0 for none. */
export function alignOf(options: AllocOptions, pageSize: number, caller: Caller): number {
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options, caller);
  const align = options.align;
  if (align === undefined) return 0;
  if (typeof align !== 'number') throw invalidArgType('options.align', 'of type number', align, caller);
  if (!(Number.isInteger(align) && align >= 1 && align <= pageSize && (align & (align - 1)) === 0)) {
    throw outOfRange('options.align', `a power of two >= 1 && <= ${pageSize} (the page size)`, align, caller);
  }
  return align;
}
