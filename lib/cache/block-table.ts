// BlockTable: what the block cache knows of each block it holds, by block
// id k, in one typed array per field (grown by doubling):
//
//   seg[k] off[k]   where the block is (segment id, byte offset); seg[k] is
//                   LOST once its segment is lost and it is handed out
//   addr[k]         its handle (segment * 2^30 + offset): its address, which
//                   orders the stacks of the ordered classes
//   cls[k]          its class
//   serial[k]       0 while free in the cache, else the serial of the Buffer
//                   holding it (a stale Buffer fails free()'s check on it)
//   size[k] born[k] the size asked for and when (coarse clock) it was handed out
//   refs[k]         its reference count (1 unless retained)
//   flags[k]        TRACKED, RETAINED (0: neither, the common case)
//
// Ids not naming a block wait on an idle stack for reuse. When the cache
// holds no block at all, the tables shrink back to their first size
// (shrinkTables()): a stale Buffer then names an id whose serial is
// undefined, 0 or a later block's, and is refused all the same.
//
// Threads: the pool's JS thread only, like the pool.
import type { CacheGateway } from '../native/pool-memory.js';

/** Initial length of the per-block tables; shrinkTables() goes back to it. */
export const INITIAL_BLOCKS = 8;
/** flags[k] bits. */
export const TRACKED = 1;
export const RETAINED = 2;
/** seg[k] of a handed-out block of a lost segment: above every segment id, so its free gives it back. */
export const LOST = 0x3fffffff;

export class BlockTable {
  seg = new Int32Array(INITIAL_BLOCKS);
  off = new Int32Array(INITIAL_BLOCKS);
  cls = new Uint8Array(INITIAL_BLOCKS);
  serial = new Float64Array(INITIAL_BLOCKS);
  size = new Int32Array(INITIAL_BLOCKS);
  /** The reference count: 1 for every block, free or handed out, whose flags lack RETAINED. */
  refs = new Uint32Array(INITIAL_BLOCKS);
  born = new Float64Array(INITIAL_BLOCKS);
  /**
   * TRACKED while the block's allocation is tracked by the leak detector
   * (which is then told of its free); RETAINED once it was retained (its
   * count goes back to 1 on free). 0, the common case, is all freeBlock()
   * reads, so that an allocation need not write its count.
   */
  flags = new Uint8Array(INITIAL_BLOCKS);
  addr = new Float64Array(INITIAL_BLOCKS);
  /** Ids not naming a block: a stack, and the high-water mark of ids ever used. */
  #idle = new Int32Array(INITIAL_BLOCKS);
  #idleTop = 0;
  #ids = 0;
  /** Detaches a table's old ArrayBuffer. */
  readonly #native: CacheGateway;

  constructor(native: CacheGateway) {
    this.#native = native;
  }

  /** Blocks the per-block tables have room for (they grow by doubling; shrinkTables() shrinks them). */
  get tableLength(): number {
    return this.seg.length;
  }

  /** Block ids ever given out (every id below it names a block, or an idle id whose serial is 0). */
  get idCount(): number {
    return this.#ids;
  }

  /** A new block at handle `h` of class `c`, free: its id. */
  protected newBlock(h: number, segment: number, offset: number, c: number): number {
    const k = this.#idleTop > 0 ? this.#idle[--this.#idleTop] : this.#nextId();
    this.seg[k] = segment;
    this.off[k] = offset;
    this.addr[k] = h;
    this.cls[k] = c;
    this.serial[k] = 0;
    this.refs[k] = 1;
    return k;
  }

  /** Block `k` went back to the allocator: its id is idle. */
  protected retireId(k: number): void {
    if (this.#idleTop === this.#idle.length) this.#idle = this.grown(this.#idle, this.#idle.length * 2);
    this.#idle[this.#idleTop++] = k;
  }

  /**
   * No block held (nothing free here, none handed out): back to the first,
   * small tables, the big ones freed now. Serials are never reused, so no
   * stale Buffer's serial matches what its old id holds after this.
   */
  protected shrinkTables(): void {
    this.#resize(INITIAL_BLOCKS, false);
    this.#idle = this.fresh(this.#idle, INITIAL_BLOCKS);
    this.#idleTop = 0;
    this.#ids = 0;
  }

  /** A copy of `a` with room for `n` elements; `a`'s memory is freed. */
  protected grown<T extends Table>(a: T, n: number): T {
    const b = new (a.constructor as new (n: number) => T)(n);
    b.set(a);
    this.#free(a);
    return b;
  }

  /** A new zeroed table of `a`'s type and length `n`; `a`'s memory is freed. */
  protected fresh<T extends Table>(a: T, n: number): T {
    this.#free(a);
    return new (a.constructor as new (n: number) => T)(n);
  }

  #nextId(): number {
    const k = this.#ids++;
    if (k === this.seg.length) this.#resize(k * 2, true);
    return k;
  }

  // Every per-block table to length n: the old contents copied (growing) or
  // not (shrinking, when no block is held); the old tables freed.
  #resize(n: number, copy: boolean): void {
    const to = <T extends Table>(a: T): T => (copy ? this.grown(a, n) : this.fresh(a, n));
    this.seg = to(this.seg);
    this.off = to(this.off);
    this.cls = to(this.cls);
    this.serial = to(this.serial);
    this.size = to(this.size);
    this.refs = to(this.refs);
    this.born = to(this.born);
    this.flags = to(this.flags);
    this.addr = to(this.addr);
  }

  // The tables' memory is outside V8's heap, freed when the collector gets to
  // the old typed array: a table replaced by a bigger one, or by a small one
  // in shrinkTables(), is detached instead (nothing else refers to it), so
  // its memory goes back at once (and trim()'s malloc_trim finds it). Up to
  // 64 bytes V8 keeps a typed array inside its heap, and asking for its
  // buffer would make one: those are left to the collector.
  #free(a: Table): void {
    if (a.byteLength > 64) this.#native.detach(a.buffer as ArrayBuffer);
  }
}

export type Table = Int32Array | Uint32Array | Uint8Array | Float64Array;
