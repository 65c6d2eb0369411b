// The "Shared pools across threads" section of RESULTS.md, from bench/threads.ts.
//
// Threads: none here; the figures were measured across worker threads.
import { ratio, sizeText, usText, verdict } from './format.js';
import { FREE_GOAL, PAIRS_GOAL, TRIP_COPY_GOAL, TRIP_TRANSFER_GOAL, type ThreadsResult } from './threads.js';
import { KEEP_HEAP } from './threads-apart.js';

export function renderThreads(t: ThreadsResult): string[] {
  const out: string[] = [];
  const p = (...lines: string[]): void => {
    out.push(...lines);
  };
  p('## Shared pools across threads (bench/threads.ts)', '');
  p('One `new Pool({ shared: true })` made by the main thread, two workers attached',
    'to it; each case ran in a child process of its own, before every other case',
    '(bench/threads-apart.ts). The variants of each row alternate round by round; the',
    `figures are medians over rounds. This machine has **${t.cores} cores**, which the`,
    'workers share with the main thread and with whatever else runs on it (see the',
    'load average above). Each attachment of a shared pool has a block cache of its',
    'own (docs/design.md, "Per-thread caches"): a Buffer allocated and freed by one',
    'thread makes no native call, and the allocator\'s lock is taken once for each',
    'batch (up to 64 blocks) the cache refills or gives back, in one native call.', '');

  if (t.trip.length > 0) {
    p('### A Buffer to a worker and back', '');
    p('One round trip: the main thread hands a body to a worker, which changes its',
      'first byte and hands it back. **share/adopt**: `pool.share(buf)`, `pool.release(buf)`,',
      'the handle posted; the worker `adopt()`s, writes, `share()`s, `release()`s and posts',
      'the handle back; the main thread `adopt()`s it. **copy**: `postMessage()` of a',
      '`Buffer.alloc(size)` each way (structured clone copies it). **transfer**:',
      '`postMessage(ab, [ab])` of a standalone `ArrayBuffer` each way. Ratios are the',
      'other variant\'s time over share/adopt\'s: above 1, share/adopt is faster.', '');
    p('| size | share/adopt | copy (page faults) | transfer | vs copy | goal | | vs transfer | goal | |');
    p('|---|---:|---:|---:|---:|---|---|---:|---|---|');
    const kept = t.tripHeapKept ?? [];
    for (const r of [...t.trip, ...kept]) {
      const vc = r.copyUs / r.shareUs;
      const vt = r.transferUs / r.shareUs;
      const copyGoal = r.size === 1024 * 1024;
      const label = kept.includes(r) ? `${sizeText(r.size)}, glibc keeping its heap` : sizeText(r.size);
      p(`| ${label} | ${usText(r.shareUs)} | ${usText(r.copyUs)} (${r.copyFaults.toFixed(0)}) | ${usText(r.transferUs)} | **${ratio(vc)}** | ` +
        `${copyGoal ? `>= ${TRIP_COPY_GOAL}x` : '(none)'} | ${copyGoal ? verdict(vc >= TRIP_COPY_GOAL) : ''} | ` +
        `**${ratio(vt)}** | >= ${TRIP_TRANSFER_GOAL}x (within 2x) | ${verdict(vt >= TRIP_TRANSFER_GOAL)} |`);
    }
    p('', 'share/adopt costs the same at every size: the bytes never move. What it adds',
      'to a transfer is a native call for each of share, release and adopt on both',
      'sides, and a handle object where a transfer posts the ArrayBuffer itself. Most',
      'of a round trip, for both, is the two message hops. A copy grows with the size,',
      'and depends on where the C library finds memory for each clone: pages its heap',
      'already holds, or pages mapped fresh, each of which faults when first written',
      '(the copy column gives the page faults per round trip, all threads). glibc',
      'chooses by thresholds it adapts to what the process did before, so the same',
      'program may copy either way. Every row but the one marked "glibc keeping its',
      'heap" ran in a fresh process with glibc\'s defaults; that one ran in a process',
      `told to keep its heap (\`GLIBC_TUNABLES=${KEEP_HEAP}\`), the cheap case of a copy.`, '');
    for (const r of [...t.trip, ...kept]) {
      if (r.size !== 1024 * 1024 || r.copyUs / r.transferUs >= TRIP_COPY_GOAL) continue;
      p(`Where the copy took ${usText(r.copyUs)} (${faults(r.copyFaults)}), even the transfer, which copies nothing and`,
        `makes no native call, was only ${ratio(r.copyUs / r.transferUs)} faster than it (${usText(r.transferUs)}): two message hops take more`,
        `than a twentieth of two such copies, so no way of handing a Buffer over by message reaches ${TRIP_COPY_GOAL}x there.`, '');
    }
  }

  if (t.pairs.length > 0) {
    p('### alloc/free pairs from two threads at once', '');
    p('Each worker runs `pool.allocUnsafe(size)` + `pool.free()` in a loop; "1 thread"',
      'is one worker alone, "2 threads" is both at once, started together through',
      '`Atomics.notify`, each running as many pairs as the one did alone. Throughput',
      'is all pairs over the time from the first start to the last end.', '');
    p('| size | 1 thread | 2 threads | 2 / 1 | goal | |');
    p('|---:|---:|---:|---:|---|---|');
    for (const r of t.pairs) {
      const x = r.two / r.one;
      p(`| ${sizeText(r.size)} | ${(r.one / 1e6).toFixed(2)} M pairs/s (${(1e9 / r.one).toFixed(0)} ns/pair) | ` +
        `${(r.two / 1e6).toFixed(2)} M pairs/s | **${ratio(x)}** | >= ${PAIRS_GOAL}x | ${verdict(x >= PAIRS_GOAL)} |`);
    }
    p('', 'The pairs run in each thread\'s own block cache, with no lock and no native',
      'call, so two threads could run side by side; on this machine two cores are',
      'also all there is for the two workers, the main thread and whatever else',
      'runs, so 2 / 1 measures the machine\'s spare core more than the pool: read it',
      'with the load average above. The goal needs two idle cores to be judged.', '');
  }

  if (t.free.length > 0) {
    p('### free() in another thread', '');
    p('Worker A allocates 20,000 blocks and frees them (**same thread**); then A',
      'allocates 20,000 more and hands each to worker B with `share()` (releasing its',
      'own reference), B `adopt()`s them all and frees them (**other thread**). Only',
      'the frees are timed. Throughput ratio = same-thread time / other-thread time.', '');
    p('| size | same thread, per free | other thread, per free | ratio | goal | |');
    p('|---:|---:|---:|---:|---|---|');
    for (const r of t.free) {
      const x = r.sameNs / r.crossNs;
      p(`| ${sizeText(r.size)} | ${r.sameNs.toFixed(0)} ns | ${r.crossNs.toFixed(0)} ns | **${ratio(x)}** | >= ${FREE_GOAL}x | ${verdict(x >= FREE_GOAL)} |`);
    }
    p('', 'A same-thread free goes back to the thread\'s block cache without a native',
      'call (at 4 KiB most of 20,000 frees overflow the class\'s stack and go back in',
      'batches). A shared Buffer has left its cache (docs/design.md, "Per-thread',
      'caches"); B holds its only reference, so B\'s free takes no lock: it is',
      'counted at once and waits in a batch that goes to the allocator 64 at a time',
      'in one native call (docs/design.md, "Deferred frees").', '');
    if (t.free.some((r) => r.sameNs / r.crossNs < FREE_GOAL)) {
      p('Where a row misses the goal: a free in the other thread still does more than one',
        'into the cache. It reads the Buffer\'s offset, length and ArrayBuffer (a free into',
        'the cache reads only its block id and serial), writes a batch entry, and pays its',
        'share of the batch\'s native call; docs/design.md, "Deferred frees", has those',
        'parts measured. At 64 B the two differ by a few tens of nanoseconds, about what',
        'this machine\'s speed varies between runs: `npm run bench -- threads-free`, run',
        'alone a few times, shows the spread.', '');
    }
  }
  return out;
}

/** Page faults per round trip, in words. */
function faults(n: number): string {
  const k = Math.round(n);
  return `${k} page fault${k === 1 ? '' : 's'} a trip`;
}
