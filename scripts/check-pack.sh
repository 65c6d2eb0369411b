#!/usr/bin/env bash
# Packs mmap-pool as `npm publish` would and installs the tarball the way a
# user without a compiler does: in a fresh directory, with install scripts
# disabled (npm install --ignore-scripts) and a PATH holding nothing but node
# and npm. The package must then load the prebuild it carries, from CommonJS
# and from ESM, and its declaration files must type-check a strict consumer
# (module: nodenext, as .mts and as .cts; scripts/consumer/).
#
# Steps: npm run prebuild (prebuildify: prebuilds/<platform>-<arch>/), npm pack,
# npm install --ignore-scripts <tgz>, node -e "require(...)", node smoke.mjs
# (import), tsc --strict on scripts/consumer, then run what tsc emitted.
#
# Needs a finished `npm install` here (prebuildify, node-gyp, typescript and
# @types/node come from this checkout's node_modules) and the npm registry,
# for mmap-pool's own dependencies. Linux and macOS.
# MMAP_POOL_KEEP_PACK_DIR=1 keeps the temp directory for a look afterwards.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

work="$(mktemp -d "${TMPDIR:-/tmp}/mmap-pool-pack.XXXXXX")"
cleanup() {
  if [[ "${MMAP_POOL_KEEP_PACK_DIR:-}" == "1" ]]; then
    echo "pack check: kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { echo "pack check: $*"; }
fail() { echo "pack check: FAILED: $*" >&2; exit 1; }

tuple="$(node -p 'process.platform + "-" + process.arch')"

step "npm run prebuild ($tuple)"
# prebuildify rebuilds build/ and moves the binary out of it; put back the
# checkout's own build afterwards, so that it keeps loading what it loaded.
own_build=build/Release/mmap_pool.node
if [[ -f "$own_build" ]]; then cp -p "$own_build" "$work/own-build.node"; fi
if ! npm run prebuild >"$work/prebuild.log" 2>&1; then
  cat "$work/prebuild.log" >&2
  fail "npm run prebuild"
fi
if [[ -f "$work/own-build.node" ]]; then cp -p "$work/own-build.node" "$own_build"; fi
prebuilt="$(find "prebuilds/$tuple" -name '*.node' 2>/dev/null | LC_ALL=C sort | paste -sd ' ' -)"
[[ -n "$prebuilt" ]] || fail "npm run prebuild wrote nothing to prebuilds/$tuple/"
echo "    $prebuilt"

step "npm pack"
npm pack --json --pack-destination "$work" >"$work/pack.json" 2>"$work/pack.log" \
  || { cat "$work/pack.log" >&2; fail "npm pack"; }
# What the tarball must hold, and must not: the loader, both entry points and
# their types, the prebuild, and every source binding.gyp names (so a platform
# without a prebuild can compile); no tests, benchmarks, examples or sources
# of the TypeScript.
tgz="$(node - "$work/pack.json" "$tuple" <<'EOF'
const fs = require('node:fs');
const [, , packJson, tuple] = process.argv;
const [pack] = JSON.parse(fs.readFileSync(packJson, 'utf8'));
const files = pack.files.map((f) => f.path);
const sources = [...fs.readFileSync('binding.gyp', 'utf8').matchAll(/"(native\/[^"]+\.cc)"/g)].map((m) => m[1]);
const required = ['package.json', 'LICENSE', 'README.md', 'binding.gyp', 'dist/lib/index.js', 'dist/lib/index.d.ts',
  'esm/index.mjs', 'esm/index.d.mts', ...sources];
const problems = required.filter((f) => !files.includes(f)).map((f) => `missing ${f}`);
if (!files.some((f) => f.startsWith(`prebuilds/${tuple}/`) && f.endsWith('.node'))) {
  problems.push(`missing prebuilds/${tuple}/*.node`);
}
const forbidden = /^(test|bench|examples|lib|scripts|build|native\/test|dist\/examples|\.github|\.ci)\/|\.map$|\.tgz$/;
problems.push(...files.filter((f) => forbidden.test(f)).map((f) => `should not ship ${f}`));
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.error(`    ${pack.filename}: ${files.length} files, ${pack.size} bytes packed`);
console.log(pack.filename);
EOF
)" || fail "the tarball's file list"

# A bin directory with node and npm in it and nothing else.
bin="$work/bin"
mkdir -p "$bin"
node_exe="$(node -p 'process.execPath')"
npm_cli="$(node -p 'require("node:fs").realpathSync(process.argv[1])' "$(command -v npm)")"
ln -s "$node_exe" "$bin/node"
ln -s "$npm_cli" "$bin/npm"
for tool in g++ c++ gcc cc clang clang++ make gmake python3 python node-gyp; do
  if PATH="$bin" command -v "$tool" >/dev/null 2>&1; then
    fail "$tool is reachable on the stripped PATH"
  fi
done
step "PATH=$bin: node and npm only (no g++, cc, make, python3)"

consumer="$work/consumer"
mkdir -p "$consumer"
printf '{ "name": "mmap-pool-consumer", "version": "1.0.0", "private": true }\n' >"$consumer/package.json"
cp scripts/smoke.mjs scripts/consumer/consumer.mts scripts/consumer/consumer.cts scripts/consumer/tsconfig.json "$consumer/"

in_consumer() { (cd "$consumer" && PATH="$bin" "$@"); }

step "npm install --ignore-scripts $tgz"
in_consumer npm install --ignore-scripts --no-audit --no-fund "$work/$tgz" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; fail "npm install of the tarball"; }
[[ ! -e "$consumer/node_modules/mmap-pool/build" ]] || fail "the installed package has a build/ directory"

step "require('mmap-pool')"
in_consumer node -e "
const { Pool } = require('mmap-pool');
const pool = new Pool({ name: 'pack-check' });
const buf = pool.alloc(1024);
buf.fill(7);
if (buf.length !== 1024 || buf[1023] !== 7) throw new Error('bad buffer');
pool.free(buf);
if (pool.stats().liveAllocations !== 0) throw new Error('free did not free');
pool.close();
console.log('    require: alloc, fill, free OK');
"

step "import from 'mmap-pool' (smoke.mjs, prebuilds only)"
PREBUILDS_ONLY=1 in_consumer node smoke.mjs | sed 's/^/    /'

step "tsc --strict (module: nodenext) on consumer.mts and consumer.cts"
in_consumer node "$repo_root/node_modules/typescript/bin/tsc" -p tsconfig.json --strict \
  --typeRoots "$repo_root/node_modules/@types" --types node --explainFiles >"$work/tsc.log" 2>&1 \
  || { grep -v '^  ' "$work/tsc.log" | grep -i error >&2 || cat "$work/tsc.log" >&2; fail "tsc"; }
grep -q "from file 'consumer.mts' with packageId 'mmap-pool/esm/index.d.mts@" "$work/tsc.log" \
  || fail "consumer.mts did not get its types from esm/index.d.mts"
grep -q "from file 'consumer.cts' with packageId 'mmap-pool/dist/lib/index.d.ts@" "$work/tsc.log" \
  || fail "consumer.cts did not get its types from dist/lib/index.d.ts"
in_consumer node out/consumer.mjs | sed 's/^/    /'
in_consumer node out/consumer.cjs | sed 's/^/    /'

step "OK"
