#!/usr/bin/env bash
# Syntax-checks the native sources as the Windows (MinGW-w64) compiler sees
# them, so Windows-only code paths can be checked on Linux without a Windows
# machine. Nothing is built or linked.
#
# A file passes only if the compiler prints nothing: warnings count as
# failures, as they would hide in a CI log otherwise. Node and node-addon-api
# headers are passed with -isystem so their own warnings do not count.
#
# Set MMAP_POOL_INSTALL_MINGW=1 to apt-get install the cross compiler when it
# is missing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

find_cxx() {
  # The -posix variant uses winpthreads, which is what std::thread and
  # thread-safe statics need; the plain name is whatever alternative is set.
  local c
  for c in x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-g++; do
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if ! cxx="$(find_cxx)"; then
  if [[ "${MMAP_POOL_INSTALL_MINGW:-}" == "1" ]]; then
    echo "windows check: installing g++-mingw-w64-x86-64 (MMAP_POOL_INSTALL_MINGW=1)" >&2
    sudo_cmd=()
    if [[ "$(id -u)" != "0" ]]; then sudo_cmd=(sudo); fi
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} apt-get update
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} apt-get install -y g++-mingw-w64-x86-64
    cxx="$(find_cxx)" || { echo "windows check: x86_64-w64-mingw32-g++ still not found after install" >&2; exit 1; }
  else
    cat >&2 <<'EOF'
windows check: x86_64-w64-mingw32-g++ not found.
  Install it with:  sudo apt-get install -y g++-mingw-w64-x86-64
  or rerun with MMAP_POOL_INSTALL_MINGW=1 to have this script install it.
EOF
    exit 1
  fi
fi

have_node=0
if command -v node >/dev/null 2>&1; then have_node=1; fi

# Node's own headers (node_api.h and friends).
node_inc=""
if [[ $have_node == 1 ]]; then
  node_inc="$(node -p "require('path').join(process.execPath, '../../include/node')" 2>/dev/null || true)"
fi
if [[ -z "$node_inc" || ! -f "$node_inc/node_api.h" ]]; then
  node_inc="/usr/include/node"
fi
if [[ ! -f "$node_inc/node_api.h" ]]; then
  echo "windows check: warning: node_api.h not found (tried $node_inc); files that include it will fail" >&2
fi

# node-addon-api (napi.h). include_dir is relative to the current directory,
# which is the repo root here.
addon_api_inc=""
if [[ $have_node == 1 ]]; then
  addon_api_inc="$(node -p "require('node-addon-api').include_dir" 2>/dev/null || true)"
fi
if [[ -n "$addon_api_inc" && ! -f "$addon_api_inc/napi.h" ]]; then
  addon_api_inc=""
fi

flags=(
  -std=c++17 -fsyntax-only -Wall -Wextra
  -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS
  -D_WIN32_WINNT=0x0A00
  -I native
  -isystem "$node_inc"
)
if [[ -n "$addon_api_inc" ]]; then flags+=(-isystem "$addon_api_inc"); fi

dirs=(native/platform native/alloc)
if [[ -n "$addon_api_inc" ]]; then
  dirs+=(native/addon)
elif [[ -n "$(find native/addon -name '*.cc' 2>/dev/null | head -n 1)" ]]; then
  echo "windows check: warning: node-addon-api is not installed (run npm install); skipping native/addon" >&2
fi

files=()
for d in "${dirs[@]}"; do
  [[ -d "$d" ]] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "$d" -type f -name '*.cc' | LC_ALL=C sort)
done

echo "windows check: $cxx"
ok=0
failed=0
# ${a[@]+...}: an empty array under set -u is an error in bash < 4.4 (macOS).
for f in ${files[@]+"${files[@]}"}; do
  if out="$("$cxx" "${flags[@]}" "$f" 2>&1)" && [[ -z "$out" ]]; then
    echo "  ok    $f"
    ok=$((ok + 1))
  else
    echo "  FAIL  $f"
    printf '%s\n' "$out" | sed 's/^/        /'
    failed=$((failed + 1))
  fi
done

if [[ $failed -gt 0 ]]; then
  echo "windows check: $failed of ${#files[@]} files FAILED"
  exit 1
fi
echo "windows check: $ok files OK"
