#!/usr/bin/env bash
# Runs test/fixtures/valgrind-scenario.js (every backing, small/large/huge
# allocations, free, retain/release, reset, trim, close, views used after
# close, a pool collected by the GC, worker threads terminated while they
# own pools) under valgrind memcheck, against the normal build: build/Release
# (the addon) and dist/ (the compiled TypeScript). It builds nothing; run
# `npm run build` (or `npm install`) first.
#
#   scripts/test-valgrind.sh
#
# Fails (exit 1) on any memcheck error (invalid read or write, use of
# uninitialised memory, bad free, ...) not suppressed by
# scripts/valgrind-node.supp, which holds Node's own noise only; and when the
# scenario itself fails a check or does not finish. Leaks are not errors
# (--errors-for-leak-kinds=none): Node does not free everything at exit.
#
# Node runs with --jitless: V8 then generates no machine code, so memcheck
# needs no self-modifying-code tracking for it and the run is faster and
# quieter; our addon's code runs the same either way. --smc-check stays on in
# case some code is still generated.
#
# Environment: VALGRIND_ARGS (more valgrind options, e.g. --track-origins=yes
# or --gen-suppressions=all), VALGRIND_TIMEOUT (seconds, default 600).
# About 15 s on 2 cores. Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

supp=scripts/valgrind-node.supp
addon=build/Release/mmap_pool.node
lib=dist/lib/index.js

if ! command -v valgrind >/dev/null; then
  echo "test-valgrind.sh: valgrind not found (Debian: apt-get install valgrind)" >&2
  exit 2
fi
for f in "$addon" "$lib"; do
  if [ ! -f "$f" ]; then
    echo "test-valgrind.sh: $f is missing; run npm run build first" >&2
    exit 2
  fi
done
# The suppressions may hide Node's errors, never ours. (One grep: a
# `grep -v | grep -q` pipeline under pipefail reads as "no match" when grep -q
# exits early and the first grep dies of SIGPIPE.)
if grep -i '^[^#]*mmap_pool' "$supp" >/dev/null; then
  echo "test-valgrind.sh: $supp names mmap_pool; suppress Node/V8/libuv frames only" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mmap-pool-valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/valgrind.log

echo "==== valgrind $(valgrind --version | sed 's/valgrind-//'), node $(node --version), $addon ===="
start=$SECONDS
rc=0
# shellcheck disable=SC2086  # VALGRIND_ARGS is a list of options
MMAP_POOL_LIB=$PWD/$lib MMAP_POOL_SCENARIO_DIR=$work timeout "${VALGRIND_TIMEOUT:-600}" \
  valgrind --tool=memcheck --error-exitcode=1 --errors-for-leak-kinds=none --leak-check=no \
  --smc-check=all-non-file --num-callers=40 --suppressions="$supp" --show-error-list=yes \
  --log-file="$log" ${VALGRIND_ARGS:-} \
  node --jitless --expose-gc test/fixtures/valgrind-scenario.js >"$work/stdout" 2>"$work/stderr" || rc=$?
secs=$((SECONDS - start))

cat "$work/stdout"
# V8 says it turns off WebAssembly under --jitless; anything else is shown.
stderr=$(grep -v 'disabling flag --expose_wasm due to conflicting flags' "$work/stderr" || true)
if [ -n "$stderr" ]; then printf -- '---- scenario stderr\n%s\n' "$stderr"; fi

summary=$(grep -E '== ERROR SUMMARY:' "$log" | tail -1 | sed 's/^==[0-9]*== //')
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' <<<"$summary")
echo "---- $summary (${secs} s)"
grep -E '^--[0-9]+-- used_suppression:' "$log" | sed 's/^--[0-9]*-- /  /' || true

failed=()
if [ -z "$errors" ]; then
  failed+=("valgrind wrote no error summary (exit $rc; killed or timed out?)")
elif [ "$errors" != 0 ]; then
  failed+=("$errors memcheck error(s)")
fi
if ! grep -q '^result ok ' "$work/stdout"; then failed+=("the scenario did not finish (exit $rc)"); fi
if [ "$rc" -ne 0 ] && [ "${#failed[@]}" -eq 0 ]; then failed+=("exit $rc"); fi

if [ "${#failed[@]}" -ne 0 ]; then
  echo "---- valgrind log (errors and what follows)"
  # Everything from the first error report on; the preamble is noise.
  awk '/^==[0-9]+== [A-Z]/ && !/== (Memcheck|Copyright|Using Valgrind|Command|Parent PID|HEAP SUMMARY|LEAK SUMMARY)/ { on = 1 } on' \
    "$log" | head -n 400
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "OK: no memcheck error in ${secs} s"
