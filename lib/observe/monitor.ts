// Monitor: samples a pool's usedBytes on a timer and emits 'growth' on the
// pool when usage keeps climbing.
//
// "Keeps climbing" is judged over a window of samples, never one sample
// against another: a least-squares line through the last `window` samples
// must rise faster than the threshold AND fit them well (r^2 >= 0.8), so a
// burst, a sawtooth or noise around a level does not count. After an
// emission the window starts again empty, so there is at most one 'growth'
// per full window. The timer is unref'd: a monitor never keeps the process
// alive. It stops itself when it finds the pool closed.
//
// Runs on the main thread only, in timer callbacks.
import { invalidArgType, outOfRange } from '../errors.js';
import type { PoolStats } from './stats.js';
import { dispose } from '../dispose.js';

/** What monitor() needs of a pool. A Pool is one. */
export interface MonitoredPool {
  stats(): PoolStats;
  emit(event: 'growth', info: GrowthInfo): boolean;
  readonly closed: boolean;
}

export interface MonitorOptions {
  /** Milliseconds between samples: an integer from 1 to 2^31 - 1. */
  intervalMs: number;
  /** Samples the line is fitted to: an integer from 3 to 100000. */
  window: number;
  /**
   * Bytes per second the fitted slope must pass; a number >= 0. Default: the
   * larger of 1 KiB/s and the slope that adds 1% of the current usedBytes
   * over one window span.
   */
  threshold?: number;
}

/** The 'growth' event's argument. */
export interface GrowthInfo {
  /** Slope of the least-squares line through the window, in bytes per second. */
  slopeBytesPerSecond: number;
  /** usedBytes at the latest sample. */
  usedBytes: number;
  window: number;
  intervalMs: number;
  /** Coefficient of determination of the fit, 0..1: how straight the climb is. */
  r2: number;
}

export interface Monitor extends Disposable {
  /** Stops sampling. Idempotent. */
  stop(): void;
}

/** The fit must explain at least this share of the variance to count as growth. */
const MIN_R2 = 0.8;
/** The default threshold's floor: 1 KiB/s. */
const MIN_SLOPE = 1024;
/** The default threshold's share of usedBytes per window span. */
const RELATIVE_SLOPE = 0.01;

const MAX_INTERVAL = 2 ** 31 - 1;
const MAX_WINDOW = 100_000;

/**
 * The least-squares line through `samples`: its slope (units of v per unit
 * of t) and r^2, the share of v's variance the line explains (0..1). With
 * fewer than two distinct t, or a constant v, there is no trend to measure:
 * the slope is 0 and r2 is 0.
 * @throws TypeError ERR_INVALID_ARG_TYPE when `samples` is not an array of
 * { t, v } with finite numbers
 */
export function growthSlope(samples: readonly { t: number; v: number }[]): { slope: number; r2: number } {
  if (!Array.isArray(samples)) throw invalidArgType('samples', 'an instance of Array', samples, growthSlope);
  const n = samples.length;
  let tMean = 0;
  let vMean = 0;
  for (let i = 0; i < n; i++) {
    const s = samples[i] as { t: unknown; v: unknown } | null;
    if (s === null || typeof s !== 'object' || !Number.isFinite(s.t) || !Number.isFinite(s.v)) {
      throw invalidArgType(`samples[${i}]`, 'an object { t, v } of finite numbers', s, growthSlope);
    }
    tMean += samples[i].t;
    vMean += samples[i].v;
  }
  if (n < 2) return { slope: 0, r2: 0 };
  tMean /= n;
  vMean /= n;
  // Deviations from the means: t in milliseconds since boot and v in bytes
  // would lose digits in the textbook sums of squares.
  let stt = 0;
  let stv = 0;
  let svv = 0;
  for (const { t, v } of samples) {
    const dt = t - tMean;
    const dv = v - vMean;
    stt += dt * dt;
    stv += dt * dv;
    svv += dv * dv;
  }
  if (stt === 0 || svv === 0) return { slope: 0, r2: 0 };
  const slope = stv / stt;
  // r^2 = 1 - SSres/SStot, which for a least-squares line is stv^2 / (stt svv).
  const r2 = Math.min(1, (stv * stv) / (stt * svv));
  return { slope, r2 };
}

function checkOptions(options: MonitorOptions): { intervalMs: number; window: number; threshold: number | undefined } {
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options, monitor);
  const { intervalMs, window, threshold } = options;
  if (typeof intervalMs !== 'number') throw invalidArgType('options.intervalMs', 'of type number', intervalMs, monitor);
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > MAX_INTERVAL) {
    throw outOfRange('options.intervalMs', `an integer >= 1 && <= ${MAX_INTERVAL}`, intervalMs, monitor);
  }
  if (typeof window !== 'number') throw invalidArgType('options.window', 'of type number', window, monitor);
  if (!Number.isInteger(window) || window < 3 || window > MAX_WINDOW) {
    throw outOfRange('options.window', `an integer >= 3 && <= ${MAX_WINDOW}`, window, monitor);
  }
  if (threshold !== undefined) {
    if (typeof threshold !== 'number') throw invalidArgType('options.threshold', 'of type number', threshold, monitor);
    if (!(threshold >= 0) || threshold === Infinity) {
      throw outOfRange('options.threshold', 'a finite number >= 0', threshold, monitor);
    }
  }
  return { intervalMs, window, threshold };
}

/**
 * Samples `pool.stats().usedBytes` (or `usedBytesOf()`, a cheaper read of
 * the same figure, as Pool.monitor() passes) every `intervalMs` and emits
 * `pool.emit('growth', info)` (see GrowthInfo) when the least-squares line
 * through the last `window` samples rises faster than `threshold` bytes per
 * second with r^2 >= 0.8. At most one 'growth' per full window: after one,
 * the window refills from empty. The timer is unref'd (it never keeps the
 * process alive); the monitor stops itself when the pool is closed, and
 * stop() or `using` stops it sooner.
 *
 * Default threshold: max(1 KiB/s, 1% of the latest usedBytes per window
 * span), the span being (window - 1) * intervalMs: a pool must grow by more
 * than 1% over the window, and by more than 1 KiB a second, to be reported.
 *
 * @throws TypeError ERR_INVALID_ARG_TYPE (pool without stats() and emit(),
 * options or an option of the wrong type), RangeError ERR_OUT_OF_RANGE
 * (intervalMs, window or threshold out of range)
 */
export function monitor(pool: MonitoredPool, options: MonitorOptions,
  usedBytesOf: () => number = () => pool.stats().usedBytes): Monitor {
  if (pool === null || typeof pool !== 'object' || typeof pool.stats !== 'function' || typeof pool.emit !== 'function') {
    throw invalidArgType('pool', 'an instance of Pool', pool, monitor);
  }
  const { intervalMs, window, threshold } = checkOptions(options);
  const samples: { t: number; v: number }[] = [];
  let timer: NodeJS.Timeout | undefined;

  const stop = (): void => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
  };

  const tick = (): void => {
    if (pool.closed) {
      stop();
      return;
    }
    const usedBytes = usedBytesOf();
    // Measured time, not the nominal interval: a blocked event loop delays
    // samples, and the slope must not grow with the delay.
    samples.push({ t: performance.now() / 1000, v: usedBytes });
    if (samples.length > window) samples.shift();
    if (samples.length < window) return;
    const { slope, r2 } = growthSlope(samples);
    const span = ((window - 1) * intervalMs) / 1000;
    const limit = threshold ?? Math.max(MIN_SLOPE, (RELATIVE_SLOPE * usedBytes) / span);
    if (slope > limit && r2 >= MIN_R2) {
      samples.length = 0;  // cooldown: the next verdict needs a whole new window
      pool.emit('growth', { slopeBytesPerSecond: slope, usedBytes, window, intervalMs, r2 });
    }
  };

  timer = setInterval(tick, intervalMs);
  timer.unref();
  return { stop, [dispose]: stop };
}
