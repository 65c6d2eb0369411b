#!/usr/bin/env bash
# Native tests of the allocator (native/alloc) and platform layer
# (native/platform), without Node:
#   1. an ASan + UBSan build runs every test (size classes, arena, platform, resident,
#      model, concurrency, fuzz-corpus replay);
#   2. a TSan build runs the concurrency test and the shared-pool test (two
#      environments of one pool on two threads);
#   3. an unsanitized build runs the platform test again, because the ASan and
#      TSan runtimes make mlock() a no-op and platform::Lock goes untested there.
# Any sanitizer report fails the run (-fno-sanitize-recover=all, halt_on_error).
#
#   scripts/test-native.sh              # both stages
#   scripts/test-native.sh arena        # only tests whose ctest name matches
#
# Environment: CXX (compiler, default c++), JOBS (default nproc),
# MMAP_POOL_SEED (model test seed), MMAP_POOL_OPS (model test length).
# Build trees: build-native/test-asan, build-native/test-tsan, build-native/test-plain.
# Needs cmake >= 3.16 and a C++17 compiler with sanitizers (g++ or clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build-native

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
filter=${1:-}
failed=()
summary=()
start_all=$SECONDS

section() { printf '\n==== %s ====\n' "$*"; }

# build <name> <cmake args...>
build() {
  local name=$1
  shift
  local dir=build-native/test-$name
  section "build $name ($*)"
  cmake -S native/test -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 ||
    { mkdir -p "$dir"; cat "$dir.configure.log"; return 1; }
  # The build's own status (under pipefail a `| grep || true` would hide it,
  # and ctest would then run a stale binary).
  local rc=0
  cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || rc=$?
  grep -E 'error|warning|Error' "$dir.build.log" || true
  return "$rc"
}

# run <name> <ctest -R regex>
run() {
  local name=$1 regex=$2
  local dir=build-native/test-$name
  section "run $name${regex:+ (-R $regex)}"
  local t0=$SECONDS rc=0
  ctest --test-dir "$dir" --output-on-failure ${regex:+-R "$regex"} || rc=$?
  # Each test's own verdict line ("N passed, N failed") from ctest's log.
  local log=$dir/Testing/Temporary/LastTest.log
  if [ -f "$log" ]; then
    awk -v stage="$name" '
      /^[0-9]+\/[0-9]+ Test: / { test = $3 }
      / passed, [0-9]+ failed$/ { printf "  %-6s %-22s %s\n", stage, test, $0 }' "$log"
  fi
  summary+=("$name: ctest exit $rc in $((SECONDS - t0)) s")
  if [ "$rc" -ne 0 ]; then failed+=("$name"); fi
}

if build asan -DSANITIZE=address,undefined; then
  run asan "$filter"
else
  failed+=("asan build")
fi

if [ -z "$filter" ] || [[ concurrency_test =~ $filter ]] || [[ shared_pool_test =~ $filter ]]; then
  if build tsan -DSANITIZE=thread; then
    run tsan 'concurrency_test|shared_pool_test'
  else
    failed+=("tsan build")
  fi
fi

if [ -z "$filter" ] || [[ platform_test =~ $filter ]]; then
  if build plain; then
    run plain platform_test
  else
    failed+=("plain build")
  fi
fi

section "summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "  total: $((SECONDS - start_all)) s"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "OK: all native tests passed"
