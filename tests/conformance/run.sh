#!/usr/bin/env bash
# tests/conformance/run.sh TEST.test.mjs — run one conformance test (ctest calls this).
#
# npm packages are installed with `npm ci` from the committed package-lock.json into
# $CONFORMANCE_DIR (inside the build tree, never the source tree) and reused while the lock file
# is unchanged. The test file is copied next to node_modules so that its imports resolve there.
# No node, no npm or no registry is a FAILURE, not a skip: these tests must run to pass.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
test_file="${1:?usage: run.sh TEST.test.mjs}"
dir="${CONFORMANCE_DIR:?CONFORMANCE_DIR must name a directory in the build tree}"
command -v node >/dev/null || { echo "conformance: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "conformance: npm is not installed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
(
  flock 9
  if [ ! -d "$dir/node_modules" ] || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
    rm -rf "$dir/node_modules" "$dir/package-lock.json"
    cp "$src/package.json" "$dir/package.json"
    if ! (cd "$dir" && cp "$src/package-lock.json" . && npm ci --no-audit --no-fund --loglevel=error); then
      rm -rf "$dir/node_modules" "$dir/package-lock.json"
      echo "conformance: npm ci failed (is the npm registry reachable?)" >&2
      exit 1
    fi
  fi
  cp "$src"/*.mjs "$dir/"
) 9>"$dir/.lock"
cd "$dir"
exec node --test "$(basename "$test_file")"
