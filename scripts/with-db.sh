#!/usr/bin/env bash
# Runs a command with DATABASE_URL set: the caller's, or the private cluster's (started on demand).
set -euo pipefail
if [ -z "${DATABASE_URL:-}" ]; then
    eval "$("$(dirname "${BASH_SOURCE[0]}")/db.sh" start)"
    export DATABASE_URL
    # The private cluster: make run logs each process in as a user of its own (scripts/roles.sql).
    export SKIPPER_PRIVATE_DB=1
fi
exec "$@"
