# Shared by setup.sh, test.sh and dev.sh: paths and the environment every step needs.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="$TOOLS/pnpm/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
# node-gyp builds native addons (better-sqlite3) against the running Node's own headers instead of
# downloading them (this machine reaches only the npm registry and Debian's archive).
if [ -z "${npm_config_nodedir:-}" ]; then
  _node_prefix="$(dirname "$(dirname "$(command -v node)")")"
  if [ -f "$_node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$_node_prefix"; fi
fi
if [ -x "$TOOLS/bin/nats-server" ] && [ -z "${NATS_SERVER_BIN:-}" ]; then export NATS_SERVER_BIN="$TOOLS/bin/nats-server"; fi
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
