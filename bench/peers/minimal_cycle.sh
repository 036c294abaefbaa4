#!/usr/bin/env bash
# The theoretical limit of a PostgreSQL queue: the minimal SKIP LOCKED claim + complete cycle, with pgbench.
#
# Table: minimal_cycle_jobs (id bigserial primary key, status text, created_at timestamptz), with a partial
# index on the queued rows, filled with ROWS queued rows (default 1,000,000: deep like a real backlog, and
# more than a 10 s run can drain even at 60,000 jobs/s; filling takes about 5 s here).
# One pgbench transaction (script run) = two autocommit statements, as a real worker does them:
#   1. claim:    UPDATE ... SET status = 'running' WHERE id IN (SELECT id ... WHERE status = 'queued'
#                ORDER BY id LIMIT BATCH FOR UPDATE SKIP LOCKED) RETURNING id        -- commits the claim
#   2. complete: UPDATE ... SET status = 'done' WHERE id = ANY(claimed ids)           -- commits the result
# Jobs are marked done rather than deleted, as Skipper keeps finished jobs (COMPLETED) in its table.
# Two commits per batch of BATCH jobs. Runs at 1 client and at 2 clients (-M prepared, -T DURATION each);
# the table is dropped and refilled before each run so both start from the same state, and each run
# checks that queued rows were left at its end (if a run did drain the table, its jobs/s is null and
# "drained_empty" is true).
# jobs/s = tps x BATCH; WAL bytes per job = pg_wal_lsn_diff over the run / jobs marked done in the run
# (no CHECKPOINT is forced). The table is dropped at the end.
#
# Env: DATABASE_URL (required), ROWS (1000000), BATCH (100), DURATION (10 s), PGBENCH (auto).
# Logs go to stderr; the last line of stdout is one JSON object.
set -euo pipefail
shopt -s inherit_errexit  # set -e also inside $(run ...)

ROWS="${ROWS:-1000000}"
BATCH="${BATCH:-100}"
DURATION="${DURATION:-10}"
TABLE=minimal_cycle_jobs

log() { echo "minimal-cycle: $*" >&2; }

# On any failure the last line of stdout is still one JSON object, naming the error.
REPORTED=false
on_exit() {
    local rc=$?
    if [ -n "${DATABASE_URL:-}" ] && [ -n "${PSQL:-}" ]; then
        sql "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
    fi
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
    if [ "$rc" -ne 0 ] && [ "$REPORTED" = false ]; then
        echo "{\"baseline\":\"minimal_cycle\",\"error\":\"failed with exit code $rc; see stderr\"}"
    fi
}
trap on_exit EXIT

if [ -z "${DATABASE_URL:-}" ]; then log "DATABASE_URL must name an existing database"; exit 1; fi

find_pgbench() {
    if [ -n "${PGBENCH:-}" ]; then echo "$PGBENCH"; return; fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pgbench" ]; then echo "$dir/pgbench"; return; fi
    done
    command -v pgbench || { log "pgbench not found (set PGBENCH)"; exit 1; }
}
PGBENCH=$(find_pgbench)
PSQL="$(dirname "$PGBENCH")/psql"
[ -x "$PSQL" ] || PSQL=$(command -v psql)

# Every statement is bounded; pgbench is bounded by -T and by `timeout`.
export PGOPTIONS="-c statement_timeout=120s -c client_min_messages=warning"
sql() { timeout 150 "$PSQL" -X -q -v ON_ERROR_STOP=1 -tA "$DATABASE_URL" -c "$1"; }

WORK=$(mktemp -d)

fill() {
    local started=$SECONDS
    timeout 150 "$PSQL" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >&2 <<SQL
DROP TABLE IF EXISTS $TABLE;
CREATE TABLE $TABLE (
    id         bigserial   PRIMARY KEY,
    status     text        NOT NULL DEFAULT 'queued',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO $TABLE (status) SELECT 'queued' FROM generate_series(1, $ROWS);
CREATE INDEX ${TABLE}_queued_idx ON $TABLE (id) WHERE status = 'queued';
VACUUM ANALYZE $TABLE;
SQL
    log "filled $ROWS queued rows in $((SECONDS - started)) s"
}

# shellcheck source=minimal_cycle_sql.sh
. "$(dirname "${BASH_SOURCE[0]}")/minimal_cycle_sql.sh"
minimal_cycle_sql "$TABLE" "$BATCH" >"$WORK/cycle.sql"

# run CLIENTS: prints "jobs_per_s wal_bytes_per_job jobs_done queued_left"
run() {
    local clients=$1 out lsn tps finished wal left stuck
    fill
    lsn=$(sql "SELECT pg_current_wal_lsn()")
    out="$WORK/pgbench-$clients.log"
    if ! timeout $((DURATION + 60)) "$PGBENCH" -n -M prepared -c "$clients" -j "$clients" -T "$DURATION" \
        -f "$WORK/cycle.sql" "$DATABASE_URL" >"$out" 2>&1; then
        cat "$out" >&2
        log "pgbench failed at $clients client(s)"
        exit 1
    fi
    wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn')")
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n1)
    [ -n "$tps" ] || { cat "$out" >&2; log "no tps in pgbench output"; exit 1; }
    finished=$(sql "SELECT count(*) FROM $TABLE WHERE status = 'done'")
    left=$(sql "SELECT count(*) FROM $TABLE WHERE status = 'queued'")
    stuck=$(sql "SELECT count(*) FROM $TABLE WHERE status = 'running'")
    grep -E '^(number of (transactions actually processed|failed transactions)|latency average|tps)' "$out" \
        | sed "s/^/minimal-cycle: [$clients client(s)] /" >&2 || true
    log "[$clients client(s)] done $finished, queued left $left, running left $stuck, WAL $wal bytes"
    if [ "$finished" -eq 0 ]; then log "no job was completed"; exit 1; fi
    if [ "$left" -eq 0 ]; then
        # Empty claims are cheap: tps x BATCH would overstate the rate, so the run reports no rate.
        log "WARNING: the $clients-client run drained the table empty; its jobs/s is null; raise ROWS"
        awk -v wal="$wal" -v d="$finished" 'BEGIN { printf "null %.1f %d 0\n", wal / d, d }'
        return
    fi
    awk -v tps="$tps" -v b="$BATCH" -v wal="$wal" -v d="$finished" -v l="$left" \
        'BEGIN { printf "%.1f %.1f %d %d\n", tps * b, wal / d, d, l }'
}

r1=$(run 1)
r2=$(run 2)
read -r c1_jobs c1_wal c1_done c1_left <<<"$r1"
read -r c2_jobs c2_wal c2_done c2_left <<<"$r2"
wal_all=$(awk -v a="$c1_wal" -v da="$c1_done" -v b="$c2_wal" -v db="$c2_done" \
    'BEGIN { printf "%.1f", (a * da + b * db) / (da + db) }')
drained=false
if [ "$c1_left" -eq 0 ] || [ "$c2_left" -eq 0 ]; then drained=true; fi

REPORTED=true
printf '{"baseline":"minimal_cycle","postgres":"%s","batch":%s,"rows":%s,"duration_s":%s,"clients_1_jobs_per_s":%s,"clients_2_jobs_per_s":%s,"clients_1_wal_bytes_per_job":%s,"clients_2_wal_bytes_per_job":%s,"wal_bytes_per_job":%s,"clients_1_queued_left":%s,"clients_2_queued_left":%s,"drained_empty":%s}\n' \
    "$(sql "SHOW server_version" | cut -d' ' -f1)" "$BATCH" "$ROWS" "$DURATION" "$c1_jobs" "$c2_jobs" \
    "$c1_wal" "$c2_wal" "$wal_all" "$c1_left" "$c2_left" "$drained"
