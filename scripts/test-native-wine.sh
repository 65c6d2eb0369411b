#!/usr/bin/env bash
# The native tests that hold on every platform, built for Windows with
# MinGW-w64 (native/platform/windows.cc in place of posix.cc, linked
# statically) and run under Wine: the Windows platform layer (sections over
# the page file and over temp files, views, discard, protection) executed
# through the allocator, not only compiled (scripts/check-windows.sh).
# Wine implements the Win32 API on Linux; it is not Windows, but it is what
# this machine can run.
#
# arena_test and spare_test expect the Windows layer's own figures where it
# differs from POSIX: huge mappings rounded up to the 64 KiB allocation
# granularity (platform::MapGranularity()) rather than the page; discarded
# pages not zeroed (so a zeroed allocation is cleared by the arena); no lazy
# discard (Decay releases spares); GetLastError() codes and Win32 API names
# in error reports. resident_test reads residency from the working set
# (QueryWorkingSetEx) where POSIX asks mincore.
#
# Not here: platform_test, which is POSIX code (fork, signals).
#
#   scripts/test-native-wine.sh        needs g++-mingw-w64-x86-64 and wine64
set -euo pipefail
cd "$(dirname "$0")/.."

cxx=x86_64-w64-mingw32-g++-posix
command -v "$cxx" >/dev/null || { echo "test-native-wine: $cxx not found (g++-mingw-w64-x86-64)" >&2; exit 2; }
wine=""
for w in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
  if [[ -n "$w" && -x "$w" ]]; then wine="$w"; break; fi
done
[[ -n "$wine" ]] || { echo "test-native-wine: wine64 not found (Debian package wine64)" >&2; exit 2; }

out=build-native/wine
mkdir -p "$out"
export WINEPREFIX="$PWD/$out/prefix" WINEDEBUG=-all
tests=(size_classes_test slab_test arena_test spare_test resident_test model_test concurrency_test regression_test)

failed=0
for t in "${tests[@]}"; do
  "$cxx" -std=c++17 -O1 -static -Wall -Wextra -Werror -Inative -Inative/test \
    "native/test/$t.cc" native/alloc/*.cc native/platform/windows.cc -o "$out/$t.exe"
  log="$out/$t.log"
  # (A Windows program's output ends its lines with CRLF.)
  if timeout 600 "$wine" "$out/$t.exe" 2>&1 | tr -d '\r' >"$log" &&
     tail -1 "$log" | grep -q ', 0 failed$'; then
    echo "  wine   $t: $(tail -1 "$log")"
  else
    echo "  wine   $t FAILED:"
    grep -E 'FAIL|CHECK failed' "$log" | head -20 || tail -20 "$log"
    failed=1
  fi
done
# The Wine server lingers a few seconds after the last program; don't wait.
for s in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver "$(command -v wineserver || true)"; do
  if [[ -n "$s" && -x "$s" ]]; then "$s" -k 2>/dev/null || true; break; fi
done
exit "$failed"
