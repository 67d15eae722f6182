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
  node24_out="$(bash scripts/node24.sh)"
  mapfile -t node24 <<<"$node24_out"
  if [ -n "${node24[1]:-}" ]; then export GC_SQLITE_NATIVE_BINDING="${node24[1]}"; fi
  status=0
  "${node24[0]}" node_modules/vitest/vitest.mjs run --project '@gc/*' --project smoke \
    --reporter=default --reporter=json --outputFile.json=test-results/vitest-node24.json || status=$?
  node scripts/test-summary.mjs test-results/vitest-node24.json "node $("${node24[0]}" --version)" || true
  unset GC_SQLITE_NATIVE_BINDING
  if [ $status -ne 0 ]; then
    # Known defect (2026-12-02): a test fork on Node 24 aborts in better-sqlite3 12.11's Statement destructor
    # (node::RemoveEnvironmentCleanupHook: "(env) != nullptr"), taking its remaining files with it. Reported
    # loudly, not yet fatal, until it is fixed; GC_NODE24_STRICT=1 makes it fail the run.
    echo "WARNING: the Node 24 phase failed (exit $status): see test-results/vitest-node24.json" >&2
    [ "${GC_NODE24_STRICT:-0}" = 1 ] && exit $status
  fi
fi

step "leftovers"
node scripts/check-leftovers.mjs "gc-testkit-$GC_TESTKIT_RUN-"

echo "test suite finished in $(( $(date +%s) - start ))s"
