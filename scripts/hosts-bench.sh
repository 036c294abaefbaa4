#!/usr/bin/env bash
# make bench-hosts: the no-op drain with runners on 1, 2, 4 and 8 separate network hosts.
#
# Each host is a Linux network namespace (skb-h1 … skb-h8) joined to this machine by a veth pair: the host side
# holds 10.201.N.1/30, the namespace 10.201.N.2/30, and a throwaway PostgreSQL cluster listens on 127.0.0.1 and
# on every host-side address, trusting only 10.201.0.0/16. One release-built skipper-runner runs in each namespace
# and reaches PostgreSQL over its veth, as a runner on another machine reaches it over the network.
#
# Two series: the same total WORKERS split over the hosts, and the same WORKERS per runner (so the total grows).
# Per point: JOBS no-op jobs queued, then the runners started; the rate is finished jobs over first start to last
# finish (the database's clock); PostgreSQL's CPU share is its processes' CPU time (postmaster and every backend,
# from /proc) over the wall time times the cores; the runners' share likewise. The median of ROUNDS drains.
#
# Writes bench/results/hosts.tsv and docs/hosts-scaling.png (gnuplot). Needs root (namespaces); everything it
# creates (namespaces, veths, the cluster, the runners) is removed when it stops, also on Ctrl-C.
#   JOBS=200000 ROUNDS=3 TOTAL_WORKERS=400 PER_RUNNER_WORKERS=100 HOSTS="1 2 4 8" scripts/hosts-bench.sh
#   PLOT_ONLY=1 scripts/hosts-bench.sh    draws the figure again from bench/results/hosts.tsv
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-200000}
ROUNDS=${ROUNDS:-3}
TOTAL_WORKERS=${TOTAL_WORKERS:-400}
PER_RUNNER_WORKERS=${PER_RUNNER_WORKERS:-100}
HOSTS=${HOSTS:-"1 2 4 8"}
BIN=${BIN:-$ROOT/.build/release}
RESULTS=$ROOT/bench/results/hosts.tsv
PLOT=$ROOT/docs/hosts-scaling.png
PREFIX=skb-h
CORES=$(nproc)
TICK=$(getconf CLK_TCK)

log() { echo "hosts-bench: $*" >&2; }

MAX_HOSTS=0
for h in $HOSTS; do [ "$h" -gt "$MAX_HOSTS" ] && MAX_HOSTS=$h; done

# The figure from a results file (PLOT_ONLY=1 draws it again from the last run's, without running anything).
plot() {
    command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null || { log "gnuplot is missing"; exit 1; }
    gnuplot <<PLOT
set terminal pngcairo size 900,520 font "DejaVu Sans,11"
set output "$PLOT"
set title "No-op drain, runners on separate network hosts ($CORES cores shared with PostgreSQL)"
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
plot "$1" using 2:(strcol(1) eq "same-total" ? \$5 : 1/0) with linespoints lw 2 pt 7 title "jobs/s, $TOTAL_WORKERS workers in all", \
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

[ "$MAX_HOSTS" -le 64 ] || { log "at most 64 hosts"; exit 1; }

# The cluster's state sits where its owner (skipper-pg when root) can reach it.
export SKIPPER_DB_DIR
SKIPPER_DB_DIR=$(mktemp -d /var/tmp/skipper-hosts.XXXXXX)
chmod 755 "$SKIPPER_DB_DIR"
RUNNER_PIDS=()

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

# One drain: JOBS no-op jobs queued, then `hosts` runners of `workers` each. Sets DRAIN to "rate pg_share runner_share".
# (Not in a subshell: the runners it starts must stay in RUNNER_PIDS for the exit trap.)
drain() {
    local hosts=$1 workers=$2 batch
    batch=$(( workers < 100 ? workers : 100 ))
    sql "TRUNCATE skipper.jobs, skipper.runners, skipper.job_counts, skipper.job_artifacts" >/dev/null
    sql "INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, $JOBS)" >/dev/null
    sql "VACUUM ANALYZE skipper.jobs" >/dev/null
    sql "CHECKPOINT" >/dev/null
    local dir
    dir=$(mktemp -d)
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
        done_count=$(sql "SELECT coalesce(sum(jobs), 0) FROM skipper.job_counts WHERE status = 'COMPLETED'")
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
    local rate wall pg runners
    rate=$(sql "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(started_at)))::int8 FROM skipper.jobs WHERE status = 'COMPLETED'")
    wall=$(echo "$ended - $started" | bc -l)
    pg=$(cpu_seconds "$dir/pg0" "$dir/pg1")
    runners=$(cpu_seconds "$dir/run0" "$dir/run1")
    rm -rf "$dir"
    DRAIN=$(printf "%s %.0f %.0f" "$rate" "$(echo "100 * $pg / ($wall * $CORES)" | bc -l)" "$(echo "100 * $runners / ($wall * $CORES)" | bc -l)")
}

# The median round by rate, in POINT.
point() {
    local hosts=$1 workers=$2 results=()
    local round
    for round in $(seq 1 "$ROUNDS"); do
        drain "$hosts" "$workers"
        results+=("$DRAIN")
        log "  $hosts host(s) × $workers workers, round $round: $DRAIN (jobs/s, PostgreSQL CPU %, runners CPU %)"
    done
    POINT=$(printf "%s\n" "${results[@]}" | sort -n -k1,1 | sed -n "$(( (ROUNDS + 1) / 2 ))p")
}

mkdir -p "$(dirname "$RESULTS")" "$(dirname "$PLOT")"
# Written aside and moved in place at the end: a run cut short leaves the last complete results as they were.
FINAL=$RESULTS
RESULTS=$(mktemp /tmp/hosts-bench.XXXXXX.tsv)
{
    echo "# skipper-runner no-op drain of $JOBS jobs, runners in network namespaces, median of $ROUNDS; $CORES cores; $(date -u +%FT%TZ)"
    printf "# series\thosts\tworkers_per_runner\ttotal_workers\tjobs_per_s\tpostgres_cpu_pct\trunners_cpu_pct\n"
} > "$RESULTS"
for series in same-total same-per-runner; do
    for hosts in $HOSTS; do
        if [ "$series" = same-total ]; then workers=$(( TOTAL_WORKERS / hosts )); else workers=$PER_RUNNER_WORKERS; fi
        log "$series: $hosts host(s) × $workers workers"
        point "$hosts" "$workers"
        read -r rate pg runners <<< "$POINT"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$series" "$hosts" "$workers" "$(( hosts * workers ))" "$rate" "$pg" "$runners" >> "$RESULTS"
    done
done
sed -n '2,$p' "$RESULTS" | column -t -s $'\t' | sed 's/^/  /' >&2
mv "$RESULTS" "$FINAL"
RESULTS=$FINAL

plot "$RESULTS"
log "wrote $RESULTS and $PLOT"
