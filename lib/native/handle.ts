// The handle: how an allocation's place crosses from the addon to lib/.
//
//   handle = segment * 2^30 + offset        one double, exact below 2^53
//            \_____/          \____/
//            chunk or huge    byte offset in it (a chunk is at most 1 GiB)
//
// native/addon/handle.h is the C++ side; test/binding.test.ts fails if the
// addon's `contract.handleSpan` differs from HANDLE_SPAN.

/** 2^30: the segment id is the handle's multiple of it, the offset the rest. */
export const HANDLE_SPAN = 1073741824;

export function handleOf(segment: number, offset: number): number {
  return segment * HANDLE_SPAN + offset;
}

export function segmentOf(handle: number): number {
  return Math.floor(handle / HANDLE_SPAN);
}

export function offsetOf(handle: number): number {
  return handle % HANDLE_SPAN;
}
