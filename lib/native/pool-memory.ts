// PoolMemory: one pool's memory as lib/ sees it, the gateway to its native
// allocator (NativePool) and to the ArrayBuffers over it (SegmentTable).
//
//   SlowPath ──> PoolMemory ──> NativePool (the addon) ──> alloc::Arena
//     │             └────────> SegmentTable (ArrayBuffer of each segment)
//     └──> BlockCache ──┘      (refill, flush, lose, detach: the cache
//                               uses it too, as a CacheGateway)
//   (Pool itself asks it for stats() and dump() only.)
//
// It knows handles, segments, ArrayBuffers and the allocator's status codes;
// it knows nothing of events, counts, leak tracking or the block cache, and
// calls nothing above it. A segment someone else detached (a web byte
// stream's enqueue(), ArrayBuffer.prototype.transfer()) is "lost": lose()
// tells the allocator, which places nothing there again, and the table, which
// keeps its ArrayBuffer so that a view reading byteLength 0 is still found by
// its serial (findLost()). docs/safety.md says what a program sees.
//
// A shared pool's PoolMemory is one thread's attachment (NativeSharedPool):
// the allocator is every attached thread's, the ArrayBuffers are this
// thread's own, and another thread may release a segment this one still has
// an ArrayBuffer for; so it asks the addon for the segment's ArrayBuffer at
// every allocation (SegmentTable.refresh()), and takes serials the pool
// hands out across threads (serial()).
//
// A shared pool's free() of a Buffer this thread holds as its allocation's
// only reference is deferred (deferFree()): written into a batch the
// attachment owns natively and given back many at a time
// (lib/native/free-batch.ts).
//
// Threads: the pool's JS thread only, like the pool; a shared pool's
// allocator is also called by the other attached threads, each through its
// own PoolMemory.
import { binding, NativeStatus, type NativePool, type NativePoolOptions, type NativeDump, type NativeSharedPool, type NativeStats } from './binding.js';
import { handleOf, offsetOf, segmentOf } from './handle.js';
import { keepUntilCollected, SegmentTable } from './segment-table.js';
import { FREED_SERIAL, nextSerial } from '../buffers/serials.js';
import { FreeBatch } from './free-batch.js';

/**
 * What the block cache (lib/cache/) asks of the allocator: blocks in
 * batches through one scratch array, and detaching its tables' old arrays.
 */
export interface CacheGateway {
  /** Hands the allocator the array refill() and flush() read and write (NativePool.setScratch). */
  setScratch(array: Float64Array): boolean;
  /** Gives back `nflush` blocks, then takes up to `count` of class `size` (NativePool.refill). */
  refill(size: number, count: number, nflush: number, mayMap: boolean, aged: number): number;
  /** Gives back `n` blocks (NativePool.flush). */
  flush(n: number): number;
  /** Detaches an ArrayBuffer; true when it is detached now. */
  detach(buffer: ArrayBuffer): boolean;
}

/** Serials a shared pool's attachment takes from the addon at a time. */
const SERIAL_BLOCK = 4096;

export class PoolMemory implements CacheGateway {
  /** The addon's allocator. */
  readonly #native: NativePool;
  /** ArrayBuffer of each live segment, by id (read on the hot path). */
  readonly segments: (ArrayBuffer | undefined)[];
  /** Guard and secure pools: every allocation has an ArrayBuffer of its own, starting at its first byte. */
  readonly own: boolean;
  /** ArrayBuffers made so far (segments exposed, own ones): one made means mapped memory may have grown. */
  exposures = 0;
  /** This thread's attachment to a shared pool; undefined for a pool of one thread. */
  readonly shared: NativeSharedPool | undefined;
  readonly #table: SegmentTable;
  /** A shared pool's counts and deferred frees (lib/threads/figures.ts, ./free-batch.ts). */
  readonly #figures: Float64Array | undefined;
  /** Shared pools but guard and secure: the frees deferred (deferFree()). */
  readonly #batch: FreeBatch | undefined;
  /** The largest allocation that is not huge (a huge one's free releases its mapping: never deferred). */
  readonly #hugeThreshold: number;
  #serial = 0;
  #serialEnd = 0;
  /** Told how many deferred frees the allocator refused when their batch went back (each a double free across threads). */
  onRefusedFrees: ((refused: number) => void) | undefined;

  /** `shared`: an attachment made by lib/threads/ (the options then only say how to view it). */
  constructor(options: Omit<NativePoolOptions, 'heapFactory' | 'heapRetire'>, own: boolean, shared?: NativeSharedPool) {
    this.#native = shared ?? new binding.NativePool({
      ...options,
      heapFactory: (size: number) => new ArrayBuffer(size),
      heapRetire: keepUntilCollected,
    });
    this.shared = shared;
    this.#table = new SegmentTable(this.#native, options.backing === 'heap');
    this.segments = this.#table.list;
    this.own = own;
    this.#hugeThreshold = options.hugeThreshold;
    this.#figures = shared?.figures();
    if (shared !== undefined && !own && this.#figures !== undefined) {
      this.#batch = new FreeBatch(this.#figures, () => {
        const refused = shared.flushFrees();
        if (refused > 0) this.onRefusedFrees?.(refused);
      });
    }
  }

  /**
   * The serial of a new allocation the block cache does not serve: this
   * thread's next (lib/buffers/serials.ts), or for a shared pool the next of
   * a block the pool gave this thread, so that no two threads' allocations
   * share one (a stale view must never match a newer allocation).
   */
  serial(): number {
    const shared = this.shared;
    if (shared === undefined) return nextSerial();
    if (this.#serial === this.#serialEnd) {
      this.#serial = shared.serials(SERIAL_BLOCK);
      this.#serialEnd = this.#serial + SERIAL_BLOCK;
    }
    return this.#serial++;
  }

  /** Shared pools: [share id, check] for one more reference of the allocation, or a negative NativeStatus. */
  share(handle: number, length: number, serial: number): [number, string] | number {
    return (this.shared as NativeSharedPool).share(segmentOf(handle), offsetOf(handle), length, serial);
  }

  /** Shared pools: this attachment's counts, which every thread's stats() sums (lib/threads/figures.ts); undefined otherwise. */
  figures(): Float64Array | undefined {
    return this.#figures;
  }

  /**
   * Shared pools but guard and secure: defers the free of the allocation
   * `buf` views in segment `segment`, handed out under `serial`, and
   * returns true (`buf` must be a view this pool's segment `segment` holds
   * now, or nothing is done); the addon checks it exactly when its batch
   * goes back (the caller counts it). False, with
   * nothing done, for what free() must judge and free now: any other pool,
   * a view this pool's segments do not hold (foreign, stale, lost), a huge
   * allocation (its free releases a mapping), a view already freed this way
   * (its serial FREED_SERIAL, which no allocation has). One function for
   * the whole check, on purpose: it is free()'s path across threads.
   */
  deferFree(buf: ArrayBufferView, segment: number, serial: number): boolean {
    const batch = this.#batch;
    // (A view of a detached ArrayBuffer reads byteLength 0: lost, or gone.)
    const length = buf.byteLength;
    if (batch === undefined || serial === FREED_SERIAL || length === 0 || length > this.#hugeThreshold ||
      this.segments[segment] !== buf.buffer) {
      return false;
    }
    batch.add(segment, buf.byteOffset, length, serial);
    return true;
  }

  /** Shared pools: the frees this thread deferred go back now (before anything reads or changes the whole pool). */
  flushFrees(): void {
    this.#batch?.flush();
  }

  /**
   * Shared pools: the cached block at `handle` (of class `classSize`)
   * becomes an allocation of its own under `serial`, of `size` bytes and
   * `refs` references (lib/threads/share.ts promote()). A NativeStatus.
   */
  promote(handle: number, classSize: number, serial: number, size: number, refs: number): number {
    return (this.shared as NativeSharedPool).promote(segmentOf(handle), offsetOf(handle), classSize, serial, size, refs);
  }

  /**
   * Shared pools: the [handle, length, serial, references] of a shared
   * allocation, its reference now this thread's; or a negative NativeStatus.
   */
  adopt(shareId: number, check: string): [number, number, number, number] | number {
    const r = (this.shared as NativeSharedPool).adopt(shareId, check);
    return typeof r === 'number' ? r : [handleOf(r[0], r[1]), r[2], r[3], r[4]];
  }

  setScratch(array: Float64Array): boolean {
    return this.#native.setScratch(array);
  }

  refill(size: number, count: number, nflush: number, mayMap: boolean, aged: number): number {
    return this.#native.refill(size, count, nflush, mayMap, aged);
  }

  flush(n: number): number {
    return this.#native.flush(n);
  }

  detach(buffer: ArrayBuffer): boolean {
    return this.#native.detach(buffer);
  }

  /** A handle, or a negative NativeStatus (NeedsChunk when `mayMap` is false and only a new chunk has room). */
  alloc(size: number, zero: boolean, serial: number, align: number, mayMap: boolean): number {
    return this.#native.alloc(size, zero, serial, align, mayMap);
  }

  /** NativeStatus: Ok, SegmentReleased (a huge mapping went) or an error. */
  free(handle: number, length: number, serial: number): number {
    return this.#native.free(segmentOf(handle), offsetOf(handle), length, serial);
  }

  retain(handle: number, length: number, serial: number): number {
    return this.#native.retain(segmentOf(handle), offsetOf(handle), length, serial);
  }

  release(handle: number, length: number, serial: number): number {
    return this.#native.release(segmentOf(handle), offsetOf(handle), length, serial);
  }

  refCount(handle: number, length: number, serial: number): number {
    return this.#native.refCount(segmentOf(handle), offsetOf(handle), length, serial);
  }

  /**
   * The ArrayBuffer to view the allocation at `handle` through: its own
   * (guard, secure: the view starts at 0) or its segment's (the view starts
   * at the handle's offset). Undefined when none can be made: the runtime
   * refused an external ArrayBuffer.
   */
  bufferOf(handle: number, size: number): ArrayBuffer | undefined {
    const id = segmentOf(handle);
    if (this.own) {
      const ab = this.#table.guard(id, offsetOf(handle), size);
      if (ab !== undefined) this.exposures++;
      return ab;
    }
    const ab = this.segments[id];
    // A detached buffer here: its segment was given back to make room, and
    // the id now names a new one. (In a shared pool another thread may have
    // given it back without this thread's ArrayBuffer being detached.)
    if (ab !== undefined && ab.byteLength !== 0 && this.shared === undefined) return ab;
    return this.expose(id);
  }

  /** First use of a segment: its ArrayBuffer; undefined when the runtime refuses it. */
  expose(id: number): ArrayBuffer | undefined {
    if (this.shared !== undefined) {
      const before = this.segments[id];
      const ab = this.#table.refresh(id);
      if (ab !== before) this.exposures++;
      return ab;
    }
    this.exposures++;
    return this.#table.expose(id);
  }

  /**
   * An allocation made and never handed out, given back as if it had not
   * been made. True when its segment went with it (a huge mapping).
   */
  giveBack(handle: number, size: number, serial: number, ab: ArrayBuffer | undefined): boolean {
    if (this.own && ab !== undefined) this.#table.unguard(ab);
    return this.free(handle, size, serial) === NativeStatus.SegmentReleased;
  }

  /**
   * The handle of the allocation `buf` (tagged with `serial`) was handed out
   * for, found by its ArrayBuffer or, for a view of a lost segment, by its
   * serial; -1 when this pool has none.
   */
  find(buf: ArrayBufferView, serial: number): number {
    const handle = this.#table.find(buf, this.own);
    return handle >= 0 ? handle : this.findLost(buf, serial);
  }

  /** True when `ab` is an ArrayBuffer this pool gave back (a view of it is stale, not foreign). */
  isRetired(ab: ArrayBuffer): boolean {
    return this.#table.isRetired(ab);
  }

  /**
   * The length of the allocation at `handle` that `buf` was handed out
   * for: its byteLength, but for a view of a lost segment, which reads 0
   * (the allocator has it, by serial).
   */
  lengthOf(buf: ArrayBufferView, handle: number, serial: number): number {
    if (this.own || (buf.buffer as ArrayBuffer).byteLength !== 0) return buf.byteLength;
    const at = this.#native.findLost(segmentOf(handle), serial);
    return at === undefined ? 0 : at[1];
  }

  /**
   * Guard and secure pools: the reference count of the allocation `buf`
   * views (a negative NativeStatus if it cannot be freed); when it can, its
   * ArrayBuffer is detached before the memory goes back.
   */
  unguard(buf: ArrayBufferView, handle: number, serial: number): number {
    const count = this.refCount(handle, buf.byteLength, serial);
    if (count >= 0) this.#table.unguard(buf.buffer as ArrayBuffer);
    return count;
  }

  /**
   * Segment `id`'s ArrayBuffer was found detached. True when someone else
   * did that, now or before: the allocator places nothing there again and
   * the table keeps its ArrayBuffer for findLost(). False when this pool
   * did (the segment went back; the id may name a new one).
   */
  lose(id: number): boolean {
    if (!this.#native.lose(id)) return false;
    this.#table.lose(id);
    return true;
  }

  /** The ids of the segments whose ArrayBuffer someone else detached, each lost now (usually none). */
  loseDetached(): number[] {
    const lost: number[] = [];
    const list = this.segments;
    for (let id = 0; id < list.length; id++) {
      if (list[id]?.byteLength === 0 && this.lose(id)) lost.push(id);
    }
    return lost;
  }

  /** A huge allocation's mapping went back to the OS: its ArrayBuffer is retired. */
  retire(id: number): void {
    this.#table.retire(id);
  }

  /** After trim() and reset(): retire every segment this pool detached. */
  sweep(): void {
    this.#table.sweep();
  }

  /** Detaches the ArrayBuffer of every live allocation of a guard or secure pool. */
  detachGuarded(): void {
    this.#table.detachGuarded();
  }

  reset(): void {
    this.flushFrees();
    this.#native.reset();
  }

  trim(): number {
    this.flushFrees();
    return this.#native.trim();
  }

  decay(): void {
    this.#native.decay();
  }

  /** Gives every mapping back (ArrayBuffers detached; addresses kept until collected: docs/safety.md). */
  close(): void {
    this.#native.close();
    this.#table.clear();
  }

  mapped(): number {
    return this.#native.mapped();
  }

  lastError(): ReturnType<NativePool['lastError']> {
    return this.#native.lastError();
  }

  stats(): NativeStats {
    this.flushFrees();
    return this.#native.stats();
  }

  /** The allocator's dump. */
  dump(): NativeDump {
    this.flushFrees();
    return this.#native.dump();
  }

  // The handle of the allocation of a view of a lost segment (it reads
  // byteOffset and byteLength 0), found by serial; -1 for anything else.
  private findLost(buf: ArrayBufferView, serial: number): number {
    const ab = buf.buffer as ArrayBuffer;
    if (this.own || ab.byteLength !== 0) return -1;
    let id = this.#table.lostId(ab);
    if (id === undefined) {
      id = this.#table.idOf(ab);
      if (id === undefined || !this.lose(id)) return -1;
    }
    const at = this.#native.findLost(id, serial);
    return at === undefined ? -1 : handleOf(id, at[0]);
  }
}
