#!/usr/bin/env bash
# make bench-hosts: the no-op drain with runners on 1, 2, 4 and 8 separate network hosts.
#
# Each host is a Linux network namespace (skb-h1 … skb-h8) joined to this machine by a veth pair: the host side
# holds 10.201.N.1/30, the namespace 10.201.N.2/30, and a throwaway PostgreSQL cluster listens on 127.0.0.1 and
# on every host-side address, trusting only 10.201.0.0/16. One release-built skipper-runner runs in each namespace
# and reaches PostgreSQL over its veth, as a runner on another machine reaches it over the network.
#
# At depth: the table holds HISTORY finished jobs throughout, and each drain starts with DEPTH no-op jobs queued, of
# which the runners drain JOBS (the rest stay queued; the drained ones are deleted again after the drain, so every
# drain sees the same history).
#
# Two series: the same total WORKERS split over the hosts, and the same WORKERS per runner (so the total grows).
# Per point: the runners started on the queued jobs; the rate is the jobs finished over first start to last finish
# (the database's clock); PostgreSQL's CPU share is its processes' CPU time (postmaster and every backend, from
# /proc) over the wall time times the cores; the runners' share likewise. The median of ROUNDS drains.
#
# The baseline, with none of Skipper's code, from the same namespaces at each host count: the minimal SKIP LOCKED
# cycle (bench/peers/minimal_cycle_sql.sh: claim 100 rows of a 3-column table, mark them done) run by pgbench, one
# client per host as there is one runner per host, for BASELINE_SECONDS, on a table of HISTORY done and DEPTH queued
# rows; the median of ROUNDS. Each drain's rate is also given as a ratio to the baseline at its host count.
#
# Writes bench/results/hosts.tsv and docs/hosts-scaling.png (gnuplot). Needs root (namespaces); everything it
# creates (namespaces, veths, the cluster, the runners, pgbench) is removed when it stops, also on Ctrl-C.
#   JOBS=200000 DEPTH=1000000 HISTORY=10000000 ROUNDS=3 TOTAL_WORKERS=400 PER_RUNNER_WORKERS=100 \
#   BASELINE_SECONDS=10 HOSTS="1 2 4 8" scripts/hosts-bench.sh
#   PLOT_ONLY=1 scripts/hosts-bench.sh    draws the figure again from bench/results/hosts.tsv
# RESULTS and PLOT name other files to write (a trial run that should leave the published ones alone).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-200000}
DEPTH=${DEPTH:-1000000}
HISTORY=${HISTORY:-10000000}
BASELINE_SECONDS=${BASELINE_SECONDS:-10}
BATCH=100
ROUNDS=${ROUNDS:-3}
TOTAL_WORKERS=${TOTAL_WORKERS:-400}
PER_RUNNER_WORKERS=${PER_RUNNER_WORKERS:-100}
HOSTS=${HOSTS:-"1 2 4 8"}
BIN=${BIN:-$ROOT/.build/release}
RESULTS=${RESULTS:-$ROOT/bench/results/hosts.tsv}
PLOT=${PLOT:-$ROOT/docs/hosts-scaling.png}
PREFIX=skb-h
CORES=$(nproc)
TICK=$(getconf CLK_TCK)

log() { echo "hosts-bench: $*" >&2; }

MAX_HOSTS=0
for h in $HOSTS; do
    [[ "$h" =~ ^[0-9]+$ ]] && [ "$h" -ge 1 ] && [ "$h" -le 64 ] || { log "HOSTS: '$h' is not a number of hosts from 1 to 64"; exit 1; }
    [ "$h" -gt "$MAX_HOSTS" ] && MAX_HOSTS=$h
done
[ "$MAX_HOSTS" -ge 1 ] || { log "HOSTS names no host count"; exit 1; }

# The figure from a results file (PLOT_ONLY=1 draws it again from the last run's, without running anything).
plot() {
    command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null || { log "gnuplot is missing"; exit 1; }
    gnuplot <<PLOT
set terminal pngcairo size 900,520 font "DejaVu Sans,11"
set output "$PLOT"
set title "No-op drain at depth, runners on separate network hosts ($CORES cores shared with PostgreSQL)"
set xlabel "runner hosts"
set ylabel "jobs/s"
set y2label "CPU share, % of all cores"
set logscale x 2
set xrange [0.8:$MAX_HOSTS * 1.25]
set xtics ($(echo "$HOSTS" | sed 's/\([0-9]\+\)/"\1" \1/g; s/ "/, "/g'))
set yrange [0:*]
set y2range [0:100]
set y2tics 0, 20, 100
set ytics nomirror
set key outside bottom center horizontal
set grid ytics
set datafile separator "\t"
plot "$1" using 2:(strcol(1) eq "minimal-cycle" ? \$5 : 1/0) with linespoints lw 2 pt 9 lc rgb "gray40" title "minimal SKIP LOCKED cycle (pgbench, 1 client per host)", \
     "" using 2:(strcol(1) eq "same-total" ? \$5 : 1/0) with linespoints lw 2 pt 7 title "jobs/s, $TOTAL_WORKERS workers in all", \
     "" using 2:(strcol(1) eq "same-per-runner" ? \$5 : 1/0) with linespoints lw 2 pt 5 title "jobs/s, $PER_RUNNER_WORKERS workers per runner", \
     "" using 2:(strcol(1) eq "same-total" ? \$6 : 1/0) axes x1y2 with linespoints dt 2 pt 6 title "PostgreSQL CPU (same total)", \
     "" using 2:(strcol(1) eq "same-per-runner" ? \$6 : 1/0) axes x1y2 with linespoints dt 2 pt 4 title "PostgreSQL CPU (per runner)", \
     "" using 2:(strcol(1) eq "same-total" ? \$7 : 1/0) axes x1y2 with linespoints dt 3 pt 2 title "runners' CPU (same total)"
PLOT
}
if [ "${PLOT_ONLY:-}" = 1 ]; then plot "$RESULTS"; log "drew $PLOT from $RESULTS"; exit 0; fi

[ "$(id -u)" -eq 0 ] || { log "needs root: it creates network namespaces"; exit 1; }
for tool in ip psql; do command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }; done
for binary in skipper-runner skipper-migrate; do
    [ -x "$BIN/$binary" ] || { log "$BIN/$binary is missing: swift build -c release --product $binary"; exit 1; }
done

for knob in JOBS DEPTH HISTORY ROUNDS TOTAL_WORKERS PER_RUNNER_WORKERS BASELINE_SECONDS; do
    [[ "${!knob}" =~ ^[0-9]+$ ]] && [ "${!knob}" -le 100000000 ] || { log "$knob must be a whole number up to 100000000"; exit 1; }
done
[ "$JOBS" -ge 1 ] && [ "$ROUNDS" -ge 1 ] && [ "$BASELINE_SECONDS" -ge 3 ] || { log "JOBS and ROUNDS must be at least 1, BASELINE_SECONDS at least 3"; exit 1; }
[ "$DEPTH" -ge "$JOBS" ] || { log "DEPTH ($DEPTH) must be at least JOBS ($JOBS)"; exit 1; }
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -1)
[ -n "$PGBENCH" ] || PGBENCH=$(command -v pgbench) || { log "pgbench is missing"; exit 1; }

# The cluster's state sits where its owner (skipper-pg when root) can reach it.
export SKIPPER_DB_DIR
SKIPPER_DB_DIR=$(mktemp -d /var/tmp/skipper-hosts.XXXXXX)
chmod 755 "$SKIPPER_DB_DIR"
RUNNER_PIDS=()
CLIENT_PIDS=()

stop_runners() {
    local pid
    for pid in "${RUNNER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${RUNNER_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    RUNNER_PIDS=()
}

cleanup() {
    set +e
    local pid
    for pid in "${CLIENT_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    stop_runners
    "$ROOT/scripts/db.sh" stop >/dev/null 2>&1
    local data
    data=$(cat "$SKIPPER_DB_DIR/datadir" 2>/dev/null)
    rm -rf "$SKIPPER_DB_DIR"
    [ -n "$data" ] && rm -rf "$(dirname "$data")"
    local n
    for n in $(seq 1 "$MAX_HOSTS"); do
        ip netns del "$PREFIX$n" 2>/dev/null
        ip link del "skb-v$n" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The hosts.
LISTEN=127.0.0.1
for n in $(seq 1 "$MAX_HOSTS"); do
    ip netns del "$PREFIX$n" 2>/dev/null || true
    ip link del "skb-v$n" 2>/dev/null || true
    ip netns add "$PREFIX$n"
    ip link add "skb-v$n" type veth peer name eth0 netns "$PREFIX$n"
    ip addr add "10.201.$n.1/30" dev "skb-v$n"
    ip link set "skb-v$n" up
    ip -n "$PREFIX$n" addr add "10.201.$n.2/30" dev eth0
    ip -n "$PREFIX$n" link set eth0 up
    ip -n "$PREFIX$n" link set lo up
    LISTEN="$LISTEN,10.201.$n.1"
done
log "$MAX_HOSTS network namespaces up ($PREFIX""1 … $PREFIX$MAX_HOSTS)"

# 2. The cluster: listening on the host-side addresses too, trusting only the namespaces' network.
eval "$("$ROOT/scripts/db.sh" start)"
LOCAL_URL=$DATABASE_URL
sql() { psql -X -q -v ON_ERROR_STOP=1 -d "$LOCAL_URL" -tA -c "$1"; }
HBA=$(sql "SHOW hba_file")
echo "host all all 10.201.0.0/16 trust" >> "$HBA"
sql "ALTER SYSTEM SET listen_addresses = '$LISTEN'" >/dev/null
"$ROOT/scripts/db.sh" stop >/dev/null 2>&1
eval "$("$ROOT/scripts/db.sh" start)"
PORT=$(cat "$SKIPPER_DB_DIR/port")
DATA=$(cat "$SKIPPER_DB_DIR/datadir")
DATABASE_URL=$LOCAL_URL "$BIN/skipper-migrate" up >/dev/null
ip netns exec "${PREFIX}1" psql -X -d "postgres://postgres@10.201.1.1:$PORT/skipper?sslmode=disable" -tAc "SELECT 1" >/dev/null \
    || { log "the namespaces cannot reach PostgreSQL"; exit 1; }
log "PostgreSQL on 127.0.0.1:$PORT and 10.201.N.1:$PORT; $CORES cores"

# History, once: HISTORY finished jobs in Skipper's table, and as many done rows in the baseline's minimal table.
log "history: $HISTORY finished jobs, and $HISTORY done rows in the baseline's table"
started=$SECONDS
for (( from = 1; from <= HISTORY; from += 1000000 )); do
    to=$(( from + 999999 < HISTORY ? from + 999999 : HISTORY ))
    sql "INSERT INTO skipper.jobs (kind, status, attempt, started_at, finished_at)
         SELECT 'noop', CASE WHEN i % 100 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 1, now(), now()
         FROM generate_series($from, $to) i" >/dev/null
done
sql "SELECT skipper.recount_finished()" >/dev/null
sql "VACUUM ANALYZE skipper.jobs" >/dev/null
sql "CREATE TABLE minimal_cycle_jobs (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'queued', created_at timestamptz NOT NULL DEFAULT now())" >/dev/null
sql "INSERT INTO minimal_cycle_jobs (status) SELECT 'done' FROM generate_series(1, $HISTORY)" >/dev/null
sql "CREATE INDEX minimal_cycle_jobs_queued_idx ON minimal_cycle_jobs (id) WHERE status = 'queued'" >/dev/null
sql "VACUUM ANALYZE minimal_cycle_jobs" >/dev/null
log "history written in $(( SECONDS - started )) s"
# shellcheck source=../bench/peers/minimal_cycle_sql.sh
. "$ROOT/bench/peers/minimal_cycle_sql.sh"
CYCLE=$SKIPPER_DB_DIR/cycle.sql
minimal_cycle_sql minimal_cycle_jobs "$BATCH" > "$CYCLE"
chmod 644 "$CYCLE"

# CPU ticks of processes: "pid ticks" per line (utime + stime, fields 14 and 15 of /proc/PID/stat).
ticks_of() {
    local pid
    for pid in "$@"; do
        awk -v pid="$pid" '{ sub(/^.*\) /, ""); print pid, $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || true
    done
}
postgres_pids() {
    local postmaster
    postmaster=$(head -1 "$DATA/postmaster.pid")
    echo "$postmaster" $(pgrep -P "$postmaster")
}
# Seconds of CPU between two samples: a process new in the second counts from its start.
cpu_seconds() {
    awk -v tick="$TICK" 'FILENAME == ARGV[1] { before[$1] = $2; next } { total += $2 - ($1 in before ? before[$1] : 0) } END { printf "%.3f", total / tick }' "$1" "$2"
}
share() { echo "100 * $1 / ($2 * $CORES)" | bc -l; }

# One baseline run from `hosts` namespaces, a pgbench client in each. Sets DRAIN to "rate pg_share clients_share".
baseline() {
    local hosts=$1 dir n
    sql "DELETE FROM minimal_cycle_jobs WHERE status <> 'done' OR id > $HISTORY" >/dev/null
    sql "INSERT INTO minimal_cycle_jobs (status) SELECT 'queued' FROM generate_series(1, $DEPTH)" >/dev/null
    sql "VACUUM ANALYZE minimal_cycle_jobs" >/dev/null
    sql "CHECKPOINT" >/dev/null
    dir=$(mktemp -d)
    for n in $(seq 1 "$hosts"); do
        ip netns exec "$PREFIX$n" "$PGBENCH" -n -M prepared -c 1 -j 1 \
            -T "$BASELINE_SECONDS" -f "$CYCLE" "postgres://postgres@10.201.$n.1:$PORT/skipper?sslmode=disable" \
            > "$dir/pgbench$n.log" 2>&1 &
        CLIENT_PIDS+=($!)
    done
    # CPU is sampled from a second in until half a second before the end, while pgbench and its backends run (an
    # exited process has no /proc entry to read).
    sleep 1
    ticks_of $(postgres_pids) > "$dir/pg0"
    ticks_of "${CLIENT_PIDS[@]}" > "$dir/clients0"
    local started
    started=$(date +%s.%N)
    sleep "$(echo "$BASELINE_SECONDS - 1.5" | bc -l | sed 's/^-.*/0/')"
    ticks_of $(postgres_pids) > "$dir/pg1"
    ticks_of "${CLIENT_PIDS[@]}" > "$dir/clients1"
    local ended
    ended=$(date +%s.%N)
    local pid failed=0
    for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" || failed=1; done
    CLIENT_PIDS=()
    [ "$failed" = 0 ] || { log "pgbench failed:"; tail -5 "$dir"/pgbench*.log >&2; exit 1; }
    local tps rate left wall
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir"/pgbench*.log | awk '{ total += $1; n++ } END { if (n) printf "%.3f", total }')
    [ -n "$tps" ] || { log "no tps in pgbench's output:"; tail -5 "$dir"/pgbench*.log >&2; exit 1; }
    rate=$(echo "$tps * $BATCH" | bc -l)
    left=$(sql "SELECT count(*) FROM minimal_cycle_jobs WHERE status = 'queued'")
    [ "$left" -gt 0 ] || { log "the baseline drained all $DEPTH queued rows: raise DEPTH"; exit 1; }
    wall=$(echo "$ended - $started" | bc -l)
    DRAIN=$(printf "%.0f %.0f %.0f" "$rate" "$(share "$(cpu_seconds "$dir/pg0" "$dir/pg1")" "$wall")" \
        "$(share "$(cpu_seconds "$dir/clients0" "$dir/clients1")" "$wall")")
    rm -rf "$dir"
}

# One drain: DEPTH no-op jobs queued behind the history, then `hosts` runners of `workers` each until JOBS of them
# have finished. Sets DRAIN to "rate pg_share runner_share".
# (Not in a subshell: the runners it starts must stay in RUNNER_PIDS for the exit trap.)
drain() {
    local hosts=$1 workers=$2 batch
    batch=$(( workers < BATCH ? workers : BATCH ))
    sql "TRUNCATE skipper.jobs_active, skipper.runners" >/dev/null
    sql "INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, $DEPTH)" >/dev/null
    sql "VACUUM ANALYZE skipper.jobs_active" >/dev/null
    sql "CHECKPOINT" >/dev/null
    local dir mark counted before
    dir=$(mktemp -d)
    mark=$(sql "SELECT clock_timestamp()")
    counted="SELECT coalesce(sum(jobs), 0) FROM skipper.job_counts WHERE status = 'COMPLETED'"
    before=$(sql "$counted")
    local started
    started=$(date +%s.%N)
    ticks_of $(postgres_pids) > "$dir/pg0"
    local n
    for n in $(seq 1 "$hosts"); do
        ip netns exec "$PREFIX$n" env -i PATH="$PATH" \
            DATABASE_URL="postgres://postgres@10.201.$n.1:$PORT/skipper?sslmode=disable" \
            WORKERS="$workers" CLAIM_BATCH="$batch" NIGHTLY_SETTLEMENT=off LOG_LEVEL=warning \
            "$BIN/skipper-runner" > "$dir/runner$n.log" 2>&1 &
        RUNNER_PIDS+=($!)
    done
    : > "$dir/run0"
    local deadline=$(( $(date +%s) + 600 )) done_count=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        done_count=$(( $(sql "$counted") - before ))
        [ "$done_count" -ge "$JOBS" ] && break
        local pid
        for pid in "${RUNNER_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || { log "a runner exited:"; tail -5 "$dir"/runner*.log >&2; exit 1; }
        done
        sleep 0.2
    done
    ticks_of $(postgres_pids) > "$dir/pg1"
    ticks_of "${RUNNER_PIDS[@]}" > "$dir/run1"
    local ended
    ended=$(date +%s.%N)
    stop_runners
    [ "$done_count" -ge "$JOBS" ] || { log "the drain did not finish in 600 s ($done_count of $JOBS)"; exit 1; }
    local rate wall
    rate=$(sql "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(started_at)))::int8
                FROM skipper.jobs WHERE status = 'COMPLETED' AND finished_at >= '$mark'")
    # The drained jobs leave again, so that the next drain sees the same history.
    sql "DELETE FROM skipper.jobs WHERE finished_at >= '$mark'" >/dev/null
    wall=$(echo "$ended - $started" | bc -l)
    DRAIN=$(printf "%s %.0f %.0f" "$rate" "$(share "$(cpu_seconds "$dir/pg0" "$dir/pg1")" "$wall")" \
        "$(share "$(cpu_seconds "$dir/run0" "$dir/run1")" "$wall")")
    rm -rf "$dir"
}

# The median round by rate of `what` (baseline or drain), in POINT.
point() {
    local what=$1 hosts=$2 workers=${3:-} results=()
    local round
    for round in $(seq 1 "$ROUNDS"); do
        "$what" "$hosts" $workers
        results+=("$DRAIN")
        log "  $what, $hosts host(s)${workers:+ × $workers workers}, round $round: $DRAIN (jobs/s, PostgreSQL CPU %, clients' CPU %)"
    done
    POINT=$(printf "%s\n" "${results[@]}" | sort -n -k1,1 | sed -n "$(( (ROUNDS + 1) / 2 ))p")
}

mkdir -p "$(dirname "$RESULTS")" "$(dirname "$PLOT")"
# Written aside and moved in place at the end: a run cut short leaves the last complete results as they were.
FINAL=$RESULTS
RESULTS=$(mktemp /tmp/hosts-bench.XXXXXX.tsv)
ROWS=$(mktemp -d /tmp/hosts-bench-rows.XXXXXX)
{
    echo "# skipper-runner no-op drains of $JOBS of $DEPTH queued jobs beside $HISTORY finished, runners in network namespaces, median of $ROUNDS; baseline: the minimal SKIP LOCKED cycle, pgbench ${BASELINE_SECONDS} s, 1 client per host; $CORES cores; $(date -u +%FT%TZ)"
    printf "# series\thosts\tworkers_per_runner\ttotal_workers\tjobs_per_s\tpostgres_cpu_pct\tclients_cpu_pct\tbaseline_jobs_per_s\tratio\n"
} > "$RESULTS"
# Host count by host count, the baseline next to the drains it divides (the machine's speed drifts over a run).
for hosts in $HOSTS; do
    log "baseline: the minimal cycle from $hosts host(s)"
    point baseline "$hosts"
    read -r base pg clients <<< "$POINT"
    printf "minimal-cycle\t%s\t-\t%s\t%s\t%s\t%s\t%s\t1.00\n" "$hosts" "$hosts" "$base" "$pg" "$clients" "$base" >> "$ROWS/0"
    for series in same-total same-per-runner; do
        if [ "$series" = same-total ]; then workers=$(( TOTAL_WORKERS / hosts )); else workers=$PER_RUNNER_WORKERS; fi
        [ "$workers" -ge 1 ] || { log "TOTAL_WORKERS ($TOTAL_WORKERS) is less than $hosts hosts"; exit 1; }
        log "$series: $hosts host(s) × $workers workers"
        point drain "$hosts" "$workers"
        read -r rate pg runners <<< "$POINT"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\n" "$series" "$hosts" "$workers" "$(( hosts * workers ))" "$rate" "$pg" \
            "$runners" "$base" "$(echo "$rate / $base" | bc -l)" >> "$ROWS/$series"
    done
done
cat "$ROWS/0" "$ROWS/same-total" "$ROWS/same-per-runner" >> "$RESULTS"
rm -rf "$ROWS"
sed -n '2,$p' "$RESULTS" | column -t -s $'\t' | sed 's/^/  /' >&2
mv "$RESULTS" "$FINAL"
RESULTS=$FINAL

plot "$RESULTS"
log "wrote $RESULTS and $PLOT"
