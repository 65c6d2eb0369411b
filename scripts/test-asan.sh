#!/usr/bin/env bash
# Runs the vitest suite (and test/fixtures/valgrind-scenario.js) against an
# AddressSanitizer build of the addon, made in a temp copy of the repository
# so the developer's build/ and dist/ are never touched.
#
#   scripts/test-asan.sh                      # the default test files (below)
#   scripts/test-asan.sh pool guard           # test/pool.test.ts, test/guard.test.ts
#   scripts/test-asan.sh all                  # every test file
#
# Steps:
#   1. copy the repository (without node_modules, build, build-native, dist,
#      prebuilds, .git) to a temp dir, symlink node_modules;
#   2. node-gyp rebuild there with -fsanitize=address -fno-omit-frame-pointer
#      -g -O1 (CFLAGS/CXXFLAGS/LDFLAGS reach gyp's Makefile; checked with
#      readelf/nm: libasan is NEEDED and __asan_report_* is called), and tsc;
#   3. make an "ASan node": a copy of node with libasan as a DT_NEEDED
#      library (patchelf) and the ASan options compiled into a small library
#      loaded with it. Why not LD_PRELOAD: the tests start child processes
#      with a clean environment (env: { PATH, HOME, MMAP_POOL_LIB }), which
#      drops LD_PRELOAD and ASAN_OPTIONS, and a child loading an ASan addon
#      without the runtime dies at once ("ASan runtime does not come first").
#      The copy is process.execPath of vitest and of every test, so every
#      child spawned from process.execPath runs under ASan with our options,
#      whatever environment it is given; it is also `node` on PATH;
#   4. check that an empty-environment child really writes ASan reports where
#      we look for them (a canary library with a deliberate overflow);
#   5. run vitest and the valgrind scenario with the ASan node;
#   6. fail if vitest failed or ANY ASan report file was written, by any
#      process (log_path: one file per process, <tmp>/asan-reports/asan.<pid>).
#
# Tests left out here (they run in `npm test`): they measure the whole
# process, which the ASan runtime itself changes, not our memory use:
#   - lifecycle "worker threads holding pools" (4) and "opening and closing
#     300 pools": count /proc/self/maps lines and accessible bytes; ASan's
#     allocator and quarantine map more as the process runs (measured 9-24
#     lines more, 8 allowed) and its shadow is terabytes. The scenario run in
#     step 5 terminates workers that own pools, idle and mid-call, instead;
#   - secure "locked in RAM entirely", "VmLck grows", and the two
#     "locked-memory limit" tests that expect mlock() to fail: the ASan
#     runtime turns mlock() into a no-op that succeeds.
#
# On success the temp dir is removed; on failure it is kept (reports, build
# logs, the ASan node) and its path printed.
# Environment: JOBS (make jobs, default nproc), KEEP=1 (keep the temp dir).
# Needs gcc/g++ with libasan (Debian 12: gcc, g++, which pull libasan8),
# patchelf (apt-get install patchelf), make and python3 for node-gyp, and
# node_modules (npm install). About 1 min on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Files that exercise the native code; pure-TypeScript ones (options,
# render-map, metrics, monitor, metrics-server) add nothing here.
default_tests=(pool errors random safety guard secure hostile lifecycle aligned fallback leaks scope object-pool pressure)
# Full-name substrings of the tests left out (see above). No regex characters.
excluded=(
  'worker threads holding pools '
  'opening and closing 300 pools'
  'are locked in RAM entirely'
  'VmLck grows by exactly'
  "throws PoolError ERR_MAP_FAILED, syscall 'mlock'"
  'the failed allocation leaves nothing mapped and nothing live'
)

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
section() { printf '\n==== %s ====\n' "$*"; }
die() { echo "test-asan.sh: $*" >&2; exit 2; }

# ---- prerequisites --------------------------------------------------------------
command -v g++ >/dev/null || die "g++ not found (Debian: apt-get install g++)"
command -v patchelf >/dev/null || die "patchelf not found (Debian: apt-get install patchelf)"
asan_rt=$(gcc -print-file-name=libasan.so)
[ -e "$asan_rt" ] || die "gcc has no libasan.so (Debian: apt-get install libasan8)"
asan_rt=$(readlink -f "$asan_rt")
if [ ! -d node_modules/vitest ] || [ ! -d node_modules/node-gyp ]; then die "node_modules missing: run npm install"; fi
node_bin=$(node -p process.execPath)

tests=()
if [ $# -eq 0 ]; then
  for t in "${default_tests[@]}"; do tests+=("test/$t.test.ts"); done
elif [ "$*" != all ]; then
  for t in "$@"; do
    if [ -f "test/$t.test.ts" ]; then tests+=("test/$t.test.ts"); else tests+=("$t"); fi
  done
fi
exclude_re="^(?!.*($(IFS='|'; echo "${excluded[*]}")))"

work=$(mktemp -d "${TMPDIR:-/tmp}/mmap-pool-asan.XXXXXX")
reports=$work/asan-reports
mkdir -p "$reports" "$work/bin"
ok=0
cleanup() {
  if [ "$ok" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "temp dir kept: $work (rm -rf it when done)"
  fi
}
trap cleanup EXIT
start_all=$SECONDS

# ---- 1. the copy ----------------------------------------------------------------
section "copy $root -> $work/repo"
mkdir "$work/repo"
tar -C "$root" -cf - --exclude=./node_modules --exclude=./build --exclude=./build-native \
  --exclude=./dist --exclude=./prebuilds --exclude=./.git . | tar -C "$work/repo" -xf -
ln -s "$root/node_modules" "$work/repo/node_modules"

# ---- 2. ASan build ----------------------------------------------------------------
# -O1 comes after binding.gyp's -O2 and wins: ASan's advice, for exact stack
# traces. _GLIBCXX_SANITIZE_VECTOR: libstdc++ tells ASan which part of a
# std::vector's capacity is in use, so an access past size() but within
# capacity is a "container-overflow" too (all our vectors stay inside the addon).
section "node-gyp rebuild with -fsanitize=address"
t0=$SECONDS
flags="-fsanitize=address -fno-omit-frame-pointer -g -O1"
(
  cd "$work/repo"
  CFLAGS="$flags" CXXFLAGS="$flags -D_GLIBCXX_SANITIZE_VECTOR" LDFLAGS="-fsanitize=address" \
    npx --no-install node-gyp rebuild --jobs "$jobs" >"$work/build.log" 2>&1
) || { tail -n 40 "$work/build.log"; echo "FAILED: node-gyp build (log: $work/build.log)"; exit 1; }
addon=$work/repo/build/Release/mmap_pool.node
# The flags really reached compile and link: the runtime is NEEDED, the code
# calls the ASan checks, and there is debug info. (The tool's output is read
# whole first: `readelf ... | grep -q` under pipefail fails at random when
# grep exits early and readelf dies of SIGPIPE.)
dynamic=$(readelf -d "$addon")
sections=$(readelf -S "$addon")
grep -q 'NEEDED.*libasan' <<<"$dynamic" || { echo "FAILED: $addon does not link libasan"; exit 1; }
checks=$(nm -u "$addon" | grep -c '__asan_report_' || true)
[ "$checks" -gt 0 ] || { echo "FAILED: $addon has no __asan_report_* calls"; exit 1; }
grep -q '\.debug_info' <<<"$sections" || { echo "FAILED: $addon has no debug info"; exit 1; }
echo "$addon: links $(sed -n 's/.*NEEDED.*\[\(libasan[^]]*\)\].*/\1/p' <<<"$dynamic"), $checks kinds of __asan_report_* calls, debug info"
(cd "$work/repo" && node_modules/.bin/tsc -p tsconfig.json) || { echo "FAILED: tsc"; exit 1; }
echo "built in $((SECONDS - t0)) s"

# ---- 3. the ASan node -------------------------------------------------------------
# The options library must come before libasan in the load order: its
# __asan_default_options() is then the one libasan finds; so the check that
# libasan is the very first library is turned off (it is still loaded before
# libstdc++, libc and everything that allocates).
#   detect_leaks=0     Node and V8 do not free everything at exit (isolates,
#                      platform, static singletons), so LeakSanitizer would
#                      report in every process. Our leaks are tested by
#                      test/leaks, test/lifecycle and scripts/test-native.sh
#                      (LSan on the allocator alone).
#   halt_on_error=1, abort_on_error=1
#                      the first report ends the process with SIGABRT, so
#                      the test that caused it fails as well.
#   log_path           reports go to asan-reports/asan.<pid>, for every
#                      process, including children whose stderr a test
#                      swallows; step 6 fails on any such file.
# No suppressions and no check turned off for Node's sake: Node 20 (a
# NodeSource build) under this runtime wrote no report of its own, neither
# new-delete-type-mismatch nor alloc-dealloc-mismatch. Should one appear,
# turn off only that check for a named Node/V8 frame, never for our code.
asan_options="verify_asan_link_order=0:detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$reports/asan"
section "ASan node: $node_bin + $(basename "$asan_rt")"
cat >"$work/asan_options.c" <<EOF
// ASan options of every process started from $work/bin/node.
const char* __asan_default_options(void) { return "$asan_options"; }
EOF
gcc -shared -fPIC -O2 -o "$work/bin/libasan_options.so" "$work/asan_options.c"
cp "$node_bin" "$work/bin/node"
# Each --add-needed puts its library first: the options end up before libasan.
patchelf --add-needed "$asan_rt" "$work/bin/node"
patchelf --add-needed "$work/bin/libasan_options.so" "$work/bin/node"
asan_node=$work/bin/node
readelf -d "$asan_node" | grep NEEDED | head -n 3
unset ASAN_OPTIONS LD_PRELOAD

# ---- 4. canary --------------------------------------------------------------------
# A child with an empty environment loads an ASan-instrumented library that
# overflows a heap block: it must die by SIGABRT and leave a report in
# asan-reports/. Also checks that such a child loads our ASan addon.
section "canary: a child with an empty environment"
cat >"$work/canary.c" <<'EOF'
#include <stdlib.h>
__attribute__((constructor)) static void overflow(void) {
  volatile char* p = malloc(8);
  p[8] = 1;  /* one byte past the block */
  free((void*)p);
}
EOF
gcc -shared -fPIC -fsanitize=address -g -o "$work/canary.so" "$work/canary.c"
rc=0
# (The extra `exit` keeps the subshell from exec'ing node, so bash's
# "Aborted" message goes to /dev/null with the rest.)
(env -i "$asan_node" -e "process.dlopen({ exports: {} }, '$work/canary.so')"; exit $?) 2>/dev/null || rc=$?
canary=$(grep -l 'heap-buffer-overflow' "$reports"/asan.* 2>/dev/null || true)
if [ "$rc" -ne 134 ] || [ -z "$canary" ]; then
  echo "FAILED: the canary child exited $rc and left ${canary:-no report}; ASan options do not reach children"
  exit 1
fi
echo "canary: exit $rc (SIGABRT), report $(basename "$canary"): $(grep -m1 'ERROR: AddressSanitizer' "$canary" | sed 's/^==[0-9]*==//')"
rm -f "$reports"/asan.*
loaded=$(env -i MMAP_POOL_LIB="$work/repo/dist/lib/index.js" "$asan_node" -e "
  require(process.env.MMAP_POOL_LIB);
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  const libs = new Set(maps.split('\n').map((l) => l.split(/ +/)[5]).filter((p) => /mmap_pool\.node|libasan/.test(p || '')));
  console.log([...libs].join(' '));")
case "$loaded" in
  *"$addon"*libasan*|*libasan*"$addon"*) echo "a clean child loads: $loaded" ;;
  *) echo "FAILED: a clean child loads '$loaded', not $addon under libasan"; exit 1 ;;
esac

# ---- 5. the tests -----------------------------------------------------------------
section "vitest ${tests[*]:-(all files)} under ASan"
echo "left out (see the top of this script):"
printf '  %s\n' "${excluded[@]}"
t0=$SECONDS
vitest_rc=0
(
  cd "$work/repo"
  PATH="$work/bin:$PATH" "$asan_node" node_modules/vitest/vitest.mjs run --no-cache \
    ${tests[@]+"${tests[@]}"} -t "$exclude_re"
) || vitest_rc=$?
vitest_secs=$((SECONDS - t0))

section "valgrind-scenario.js under ASan"
t0=$SECONDS
scenario_rc=0
mkdir -p "$work/scenario"
(
  MMAP_POOL_LIB="$work/repo/dist/lib/index.js" MMAP_POOL_SCENARIO_DIR="$work/scenario" \
    "$asan_node" --expose-gc "$work/repo/test/fixtures/valgrind-scenario.js"
  exit $?
) || scenario_rc=$?
scenario_secs=$((SECONDS - t0))

# ---- 6. verdict -------------------------------------------------------------------
section "summary"
failed=()
echo "  vitest: exit $vitest_rc in $vitest_secs s"
echo "  scenario: exit $scenario_rc in $scenario_secs s"
[ "$vitest_rc" -eq 0 ] || failed+=("vitest")
[ "$scenario_rc" -eq 0 ] || failed+=("scenario")
found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  failed+=("$(echo "$found" | wc -l) ASan report(s)")
  echo "---- ASan reports (one per process):"
  for f in $found; do
    echo "  $f: $(grep -m1 -E '^SUMMARY:|ERROR:' "$f" | sed 's/^==[0-9]*==//')"
  done
  first=$(echo "$found" | head -n 1)
  echo "---- $first"
  head -n 50 "$first"
fi
echo "  total: $((SECONDS - start_all)) s"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
ok=1
echo "OK: no ASan report"
