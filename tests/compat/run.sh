#!/usr/bin/env bash
# Python compatibility suite: drives Warden with the unmodified `langgraph_sdk` client
# through the flows of LangGraph's custom-auth tutorials.
#
#   tests/compat/run.sh [pytest args...]      (default: the whole of tests/compat)
#
# Environment:
#   WARDEN_BIN          server binary (default <repo>/target/debug/warden); the tests start
#                       it as `$WARDEN_BIN serve --config examples/reference/langgraph.json ...`
#   WARDEN_COMPAT_URL   test an already-running server instead (e.g. the reference
#                       `langgraph dev`); nothing is started and WARDEN_BIN is not needed,
#                       and the restart test is skipped
#   WARDEN_COMPAT_VENV  where the Python venv lives (default <repo>/target/compat-venv)
set -euo pipefail

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
exec "$venv/bin/python" -m pytest -q -c tests/compat/pytest.ini "$@"
