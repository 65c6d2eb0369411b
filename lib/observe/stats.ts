// The shapes of stats() and dump(), and a plain-text table of stats for
// people reading a terminal.
import type { Backing } from '../options.js';
import type { NativeDump, NativeStats } from '../native/shapes.js';

export type { AllocationDump, ChunkDump, HugeDump, RunDump, SizeClassStats } from '../native/shapes.js';

/**
 * The pool's figures: the allocator's (NativeStats, lib/native/shapes.ts)
 * and what only lib/ knows, among them the counts of what the program holds
 * (lib/observe/counts.ts: the allocator sees a block in the block cache as
 * one allocation however often the program takes and frees it).
 */
export interface PoolStats extends NativeStats {
  name: string;
  /** The backing in use: 'heap' where the runtime refused external ArrayBuffers. */
  backing: Backing;
  guard: boolean;
  secure: boolean;
  closed: boolean;
  pageSize: number;
  chunkSize: number;
  hugeThreshold: number;
  maxBytes: number;
  /** Sum of the requested sizes of the live allocations. */
  usedBytes: number;
  peakUsedBytes: number;
  liveAllocations: number;
  totalAllocations: number;
  totalFrees: number;
  /**
   * Bytes of freed blocks (classes up to 64 KiB) the pool keeps on the JS
   * side to hand out again without a native call (its block cache). Free to
   * the program, so not in `allocatedBytes`, but still taken from the
   * chunks; trim(), maxBytes pressure and an OS refusal of memory give
   * them back. 0 for guard and secure pools, which keep none.
   */
  cachedBytes: number;
  /** Shared pools only (`shared: true`): how many threads are attached now (lib/threads/). */
  attachments?: number;
}

/** dump(): the allocator's layout (NativeDump) with the pool's name, backing and state. */
export interface PoolDump extends NativeDump {
  name: string;
  backing: Backing;
  closed: boolean;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A terminal table of the classes in use, then the totals. */
export function formatStats(s: PoolStats): string {
  const lines = [`pool "${s.name}" (${s.backing}${s.closed ? ', closed' : ''})`];
  const rows = s.classes.filter((c) => c.capacity > 0 || c.live > 0);
  if (rows.length > 0) {
    lines.push('  class        live  capacity');
    for (const c of rows) {
      lines.push(`  ${bytes(c.size).padStart(9)}  ${String(c.live).padStart(6)}  ${String(c.capacity).padStart(8)}`);
    }
  }
  lines.push(
    `  mapped ${bytes(s.mappedBytes)} in ${s.chunks} chunk(s) + ${s.hugeAllocations} huge` +
      `${s.spareBytes > 0 ? ` + ${bytes(s.spareBytes)} spare` : ''}` +
      `${s.residentBytes === null ? '' : ` (${bytes(s.residentBytes)} resident)`}; ` +
      `used ${bytes(s.usedBytes)} (allocated ${bytes(s.allocatedBytes)}, peak ${bytes(s.peakUsedBytes)}` +
      `${s.cachedBytes > 0 ? `; ${bytes(s.cachedBytes)} held free for the next allocations` : ''})`,
    `  live ${s.liveAllocations}; ${s.totalAllocations} allocations and ${s.totalFrees} frees in all`,
  );
  return lines.join('\n');
}

export { bytes as formatBytes };
