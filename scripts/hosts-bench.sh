#!/usr/bin/env bash
# make bench-hosts: the no-op drain with runners on 1, 2, 4 and 8 separate network hosts.
#
# Each host is a Linux network namespace (skb-h1 … skb-h8) joined to this machine by a veth pair: the host side
# holds 10.201.N.1/30, the namespace 10.201.N.2/30, and a throwaway PostgreSQL cluster listens on 127.0.0.1 and
# on every host-side address, trusting only 10.201.0.0/16. One release-built skipper-runner runs in each namespace
# and reaches PostgreSQL over its veth, as a runner on another machine reaches it over the network.
#
# At depth: the table holds HISTORY finished jobs, and each drain starts with DEPTH no-op jobs queued, of which the
# runners drain JOBS (the rest stay queued; the drained ones join the history, which grows by JOBS a drain).
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
HOSTS=${HOSTS-"1 2 4 8"}
BIN=${BIN:-$ROOT/.build/release}
RESULTS=${RESULTS:-$ROOT/bench/results/hosts.tsv}
PLOT=${PLOT:-$ROOT/docs/hosts-scaling.png}
PREFIX=skb-h
CORES=$(nproc)
TICK=$(getconf CLK_TCK)
# One run at a time (a second would take the first's namespaces): the running one's PID is in RUNNING, written under
# LOCK; what a run killed outright left behind is named in LEFT.
LOCK=/run/skipper-hosts-bench.lock
RUNNING=/run/skipper-hosts-bench.pid
LEFT=/run/skipper-hosts-bench.cluster

log() { echo "hosts-bench: $*" >&2; }

# A whole number written as one (no sign, no leading zero, which bash's arithmetic would read as octal).
whole() { [[ "$2" =~ ^(0|[1-9][0-9]{0,8})$ ]] || { log "$1 must be a whole number (at most 9 digits), not '$2'"; exit 1; }; }
for path in RESULTS PLOT; do
    [[ "${!path}" =~ ^[A-Za-z0-9._/+-]+$ ]] || { log "$path may hold only letters, digits and . _ / + -"; exit 1; }
done

# The figure from a results file, drawn aside and moved in place (an interrupted plot leaves the last figure). The
# host counts and the worker numbers come from the file.
plot() {
    local results=$1 hosts total per max
    [ -s "$results" ] || { log "no results in $results"; exit 1; }
    hosts=$(awk -F'\t' '!/^#/ && $2 ~ /^[0-9]+$/ { print $2 }' "$results" | sort -n -u | tr '\n' ' ')
    total=$(awk -F'\t' '$1 == "same-total" && $4 ~ /^[0-9]+$/ { print $4; exit }' "$results")
    per=$(awk -F'\t' '$1 == "same-per-runner" && $3 ~ /^[0-9]+$/ { print $3; exit }' "$results")
    [ -n "$hosts" ] && [ -n "$total" ] && [ -n "$per" ] || { log "$results is not a results file of this bench"; exit 1; }
    max=$(echo "$hosts" | awk '{ print $NF }')
    command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null || { log "gnuplot is missing"; exit 1; }
    DRAWN=$(mktemp "$(dirname "$PLOT")/.hosts-plot.XXXXXX")
    local drawn=$DRAWN
    gnuplot <<GNUPLOT || { log "gnuplot failed"; exit 1; }
set terminal pngcairo size 900,520 font "DejaVu Sans,11"
set output "$drawn"
set title "No-op drain at depth, runners on separate network hosts ($CORES cores shared with PostgreSQL)"
set xlabel "runner hosts"
set ylabel "jobs/s"
set y2label "CPU share, % of all cores"
set logscale x 2
set xrange [0.8:$max * 1.25]
set xtics ($(echo "$hosts" | sed 's/\([0-9]\+\)/"\1" \1,/g; s/, *$//'))
set yrange [0:*]
set y2range [0:100]
set y2tics 0, 20, 100
set ytics nomirror
set key outside bottom center horizontal
set grid ytics
set datafile separator "\t"
plot "$results" using 2:(strcol(1) eq "minimal-cycle" ? \$5 : 1/0) with linespoints lw 2 pt 9 lc rgb "gray40" title "minimal SKIP LOCKED cycle (pgbench, 1 client per host)", \
     "" using 2:(strcol(1) eq "same-total" ? \$5 : 1/0) with linespoints lw 2 pt 7 title "jobs/s, $total workers in all", \
     "" using 2:(strcol(1) eq "same-per-runner" ? \$5 : 1/0) with linespoints lw 2 pt 5 title "jobs/s, $per workers per runner", \
     "" using 2:(strcol(1) eq "same-total" ? \$6 : 1/0) axes x1y2 with linespoints dt 2 pt 6 title "PostgreSQL CPU (same total)", \
     "" using 2:(strcol(1) eq "same-per-runner" ? \$6 : 1/0) axes x1y2 with linespoints dt 2 pt 4 title "PostgreSQL CPU (per runner)", \
     "" using 2:(strcol(1) eq "same-total" ? \$7 : 1/0) axes x1y2 with linespoints dt 3 pt 2 title "runners' CPU (same total)"
GNUPLOT
    [ -s "$drawn" ] || { log "gnuplot drew nothing"; exit 1; }
    chmod 644 "$drawn"
    mv "$drawn" "$PLOT"
    DRAWN=
}
DRAWN=
if [ "${PLOT_ONLY:-}" = 1 ]; then
    trap '[ -z "$DRAWN" ] || rm -f "$DRAWN"' EXIT
    plot "$RESULTS"
    log "drew $PLOT from $RESULTS"
    exit 0
fi

# Every knob checked before anything is created.
for knob in JOBS DEPTH HISTORY ROUNDS TOTAL_WORKERS PER_RUNNER_WORKERS BASELINE_SECONDS; do whole "$knob" "${!knob}"; done
[ "$JOBS" -ge 1 ] && [ "$ROUNDS" -ge 1 ] && [ "$BASELINE_SECONDS" -ge 3 ] || { log "JOBS and ROUNDS must be at least 1, BASELINE_SECONDS at least 3"; exit 1; }
[ "$DEPTH" -ge "$JOBS" ] || { log "DEPTH ($DEPTH) must be at least JOBS ($JOBS)"; exit 1; }
[ "$PER_RUNNER_WORKERS" -ge 1 ] && [ "$PER_RUNNER_WORKERS" -le 10000 ] || { log "PER_RUNNER_WORKERS must be from 1 to 10000 (a runner's WORKERS)"; exit 1; }
MAX_HOSTS=0
set -f  # HOSTS is split into words, never expanded as a file pattern
for h in $HOSTS; do
    whole HOSTS "$h"
    [ "$h" -ge 1 ] && [ "$h" -le 64 ] || { log "HOSTS: $h is not a number of hosts from 1 to 64"; exit 1; }
    [ "$(( TOTAL_WORKERS / h ))" -ge 1 ] && [ "$(( TOTAL_WORKERS / h ))" -le 10000 ] \
        || { log "TOTAL_WORKERS ($TOTAL_WORKERS) over $h hosts is not from 1 to 10000 workers a runner"; exit 1; }
    [ "$h" -gt "$MAX_HOSTS" ] && MAX_HOSTS=$h
done
set +f
[ "$MAX_HOSTS" -ge 1 ] || { log "HOSTS names no host count"; exit 1; }

[ "$(id -u)" -eq 0 ] || { log "needs root: it creates network namespaces"; exit 1; }
for tool in ip psql flock; do command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }; done
for binary in skipper-runner skipper-migrate; do
    [ -x "$BIN/$binary" ] || { log "$BIN/$binary is missing: swift build -c release --product $binary"; exit 1; }
done
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$PGBENCH" ] || PGBENCH=$(command -v pgbench) || { log "pgbench is missing"; exit 1; }

# (Not a lock held for the whole run: the cluster and the runners would inherit it and hold it after a SIGKILL.)
claim_run() {
    local other
    {
        flock -w 10 9 || return 1
        other=$(cat "$RUNNING" 2>/dev/null || true)
        if [[ "$other" =~ ^[0-9]+$ ]] && [ "$other" != $$ ] && grep -qa hosts-bench "/proc/$other/cmdline" 2>/dev/null; then
            return 1
        fi
        echo $$ > "$RUNNING"
    } 9> "$LOCK"
}
claim_run || { log "another hosts bench is running (PID $(cat "$RUNNING"))"; exit 1; }

RUNNER_PIDS=()
CLIENT_PIDS=()
SKIPPER_DB_DIR=
WORK=
FINISHED=false

# Runners get SIGTERM and ten seconds in all (not each) to stop, then SIGKILL.
stop_runners() {
    local pid
    for pid in "${RUNNER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        local alive=false
        for pid in "${RUNNER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=true; done
        [ "$alive" = true ] || break
        sleep 0.1
    done
    for pid in "${RUNNER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    RUNNER_PIDS=()
}

# Every namespace of this bench (whatever its number) with whatever still runs in it, and its veth.
remove_hosts() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$PREFIX[0-9]+$"); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
        ip link del "skb-v${ns#"$PREFIX"}" 2>/dev/null || true
    done
    return 0
}

# A cluster of a run killed outright (SIGKILL, a crash): stopped and removed.
remove_cluster() {
    local dir=$1 data
    [[ "$dir" == /var/tmp/skipper-hosts.* ]] && [ -d "$dir" ] || return 0
    SKIPPER_DB_DIR=$dir "$ROOT/scripts/db.sh" stop >/dev/null 2>&1 || true
    data=$(cat "$dir/datadir" 2>/dev/null)
    rm -rf "$dir"
    [ -n "$data" ] && rm -rf "$(dirname "$data")"
    return 0
}

cleanup() {
    local status=$?
    # A second Ctrl-C or TERM must not cut the cleaning short.
    trap '' INT TERM HUP
    set +e
    [ "$FINISHED" = true ] || log "stopped (exit $status); removing the runners, the cluster and the namespaces"
    local pid
    for pid in "${CLIENT_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    stop_runners
    remove_cluster "$SKIPPER_DB_DIR"
    rm -f "$LEFT"
    remove_hosts
    [ -z "$WORK" ] || rm -rf "$WORK"
    [ -z "$DRAWN" ] || rm -f "$DRAWN"
    [ "$(cat "$RUNNING" 2>/dev/null)" != $$ ] || rm -f "$RUNNING"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -s "$LEFT" ] || ip netns list 2>/dev/null | grep -qE "^$PREFIX[0-9]+( |$)"; then
    log "removing what an earlier run that was killed left behind"
    remove_cluster "$(sed -n 1p "$LEFT" 2>/dev/null)"
    left_work=$(sed -n 2p "$LEFT" 2>/dev/null)
    [[ "$left_work" != /tmp/hosts-bench.* ]] || rm -rf "$left_work"
    rm -f "$LEFT"
    remove_hosts
fi
WORK=$(mktemp -d /tmp/hosts-bench.XXXXXX)

# 1. The hosts.
LISTEN=127.0.0.1
for n in $(seq 1 "$MAX_HOSTS"); do
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

# The cluster's state sits where its owner (skipper-pg when root) can reach it.
export SKIPPER_DB_DIR
SKIPPER_DB_DIR=$(mktemp -d /var/tmp/skipper-hosts.XXXXXX)
printf '%s\n%s\n' "$SKIPPER_DB_DIR" "$WORK" > "$LEFT"
chmod 755 "$SKIPPER_DB_DIR"

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
ip netns exec "${PREFIX}1" psql -X -d "postgres://postgres@10.201.1.1:$PORT/skipper?sslmode=disable&connect_timeout=5" -tAc "SELECT 1" >/dev/null \
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
# Vacuumed by this script before each run, never by autovacuum during the drains that follow (an 11-million-row
# table's autovacuum took a core from the runners' PostgreSQL in a first run).
sql "ALTER TABLE minimal_cycle_jobs SET (autovacuum_enabled = off)" >/dev/null
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
    dir=$(mktemp -d "$WORK/run.XXXXXX")
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
    [ "$failed" = 0 ] || { log "pgbench failed:"; tail -n 5 "$dir"/pgbench*.log >&2; exit 1; }
    local tps rate left wall
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir"/pgbench*.log | awk '{ total += $1; n++ } END { if (n) printf "%.3f", total }')
    [ -n "$tps" ] || { log "no tps in pgbench's output:"; tail -n 5 "$dir"/pgbench*.log >&2; exit 1; }
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
    dir=$(mktemp -d "$WORK/run.XXXXXX")
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
            kill -0 "$pid" 2>/dev/null || { log "a runner exited:"; tail -n 5 "$dir"/runner*.log >&2; exit 1; }
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
    # The drained jobs stay (the history grows by JOBS a drain; deleting them would leave dead rows for an autovacuum
    # of the history to clean in the middle of a later drain), and what they added is vacuumed now, between drains.
    sql "VACUUM skipper.jobs" >/dev/null
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
RESULTS=$WORK/hosts.tsv
ROWS=$WORK/rows
mkdir "$ROWS"
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
        log "$series: $hosts host(s) × $workers workers"
        point drain "$hosts" "$workers"
        read -r rate pg runners <<< "$POINT"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\n" "$series" "$hosts" "$workers" "$(( hosts * workers ))" "$rate" "$pg" \
            "$runners" "$base" "$(echo "$rate / $base" | bc -l)" >> "$ROWS/$series"
    done
done
cat "$ROWS/0" "$ROWS/same-total" "$ROWS/same-per-runner" >> "$RESULTS"
sed -n '2,$p' "$RESULTS" | column -t -s $'\t' | sed 's/^/  /' >&2
plot "$RESULTS"
chmod 644 "$RESULTS"
mv "$RESULTS" "$FINAL"
FINISHED=true
log "wrote $FINAL and $PLOT"
