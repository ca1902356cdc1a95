#!/usr/bin/env bash
# Makes a fresh Debian 12 + Node 20 machine ready to run or test Meridian, idempotently:
# pnpm, the Debian packages the tests and benchmark drive (skopeo, podman, buildah, containerd,
# CNCF Distribution, nginx, wrk, chromium), a running local PostgreSQL (trust auth on 127.0.0.1 for user postgres) and Redis, and
# the workspace's dependencies from the lockfile. Safe to run again; does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '[bootstrap] %s\n' "$*"; }

# Another apt-get or dpkg may hold apt's locks, as unattended-upgrades often does on a machine
# that has just booted. apt-get waits for dpkg's lock when told to (DPkg::Lock::Timeout), but
# not for the package lists' lock that `apt-get update` takes (apt 2.6): a refusal to lock is
# tried again here, for as long. Output is shown only when apt-get fails.
APT_LOCK_WAIT_SECONDS=300
apt_get() {
  local deadline=$((SECONDS + APT_LOCK_WAIT_SECONDS)) output waiting=""
  while :; do
    if output=$($SUDO env LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_WAIT_SECONDS" "$@" 2>&1); then
      return 0
    fi
    if ! grep -q 'Could not get lock' <<<"$output" || [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$output" >&2
      return 1
    fi
    if [ -z "$waiting" ]; then
      log "waiting up to ${APT_LOCK_WAIT_SECONDS}s for another apt-get or dpkg to finish: $(grep -m1 'Could not get lock' <<<"$output")"
      waiting=1
    fi
    sleep 5
  done
}

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v ab >/dev/null 2>&1 || missing+=(apache2-utils)
command -v psql >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v ctr >/dev/null 2>&1 || missing+=(containerd)
# The dashboard's browser tests drive Debian's Chromium (playwright-core, no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt_get update -qq
  # With recommends: the container tools' network backends and helpers (netavark, aardvark-dns,
  # uidmap, ...) come along, as on the machines the tests were run on.
  apt_get install -y -qq "${missing[@]}"
fi

# --- PostgreSQL ------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password on TCP; the tests use trust on loopback only.
  log "allowing trust auth for postgres on 127.0.0.1"
  hba="$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)"
  $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main reload
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null || { echo "PostgreSQL at 127.0.0.1:5432 refuses user postgres" >&2; exit 1; }
fi

# --- Redis (the replication queue uses it) ----------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# --- pnpm and dependencies -------------------------------------------------------------------
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  # From npm, not corepack: corepack 0.34 (Node 20) rejects current pnpm releases' signatures.
  log "installing pnpm $PNPM_VERSION"
  $SUDO npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi
log "installing workspace dependencies"
pnpm install --frozen-lockfile --reporter=append-only >/dev/null
log "ready"
