#!/usr/bin/env bash
# Creates the Python venv for the PGQueuer peer benchmark and installs pinned packages from PyPI.
#   PEERS_VENV   where the venv goes (default: <repo>/.skipper/peers-venv, gitignored)
#   PYTHON       the interpreter that creates it (default: python3, 3.10 or newer)
# Idempotent: returns at once when the venv already has the pinned versions.
# Prints the venv's python path on the last line of stdout; everything else goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="${PEERS_VENV:-$ROOT/.skipper/peers-venv}"
PYTHON="${PYTHON:-python3}"

# Exact versions: PGQueuer and its asyncpg driver (and uvloop, which PGQueuer's own benchmark uses).
PGQUEUER_VERSION=1.6.0
PINS=("pgqueuer==$PGQUEUER_VERSION" "asyncpg==0.32.0" "uvloop==0.23.0")

log() { echo "peers-setup: $*" >&2; }

installed() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$PGQUEUER_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import asyncpg, uvloop, pgqueuer  # noqa: F401
sys.exit(0 if version("pgqueuer") == sys.argv[1] else 1)
PY
}

if installed; then
    log "venv $VENV already has pgqueuer $PGQUEUER_VERSION"
    echo "$VENV/bin/python"
    exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    log "$PYTHON is older than 3.10; set PYTHON to a newer interpreter"
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV" >&2; then
        # Debian's python3 needs python3-venv for ensurepip.
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing python3-venv with apt-get"
            rm -rf "$VENV"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
            "$PYTHON" -m venv "$VENV" >&2
        else
            log "could not create a venv with $PYTHON (is python3-venv installed?)"
            exit 1
        fi
    fi
fi

log "installing ${PINS[*]} into $VENV"
# PIP_ROOT_USER_ACTION: pip inside a venv is fine as root (CI runs as root).
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    timeout 300 "$VENV/bin/python" -m pip install --quiet "${PINS[@]}" >&2

if ! installed; then
    log "pgqueuer $PGQUEUER_VERSION did not import after install"
    exit 1
fi
log "ready: $VENV"
echo "$VENV/bin/python"
