#!/usr/bin/env bash
# Installs the Debian packages a peer benchmark compares gc with (keepalived, arping, etcd-server, ...),
# idempotently: packages already installed are left alone, nothing else is touched.
#
#   scripts/provision-peer.sh <package>...
#
# Exit 0: every package is installed (now or before). Exit 1: something is missing and cannot be installed
# here (not root, no apt-get, apt failed); the last line on stderr says why, for the bench's `skipped`.
# Services the packages ship are not started (policy-rc.d decides that on Debian images; the benches run
# their own instances with their own configs).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/provision-peer.sh <debian-package>..." >&2
  exit 2
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for pkg in "$@"; do
  case "$pkg" in
    *[!a-z0-9.+-]*) echo "provision-peer: not a Debian package name: $pkg" >&2; exit 2 ;;
  esac
  installed "$pkg" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "provision-peer: ${missing[*]} not installed and not root (run: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "provision-peer: ${missing[*]} not installed and apt-get is not available on this system" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
  timeout 600 apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >&2
}
# Try with the package lists as they are first; refresh them once if that fails (stale or empty lists).
if ! apt_install; then
  timeout 300 apt-get update -o Dpkg::Use-Pty=0 >&2 || true
  if ! apt_install; then
    echo "provision-peer: apt-get install ${missing[*]} failed (see above)" >&2
    exit 1
  fi
fi
for pkg in "${missing[@]}"; do
  if ! installed "$pkg"; then
    echo "provision-peer: $pkg is still not installed after apt-get install" >&2
    exit 1
  fi
done
