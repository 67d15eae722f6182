#!/usr/bin/env bash
# Chooses a nats-server for gc (>= 2.10) and prints the version it chose.
#
# Order: $NATS_SERVER_BIN, a nats-server on PATH that is >= 2.10, the project-local copy in
# .tools/nats/, else the newest Debian package (sid, then trixie) fetched with apt from a private
# sources list and unpacked with dpkg-deb -x into .tools/nats/ (no system package is installed).
# Last resort: the distribution's own package, with a loud warning (2.9 silently ignores per-key TTLs).
#
# Also provides a 2.10.x server at .tools/bin/nats-server-2.10 for compatibility tests (best effort).
# Idempotent: a second run finds .tools/bin/nats-server and only prints its version.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
mkdir -p "$BIN"

log() { printf '[provision-nats] %s\n' "$*" >&2; }

version_of() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -1; }
# at_least VERSION MIN -> 0 when VERSION >= MIN
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

link_as() { ln -sfn "$1" "$BIN/$2"; }

APT_DIR="$TOOLS/apt"
apt_opts() {
  printf -- '-o Dir::Etc::SourceList=%s -o Dir::Etc::SourceParts=%s -o Dir::State::Lists=%s -o Dir::Cache=%s -o Debug::NoLocking=1 -o APT::Sandbox::User=root' \
    "$APT_DIR/sources.list" "$APT_DIR/sources.list.d" "$APT_DIR/lists" "$APT_DIR/cache"
}

apt_prepare() {
  command -v apt-get >/dev/null || { log "apt-get not found: set NATS_SERVER_BIN to a nats-server >= 2.10"; return 1; }
  mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  local mirror="${GC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  {
    echo "deb [signed-by=$keyring] $mirror sid main"
    echo "deb [signed-by=$keyring] $mirror trixie main"
  } >"$APT_DIR/sources.list"
  # Refresh the private lists at most once a day.
  if [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    log "updating a private apt list (sid, trixie) in .tools/apt"
    # shellcheck disable=SC2046
    apt-get $(apt_opts) -qq update >&2
  fi
}

# fetch_deb VERSION -> unpacks into .tools/nats/VERSION and prints the binary path
fetch_deb() {
  local ver="$1" dest="$TOOLS/nats/$1"
  if [ ! -x "$dest/usr/sbin/nats-server" ] && [ ! -x "$dest/usr/bin/nats-server" ]; then
    local dl; dl="$(mktemp -d)"
    # shellcheck disable=SC2046
    (cd "$dl" && apt-get $(apt_opts) -qq download "nats-server=$ver" >&2 2>/dev/null) || { rm -rf "$dl"; return 1; }
    mkdir -p "$dest"
    dpkg-deb -x "$dl"/nats-server_*.deb "$dest"
    rm -rf "$dl"
  fi
  if [ -x "$dest/usr/sbin/nats-server" ]; then echo "$dest/usr/sbin/nats-server"; else echo "$dest/usr/bin/nats-server"; fi
}

# candidate_versions -> the versions apt knows, newest first
candidate_versions() {
  # shellcheck disable=SC2046
  apt-cache $(apt_opts) madison nats-server 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -rV | uniq
}

choose_primary() {
  if [ -n "${NATS_SERVER_BIN:-}" ]; then
    [ -x "$NATS_SERVER_BIN" ] || { log "NATS_SERVER_BIN=$NATS_SERVER_BIN is not an executable file"; exit 1; }
    echo "$NATS_SERVER_BIN"; return
  fi
  if [ -x "$BIN/nats-server" ]; then
    local v; v="$(version_of "$BIN/nats-server")"
    if [ -n "$v" ] && at_least "$v" 2.10.0; then echo "$BIN/nats-server"; return; fi
  fi
  local onpath; onpath="$(command -v nats-server || true)"
  if [ -n "$onpath" ]; then
    local v; v="$(version_of "$onpath")"
    if [ -n "$v" ] && at_least "$v" 2.10.0; then link_as "$onpath" nats-server; echo "$onpath"; return; fi
    log "nats-server on PATH ($onpath) is $v, older than 2.10: looking for a newer one"
  fi
  if apt_prepare; then
    local ver
    for ver in $(candidate_versions); do
      local path
      if path="$(fetch_deb "$ver")" && [ -x "$path" ]; then
        local v; v="$(version_of "$path")"
        if [ -n "$v" ] && at_least "$v" 2.10.0; then link_as "$path" nats-server; echo "$path"; return; fi
      fi
    done
  fi
  # Last resort: the distribution's package (bookworm ships 2.9.x).
  log "WARNING ================================================================="
  log "WARNING no nats-server >= 2.10 could be found or downloaded."
  log "WARNING falling back to the distribution's nats-server, which is probably 2.9.x."
  log "WARNING nats-server 2.9 ACCEPTS per-key TTLs and marker TTLs and SILENTLY IGNORES them."
  log "WARNING gc detects this and uses its revision-and-timer design, but some tests will skip."
  log "WARNING Set NATS_SERVER_BIN to a nats-server >= 2.10 to silence this."
  log "WARNING ================================================================="
  local dl; dl="$(mktemp -d)"
  (cd "$dl" && apt-get -qq download nats-server >&2) || { log "could not download the distribution's nats-server either"; exit 1; }
  mkdir -p "$TOOLS/nats/distro" && dpkg-deb -x "$dl"/nats-server_*.deb "$TOOLS/nats/distro" && rm -rf "$dl"
  local p="$TOOLS/nats/distro/usr/sbin/nats-server"; [ -x "$p" ] || p="$TOOLS/nats/distro/usr/bin/nats-server"
  link_as "$p" nats-server; echo "$p"
}

# A 2.10.x server for the compatibility tests, when one is available.
choose_compat() {
  if [ -x "$BIN/nats-server-2.10" ]; then return; fi
  [ "${GC_SKIP_NATS_COMPAT:-}" = 1 ] && return
  apt_prepare 2>/dev/null || return 0
  local ver
  for ver in $(candidate_versions); do
    case "$ver" in 2.10.*)
      local path
      if path="$(fetch_deb "$ver")" && [ -x "$path" ]; then link_as "$path" nats-server-2.10; return; fi ;;
    esac
  done
  log "no nats-server 2.10.x package found; the 2.10 compatibility tests will skip"
}

primary="$(choose_primary)"
choose_compat || true
printf 'nats-server %s (%s)\n' "$(version_of "$primary")" "$primary"
if [ -x "$BIN/nats-server-2.10" ]; then
  printf 'nats-server %s (%s, compatibility tests)\n' "$(version_of "$BIN/nats-server-2.10")" "$(readlink -f "$BIN/nats-server-2.10")"
fi
