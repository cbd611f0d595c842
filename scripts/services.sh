#!/usr/bin/env bash
# Starts and stops the real servers the tests need: PostgreSQL and Apache Kafka (one node, or
# a three-node KRaft cluster with --brokers 3).
#
#   scripts/services.sh up [--brokers N]
#                                start what is missing (harmless when already up); N Kafka
#                                nodes (default 1), each a broker and a controller voter
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
#
# One node (the default, fast to start) or a cluster of BROKERS nodes: every node a broker and a
# controller, the nodes together a quorum of voters, all from the same jars. Node N keeps its
# data, ports and log under var/services/kafka/node-N and its pid in var/services/kafka-N.pid.

KAFKA_DIR="$STATE/kafka"
BROKERS=1

kafka_pid_file() { printf '%s\n' "$STATE/kafka-$1.pid"; }

kafka_pids() {
    local file
    for file in "$STATE"/kafka-*.pid; do
        [ -f "$file" ] && cat "$file"
    done
    return 0
}

kafka_answers() {
    "$PYTHON" "$ROOT/scripts/kafka_ready.py" --bootstrap "$1" --timeout "${2:-5}" \
        --brokers "${3:-1}" >/dev/null 2>&1
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

# The bootstrap list of the nodes this script started (host:port,host:port,...).
kafka_bootstrap() {
    local n list=""
    for n in $(seq 1 "$(cat "$KAFKA_DIR/brokers")"); do
        list="$list${list:+,}127.0.0.1:$(cat "$KAFKA_DIR/node-$n/port")"
    done
    printf '%s\n' "$list"
}

kafka_running() {
    local n
    [ -f "$KAFKA_DIR/brokers" ] || return 1
    for n in $(seq 1 "$(cat "$KAFKA_DIR/brokers")"); do
        alive "$(read_pid "$(kafka_pid_file "$n")")" || return 1
    done
}

kafka_up() {
    if [ -n "${CONSENT_KAFKA_BOOTSTRAP:-}" ] && [ -z "$(kafka_pids)" ]; then
        if kafka_answers "$CONSENT_KAFKA_BOOTSTRAP" 5 "$BROKERS"; then
            log "Kafka: using CONSENT_KAFKA_BOOTSTRAP"
            KAFKA_BOOTSTRAP="$CONSENT_KAFKA_BOOTSTRAP"
            return
        fi
        log "Kafka: CONSENT_KAFKA_BOOTSTRAP does not answer with $BROKERS brokers; starting ours"
    fi
    if kafka_running && [ "$(cat "$KAFKA_DIR/brokers")" = "$BROKERS" ]; then
        KAFKA_BOOTSTRAP="$(kafka_bootstrap)"
        if kafka_answers "$KAFKA_BOOTSTRAP" 5 "$BROKERS"; then
            log "Kafka: already running ($BROKERS node(s), pids $(kafka_pids | tr '\n' ' '))"
            return
        fi
    fi
    kafka_down
    command -v java >/dev/null || die "java is needed to run the Kafka broker"
    kafka_jars
    local n port cport voters="" replication min_isr heap cluster
    replication=$((BROKERS < 3 ? BROKERS : 3))
    min_isr=$((replication >= 3 ? 2 : 1))
    # Three JVMs share the machine with everything else: each gets a small heap.
    if [ "$BROKERS" -gt 1 ]; then heap=(-Xms64m -Xmx256m); else heap=(-Xms256m -Xmx1g); fi
    rm -rf "$KAFKA_DIR"
    mkdir -p "$KAFKA_DIR"
    printf '%s\n' "$BROKERS" >"$KAFKA_DIR/brokers"
    local taken=" "
    for n in $(seq 1 "$BROKERS"); do
        mkdir -p "$KAFKA_DIR/node-$n/data" "$KAFKA_DIR/node-$n/logs"
        for which in port controller-port; do
            port="$(free_port)"
            while [[ "$taken" == *" $port "* ]]; do port="$(free_port)"; done
            taken="$taken$port "
            printf '%s\n' "$port" >"$KAFKA_DIR/node-$n/$which"
        done
        voters="$voters${voters:+,}$n@127.0.0.1:$(cat "$KAFKA_DIR/node-$n/controller-port")"
    done
    for n in $(seq 1 "$BROKERS"); do
        port="$(cat "$KAFKA_DIR/node-$n/port")"
        cport="$(cat "$KAFKA_DIR/node-$n/controller-port")"
        sed -e "s|@NODE_ID@|$n|g" -e "s|@VOTERS@|$voters|g" \
            -e "s|@BROKER_PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" \
            -e "s|@REPLICATION@|$replication|g" -e "s|@MIN_ISR@|$min_isr|g" \
            -e "s|@DATA_DIR@|$KAFKA_DIR/node-$n/data|g" \
            "$ROOT/scripts/kafka/server.properties.template" >"$KAFKA_DIR/node-$n/server.properties"
    done
    local java_opts=("${heap[@]}" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml")
    cluster="$(java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid)"
    for n in $(seq 1 "$BROKERS"); do
        local home="$KAFKA_DIR/node-$n"
        java "${java_opts[@]}" -Dkafka.logs.dir="$home/logs" -cp "$KAFKA_LIBS/*" \
            kafka.tools.StorageTool format -t "$cluster" -c "$home/server.properties" \
            >"$home/logs/format.log" 2>&1 \
            || { tail -n 30 "$home/logs/format.log" >&2; die "Kafka storage format failed"; }
        nohup java "${java_opts[@]}" -Dkafka.logs.dir="$home/logs" -cp "$KAFKA_LIBS/*" \
            kafka.Kafka "$home/server.properties" >"$home/logs/stdout.log" 2>&1 </dev/null &
        printf '%s\n' "$!" >"$(kafka_pid_file "$n")"
    done
    KAFKA_BOOTSTRAP="$(kafka_bootstrap)"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until kafka_answers "$KAFKA_BOOTSTRAP" 3 "$BROKERS"; do
        if ! kafka_running || [ "$SECONDS" -ge "$deadline" ]; then
            log "Kafka: $BROKERS node(s) not ready after $READY_TIMEOUT s; tail of their logs:"
            tail -n 40 "$KAFKA_DIR"/node-*/logs/server.log "$KAFKA_DIR"/node-*/logs/stdout.log \
                >&2 || true
            kafka_down
            die "Kafka did not start"
        fi
        sleep 1
    done
    log "Kafka: Apache Kafka $KAFKA_VERSION started, $BROKERS node(s) (pids" \
        "$(kafka_pids | tr '\n' ' ')), $KAFKA_BOOTSTRAP"
}

kafka_down() {
    local file pid
    # Every node is sent SIGTERM first, so that they stop together (a lone survivor of a
    # quorum waits for its peers).
    for file in "$STATE"/kafka-*.pid "$STATE/kafka.pid"; do
        [ -f "$file" ] || continue
        pid="$(cat "$file")"
        alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
    done
    for file in "$STATE"/kafka-*.pid "$STATE/kafka.pid"; do
        [ -f "$file" ] || continue
        pid="$(cat "$file")"
        if alive "$pid"; then
            wait_gone "$pid" 30 || { log "Kafka: no clean stop in 30 s, killing"; kill -KILL "$pid"; }
            log "Kafka: stopped (pid $pid)"
        fi
        rm -f "$file"
    done
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
export KAFKA_TEST_BROKERS='$BROKERS'
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
    if kafka_running; then
        echo "kafka: running, $(cat "$KAFKA_DIR/brokers") node(s) (pids $(kafka_pids | tr '\n' ' ')), $(kafka_bootstrap)"
    else echo "kafka: not started here"; rc=3; fi
    [ -f "$ENV_FILE" ] && cat "$ENV_FILE"
    return "$rc"
}

command="${1:-}"
[ "$#" -gt 0 ] && shift
while [ "$#" -gt 0 ]; do
    case "$1" in
        --brokers)
            [ "$#" -ge 2 ] || die "--brokers needs a number"
            BROKERS="$2"
            shift 2
            ;;
        --brokers=*) BROKERS="${1#--brokers=}"; shift ;;
        *) die "unknown option $1 (usage: $0 up [--brokers N]|down|status|binaries)" ;;
    esac
done
[[ "$BROKERS" =~ ^[1-9]$ ]] || die "--brokers takes a number from 1 to 9, not $BROKERS"

case "$command" in
    up) up ;;
    down) down ;;
    status) status ;;
    binaries) binaries ;;
    *) echo "usage: $0 up [--brokers N]|down|status|binaries" >&2; exit 2 ;;
esac
