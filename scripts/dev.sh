#!/usr/bin/env bash
# The main job: bootstrap (idempotent), then `gc dev`. Extra arguments go to `gc dev`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash "$ROOT/scripts/setup.sh" >&2
step "gc dev" >&2
exec node "$ROOT/apps/cli/bin/run.js" dev "$@"
