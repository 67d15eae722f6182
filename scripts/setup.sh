#!/usr/bin/env bash
# Bootstraps everything gc needs on a machine with only Node (>= 20.19) and npm. Idempotent: each
# step checks whether it is already done. Steps: pnpm, nats-server, dependencies, build.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error(`gc needs Node >= 20.19, this is ${process.version}`); process.exit(1) }'

step "pnpm"
if ! command -v pnpm >/dev/null 2>&1; then
  echo "pnpm not found: installing it into .tools/pnpm (npm, no global change)"
  npm install --silent --no-fund --no-audit --prefix "$TOOLS/pnpm" pnpm@12 >/dev/null
fi
echo "pnpm $(pnpm --version)"

step "nats-server"
bash "$ROOT/scripts/provision-nats.sh"
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$TOOLS/bin/nats-server}"

step "dependencies"
stamp="$ROOT/node_modules/.gc-setup-stamp"
want="$(node -e 'const c=require("crypto"),f=require("fs");console.log(c.createHash("sha256").update(f.readFileSync("pnpm-lock.yaml")).update(process.version).digest("hex"))')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "up to date (lockfile unchanged since the last install)"
else
  pnpm install --frozen-lockfile --reporter=append-only
  echo "$want" >"$stamp"
fi

step "build"
pnpm exec turbo run build --output-logs=errors-only
echo "built"
