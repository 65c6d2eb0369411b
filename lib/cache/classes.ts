// Which size classes a pool's block cache (lib/cache/block-cache.ts) serves, and
// how much it keeps of each: the free blocks a class may hold, how many one
// refill brings, and from which class up a stack is kept in address order.
// Computed once per (limit, chunk size) and shared by every pool alike.

/** Bytes one class may keep free in the cache (at least MIN_CACHED blocks, at most 256). */
const CLASS_BUDGET = 64 * 1024;
const MAX_CACHED = 256;
const MIN_CACHED = 4;
/** Classes from this size up keep their stacks in address order, and at least ORDERED_MIN_CACHED blocks. */
const ORDERED_MIN = 4096;
const ORDERED_MIN_CACHED = 16;
/** Bytes one refill may bring, at most (and at most 1/16 of a chunk; at least one block). */
const REFILL_BUDGET = 16 * 1024;

/** Which classes a cache serves and how much it keeps of each; shared by pools alike. */
export interface ClassTable {
  /** Class index by (size + 15) >>> 4, for sizes 1 .. maxSize. */
  binOf: Uint8Array;
  maxSize: number;
  size: number[];
  /** Free blocks a class may keep; blocks one refill asks for. */
  cap: number[];
  batch: number[];
  /** The first class whose stack is kept in address order (classes ascend by size: all after it are too). */
  firstOrdered: number;
  /** Where each class's stack starts in the one array that holds them all (cap[c] long); its length. */
  base: number[];
  stackLength: number;
  /** Per class: how full its stack may get before a free block needs more than a push: cap[c], or 0 for an ordered class. */
  room: number[];
}

const tables = new Map<string, ClassTable>();

export function classTable(classSizes: readonly number[], limit: number, chunkSize: number): ClassTable {
  const key = `${limit}/${chunkSize}`;
  let t = tables.get(key);
  if (t !== undefined) return t;
  const size = classSizes.filter((s) => s <= limit);
  const maxSize = size.length > 0 ? size[size.length - 1] : 0;
  const binOf = new Uint8Array((maxSize >>> 4) + 1);
  for (let q = 1, c = 0; q < binOf.length; q++) {
    while (size[c] < q * 16) c++;
    binOf[q] = c;
  }
  const ordered = size.findIndex((s) => s >= ORDERED_MIN);
  const firstOrdered = ordered < 0 ? size.length : ordered;
  const cap = size.map((s, c) => Math.max(c >= firstOrdered ? ORDERED_MIN_CACHED : MIN_CACHED,
    Math.min(MAX_CACHED, Math.floor(CLASS_BUDGET / s))));
  const refill = Math.min(REFILL_BUDGET, chunkSize / 16);
  const batch = size.map((s, c) => Math.max(1, Math.min(cap[c] >>> 1, Math.floor(refill / s))));
  const base: number[] = [];
  let stackLength = 0;
  for (const n of cap) {
    base.push(stackLength);
    stackLength += n;
  }
  const room = cap.map((n, c) => (c < firstOrdered ? n : 0));
  t = { binOf, maxSize, size, cap, batch, firstOrdered, base, stackLength, room };
  tables.set(key, t);
  return t;
}
