#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard browser test (playwright-core drives it; no browser is
# downloaded by a test tool). Idempotent; without root it only says why the browser test will skip.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  echo "chromium: $(chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is not installed and this is not root: the dashboard browser test will skip (apt-get install chromium as root to run it)"
  exit 0
fi
echo "installing Debian's chromium for the dashboard browser test"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: $(chromium --version)"
