#!/usr/bin/env bash
# langhost (PyPI: stock langgraph-api on langgraph-runtime-pg, PostgreSQL +
# Redis) serving ../shared/reference, for `api_load` to measure beside Warden.
#
#   host/benches/langhost.sh install           # a venv with langhost from PyPI
#   host/benches/langhost.sh start [PORT]      # prints LANGHOST_URL=… and LANGHOST_PID=…
#   host/benches/langhost.sh stop              # stops it, drops its database
#
# Settings: LANGHOST_VENV (default ~/.cache/warden-bench/langhost-venv),
# LANGHOST_DB (default langhost_bench, created and dropped on the server at
# PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres), REDIS_URI (default
# redis://127.0.0.1:6379/5), LANGGRAPH_REFERENCE (default ../shared/reference
# from the workspace root; served from a copy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${LANGHOST_VENV:-$HOME/.cache/warden-bench/langhost-venv}
DB=${LANGHOST_DB:-langhost_bench}
REDIS_URI=${REDIS_URI:-redis://127.0.0.1:6379/5}
REFERENCE=${LANGGRAPH_REFERENCE:-$ROOT/../shared/reference}
STATE=${TMPDIR:-/tmp}/warden-bench-langhost
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DATABASE_URI="postgresql://$PGUSER@$PGHOST:$PGPORT/$DB"

case "${1:-}" in
install)
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet langhost
    "$VENV/bin/pip" freeze | grep -Ei '^(langhost|langgraph-api|langgraph-runtime-pg)=='
    ;;
start)
    PORT=${2:-8766}
    # langgraph-api moves to another port when this one is taken: refuse.
    if [ "$PORT" = 2024 ] || ss -Hltn "sport = :$PORT" | grep -q .; then
        echo "port $PORT is not free" >&2
        exit 1
    fi
    mkdir -p "$STATE"
    rm -rf "$STATE/project" && cp -a "$REFERENCE" "$STATE/project"
    psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
        createdb "$DB"
    cd "$STATE/project"
    # Migrate once, before serving (each worker would otherwise race to).
    DATABASE_URI=$DATABASE_URI "$VENV/bin/langgraph-runtime-pg-migrate" upgrade >"$STATE/log" 2>&1
    LG_RUNTIME_PG_AUTO_MIGRATE=false LANGGRAPH_NO_VERSION_CHECK=true \
        LANGSMITH_TRACING=false LANGGRAPH_CLI_NO_ANALYTICS=1 \
        DATABASE_URI=$DATABASE_URI REDIS_URI=$REDIS_URI \
        setsid "$VENV/bin/langhost" serve --host 127.0.0.1 --port "$PORT" \
        -c langgraph.json >>"$STATE/log" 2>&1 </dev/null &
    echo $! >"$STATE/pid"
    for _ in $(seq 120); do
        if curl -sf "http://127.0.0.1:$PORT/ok" >/dev/null; then
            echo "LANGHOST_URL=http://127.0.0.1:$PORT"
            echo "LANGHOST_PID=$(cat "$STATE/pid")"
            exit 0
        fi
        kill -0 "$(cat "$STATE/pid")" 2>/dev/null || break
        sleep 0.5
    done
    echo "langhost did not start; its log: $STATE/log" >&2
    exit 1
    ;;
stop)
    if [ -f "$STATE/pid" ]; then
        kill -TERM -- "-$(cat "$STATE/pid")" 2>/dev/null || true
        rm -f "$STATE/pid"
    fi
    sleep 1
    dropdb --if-exists --force "$DB"
    ;;
*)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
