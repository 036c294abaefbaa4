#!/usr/bin/env bash
# compose's postgres service, on its first start (docker-entrypoint-initdb.d): Skipper's roles and login users
# (scripts/roles.sql), with the passwords compose passes in.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -v owner_password="$SKIPPER_OWNER_PASSWORD" -v api_password="$SKIPPER_API_PASSWORD" \
    -v runner_password="$SKIPPER_RUNNER_PASSWORD" -f /skipper/roles.sql
