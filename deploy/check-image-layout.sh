#!/usr/bin/env bash
# Checks the Warden image without Docker: builds its file tree with
# deploy/build-image.sh (the script the Dockerfile runs), then serves from
# that tree as the image would and checks what an operator relies on:
#
#   deploy/check-image-layout.sh [stage-dir]   (default: a temporary directory)
#
#   - the tree holds the binary, the healthcheck, the configuration and its
#     components, and nothing else (no sources, no build output);
#   - `warden --version` runs;
#   - `warden serve` on the tree's langgraph.json, with a fresh data
#     directory and no toolchain on PATH, answers GET /ok and passes the
#     image's HEALTHCHECK script; the reference policy holds (401 without a
#     token, a thread its owner reads and the other user cannot), and a run
#     of the graph completes;
#   - as root, the server runs as the image's user (uid 10001) with only the
#     data directory writable, so a write outside the volume fails here too;
#   - everything it writes is in the data directory (the database, the
#     compiled plugins, the artefact key) and the tree is left unchanged;
#   - SIGTERM (docker stop) ends it with status 0, and a restart on the same
#     data directory keeps the records and reuses the compiled plugins;
#   - every metric deploy/grafana/warden.json plots is in GET /metrics
#     (deploy/check-dashboard.py).
#
# Needs cargo, curl and python3. Binds 127.0.0.1 on a free port only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The image's user (deploy/Dockerfile).
image_uid=10001
image_gid=10001

work="$(mktemp -d "${TMPDIR:-/tmp}/warden-image-check.XXXXXX")"
# mktemp makes it 0700: the image's user, below, must reach the tree, the
# data directory and the port file inside.
chmod 0755 "$work"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ $# -gt 1 ]]; then
    echo "usage: deploy/check-image-layout.sh [stage-dir]" >&2
    exit 2
fi
stage="${1:-$work/stage}"
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "check-image-layout: $tool is needed" >&2; exit 2; }
done

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "check-image-layout: ok: $*"; }
fail() { failed=$((failed + 1)); echo "check-image-layout: FAILED: $*" >&2; }
# The last lines the server wrote, for a failure that needs them.
show_log() { echo "--- server log (last 40 lines) ---" >&2; tail -n 40 "$work/server.log" >&2 || true; }
fatal() { fail "$*"; show_log; echo "check-image-layout: $passed passed, $failed failed" >&2; exit 1; }

echo "check-image-layout: building the image tree in $stage" >&2
"$repo/deploy/build-image.sh" "$stage"
pass "deploy/build-image.sh staged the tree"

# --- the tree --------------------------------------------------------------
mapfile -t image_files < <(grep -v '^#' "$repo/deploy/image-files")
expected="$(printf '%s\n' "${image_files[@]}")"
actual="$(cd "$stage" && find . -mindepth 1 ! -type d -printf '%P\n' | LC_ALL=C sort)"
if [[ "$actual" == "$expected" ]]; then
    pass "the tree holds only the image's five files"
else
    fail "the tree differs from the image's five files:"
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") >&2 || true
fi
# Modes as the image needs them, whatever the builder's umask was.
modes="$(cd "$stage" && stat -c '%a %n' "${image_files[@]}")"
want_modes="644 srv/warden/langgraph.json
644 srv/warden/reference_agent.wasm
644 srv/warden/reference_auth.wasm
755 usr/local/bin/warden
755 usr/local/bin/warden-healthcheck"
if [[ "$modes" == "$want_modes" ]]; then pass "file modes 644/755"; else fail "file modes: $modes"; fi
# The configuration must name files inside the tree, not crate directories
# (which would need cargo at start-up) nor anything outside /srv/warden.
if python3 - "$stage/srv/warden/langgraph.json" <<'EOF'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path))
base = os.path.dirname(path)
named = [config["auth"]["path"]] + [g if isinstance(g, str) else g["path"] for g in config["graphs"].values()]
bad = [p for p in named
       if not p.endswith(".wasm") or not os.path.isfile(os.path.join(base, p))
       or not os.path.realpath(os.path.join(base, p)).startswith(os.path.realpath(base) + os.sep)]
if bad:
    sys.exit(f"names {bad}: not .wasm files inside {base}")
EOF
then
    pass "langgraph.json names only the .wasm files beside it"
else
    fail "langgraph.json names something other than the components beside it"
fi

# --- the binary ------------------------------------------------------------
if version="$("$stage/usr/local/bin/warden" --version)"; then
    pass "warden --version: $version"
else
    fatal "warden --version failed"
fi

# --- serving as the image does ---------------------------------------------
data="$work/data"   # the volume
run="$work/run"     # the port file
mkdir -p "$data" "$run"
chmod 0750 "$data"
as_image_user=()
if [[ "$(id -u)" -eq 0 ]]; then
    if command -v setpriv >/dev/null; then
        chown "$image_uid:$image_gid" "$data" "$run"
        as_image_user=(setpriv --reuid="$image_uid" --regid="$image_gid" --clear-groups)
        if ! "${as_image_user[@]}" test -r "$stage/srv/warden/langgraph.json"; then
            fatal "uid $image_uid cannot read $stage: pass a stage directory under a path it can enter"
        fi
    else
        echo "check-image-layout: no setpriv: serving as root, so writes outside the data directory go unnoticed" >&2
    fi
else
    echo "check-image-layout: not root: serving as $(id -un), not as uid $image_uid" >&2
fi

snapshot_tree() { (cd "$stage" && find . -type f -exec sha256sum {} + | LC_ALL=C sort); }
tree_before="$(snapshot_tree)"

start_server() {
    rm -f "$run/port"
    # The image's environment (deploy/Dockerfile): HOME and XDG_STATE_HOME in
    # the volume, no DATABASE_URI (SQLite), and a PATH without cargo, so a
    # configuration that still named a crate directory would fail here too.
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$data" XDG_STATE_HOME="$data/state" \
        WARDEN_LOG=info \
        "${as_image_user[@]}" "$stage/usr/local/bin/warden" serve \
        --config "$stage/srv/warden/langgraph.json" --data-dir "$data" \
        --host 127.0.0.1 --port 0 --port-file "$run/port" \
        >>"$work/server.log" 2>&1 &
    server_pid=$!
    # Compiling the plugins at a cold start takes seconds on a loaded machine.
    local deadline=$((SECONDS + 120))
    until [[ -s "$run/port" ]]; do
        kill -0 "$server_pid" 2>/dev/null || fatal "warden serve exited during start-up"
        ((SECONDS < deadline)) || fatal "warden serve wrote no port file within 120 s"
        sleep 0.2
    done
    port="$(cat "$run/port")"
    base="http://127.0.0.1:$port"
}

# SIGTERM, as docker stop sends; its status. Past docker stop's 10 s the
# server is killed, as docker would, and that is a failure.
stop_server() {
    kill -TERM "$server_pid"
    local deadline=$((SECONDS + 10)) status=0
    while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "check-image-layout: warden still running 10 s after SIGTERM: killing it" >&2
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" || status=$?
    server_pid=""
    return "$status"
}

# request METHOD PATH [TOKEN] [BODY]: the body into $work/body, the status
# into $status.
request() {
    local method="$1" path="$2" token="${3:-}" body="${4:-}"
    local args=(-sS -o "$work/body" -w '%{http_code}' --max-time 30 -X "$method")
    [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    status="$(curl "${args[@]}" "$base$path")" || status="curl failed"
}
expect() {  # expect STATUS WHAT
    if [[ "$status" == "$1" ]]; then
        pass "$2 ($status)"
    else
        fail "$2: expected $1, got $status: $(head -c 300 "$work/body" 2>/dev/null)"
    fi
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/body" "$1"; }

start_server
pass "warden serve started from the tree on 127.0.0.1:$port"

request GET /ok
expect 200 "GET /ok"
if "$stage/usr/local/bin/warden-healthcheck" "$port"; then
    pass "the image's HEALTHCHECK script passes"
else
    fail "the image's HEALTHCHECK script fails against a serving server"
fi

request GET /info
expect 200 "GET /info"
if python3 - "$work/body" "$stage/srv/warden" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1]))
plugins = info.get("plugins") or []
paths = [p.get("path", "") for p in plugins]
if info.get("storage") != "sqlite":
    sys.exit(f"storage is {info.get('storage')!r}, not sqlite")
if not any(p.get("kind") == "auth" for p in plugins) or not any(p.get("kind") == "graph" for p in plugins):
    sys.exit(f"expected an auth plugin and a graph, got {[p.get('kind') for p in plugins]}")
if not all(str(path).startswith(sys.argv[2]) for path in paths):
    sys.exit(f"plugins loaded from outside the tree: {paths}")
EOF
then
    pass "/info: the auth plugin and the graph from the tree, on SQLite"
else
    fail "/info does not show the tree's plugins on SQLite: $(head -c 600 "$work/body")"
fi

request POST /threads "" '{}'
expect 401 "POST /threads without a token"
request POST /threads user1-token '{"metadata": {"purpose": "image check"}}'
expect 200 "POST /threads as user1"
thread_id="$(json_field thread_id 2>/dev/null || true)"
if [[ -n "$thread_id" ]]; then
    request GET "/threads/$thread_id" user1-token
    expect 200 "GET /threads/{id} as its owner"
    request GET "/threads/$thread_id" user2-token
    expect 404 "GET /threads/{id} as another user"
else
    fail "POST /threads answered no thread_id"
fi
request POST /runs/wait user1-token \
    '{"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}'
expect 200 "POST /runs/wait: the graph runs"
request GET /metrics
expect 200 "GET /metrics"

# Every metric the dashboard plots, after the requests above touched the
# HTTP, plugin, run and storage paths.
if python3 "$repo/deploy/check-dashboard.py" "$repo/deploy/grafana/warden.json" "$base"; then
    pass "every metric of deploy/grafana/warden.json is in /metrics"
else
    fail "deploy/grafana/warden.json plots metrics /metrics does not have (listed above)"
fi

# --- the volume ------------------------------------------------------------
if [[ -f "$data/warden.db" ]]; then
    pass "the SQLite database is in the data directory"
else
    fail "no warden.db in the data directory"
fi
# The compiled plugins are written in the background after the first load.
deadline=$((SECONDS + 30))
until [[ "$(find "$data/plugins" -name '*.cwasm' 2>/dev/null | wc -l)" -ge 2 ]] || ((SECONDS >= deadline)); do
    sleep 0.2
done
cached="$(find "$data/plugins" -name '*.cwasm' 2>/dev/null | wc -l)"
if [[ "$cached" -ge 2 ]]; then
    pass "$cached compiled plugins cached in the data directory"
else
    fail "expected the 2 compiled plugins in $data/plugins, found $cached"
fi
key="$data/state/warden/artefact.key"
if [[ -f "$key" && "$(stat -c %a "$key")" == 600 ]]; then
    pass "the artefact key is in the data directory, mode 600"
else
    fail "no artefact key at $key (mode 600): a re-created container would recompile every plugin"
fi
if [[ "$(snapshot_tree)" == "$tree_before" ]]; then
    pass "serving left the tree unchanged"
else
    fail "serving changed files in the tree"
fi

# --- docker stop, then a restart on the same volume ------------------------
if stop_server; then
    pass "SIGTERM: warden exited with status 0"
else
    fail "SIGTERM: warden exited with status $?"
fi
if "$stage/usr/local/bin/warden-healthcheck" "$port" 2>/dev/null; then
    fail "the HEALTHCHECK script passes with no server listening"
else
    pass "the HEALTHCHECK script fails with no server listening"
fi

cache_before="$(find "$data/plugins" -name '*.cwasm' -printf '%f %i %s %T@\n' | LC_ALL=C sort)"
log_lines_before="$(wc -l <"$work/server.log")"
start_server
pass "warden serve restarted on the same data directory (127.0.0.1:$port)"
if [[ -n "$thread_id" ]]; then
    request GET "/threads/$thread_id" user1-token
    expect 200 "the thread survived the restart"
fi
sleep 1  # a recompiled plugin would be written back by now
cache_after="$(find "$data/plugins" -name '*.cwasm' -printf '%f %i %s %T@\n' | LC_ALL=C sort)"
restart_log="$(tail -n +"$((log_lines_before + 1))" "$work/server.log")"
if [[ "$cache_after" == "$cache_before" ]] && ! grep -qiE 'recompil|not using the compiled-plugin cache' <<<"$restart_log"; then
    pass "the restart reused the compiled plugins"
else
    fail "the restart compiled the plugins again (cache before: $cache_before; after: $cache_after)"
fi
if stop_server; then
    pass "SIGTERM after the restart: status 0"
else
    fail "SIGTERM after the restart: status $?"
fi

if ((failed > 0)); then
    show_log
fi
echo "check-image-layout: $passed passed, $failed failed"
((failed == 0))
