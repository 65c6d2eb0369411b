// The pool side of the pair 64 B case alone, in a loop, for a profiler:
//
//   npx tsc -p tsconfig.json
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/profile-pair.js [seconds] [leakDetection]
//   node dist/bench/profile-pair.js --summary /tmp/prof/<file>.cpuprofile
//
// The second form prints the top functions by self time from a .cpuprofile.
// For native frames, perf does better:
//   perf record -g node --perf-basic-prof dist/bench/profile-pair.js 5
import { readFileSync } from 'node:fs';

import { Pool } from '../lib/index.js';
import type { LeakDetection } from '../lib/index.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Self time per function (name + file:line), in percent of all samples, top `n`. */
export function summarise(path: string, n = 15): string[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byFn = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|dist|lib|internal)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${file}`;
    byFn.set(key, (byFn.get(key) ?? 0) + (hits.get(node.id) ?? 0));
  }
  const total = profile.samples.length;
  return [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([key, count]) => `${((100 * count) / total).toFixed(1).padStart(5)}%  ${key}`);
}

function loop(seconds: number, leakDetection: LeakDetection): void {
  const pool = new Pool({ name: 'profile', leakDetection });
  let sink = 0;
  let pairs = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    for (let i = 0; i < 10_000; i++) {
      const b = pool.allocUnsafe(64);
      sink += b.length;
      pool.free(b);
    }
    pairs += 10_000;
  }
  pool.close();
  console.log(`${pairs.toLocaleString('en-US')} pairs in ${seconds} s: ${((seconds * 1e9) / pairs).toFixed(0)} ns per pair` +
    ` (leakDetection '${leakDetection}')${sink === -1 ? '' : ''}`);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--summary' && args[1] !== undefined) {
    for (const line of summarise(args[1])) console.log(line);
  } else {
    loop(Number(args[0] ?? 3), (args[1] ?? 'disabled') as LeakDetection);
  }
}
