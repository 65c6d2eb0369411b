// Errors: PoolError with the stable codes README lists, and Node's own
// argument errors (TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE)
// made the way Node's internal/errors.js makes them.
import { constants as osConstants } from 'node:os';
import { inspect } from 'node:util';

export type PoolErrorCode =
  | 'ERR_POOL_CLOSED'
  | 'ERR_POOL_EXHAUSTED'
  | 'ERR_DOUBLE_FREE'
  | 'ERR_FOREIGN_BUFFER'
  | 'ERR_MAP_FAILED';

/** An error about the pool's state or a buffer's lifetime; `code` says which. */
export class PoolError extends Error {
  readonly code: PoolErrorCode;
  /** ERR_MAP_FAILED only: the OS error number (errno; GetLastError() on Windows). */
  readonly errno?: number;
  /** ERR_MAP_FAILED only: the system call that failed. */
  readonly syscall?: string;

  constructor(code: PoolErrorCode, message: string, details?: { errno: number; syscall: string }) {
    super(message);
    this.code = code;
    if (details !== undefined) {
      this.errno = details.errno;
      this.syscall = details.syscall;
    }
  }

  override get name(): string {
    return 'PoolError';
  }
}

/** The public function an error is about: stacks start at its caller. */
export type Caller = (...args: never[]) => unknown;

function withCode<E extends Error>(err: E, code: string, caller: Caller | undefined): E {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  if (caller !== undefined) Error.captureStackTrace(err, caller);
  return err;
}

function describe(value: unknown): string {
  if (value === null) return 'Received null';
  if (value === undefined) return 'Received undefined';
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor as { name?: string } | undefined;
    return ctor?.name ? `Received an instance of ${ctor.name}` : `Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `Received type ${typeof value} (${shown})`;
}

/** TypeError, code ERR_INVALID_ARG_TYPE, worded as Node words it. */
export function invalidArgType(name: string, expected: string, actual: unknown, caller?: Caller): TypeError {
  const what = name.includes('.') ? `"${name}" property` : `"${name}" argument`;
  return withCode(new TypeError(`The ${what} must be ${expected}. ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE', caller);
}

/** TypeError, code ERR_INVALID_ARG_VALUE: the right type, a value not allowed. */
export function invalidArgValue(name: string, actual: unknown, reason: string, caller?: Caller): TypeError {
  const what = name.includes('.') ? 'property' : 'argument';
  return withCode(
    new TypeError(`The ${what} '${name}' ${reason}. Received ${inspect(actual)}`),
    'ERR_INVALID_ARG_VALUE',
    caller,
  );
}

/** RangeError, code ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, actual: unknown, caller?: Caller): RangeError {
  const shown = typeof actual === 'number' && Number.isInteger(actual) && Math.abs(actual) > 2 ** 32
    ? addUnderscores(actual)
    : inspect(actual);
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
    caller,
  );
}

/** TypeError, code ERR_INVALID_RETURN_VALUE: a user callback returned the wrong kind of value. */
export function invalidReturnValue(expected: string, fn: string, actual: unknown, caller?: Caller): TypeError {
  const got = actual === null ? 'null'
    : typeof actual === 'object' ? `an instance of ${(actual as object).constructor?.name ?? 'Object'}`
    : `type ${typeof actual}`;
  return withCode(
    new TypeError(`Expected ${expected} to be returned from the "${fn}" function but got ${got}.`),
    'ERR_INVALID_RETURN_VALUE',
    caller,
  );
}

/** TypeError, code ERR_UNKNOWN_ENCODING. */
export function unknownEncoding(encoding: unknown, caller?: Caller): TypeError {
  return withCode(new TypeError(`Unknown encoding: ${String(encoding)}`), 'ERR_UNKNOWN_ENCODING', caller);
}

function addUnderscores(n: number): string {
  const s = String(Math.abs(n));
  let out = '';
  for (let i = s.length; i > 0; i -= 3) out = `_${s.slice(Math.max(0, i - 3), i)}${out}`;
  return `${n < 0 ? '-' : ''}${out.slice(1)}`;
}

/** The symbolic name of an OS error number, e.g. 2 -> 'ENOENT' (POSIX). */
export function errnoName(errno: number): string | undefined {
  for (const [name, value] of Object.entries(osConstants.errno)) {
    if (value === errno) return name;
  }
  return undefined;
}

export function mapFailed(syscall: string, errno: number, what: string): PoolError {
  const name = process.platform === 'win32' ? `Windows error ${errno}` : (errnoName(errno) ?? `errno ${errno}`);
  return new PoolError('ERR_MAP_FAILED', `${what}: ${syscall} failed (${name})`, { errno, syscall });
}

/** Points the error's stack at the public call that failed. */
export function withStack<E extends Error>(err: E, caller: Caller): E {
  Error.captureStackTrace(err, caller);
  return err;
}

/** PoolError ERR_POOL_CLOSED for a call on a closed pool. */
export function closedError(caller: Caller): PoolError {
  return withStack(new PoolError('ERR_POOL_CLOSED', `${caller.name || 'call'}(): the pool is closed`), caller);
}

/** Error, code ERR_INVALID_STATE, as Node's: a call the object cannot take in its state or kind. */
export function invalidState(message: string, caller: Caller): Error {
  return withCode(new Error(`Invalid state: ${message}`), 'ERR_INVALID_STATE', caller);
}
