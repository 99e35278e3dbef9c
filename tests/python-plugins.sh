#!/usr/bin/env bash
# Python auth plugins: a venv (target/py-plugin-venv) with componentize-py and the
# `warden_auth` SDK (guest-sdk/python) from this tree; the SDK's and the Python
# reference policy's tests under plain pytest (no build); then `warden build` of
# examples/python, tests/fixtures/hostile-python and tests/fixtures/capabilities-python,
# whose components the host's end-to-end tests (host/tests/e2e/python.rs) and the
# compatibility suite
# (WARDEN_COMPAT_CONFIG=examples/python/langgraph.json) load.
#
# Prints `export VIRTUAL_ENV=...` last: the environment `warden serve` needs to find
# the same componentize-py and SDK (so that it reuses these builds).
#
# Environment: WARDEN_BIN (default <repo>/target/debug/warden).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$repo/target/py-plugin-venv"
warden="${WARDEN_BIN:-$repo/target/debug/warden}"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check componentize-py==0.25.1 pytest==9.2.0 >&2
# Not editable: componentize-py reads site-packages, not .pth links. From a copy, so
# that setuptools' build/ and egg-info stay out of the tree.
sdk="$(mktemp -d)"
trap 'rm -rf "$sdk"' EXIT
cp -r guest-sdk/python "$sdk/"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$sdk/python" >&2

"$venv/bin/python" -m pytest -q -p no:cacheprovider guest-sdk/python/tests >&2
(cd examples/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider) >&2

for plugin in examples/python/auth.py:auth tests/fixtures/hostile-python tests/fixtures/capabilities-python; do
    VIRTUAL_ENV="$venv" "$warden" build "$plugin" >&2
done
echo "export VIRTUAL_ENV=$venv"
