#!/usr/bin/env bash
# Provides Node 24 from the npm registry's `node` package (it ships the binary and headers) in
# .tools/node24, idempotently, and prints the path of its binary. No native build is needed for it:
# on Node-API 10 @gc/sqlite loads better-sqlite3 13, which ships Node-API prebuilds.
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

