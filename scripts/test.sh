#!/usr/bin/env bash
# The whole test suite: setup, graph and package checks, typecheck, lint, unit and e2e tests on the
# current Node, then every package's unit tests and the smoke e2e on Node 24. Set GC_TEST_NODE24=0 to skip the
# second runtime while iterating locally.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
start=$(date +%s)

bash "$ROOT/scripts/setup.sh"

# One id for this run's test resources (temp dirs, processes), so the leftovers check at the end looks
# only at what this run created.
export GC_TESTKIT_RUN="${GC_TESTKIT_RUN:-run$$}"

step "package graph (acyclic, one-way) and package.json consistency"
node scripts/check-graph.mjs
pnpm exec manypkg check
node scripts/check-swallows.mjs

step "typecheck"
pnpm exec turbo run typecheck --output-logs=errors-only

step "lint and format"
pnpm exec eslint . --max-warnings 0
pnpm exec prettier --check . --log-level warn

step "OS tools for the tests (chromium, arping)"
bash scripts/test-deps.sh || echo "could not install the test tools: the tests that need them will skip with the reason"

step "tests (Node $(node --version))"
mkdir -p test-results
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json || status=$?
node scripts/test-summary.mjs test-results/vitest.json "node $(node --version)" || true
[ $status -eq 0 ] || exit $status

if [ "${GC_TEST_NODE24:-1}" != 0 ]; then
  step "tests on Node 24 (every package's unit tests + the smoke e2e)"
  status=0
  node24="$(bash scripts/node24.sh)"
  # On Node 24 (Node-API 10) @gc/sqlite uses better-sqlite3 13 (Node-API, prebuilt); see packages/sqlite.
  "$node24" node_modules/vitest/vitest.mjs run --project '@gc/*' --project smoke \
    --reporter=default --reporter=json --outputFile.json=test-results/vitest-node24.json || status=$?
  node scripts/test-summary.mjs test-results/vitest-node24.json "node $("$node24" --version)" || true
  [ $status -eq 0 ] || exit $status
fi

step "leftovers"
node scripts/check-leftovers.mjs "gc-testkit-$GC_TESTKIT_RUN-"

echo "test suite finished in $(( $(date +%s) - start ))s"
