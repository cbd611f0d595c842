#!/usr/bin/env bash
# Starts and stops the real servers the tests need: PostgreSQL and a single-node Apache Kafka.
#
#   scripts/services.sh up       start what is missing (harmless when already up)
#   scripts/services.sh down     stop exactly what `up` started, by pid
#   scripts/services.sh status   say what is running and where
#   scripts/services.sh binaries install PostgreSQL and fetch the Kafka jars, print the jars' path
#
# A server named by CONSENT_PG_DSN / CONSENT_KAFKA_BOOTSTRAP is used as it is when it answers;
# otherwise a throwaway one is started under var/services/ on free loopback ports.
# `up` writes var/services/env (shell `export` lines) for the test command to source.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/var/services"
ENV_FILE="$STATE/env"
PYTHON="${CONSENT_PYTHON:-$ROOT/.venv/bin/python}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml")"
CACHE="${CONSENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/consent-ledger}"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
PG_DB="consent_test"
READY_TIMEOUT="${CONSENT_SERVICES_TIMEOUT:-90}"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

read_pid() { [ -f "$1" ] && cat "$1" || true; }

# --- PostgreSQL -------------------------------------------------------------------------------

PG_DIR="$STATE/postgres"
PG_PID_FILE="$STATE/postgres.pid"

pg_answers() { psql "$1" -XAtqc 'select 1' >/dev/null 2>&1; }

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
        log "PostgreSQL is not installed: installing Debian's postgresql"
        if [ "$(id -u)" -ne 0 ]; then
            die "installing postgresql needs root (apt-get); install it or set CONSENT_PG_DSN"
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    printf '%s\n' "$dir"
}

# PostgreSQL refuses to run as root: its tools run as the `postgres` user then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_up() {
    if [ -n "${CONSENT_PG_DSN:-}" ] && [ ! -f "$PG_PID_FILE" ]; then
        if pg_answers "$CONSENT_PG_DSN"; then
            log "PostgreSQL: using CONSENT_PG_DSN"
            PG_DSN="$CONSENT_PG_DSN"
            return
        fi
        log "PostgreSQL: CONSENT_PG_DSN does not answer; starting a throwaway cluster"
    fi
    if alive "$(read_pid "$PG_PID_FILE")" && [ -f "$PG_DIR/port" ]; then
        PG_DSN="postgresql://postgres@127.0.0.1:$(cat "$PG_DIR/port")/$PG_DB"
        if pg_answers "$PG_DSN"; then
            log "PostgreSQL: already running (pid $(cat "$PG_PID_FILE"))"
            return
        fi
    fi
    local bin port
    bin="$(pg_bindir)"
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR/data" "$PG_DIR/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$PG_DIR"
        as_pg test -w "$PG_DIR/data" \
            || die "the postgres user cannot write $PG_DIR (a parent folder is not traversable)"
    fi
    as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$STATE/postgres-initdb.log" 2>&1 \
        || { tail -n 20 "$STATE/postgres-initdb.log" >&2; die "initdb failed"; }
    port="$(free_port)"
    printf '%s\n' "$port" >"$PG_DIR/port"
    as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t "$READY_TIMEOUT" \
        -o "-p $port -k $PG_DIR/socket -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start >/dev/null \
        || { tail -n 30 "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
    head -n 1 "$PG_DIR/data/postmaster.pid" >"$PG_PID_FILE"
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$PG_DB"
    PG_DSN="postgresql://postgres@127.0.0.1:$port/$PG_DB"
    pg_answers "$PG_DSN" || die "PostgreSQL started but does not answer on port $port"
    log "PostgreSQL: started (pid $(cat "$PG_PID_FILE"), port $port, database $PG_DB)"
}

pg_down() {
    local pid
    pid="$(read_pid "$PG_PID_FILE")"
    if alive "$pid"; then
        as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 \
            || kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
        log "PostgreSQL: stopped (pid $pid)"
    fi
    rm -f "$PG_PID_FILE"
}

# --- Kafka ------------------------------------------------------------------------------------

KAFKA_DIR="$STATE/kafka"
KAFKA_PID_FILE="$STATE/kafka.pid"

kafka_answers() {
    "$PYTHON" "$ROOT/scripts/kafka_ready.py" --bootstrap "$1" --timeout "${2:-5}" >/dev/null 2>&1
}

kafka_jars() {
    local stamp="$KAFKA_LIBS/.pom-sha256" want
    want="$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    log "Kafka: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    rm -rf "$KAFKA_LIBS"
    mkdir -p "$KAFKA_LIBS"
    mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >&2 \
        || die "mvn could not fetch the Kafka jars"
    printf '%s\n' "$want" >"$stamp"
}

kafka_up() {
    if [ -n "${CONSENT_KAFKA_BOOTSTRAP:-}" ] && [ ! -f "$KAFKA_PID_FILE" ]; then
        if kafka_answers "$CONSENT_KAFKA_BOOTSTRAP"; then
            log "Kafka: using CONSENT_KAFKA_BOOTSTRAP"
            KAFKA_BOOTSTRAP="$CONSENT_KAFKA_BOOTSTRAP"
            return
        fi
        log "Kafka: CONSENT_KAFKA_BOOTSTRAP does not answer; starting a local broker"
    fi
    if alive "$(read_pid "$KAFKA_PID_FILE")" && [ -f "$KAFKA_DIR/port" ]; then
        KAFKA_BOOTSTRAP="127.0.0.1:$(cat "$KAFKA_DIR/port")"
        if kafka_answers "$KAFKA_BOOTSTRAP"; then
            log "Kafka: already running (pid $(cat "$KAFKA_PID_FILE"))"
            return
        fi
        kafka_down
    fi
    command -v java >/dev/null || die "java is needed to run the Kafka broker"
    kafka_jars
    local port cport cluster
    port="$(free_port)"
    cport="$(free_port)"
    while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
    rm -rf "$KAFKA_DIR"
    mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
    printf '%s\n' "$port" >"$KAFKA_DIR/port"
    sed -e "s|@BROKER_PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" \
        -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" \
        "$ROOT/scripts/kafka/server.properties.template" >"$KAFKA_DIR/server.properties"
    local java_opts=(-Xms256m -Xmx1g -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml"
        -Dkafka.logs.dir="$KAFKA_DIR/logs")
    cluster="$(java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid)"
    java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
        -t "$cluster" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1 \
        || { tail -n 30 "$KAFKA_DIR/logs/format.log" >&2; die "Kafka storage format failed"; }
    nohup java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
        >"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null &
    printf '%s\n' "$!" >"$KAFKA_PID_FILE"
    KAFKA_BOOTSTRAP="127.0.0.1:$port"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until kafka_answers "$KAFKA_BOOTSTRAP" 3; do
        if ! alive "$(cat "$KAFKA_PID_FILE")" || [ "$SECONDS" -ge "$deadline" ]; then
            log "Kafka: broker not ready after $READY_TIMEOUT s; tail of its log:"
            tail -n 40 "$KAFKA_DIR/logs/server.log" "$KAFKA_DIR/logs/stdout.log" >&2 || true
            kafka_down
            die "Kafka did not start"
        fi
        sleep 1
    done
    log "Kafka: Apache Kafka $KAFKA_VERSION started (pid $(cat "$KAFKA_PID_FILE"), $KAFKA_BOOTSTRAP)"
}

kafka_down() {
    local pid
    pid="$(read_pid "$KAFKA_PID_FILE")"
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 30 || { log "Kafka: no clean stop in 30 s, killing"; kill -KILL "$pid"; }
        log "Kafka: stopped (pid $pid)"
    fi
    rm -f "$KAFKA_PID_FILE"
}

# --- common -----------------------------------------------------------------------------------

wait_gone() {
    local pid="$1" limit="$2" waited=0
    while alive "$pid"; do
        [ "$waited" -ge $((limit * 10)) ] && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

up() {
    mkdir -p "$STATE"
    [ -x "$PYTHON" ] || die "no Python with kafka-python at $PYTHON (run: make install)"
    pg_up
    kafka_up
    # Tests that stop and restart a broker run one of their own from the same jars.
    kafka_jars
    # The metrics and alert-rule tests check with promtool (Debian's prometheus package).
    "$ROOT/scripts/promtool.sh" >/dev/null
    cat >"$ENV_FILE" <<EOF
export CONSENT_PG_DSN='$PG_DSN'
export CONSENT_KAFKA_BOOTSTRAP='$KAFKA_BOOTSTRAP'
export KAFKA_TEST_LIBS='$KAFKA_LIBS'
EOF
    log "ready: source $ENV_FILE"
}

# What a test that runs servers of its own needs, without starting the shared ones.
binaries() {
    pg_bindir >/dev/null
    kafka_jars
    printf '%s\n' "$KAFKA_LIBS"
}

down() {
    kafka_down
    pg_down
    rm -f "$ENV_FILE"
}

status() {
    local pid rc=0
    pid="$(read_pid "$PG_PID_FILE")"
    if alive "$pid"; then echo "postgres: running (pid $pid, port $(cat "$PG_DIR/port"))"
    else echo "postgres: not started here"; rc=3; fi
    pid="$(read_pid "$KAFKA_PID_FILE")"
    if alive "$pid"; then echo "kafka: running (pid $pid, port $(cat "$KAFKA_DIR/port"))"
    else echo "kafka: not started here"; rc=3; fi
    [ -f "$ENV_FILE" ] && cat "$ENV_FILE"
    return "$rc"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    binaries) binaries ;;
    *) echo "usage: $0 up|down|status|binaries" >&2; exit 2 ;;
esac
