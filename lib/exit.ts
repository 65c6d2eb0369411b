// Process-exit hook: closes the pools still open when the process (or a
// worker) exits. Pools are held weakly, so an unreferenced pool can still be
// collected; this is defence in depth, not how temp files go away (they are
// unlinked, or delete-on-close, from the start).
import { writeSync } from 'node:fs';

interface Closable {
  close(): void;
  /** A line for stderr when the pool still holds allocations it should report, else undefined. */
  exitReport?(): string | undefined;
}

const open = new Set<WeakRef<Closable>>();
const forget = new FinalizationRegistry<WeakRef<Closable>>((ref) => open.delete(ref));
let hooked = false;

function closeAll(): void {
  for (const ref of open) {
    try {
      const pool = ref.deref();
      const report = pool?.exitReport?.();
      if (report !== undefined) writeSync(2, `${report}\n`);  // synchronous: the process is exiting
      pool?.close();
    } catch {
      // Exiting: one pool failing to close must not stop the others.
    }
  }
  open.clear();
}

/** Remember `pool` until it closes; returns the token for untrack(). */
export function track(pool: Closable): WeakRef<Closable> {
  if (!hooked) {
    process.on('exit', closeAll);
    hooked = true;
  }
  const ref = new WeakRef(pool);
  open.add(ref);
  forget.register(pool, ref, ref);
  return ref;
}

export function untrack(ref: WeakRef<Closable>): void {
  open.delete(ref);
  forget.unregister(ref);
}
