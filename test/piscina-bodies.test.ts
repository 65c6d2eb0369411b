// examples/piscina-bodies: run as a user runs it (the compiled
// dist/examples/piscina-bodies.js, written by `tsc -p tsconfig.json`), briefly,
// and judged by what it prints; its timings are printed, never judged here.
//
// Threads: the child process runs two piscina worker threads attached to a
// shared pool.
import { describe, expect, it } from 'vitest';

import { runAsync } from './fixture-run.js';

// runAsync() runs paths under test/fixtures; the example is compiled to dist/examples.
const EXAMPLE = '../../dist/examples/piscina-bodies.js';

describe('examples/piscina-bodies', () => {
  it('hands every body to a piscina worker both ways, with the right CRC-32, and leaves the shared pool empty with one attachment', async () => {
    const out = await runAsync(EXAMPLE, ['2', '12']);
    expect(out.stderr).toBe('');
    expect({ status: out.status, signal: out.signal }).toEqual({ status: 0, signal: null });
    expect(out.stdout).toMatch(/^piscina: 2 worker threads, 2 rounds of 12 bodies \(64 KiB-1 MiB, [\d.]+ MiB a round\), 8 in flight/m);
    expect(out.stdout).toMatch(/^ {2}plain Buffers \(postMessage copies each body\): +\d+ µs per body, \d+ MiB\/s/m);
    expect(out.stdout).toMatch(/^ {2}pool handles \(share\/adopt, no copy\): +\d+ µs per body, \d+ MiB\/s/m);
    expect(out.stdout).toMatch(/^ {2}pool handles: \d+\.\d\dx the throughput of plain Buffers$/m);
    // The worker's zlib.crc32 of each body, against the main thread's of the same bytes.
    expect(out.stdout).toContain('\ncrc32 right: plain 24 of 24, handles 24 of 24\n');
    // Every body freed by a worker's release(); piscina's terminated workers ended their attachments.
    expect(out.stdout).toContain('\npool after the workers ended: 0 live allocations, attachments 1 (this thread)\n');
  });

  it('refuses a count that is not a positive integer, exit status 1', async () => {
    const out = await runAsync(EXAMPLE, ['0']);
    expect(out.status).toBe(1);
    expect(out.stderr).toBe('piscina-bodies: rounds must be a positive integer, not "0"\n');
    expect(out.stdout).toBe('');
  });
});
