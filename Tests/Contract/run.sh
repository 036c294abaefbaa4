#!/usr/bin/env bash
# The API contract against a live skipper-api (`make contract`, a step of CI):
#   1. openapi-spec-validator (PyPI) validates the document the API serves;
#   2. schemathesis (PyPI) generates requests from that document alone, valid and invalid, for a bounded time
#      (CONTRACT_MAX_TIME, 120 s) with a token configured, and fails on any 5xx, any response that does not conform
#      to the document (status, content type, headers, schema, Allow), any invalid request that is not refused, and
#      any request without the token that is not refused.
# Needs DATABASE_URL (an admin URL; scripts/with-db.sh gives the private cluster's) and the debug build. It works in
# a database of its own, runs the API and a runner against it, and stops both by PID however it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=${BIN:-.build/debug}
VENV="$PWD/.skipper/venv"
MAX_TIME=${CONTRACT_MAX_TIME:-120}
PORT=${CONTRACT_PORT:-$((20000 + RANDOM % 20000))}
TOKEN="contract-$RANDOM$RANDOM"
WORK=$(mktemp -d)
pids=()

log() { echo "contract: $*"; }

cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    [ -n "${DB:-}" ] && psql -X -q -d "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The Python tools, in a venv of our own under .skipper/.
if [ ! -x "$VENV/bin/schemathesis" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
    log "installing schemathesis and openapi-spec-validator into $VENV"
    python3 -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4.3,<5' 'openapi-spec-validator>=0.7,<1'
fi

# A fresh database, migrated, with a few products so that orders can succeed.
base="${DATABASE_URL%%\?*}"
query=""
[ "$base" != "$DATABASE_URL" ] && query="?${DATABASE_URL#*\?}"
DB=skipper_contract
URL="${base%/*}/$DB$query"
psql -X -q -d "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$URL" "$BIN/skipper-migrate" up >/dev/null
DATABASE_URL="$URL" "$BIN/skipper-migrate" up --path migrations/shop >/dev/null
psql -X -q -d "$URL" -c "INSERT INTO products (name, category, stock, price_cents) SELECT 'p' || i, 'c' || (i % 3), 1000000, 100 * i FROM generate_series(1, 20) i"

# The API (with a token, on loopback) and a runner, so that kinds are registered and jobs run.
DATABASE_URL="$URL" LOG_LEVEL=warning "$BIN/skipper-runner" >"$WORK/runner.log" 2>&1 &
pids+=($!)
DATABASE_URL="$URL" API_TOKENS="$TOKEN" HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL=warning "$BIN/skipper-api" >"$WORK/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/openapi.yaml" -o "$WORK/openapi.yaml" \
    || { log "the API did not serve its document"; cat "$WORK/api.log"; exit 1; }

log "openapi-spec-validator on the served document"
"$VENV/bin/openapi-spec-validator" "$WORK/openapi.yaml"

# Every check but positive_data_acceptance: some valid-looking requests are refused by rules the document states in
# words only (a kind must be registered by a runner: 422 UNKNOWN_KIND; a settlement's `to` must not precede `from`).
log "schemathesis for at most ${MAX_TIME}s"
status=0
# From the scratch folder, where it keeps its example database.
(cd "$WORK" && timeout $((MAX_TIME + 120)) "$VENV/bin/schemathesis" run "$WORK/openapi.yaml" \
    --url "http://127.0.0.1:$PORT" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all --exclude-checks positive_data_acceptance \
    --phases examples,coverage,fuzzing,stateful \
    --max-time "$MAX_TIME" \
    --max-examples 60 \
    --request-timeout 10 \
    --workers 2 \
    --warnings off \
    --report junit --report-dir "$WORK/report") || status=$?
if [ "$status" -ne 0 ]; then
    log "schemathesis failed ($status); the API's log:"
    tail -50 "$WORK/api.log"
    exit "$status"
fi
if grep -q "INTERNAL\|request failed" "$WORK/api.log"; then
    log "the API logged an internal error:"
    grep "INTERNAL\|request failed" "$WORK/api.log" | head -20
    exit 1
fi
log "passed"
