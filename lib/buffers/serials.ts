// Allocation serials: what tells a live Buffer from a stale one over the
// same bytes (the allocator checks them on every free).

/** The largest serial: above it a double no longer counts by ones. */
export const MAX_SERIAL = 2 ** 53 - 1;

/**
 * What a shared pool's view is retagged with once its free is deferred
 * (lib/native/free-batch.ts): a serial no allocation of a shared pool has
 * (the pool's start at 2^52 and would take 2^52 allocations to get here),
 * so every later call with that view is refused as a double free.
 */
export const FREED_SERIAL = MAX_SERIAL;

// `var`, not `let`: V8 checks a context-held `let` for its temporal dead
// zone at every read and write, which took nextSerial() past the 27 bytes
// of bytecode that V8 inlines without counting them against its budget.
// eslint-disable-next-line no-var
var lastSerial = 0;

/**
 * The serial of a new allocation: 1, 2, 3 ... shared by every pool of this
 * thread (so a serial also tells pools apart). 0 is the block cache's own.
 * A serial is never reused within 2^53 - 1 allocations of a thread: a V8
 * small integer on the Buffer for the first 2^31, a double after. Past
 * MAX_SERIAL it starts again from 1: at one allocation per 10 ns, after
 * 2.8 years of nothing else.
 */
export function nextSerial(): number {
  // Short, for V8's inlining budget on the hot path (test/inlining.test.ts).
  return (lastSerial = lastSerial < 9007199254740991 ? lastSerial + 1 : 1);  // MAX_SERIAL
}

/**
 * @internal For tests only (not exported by the package): the next
 * nextSerial() returns `last` + 1, so that a test reaches the boundaries
 * (2^30, 2^31, 2^52, the wrap) without 2^52 allocations.
 */
export function setLastSerial(last: number): void {
  lastSerial = last;
}
