#!/usr/bin/env bash
# make run: migrate, seed demo data when the shop is empty, then the API and two runners in the foreground.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-.build/debug}
RUNNERS=${RUNNERS:-2}

"$BIN/skipper-migrate" up
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

"$BIN/skipper-api" > >(sed -u 's/^/[api]      /') 2>&1 &
pids+=($!)
for i in $(seq 1 "$RUNNERS"); do
    "$BIN/skipper-runner" > >(sed -u "s/^/[runner-$i] /") 2>&1 &
    pids+=($!)
done
echo "run: API on http://127.0.0.1:${PORT:-8080}, $RUNNERS runners; database $DATABASE_URL; Ctrl-C stops"
# If any process exits by itself, stop the rest: a half-running system is worse than a clear failure.
set +e
wait -n "${pids[@]}"
status=$?
echo "run: a process exited with status $status; stopping the others"
stop
