#!/usr/bin/env bash
# A private PostgreSQL cluster under .skipper/ for `make` targets when DATABASE_URL is unset.
#   scripts/db.sh start   start it (or reuse the running one); prints `export DATABASE_URL=...`
#   scripts/db.sh stop    stop it
#   scripts/db.sh url     print its DATABASE_URL if it is running
# It listens on 127.0.0.1 only, on a free port, with trust authentication for the local user `skipper`.
# PostgreSQL refuses to run as root: when invoked as root it runs as the system user `skipper-pg`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# SKIPPER_DB_DIR: another state folder, for a second, throwaway cluster (tests that stop PostgreSQL use one).
STATE=$(realpath -m "${SKIPPER_DB_DIR:-$ROOT/.skipper}")
PG_USER_NAME=skipper-pg
DB_NAME=skipper
DB_ROLE=postgres

log() { echo "db: $*" >&2; }

find_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_isready" ]; then echo "$dir"; return 0; fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install_packages() {
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL server binaries or libpq-dev are missing; install postgresql and libpq-dev (needs root)"
        exit 1
    fi
    log "installing postgresql and libpq-dev with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql postgresql-contrib libpq-dev >&2
}

ensure_installed() {
    if ! find_pg_bin >/dev/null || ! command -v psql >/dev/null 2>&1 || [ ! -f /usr/include/postgresql/libpq-fe.h ]; then
        install_packages
    fi
    PG_BIN=$(find_pg_bin)
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        # From /: the checkout may sit in a directory that user cannot enter (mktemp -d makes it 0700), and
        # PostgreSQL refuses to start in a working directory it cannot change to.
        (cd / && runuser -u "$PG_USER_NAME" -- "$@")
    else
        "$@"
    fi
}

ensure_owner() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id "$PG_USER_NAME" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER_NAME"
    fi
}

# The data directory: under .skipper/ when the owner can reach it, else in /var/tmp (a checkout under /root, say).
data_dir() {
    if [ -f "$STATE/datadir" ]; then cat "$STATE/datadir"; return; fi
    local dir="$STATE/data"
    if [ "$(id -u)" -eq 0 ] && ! runuser -u "$PG_USER_NAME" -- test -x "$STATE"; then
        dir="/var/tmp/skipper-pg-$(echo -n "$ROOT" | md5sum | cut -c1-12)/data"
    fi
    echo "$dir" > "$STATE/datadir"
    echo "$dir"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
    local port
    for port in $(seq 54329 54429); do
        if ! (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then echo "$port"; return; fi
    done
    log "no free port found"; exit 1
}

is_running() {
    local data=$1
    [ -f "$data/postmaster.pid" ] && as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# The server outlives this script: it must not hold descriptors our caller waits on (a pipe, or the socket
# Foundation's Process uses to notice that its child exited).
close_inherited_fds() {
    local fd
    for fd in $(ls /proc/$$/fd 2>/dev/null); do
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

url() { echo "postgres://$DB_ROLE@127.0.0.1:$(cat "$STATE/port")/$DB_NAME?sslmode=disable"; }

start() {
    ensure_installed
    ensure_owner
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    local data
    data=$(data_dir)
    if is_running "$data" && [ -f "$STATE/port" ]; then
        echo "export DATABASE_URL='$(url)'"
        return
    fi
    # The socket directory and the server log sit beside the data directory, where its owner can reach them.
    local run
    run="$(dirname "$data")/run"
    mkdir -p "$(dirname "$data")" "$run"
    if [ "$(id -u)" -eq 0 ]; then chown "$PG_USER_NAME" "$(dirname "$data")" "$run"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initialising a cluster in $data"
        as_owner "$PG_BIN/initdb" -D "$data" -U "$DB_ROLE" --auth=trust --encoding=UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
            || { cat "$STATE/initdb.log" >&2; exit 1; }
        cat >>"$data/postgresql.conf" <<CONF
# Skipper's private development cluster.
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
log_min_messages = warning
log_min_error_statement = panic
# Where PostgreSQL's time goes, per statement (make bench prints it for a drain).
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
    fi
    # A cluster made before make bench's statement profile: preload pg_stat_statements on this start.
    if ! grep -q "^shared_preload_libraries" "$data/postgresql.conf"; then
        printf "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n" | as_owner tee -a "$data/postgresql.conf" >/dev/null
    fi
    # Keep the previous port when it is free, so a restarted cluster keeps its DATABASE_URL.
    local port=""
    if [ -f "$STATE/port" ]; then
        port=$(cat "$STATE/port")
        if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then port=""; fi
    fi
    [ -n "$port" ] || port=$(free_port)
    echo "$port" > "$STATE/port"
    log "starting PostgreSQL on 127.0.0.1:$port"
    close_inherited_fds
    local server_log
    server_log="$(dirname "$data")/postgres.log"
    if ! as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$server_log" -w -t 60 \
        -o "-p $port -k $run" start >/dev/null; then
        tail -n 20 "$server_log" >&2 || true
        exit 1
    fi
    local i
    for i in $(seq 1 60); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
        sleep 0.5
    done
    if ! psql -X -q -h 127.0.0.1 -p "$port" -U "$DB_ROLE" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
        psql -X -q -h 127.0.0.1 -p "$port" -U "$DB_ROLE" -d postgres -c "CREATE DATABASE $DB_NAME" >/dev/null
    fi
    echo "export DATABASE_URL='$(url)'"
}

stop() {
    [ -d "$STATE" ] || { log "no cluster"; return; }
    PG_BIN=$(find_pg_bin) || { log "PostgreSQL is not installed"; return; }
    local data
    data=$(data_dir)
    if is_running "$data"; then
        as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url)
        PG_BIN=$(find_pg_bin)
        if [ -f "$STATE/port" ] && is_running "$(data_dir)"; then url; else log "not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
