// What code a benchmark run measured, for the machine lines of bench/RESULTS.md.
import { spawnSync } from 'node:child_process';

/** `git describe`-like: the commit, and a note when lib/ or native/ differ from it. */
export function revision(repo: string): string {
  const git = (...args: string[]): string | undefined => {
    const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const head = git('rev-parse', '--short', 'HEAD');
  if (head === undefined) return 'unknown (not a git checkout)';
  const dirty = git('status', '--porcelain', '--', 'lib', 'native/alloc', 'native/addon', 'native/platform');
  return `commit ${head}${dirty ? ', with uncommitted changes in lib/ or native/' : ''}`;
}
