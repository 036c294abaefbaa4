#!/bin/sh
# compose's PgBouncer: writes the users the API and runners log in as (their passwords from the environment, which
# PgBouncer also uses to log in to PostgreSQL), then runs PgBouncer in the foreground.
set -eu
umask 077
{
    printf '"skipper_api_login" "%s"\n' "${SKIPPER_API_PASSWORD:?}"
    printf '"skipper_runner_login" "%s"\n' "${SKIPPER_RUNNER_PASSWORD:?}"
} > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/skipper.ini
