#!/usr/bin/env bash
# OS tools some tests use, from Debian's packages, installed idempotently when root:
# - chromium: the dashboard browser test (playwright-core drives Debian's build; no test tool downloads a browser);
# - arping (and iproute2's ip): the VIP tests in network namespaces.
# Without root it only says which tests will skip and why.
set -euo pipefail
need=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
if ! command -v arping >/dev/null 2>&1; then need+=(arping); fi
if ! command -v ip >/dev/null 2>&1; then need+=(iproute2); fi
if [ ${#need[@]} -eq 0 ]; then
  echo "test tools present: $(chromium --version 2>/dev/null || echo chromium), arping, ip"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing ${need[*]} and cannot install them (needs root and apt-get): the tests that use them will skip with the reason"
  exit 0
fi
echo "installing ${need[*]} from Debian's packages for the tests"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "test tools installed: ${need[*]}"
