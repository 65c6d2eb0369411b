// The thread cases (bench/threads.ts), each in a child process of its own,
// which `npm run bench` runs before any other case: no case then runs
// beside what another left behind (the round trips clone 16 MiB bodies,
// the speed cases leave a large heap to collect). That does not make the
// two-thread pairs steady on a machine of two cores: whatever else runs
// takes the second core from a worker, and runs of the pairs case alone
// measured 1.81-2.02x the one-thread rate five times in six, and 1.38x in
// the sixth.
//
// On glibc the round trip at 1 MiB runs once more, in a process told to
// keep its heap (KEEP_HEAP): a copy by postMessage() then reuses pages
// instead of mapping and faulting in fresh ones for every clone, and costs
// several times less. Which of the two a process gets depends on what it
// did before (glibc adapts its thresholds), so both are measured.
//
// Threads: the child's main thread runs bench/threads.ts; the parent waits.
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { cpus } from 'node:os';

import { runThreads, THREAD_CASES, type ThreadsResult } from './threads.js';

/** What GLIBC_TUNABLES gets for the second round trip: no mapping below 32 MiB, no trimming below 256 MiB. */
export const KEEP_HEAP = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456';

interface Job {
  ids: string[];
  tripSizes?: number[];
  /** Put before each line the child prints. */
  label: string;
}

/** Runs the thread cases in `ids`, each in a child process, which prints its lines as they come. */
export function runThreadsApart(ids: string[]): ThreadsResult {
  const out: ThreadsResult = { cores: cpus().length, trip: [], pairs: [], free: [] };
  for (const id of ids.filter((i) => THREAD_CASES.some((c) => c.id === i))) {
    const r = child({ ids: [id], label: '' }, {});
    out.trip.push(...r.trip);
    out.pairs.push(...r.pairs);
    out.free.push(...r.free);
  }
  if (ids.includes('threads-trip') && glibc()) {
    out.tripHeapKept = child({ ids: ['threads-trip'], tripSizes: [1024 * 1024], label: '(glibc keeping its heap) ' }, { GLIBC_TUNABLES: KEEP_HEAP }).trip;
  }
  return out;
}

function glibc(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime !== undefined;
}

// The child's lines go to this process's stdout as they come; its result
// comes back on fd 3.
function child(job: Job, env: Record<string, string>): ThreadsResult {
  const r = spawnSync(process.execPath, [__filename, JSON.stringify(job)], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const result = (r.output[3] as string | null) ?? '';
  if (r.status !== 0 || result === '') {
    throw new Error(`bench threads (${job.ids.join(', ')}): the child exited with ${r.status ?? r.signal}`);
  }
  return JSON.parse(result) as ThreadsResult;
}

async function childMain(job: Job): Promise<void> {
  const result = await runThreads(job.ids, (line) => console.log(job.label + line), job.tripSizes);
  writeSync(3, JSON.stringify(result));
}

if (require.main === module) {
  childMain(JSON.parse(process.argv[2]) as Job).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
