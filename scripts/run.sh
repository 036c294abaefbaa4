#!/usr/bin/env bash
# make run: migrate, seed demo data when the shop is empty, then the API and two runners in the foreground.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-.build/debug}
RUNNERS=${RUNNERS:-2}

# Least privilege on the private cluster: migrations run as skipper_owner (not a superuser), the API and the
# runners as users granted skipper_api and skipper_runner. With a DATABASE_URL of your own, every process uses it.
MIGRATE_URL=$DATABASE_URL API_URL=$DATABASE_URL RUNNER_URL=$DATABASE_URL
if [ -n "${SKIPPER_PRIVATE_DB:-}" ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f scripts/roles.sql
    as() { echo "$DATABASE_URL" | sed "s#//[^@/]*@#//$1@#"; }
    owner=$(psql -X -tA -d "$DATABASE_URL" -c "SELECT coalesce((SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'skipper'), 'skipper_owner')")
    # A database migrated before by another user keeps that owner for its migrations.
    MIGRATE_URL=$(as "$owner") API_URL=$(as skipper_api_login) RUNNER_URL=$(as skipper_runner_login)
fi

# The dashboard's charts load Chart.js from Debian's package (CHART_JS names another copy).
if [ -z "${CHART_JS:-}" ] && [ ! -f /usr/share/javascript/chart.js/chart.min.js ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "run: installing libjs-chart.js for the dashboard's charts"
        apt-get update -qq && apt-get install -y -qq libjs-chart.js >/dev/null
    else
        echo "run: the dashboard's charts need Chart.js: apt-get install libjs-chart.js (or set CHART_JS)" >&2
    fi
fi

# Skipper's migrations (built into skipper-migrate), then the demo shop's, which keep their own history.
DATABASE_URL=$MIGRATE_URL "$BIN/skipper-migrate" up
DATABASE_URL=$MIGRATE_URL "$BIN/skipper-migrate" up --path migrations/shop
empty=$(psql -X -tA -d "$DATABASE_URL" -c \
    "SELECT NOT EXISTS (SELECT 1 FROM transactions) OR NOT EXISTS (SELECT 1 FROM products)")
if [ "$empty" = "t" ]; then
    echo "run: the shop is empty; seeding a small demo data set"
    scripts/seed.sh 20000 50 31
fi

pids=()
stop() {
    trap - INT TERM
    echo "run: stopping (${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    exit 0
}
trap stop INT TERM

DATABASE_URL=$API_URL "$BIN/skipper-api" > >(sed -u 's/^/[api]      /') 2>&1 &
pids+=($!)
for i in $(seq 1 "$RUNNERS"); do
    DATABASE_URL=$RUNNER_URL "$BIN/skipper-runner" > >(sed -u "s/^/[runner-$i] /") 2>&1 &
    pids+=($!)
done
echo "run: API on http://127.0.0.1:${PORT:-8080} (as ${API_URL#*//}), $RUNNERS runners (as ${RUNNER_URL#*//}); Ctrl-C stops"
# If any process exits by itself, stop the rest: a half-running system is worse than a clear failure.
set +e
wait -n "${pids[@]}"
status=$?
echo "run: a process exited with status $status; stopping the others"
stop
