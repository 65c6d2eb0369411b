// The package as consumers see it: the exports map, the ESM wrapper over the
// one CommonJS build, the declaration files under --strict / nodenext, and
// what `npm pack` would ship. Everything here runs in plain Node child
// processes (not through vitest's module loader), because what is tested is
// Node's and tsc's own resolution. Needs the compiled dist/ (`npm test` runs
// tsc first) and the native addon.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
  files: string[];
  dependencies: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

/** Runs an ES module given as text in a child Node, in the repository (so 'mmap-pool' is a self-reference). */
function runModule(source: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', source], { cwd: root, encoding: 'utf8' });
}

describe('package.json', () => {
  it('the exports map puts "types" first for import and for require, and exposes ./package.json', () => {
    const dot = pkg.exports['.'] as Record<string, Record<string, string>>;
    expect(Object.keys(dot)).toEqual(['import', 'require']);
    expect(Object.entries(dot.import!)).toEqual([['types', './esm/index.d.mts'], ['default', './esm/index.mjs']]);
    expect(Object.entries(dot.require!)).toEqual([['types', './dist/lib/index.d.ts'], ['default', './dist/lib/index.js']]);
    expect(pkg.exports['./package.json']).toBe('./package.json');
  });

  it('declares engines, the install loader and the prebuild script', () => {
    expect(pkg.engines.node).toBe('>=20');
    expect(pkg.scripts['install']).toBe('node-gyp-build');
    expect(pkg.scripts['prebuild']).toBe('prebuildify --napi --strip --tag-libc');
    // npm runs a "prebuild" script before any "build" script: there must be none.
    expect(pkg.scripts['build']).toBeUndefined();
  });
});

describe('module formats', () => {
  it('the ESM wrapper exports exactly the names of the CommonJS build, as the same objects', () => {
    const out = runModule(`
      import * as esm from './esm/index.mjs';
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('./dist/lib/index.js');
      const names = Object.keys(cjs).sort();
      console.log(JSON.stringify({
        esm: Object.keys(esm).sort(),
        cjs: names,
        different: names.filter((n) => esm[n] !== cjs[n]),
      }));
    `);
    const { esm, cjs, different } = JSON.parse(out) as { esm: string[]; cjs: string[]; different: string[] };
    expect(cjs).toContain('Pool');
    expect(cjs).toContain('PoolError');
    // A runtime export added to lib/index.ts must be added to esm/index.mjs's list too.
    expect({
      missingFromEsmIndexMjs: cjs.filter((n) => !esm.includes(n)),
      notInCommonJsBuild: esm.filter((n) => !cjs.includes(n)),
      notTheSameObject: different,
    }).toEqual({ missingFromEsmIndexMjs: [], notInCommonJsBuild: [], notTheSameObject: [] });
  });

  it("import('mmap-pool') and require('mmap-pool') resolve through the exports map and give the same Pool class", () => {
    const out = runModule(`
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const esm = await import('mmap-pool');
      const cjs = require('mmap-pool');
      const pool = new esm.Pool({ name: 'self-reference' });
      const buf = pool.alloc(100);
      cjs.Pool.prototype.free.call(pool, buf);
      const live = pool.stats().liveAllocations;
      pool.close();
      console.log(JSON.stringify({
        importUrl: import.meta.resolve('mmap-pool'),
        requirePath: require.resolve('mmap-pool'),
        samePool: esm.Pool === cjs.Pool,
        samePoolError: esm.PoolError === cjs.PoolError,
        instance: pool instanceof cjs.Pool,
        live,
        pkgName: require('mmap-pool/package.json').name,
      }));
    `);
    const r = JSON.parse(out) as Record<string, unknown>;
    expect(r['importUrl']).toMatch(/\/esm\/index\.mjs$/);
    expect(String(r['requirePath']).replace(/\\/g, '/')).toMatch(/\/dist\/lib\/index\.js$/);
    expect(r).toMatchObject({ samePool: true, samePoolError: true, instance: true, live: 0, pkgName: 'mmap-pool' });
  });
});

describe('declaration files', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a consumer type-checks under --strict with module nodenext as ESM (.mts) and CommonJS (.cts), and runs', async () => {
    // A project outside the repository with mmap-pool in its node_modules
    // (a link to this checkout), built from scripts/consumer.
    const dir = mkdtempSync(join(tmpdir(), 'mmap-pool-consumer-'));
    dirs.push(dir);
    cpSync(join(root, 'scripts', 'consumer'), dir, { recursive: true });
    mkdirSync(join(dir, 'node_modules'));
    const linked = join(dir, 'node_modules', 'mmap-pool');
    try {
      symlinkSync(root, linked, 'junction');
    } catch (err) {
      // Wine (8.0, where scripts/test-windows.sh runs this) makes no
      // junctions: ENOTSUP. There a copy of what the package ships (its
      // "files", prebuilds/ among them) stands in for the link, with its
      // dependencies beside it, as an install would put them.
      if ((err as NodeJS.ErrnoException).code !== 'ENOTSUP') throw err;
      mkdirSync(linked);
      for (const entry of ['package.json', ...pkg.files.filter((f) => !f.startsWith('!'))]) {
        if (existsSync(join(root, entry))) cpSync(join(root, entry), join(linked, entry), { recursive: true });
      }
      for (const dep of Object.keys(pkg.dependencies)) {
        cpSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep), { recursive: true });
      }
    }

    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    // Asynchronously: tsc can take minutes on a slow machine (Node under
    // QEMU), and vitest fails a run whose worker stays blocked for 60 s.
    let log: string;
    try {
      ({ stdout: log } = await promisify(execFile)(process.execPath, [
        tsc, '-p', 'tsconfig.json', '--strict',
        '--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node', '--explainFiles',
      ], { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }));
    } catch (err) {
      const out = (err as { stdout?: string }).stdout ?? '';
      throw new Error(`tsc failed:\n${out.split('\n').filter((l) => /error TS/.test(l)).join('\n') || out}`);
    }
    // Each file got the declarations of its own condition.
    expect(log).toMatch(/from file 'consumer\.mts' with packageId 'mmap-pool\/esm\/index\.d\.mts@/);
    expect(log).toMatch(/from file 'consumer\.cts' with packageId 'mmap-pool\/dist\/lib\/index\.d\.ts@/);

    const run = (file: string): string => execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
    expect(run(join('out', 'consumer.mjs'))).toMatch(/^consumer\.mts: OK/);
    expect(run(join('out', 'consumer.cjs'))).toMatch(/^consumer\.cts: OK/);
  });
});

describe('npm pack', () => {
  it('ships dist/lib, the ESM wrapper, the native sources and binding.gyp, and no tests, benchmarks or source maps', () => {
    const npmCli = process.env['npm_execpath'];
    // --ignore-scripts: no "prepare" (tsc) rewriting dist/ under the other test files.
    const args = ['pack', '--dry-run', '--json', '--ignore-scripts'];
    const out = npmCli !== undefined && /\.[cm]?js$/.test(npmCli)
      ? execFileSync(process.execPath, [npmCli, ...args], { cwd: root, encoding: 'utf8' })
      : execFileSync('npm', args, { cwd: root, encoding: 'utf8', shell: process.platform === 'win32' });
    const [report] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
    const files = report!.files.map((f) => f.path);

    const sources = [...readFileSync(join(root, 'binding.gyp'), 'utf8').matchAll(/"(native\/[^"]+\.cc)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(0);
    for (const f of ['package.json', 'binding.gyp', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'esm/index.mjs', 'esm/index.d.mts', ...sources]) {
      expect(files, f).toContain(f);
    }
    const shipped = files.filter((f) => /^(test|bench|examples|lib|scripts|build|native\/test|dist\/examples|\.github|\.ci)\/|\.map$/.test(f));
    expect(shipped).toEqual([]);
  });
});
