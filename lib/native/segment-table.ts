// SegmentTable: the ArrayBuffers a pool has shown to JavaScript, and what
// each one is.
//
//   list[id]   the ArrayBuffer over segment `id` (a chunk or a huge mapping),
//              made once by the addon (pools without guard or secure)
//   ids        ArrayBuffer -> segment id, to find a view's segment at free()
//   guarded    guard and secure pools: each live allocation's own
//              ArrayBuffer -> its allocator handle (lib/native/handle.ts)
//   retired    ArrayBuffers given back (segments, guarded allocations): a
//              view of one is stale (ERR_DOUBLE_FREE), not foreign
//   lost       ArrayBuffers of segments someone else detached (a web byte
//              stream, transfer()) -> segment id: their views are detached,
//              and free() finds their allocations by serial
//
// Threads: the pool's JS thread only, like the pool (a shared pool's
// attachment in each thread has a table of its own: refresh()).
import { markAsUntransferable } from 'node:worker_threads';

import type { NativePool } from './binding.js';
import { handleOf, segmentOf } from './handle.js';

/**
 * Whether markAsUntransferable() leaves an ArrayBuffer detachable by the
 * addon. From Node 24 it also sets a V8 detach key, which Node-API's
 * napi_detach_arraybuffer cannot pass: detaching such a buffer is a fatal
 * error (the process aborts), not an exception. Found out once, on a probe:
 * ArrayBuffer.prototype.transfer() detaches like the addon does and throws a
 * TypeError where a key is set. Without transfer() (Node 20) there are no
 * detach keys either.
 */
const MARK_KEEPS_DETACHABLE = ((): boolean => {
  const probe = new ArrayBuffer(1);
  markAsUntransferable(probe);
  const transfer = (probe as { transfer?: () => ArrayBuffer }).transfer;
  if (typeof transfer !== 'function') return true;
  try {
    transfer.call(probe);
    return true;
  } catch {
    return false;
  }
})();

/**
 * Pins `ab` to this thread where that keeps it detachable: a transfer
 * (postMessage with it in the transfer list) would detach the whole chunk
 * under every other allocation. Where it would not (Node 24 and later), the
 * ArrayBuffer stays transferable, and the addon never unmaps memory whose
 * ArrayBuffer someone else detached (native/addon/js_segments.h). Heap
 * segments are never pinned: giving one back moves its memory with a
 * transfer (keepUntilCollected).
 */
function pin(ab: ArrayBuffer): void {
  if (MARK_KEEPS_DETACHABLE) markAsUntransferable(ab);
}

/** Holds memory moved out of a heap segment until its old ArrayBuffer is collected. */
const keeper = new FinalizationRegistry<ArrayBuffer>(() => {});

/**
 * The addon's `heapRetire`: a heap segment is given back. Detaching its
 * ArrayBuffer would free V8's memory at once, under any zlib, crypto or fs
 * job still reading or writing it through a view of that ArrayBuffer (Node
 * keeps the view, and so the ArrayBuffer object, until the job's callback).
 * A transfer detaches it without freeing: the same memory, not a copy, now
 * belongs to the new ArrayBuffer, which the registry holds until the old
 * ArrayBuffer object is collected. Throws (DataCloneError) if `ab` cannot
 * be transferred; the addon then detaches it plainly.
 */
export function keepUntilCollected(ab: ArrayBuffer): void {
  keeper.register(ab, structuredClone(ab, { transfer: [ab] }));
}

export class SegmentTable {
  /**
   * ArrayBuffer of each live segment, by id. The array object itself never
   * changes, so the pool may keep a reference to it for its hot path.
   */
  readonly list: (ArrayBuffer | undefined)[] = [];
  readonly #ids = new Map<ArrayBuffer, number>();
  readonly #guarded = new Map<ArrayBuffer, number>();
  readonly #retired = new WeakSet<ArrayBuffer>();
  readonly #lost = new WeakMap<ArrayBuffer, number>();
  readonly #native: NativePool;
  readonly #heap: boolean;

  constructor(native: NativePool, heap: boolean) {
    this.#native = native;
    this.#heap = heap;
  }

  /** First use of segment `id`: its ArrayBuffer, pinned to this thread; undefined when the runtime refuses it. */
  expose(id: number): ArrayBuffer | undefined {
    this.retire(id);
    const ab = this.#native.segment(id);
    if (ab == null) return undefined;
    if (!this.#heap) pin(ab);
    this.list[id] = ab;
    this.#ids.set(ab, id);
    return ab;
  }

  /**
   * Shared pools: segment `id`'s ArrayBuffer as the addon has it now
   * (another thread may have released the segment this thread's one was
   * over, and the id may name a new one); undefined when none can be made.
   */
  refresh(id: number): ArrayBuffer | undefined {
    const ab = this.#native.segment(id);
    if (ab == null) return undefined;
    if (ab !== this.list[id]) {
      this.retire(id);
      pin(ab);
      this.list[id] = ab;
      this.#ids.set(ab, id);
    }
    return ab;
  }

  /** An allocation's own ArrayBuffer (guard and secure pools) over [offset, offset + size) of segment `id`; undefined when none could be made. */
  guard(id: number, offset: number, size: number): ArrayBuffer | undefined {
    const ab = this.#native.view(id, offset, size);
    if (ab === undefined) return undefined;
    pin(ab);
    this.#guarded.set(ab, handleOf(id, offset));
    return ab;
  }

  /**
   * The allocator handle (lib/native/handle.ts) of a view's
   * allocation; -1 if it is not over live memory of this pool. `own`: the
   * pool gives every allocation an ArrayBuffer of its own (guard, secure).
   */
  find(buf: ArrayBufferView, own: boolean): number {
    const ab = buf.buffer as ArrayBuffer;
    if (own) {
      const handle = this.#guarded.get(ab);
      return handle === undefined ? -1 : handle + buf.byteOffset;
    }
    const id = this.#ids.get(ab);
    if (id === undefined || ab.byteLength === 0) return -1;
    return handleOf(id, buf.byteOffset);
  }

  /** Segment `id` is lost (someone else detached its ArrayBuffer): its views are found by lostId() from now on. */
  lose(id: number): void {
    const ab = this.list[id];
    if (ab === undefined) return;
    this.retire(id);
    this.#lost.set(ab, id);
  }

  /** The segment id of a lost segment's (detached) ArrayBuffer, or undefined. */
  lostId(ab: ArrayBuffer): number | undefined {
    return this.#lost.get(ab);
  }

  /** The segment id of an ArrayBuffer in `list`, or undefined. */
  idOf(ab: ArrayBuffer): number | undefined {
    return this.#ids.get(ab);
  }

  /** Whether `ab` was given back (a view of it is stale); a segment found detached is retired first. */
  isRetired(ab: ArrayBuffer): boolean {
    const id = this.#ids.get(ab);
    if (id !== undefined && ab.byteLength === 0) this.retire(id);
    return this.#retired.has(ab);
  }

  /** A guarded allocation is being freed: detach its ArrayBuffer. */
  unguard(ab: ArrayBuffer): void {
    this.#native.detach(ab);
    this.#guarded.delete(ab);
    this.#retired.add(ab);
  }

  /**
   * Detaches every guarded allocation's ArrayBuffer (reset, close). One that
   * someone else detached (a web byte stream took it) holds memory that is
   * its new owner's now: its segment is lost instead (NativePool.lose), so
   * that it is neither reused by reset() nor unmapped by close() under it.
   */
  detachGuarded(): void {
    for (const [ab, handle] of this.#guarded) {
      if (ab.byteLength !== 0 || !this.#native.lose(segmentOf(handle), ab)) this.#native.detach(ab);
      this.#retired.add(ab);
    }
    this.#guarded.clear();
  }

  /** A segment the allocator gave back (huge free, trim, reset): forget it. */
  retire(id: number): void {
    const ab = this.list[id];
    if (ab === undefined) return;
    this.list[id] = undefined;
    this.#ids.delete(ab);
    this.#retired.add(ab);
  }

  /** After trim() and reset(): retire every segment whose ArrayBuffer was detached. */
  sweep(): void {
    for (let id = 0; id < this.list.length; id++) {
      if (this.list[id]?.byteLength === 0) this.retire(id);
    }
  }

  /** Forgets every segment (close(): the addon detached them all). */
  clear(): void {
    this.list.length = 0;
    this.#ids.clear();
  }
}
