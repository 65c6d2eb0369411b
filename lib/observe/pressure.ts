// Memory pressure: 'pressure' events when mapped memory crosses a share of
// maxBytes. A level fires when it is reached from below; the same level fires
// again only after it was left and `cooldownMs` has passed, so a pool that
// hovers around a threshold does not flood its listeners.
import { channel } from 'node:diagnostics_channel';

export type PressureLevel = 'warning' | 'critical';

/** What a 'pressure' event carries. */
export interface PressureEvent {
  level: PressureLevel;
  /**
   * Bytes mapped for chunks and live huge allocations: stats().mappedBytes
   * less spareBytes, the freed huge mappings the pool gives back before it
   * would pass maxBytes.
   */
  mappedBytes: number;
  maxBytes: number;
  /** mappedBytes / maxBytes */
  ratio: number;
}

export interface PressureThresholds {
  /** Share of maxBytes for 'warning'. Default 0.8. */
  warning?: number;
  /** Share of maxBytes for 'critical'. Default 0.95. */
  critical?: number;
}

const pressureChannel = channel('mmap-pool:pressure');
const RANK = { none: 0, warning: 1, critical: 2 } as const;

export class PressureWatch {
  readonly #pool: string;
  readonly #maxBytes: number;
  readonly #warning: number;
  readonly #critical: number;
  readonly #cooldownMs: number;
  readonly #emit: (event: PressureEvent) => void;
  #level: keyof typeof RANK = 'none';
  readonly #lastFired = { warning: -Infinity, critical: -Infinity };

  constructor(pool: string, maxBytes: number, warning: number, critical: number, cooldownMs: number,
    emit: (event: PressureEvent) => void) {
    this.#pool = pool;
    this.#maxBytes = maxBytes;
    this.#warning = warning;
    this.#critical = critical;
    this.#cooldownMs = cooldownMs;
    this.#emit = emit;
  }

  /** Whether checks can ever fire (maxBytes is finite). */
  get active(): boolean {
    return this.#maxBytes !== Infinity;
  }

  /** Called whenever mapped memory may have changed. */
  check(mappedBytes: number): void {
    const ratio = mappedBytes / this.#maxBytes;
    const level: keyof typeof RANK = ratio >= this.#critical ? 'critical' : ratio >= this.#warning ? 'warning' : 'none';
    const rising = RANK[level] > RANK[this.#level];
    this.#level = level;
    if (!rising) return;
    const now = performance.now();
    if (now - this.#lastFired[level as PressureLevel] < this.#cooldownMs) return;
    this.#lastFired[level as PressureLevel] = now;
    const event: PressureEvent = { level: level as PressureLevel, mappedBytes, maxBytes: this.#maxBytes, ratio };
    if (pressureChannel.hasSubscribers) pressureChannel.publish({ pool: this.#pool, ...event });
    this.#emit(event);
  }
}
