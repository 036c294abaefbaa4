#!/usr/bin/env bash
# Runs a command with DATABASE_URL set: the caller's, or the private cluster's (started on demand).
set -euo pipefail
if [ -z "${DATABASE_URL:-}" ]; then
    eval "$("$(dirname "${BASH_SOURCE[0]}")/db.sh" start)"
    export DATABASE_URL
fi
exec "$@"
