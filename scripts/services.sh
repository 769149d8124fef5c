#!/usr/bin/env bash
# Start and stop the real services the test suite talks to, each on loopback and each by PID.
#
#   scripts/services.sh start    # pcscd (+ vpcd readers), Redis on 6390, PostgreSQL 15 on 5440
#   scripts/services.sh stop     # stop what `start` started (also after a failed start)
#   scripts/services.sh status
#
# `start` writes var/services.env (MYNA_TEST_* variables, see docs/testing.md); source it with
# `set -a; . var/services.env; set +a` before running pytest. State (PIDs, logs) lives under
# var/services/. Override the directory with MYNA_VAR_DIR.
#
# pcscd: there can be only one per machine. If one is already running that this script did not
# start and it already serves the vpcd virtual readers (port 35963 listening), it is reused and
# left running on `stop`. Otherwise it is stopped (by the PID in /run/pcscd/pcscd.pid) and this
# script starts its own `pcscd -f -a`, which `stop` stops again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR=${MYNA_VAR_DIR:-$ROOT/var}
STATE=$VAR/services
ENV_FILE=$VAR/services.env

REDIS_PORT=6390
PG_PORT=5440
PG_BIN=/usr/lib/postgresql/15/bin
VPCD_PORT=35963
PCSCD_SOCKET=/run/pcscd/pcscd.comm
PCSCD_PIDFILE=/run/pcscd/pcscd.pid

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# alive PID: the process exists and has not exited (an exited child of ours that init has not
# reaped yet is a zombie: it counts as gone).
alive() {
    local state
    [[ -n "${1:-}" ]] || return 1
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# wait_for SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

listening() { [[ -n "$(ss -ltnH "sport = :$1")" ]]; }

# stop_pid NAME: TERM the PID recorded in $STATE/NAME.pid, wait for it to exit, forget it.
stop_pid() {
    local file=$STATE/$1.pid pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if alive "$pid"; then
        kill "$pid" 2>/dev/null || true
        wait_for 10 eval "! alive $pid" || { log "$1 ($pid) ignored TERM"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    rm -f "$file"
}

start_pcscd() {
    local foreign=""
    if [[ -f $PCSCD_PIDFILE ]]; then foreign=$(tr -dc '0-9' <"$PCSCD_PIDFILE"); fi
    if alive "$foreign" && [[ "$(cat "$STATE/pcscd.pid" 2>/dev/null)" != "$foreign" ]]; then
        if [[ -S $PCSCD_SOCKET ]] && listening "$VPCD_PORT"; then
            log "reusing the running pcscd (pid $foreign), it serves the vpcd readers"
            return 0
        fi
        log "stopping a pcscd without the vpcd readers (pid $foreign)"
        kill "$foreign"
        wait_for 10 eval "! alive $foreign" || die "pcscd $foreign did not stop"
    fi
    command -v pcscd >/dev/null || die "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)"
    [[ -n "$(grep -ls libifdvpcd /etc/reader.conf.d/* 2>/dev/null)" ]] \
        || die "the vpcd reader driver is not installed (apt-get install vsmartcard-vpcd)"
    pcscd -f -a >"$STATE/pcscd.log" 2>&1 &
    echo $! >"$STATE/pcscd.pid"
    # Readiness: the socket file and vpcd's listening port. Never connect to 35963 to check:
    # vpcd would take the connection for a card.
    wait_for 10 eval "[[ -S $PCSCD_SOCKET ]] && listening $VPCD_PORT" \
        || die "pcscd did not come up, see $STATE/pcscd.log"
}

start_redis() {
    command -v redis-server >/dev/null || die "redis-server is not installed"
    listening "$REDIS_PORT" && die "port $REDIS_PORT is already in use"
    mkdir -p "$STATE/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$STATE/redis" >"$STATE/redis.log" 2>&1 &
    echo $! >"$STATE/redis.pid"
    wait_for 10 eval "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping >/dev/null 2>&1" \
        || die "redis did not come up, see $STATE/redis.log"
}

start_postgres() {
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 is not installed ($PG_BIN)"
    listening "$PG_PORT" && die "port $PG_PORT is already in use"
    # The cluster lives outside the repository: the postgres user must be able to reach it and
    # the checkout may sit under a directory only root can enter.
    local dir
    dir=$(mktemp -d /tmp/myna-pg.XXXXXX)
    echo "$dir" >"$STATE/postgres.dir"
    chown postgres:postgres "$dir"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$STATE/postgres-initdb.log" 2>&1 \
        || die "initdb failed, see $STATE/postgres-initdb.log"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || die "PostgreSQL did not start, see $dir/log"
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'create database idp_test' \
        || die "could not create database idp_test"
}

stop_postgres() {
    local file=$STATE/postgres.dir dir
    [[ -f $file ]] || return 0
    dir=$(<"$file")
    if [[ -f $dir/data/postmaster.pid ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf -- "$dir"
    rm -f "$file"
}

write_env() {
    {
        echo "MYNA_TEST_PCSC=1"
        echo "MYNA_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
        echo "MYNA_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/idp_test"
        if [[ -x /usr/bin/chromium ]]; then echo "MYNA_TEST_CHROMIUM=/usr/bin/chromium"; fi
        if command -v node >/dev/null; then echo "MYNA_TEST_NODE=$(command -v node)"; fi
    } >"$ENV_FILE"
}

cmd_stop() {
    stop_pid redis
    stop_postgres
    stop_pid pcscd
    rm -f "$ENV_FILE"
}

cmd_start() {
    mkdir -p "$STATE"
    cmd_stop  # leftovers of an earlier run that was not stopped
    trap 'log "start failed, stopping what was started"; cmd_stop' EXIT
    start_pcscd
    start_redis
    start_postgres
    write_env
    trap - EXIT
    log "ready: pcscd (vpcd on $VPCD_PORT), redis on $REDIS_PORT, postgres on $PG_PORT; env in $ENV_FILE"
}

cmd_status() {
    local name pid
    for name in pcscd redis; do
        pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
        if alive "$pid"; then echo "$name: running (pid $pid)"; continue; fi
        pid=""
        if [[ $name == pcscd && -f $PCSCD_PIDFILE ]]; then pid=$(tr -dc '0-9' <"$PCSCD_PIDFILE"); fi
        if alive "$pid"; then echo "$name: running (pid $pid, not started here)"; else echo "$name: stopped"; fi
    done
    if [[ -f $STATE/postgres.dir ]] && [[ -f "$(<"$STATE/postgres.dir")/data/postmaster.pid" ]]; then
        echo "postgres: running (port $PG_PORT)"
    else
        echo "postgres: stopped"
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
