#!/usr/bin/env bash
# Python compatibility suite: drives Warden with the unmodified `langgraph_sdk` client
# through the flows of LangGraph's custom-auth tutorials.
#
#   tests/compat/run.sh [--postgres] [--replicas N] [pytest args...]
#                                             (default: the whole of tests/compat)
#
# With --postgres, every server the tests start keeps its records in PostgreSQL
# (`DATABASE_URI`): a fresh database `warden_compat_<random>` on the server at
# WARDEN_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres), dropped
# when the suite ends, whatever its outcome. Without it, SQLite in a fresh data directory.
#
# With --replicas N (N >= 2; implies --postgres), the suite starts N `warden serve`
# replicas on that one database, each on its own free port with its own data directory,
# behind a round-robin proxy of the harness (tests/compat/round_robin.py, on 127.0.0.1)
# that sends each successive HTTP request (not connection) to the next replica: every
# flow of several requests (create a run here, join or cancel it there) spans them. The
# suite fails unless every replica served a fair share of the requests (the counts are in
# the summary); on failure the summary shows every replica's log. Tests that start their
# own servers (restart) start them on the same database.
#
# Environment:
#   WARDEN_BIN          server binary (default <repo>/target/debug/warden); the tests start
#                       it as `$WARDEN_BIN serve --config examples/reference/langgraph.json ...`
#   WARDEN_COMPAT_URL   test an already-running server instead (e.g. the reference
#                       `langgraph dev`); nothing is started and WARDEN_BIN is not needed,
#                       and the restart test is skipped
#   WARDEN_COMPAT_VENV  where the Python venv lives (default <repo>/target/compat-venv)
set -euo pipefail

postgres=false
replicas=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --postgres) postgres=true; shift ;;
        --replicas)
            [[ $# -ge 2 ]] || { echo "tests/compat/run.sh: --replicas needs a number" >&2; exit 2; }
            replicas="$2"; shift 2 ;;
        --replicas=*) replicas="${1#--replicas=}"; shift ;;
        *) break ;;
    esac
done
if ! [[ "$replicas" =~ ^[1-9][0-9]*$ ]]; then
    echo "tests/compat/run.sh: --replicas takes a positive number, not '$replicas'" >&2
    exit 2
fi
if [[ "$replicas" -gt 1 ]]; then
    postgres=true  # replicas share one database: PostgreSQL
    if [[ -n "${WARDEN_COMPAT_URL:-}" ]]; then
        echo "tests/compat/run.sh: --replicas starts its own servers; unset WARDEN_COMPAT_URL" >&2
        exit 2
    fi
fi
export WARDEN_COMPAT_REPLICAS="$replicas"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

venv="${WARDEN_COMPAT_VENV:-$repo/target/compat-venv}"
requirements="$repo/tests/compat/requirements.txt"
stamp="$venv/.requirements.sha256"

if [[ -z "${WARDEN_COMPAT_URL:-}" ]]; then
    export WARDEN_BIN="${WARDEN_BIN:-$repo/target/debug/warden}"
    if [[ ! -x "$WARDEN_BIN" ]]; then
        echo "tests/compat/run.sh: server binary not found or not executable: $WARDEN_BIN" >&2
        echo "  build it with 'cargo build -p warden', set WARDEN_BIN to another binary," >&2
        echo "  or set WARDEN_COMPAT_URL to test a server that is already running." >&2
        exit 1
    fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi

# Keep the SDK from picking up a LangSmith key from the environment and from phoning home.
export LANGSMITH_TRACING=false LANGCHAIN_TRACING_V2=false
# Extra arguments go to pytest (e.g. `-k store`, `-x`, `tests/compat/test_store.py`); the
# ini file is named explicitly so they work from the repository root.
[[ $# -gt 0 ]] || set -- tests/compat
if ! $postgres; then
    unset DATABASE_URI
    exec "$venv/bin/python" -m pytest -q -c tests/compat/pytest.ini "$@"
fi

admin="${WARDEN_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
database="warden_compat_$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
psql "$admin" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $database"
trap 'psql "$admin" -qX -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
export DATABASE_URI="${admin%/*}/$database"
echo "tests/compat/run.sh: on PostgreSQL, database $database, $replicas replica(s)" >&2
"$venv/bin/python" -m pytest -q -c tests/compat/pytest.ini "$@"
