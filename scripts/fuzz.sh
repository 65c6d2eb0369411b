#!/usr/bin/env bash
# Fuzzes the Arena with libFuzzer for a bounded time (native/test/fuzz_arena.cc:
# every operation checked against a model, abort() on any mismatch), built
# with clang++ -fsanitize=fuzzer,address,undefined.
#
#   scripts/fuzz.sh [seconds]          # default 60
#   scripts/fuzz.sh 300 --merge        # also merge new coverage into native/test/corpus
#
# The committed corpus (native/test/corpus) is read, never written: inputs
# libFuzzer finds go to a temp dir, printed at the end. --merge copies only
# those that add coverage (libFuzzer -merge=1) into the committed corpus.
# A crash leaves its input in the temp dir and the script exits non-zero;
# replay it with the printed command.
#
# Needs clang++ with libFuzzer. On Debian 12: apt-get install clang
# (pulls clang-14, libclang-common-14-dev and libclang-rt-14-dev, which
# ships libclang_rt.fuzzer-*.a).
# Environment: CXX_FUZZ (default clang++), JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build-native

secs=${1:-60}
merge=${2:-}
case "$secs" in (''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds] [--merge]" >&2; exit 2;; esac
if [ -n "$merge" ] && [ "$merge" != "--merge" ]; then
  echo "usage: scripts/fuzz.sh [seconds] [--merge]" >&2
  exit 2
fi
cxx=${CXX_FUZZ:-clang++}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
dir=build-native/test-fuzz

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: $cxx not found (Debian: apt-get install clang)" >&2
  exit 2
fi

echo "==== build fuzz_arena ($cxx, fuzzer + address + undefined) ===="
mkdir -p build
cmake -S native/test -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DMMAP_POOL_FUZZ=ON -DSANITIZE=address,undefined >"$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "$jobs"

work=$(mktemp -d "${TMPDIR:-/tmp}/mmap-pool-fuzz.XXXXXX")
mkdir -p "$work/corpus"
echo
echo "==== fuzz for ${secs} s; new inputs and crashes go to $work ===="
rc=0
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$dir/fuzz_arena" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -max_len=4096 -len_control=10 \
  -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" native/test/corpus || rc=$?

found=$(find "$work/corpus" -type f | wc -l)
echo
echo "==== result ===="
echo "new corpus inputs: $found in $work/corpus"
crashes=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
  echo "FAILED: libFuzzer exit $rc"
  for c in $crashes; do
    echo "  $c"
    echo "    replay: $dir/fuzz_arena $c"
    echo "       or: build-native/test-asan/fuzz_arena_replay $c"
  done
  exit 1
fi
if [ -n "$merge" ] && [ "$found" -gt 0 ]; then
  before=$(find native/test/corpus -type f | wc -l)
  "$dir/fuzz_arena" -merge=1 native/test/corpus "$work/corpus" >"$work/merge.log" 2>&1
  echo "merged: native/test/corpus $before -> $(find native/test/corpus -type f | wc -l) files"
fi
echo "OK: no crash in ${secs} s"
