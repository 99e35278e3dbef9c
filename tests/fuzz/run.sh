#!/usr/bin/env bash
# Fuzzing step: Schemathesis over Warden's own /openapi.json, against a real `warden serve`
# of the reference deployment, with a valid token (the reference's `user1`).
#
#   tests/fuzz/run.sh [extra `st run` options...]
#
# Every operation, every phase (examples, coverage, fuzzing, stateful), data generated
# deterministically (the same requests on every run: no seed, and no example database, which deterministic mode implies), at most
# WARDEN_FUZZ_EXAMPLES cases per operation. It passes when no response is a server error
# (>= 500) and every response has a documented status, content type, headers and schema.
#
# Environment:
#   WARDEN_BIN            server binary (default <repo>/target/debug/warden)
#   WARDEN_COMPAT_VENV    the Python venv, shared with tests/compat (default <repo>/target/compat-venv)
#   WARDEN_FUZZ_EXAMPLES  cases per operation and phase (default 60)
#   WARDEN_FUZZ_REPORT    where the JUnit report and the server log go (default <repo>/target/fuzz)
#
# The server runs tests/fuzz/langgraph.json: the reference deployment with a plugin deadline
# of 2 s instead of 100 ms, so that a busy CI machine cannot turn a slow call into a 500
# (a plugin timeout is a 500 by design; this run is about answers, not time).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

binary="${WARDEN_BIN:-$repo/target/debug/warden}"
venv="${WARDEN_COMPAT_VENV:-$repo/target/compat-venv}"
examples="${WARDEN_FUZZ_EXAMPLES:-60}"
out="${WARDEN_FUZZ_REPORT:-$repo/target/fuzz}"
requirements="$repo/tests/fuzz/requirements.txt"
stamp="$venv/.fuzz-requirements.sha256"
ready_timeout_s=300  # the first start may build the wasm plugin with cargo
run_timeout_s=900    # a safety net: a normal run takes a few minutes on 2 cores

if [[ ! -x "$binary" ]]; then
    echo "tests/fuzz/run.sh: server binary not found or not executable: $binary" >&2
    echo "  build it with 'cargo build -p warden' or set WARDEN_BIN." >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
want="$(cat "$requirements" "$repo/tests/compat/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi

mkdir -p "$out"
data="$(mktemp -d)"
log="$out/server.log"
server=""
cleanup() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

# Port 0: the server picks a free port (never 2024) and writes it to the port file.
"$binary" serve --config tests/fuzz/langgraph.json --host 127.0.0.1 --port 0 \
    --port-file "$data/port" --data-dir "$data" </dev/null >"$log" 2>&1 &
server=$!
port=""
for _ in $(seq $((ready_timeout_s * 5))); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "tests/fuzz/run.sh: warden exited before listening; its log ($log):" >&2
        tail -50 "$log" >&2
        exit 1
    fi
    port="$(cat "$data/port" 2>/dev/null || true)"
    [[ -n "$port" ]] && break
    sleep 0.2
done
if [[ -z "$port" ]]; then
    echo "tests/fuzz/run.sh: warden did not listen within ${ready_timeout_s} s; its log ($log):" >&2
    tail -50 "$log" >&2
    exit 1
fi

echo "tests/fuzz/run.sh: schemathesis against http://127.0.0.1:$port (log: $log)"
status=0
NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" \
timeout "$run_timeout_s" "$venv/bin/st" --config-file tests/fuzz/schemathesis.toml \
    run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer user1-token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --generation-deterministic \
    --max-examples "$examples" \
    --continue-on-failure \
    --workers 2 \
    --request-timeout 60 \
    --no-color \
    --report junit --report-junit-path "$out/junit.xml" \
    "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "tests/fuzz/run.sh: schemathesis failed (exit $status); the server's log: $log" >&2
fi
exit $status
