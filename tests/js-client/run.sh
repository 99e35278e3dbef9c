#!/usr/bin/env bash
# JS client suite: the unmodified `@langchain/langgraph-sdk` (npm, pinned in
# package-lock.json) under Node's test runner against a real `warden serve` of
# examples/reference on SQLite in a fresh data directory, on a free port of 127.0.0.1.
# The JS client sends other HTTP than the Python one (repeated query parameters,
# `Last-Event-ID: -1`, retries of 5xx, an idle-reconnect watchdog fed by heartbeats).
#
#   tests/js-client/run.sh [node --test args...]
#
# Environment:
#   WARDEN_BIN          server binary (default <repo>/target/debug/warden)
#   WARDEN_JS_URL       test an already-running server instead (nothing is started;
#                       assistant.test.mjs still starts its own, from WARDEN_BIN)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >&2

if [[ -z "${WARDEN_JS_URL:-}" ]]; then
    warden="${WARDEN_BIN:-$repo/target/debug/warden}"
    data="$(mktemp -d)"
    log="$data/warden.log"
    "$warden" serve --config "$repo/examples/reference/langgraph.json" --port 0 \
        --port-file "$data/port" --data-dir "$data/data" >"$log" 2>&1 &
    server=$!
    stop() {
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        rm -rf "$data"
    }
    trap stop EXIT
    for _ in $(seq 1 600); do
        [[ -s "$data/port" ]] && break
        if ! kill -0 "$server" 2>/dev/null; then
            echo "tests/js-client/run.sh: warden serve exited; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    [[ -s "$data/port" ]] || { echo "warden serve wrote no port; its log:" >&2; cat "$log" >&2; exit 1; }
    export WARDEN_JS_URL="http://127.0.0.1:$(cat "$data/port")"
fi
# assistant.test.mjs serves examples/assistant itself, with this binary.
export WARDEN_BIN="${WARDEN_BIN:-$repo/target/debug/warden}" WARDEN_REPO="$repo"
status=0
node --test --test-concurrency=1 "${@:-.}" || status=$?
if [[ $status -ne 0 && -n "${log:-}" ]]; then
    echo "--- warden serve's log (last 60 lines) ---" >&2
    tail -n 60 "$log" >&2
fi
exit $status
