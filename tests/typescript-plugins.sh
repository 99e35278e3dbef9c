#!/usr/bin/env bash
# TypeScript auth plugins: the `@warden/auth` SDK's (guest-sdk/typescript) and the
# TypeScript reference policy's (examples/typescript) tests under `node --test` (no
# build), then `warden build` (esbuild + componentize-js) of examples/typescript and
# tests/fixtures/capabilities-typescript (fetch, `--enable http`), whose components
# the host's end-to-end tests (host/tests/e2e/typescript.rs) and the
# compatibility suite (WARDEN_COMPAT_CONFIG=examples/typescript/langgraph.json) load.
#
# Environment: WARDEN_BIN (default <repo>/target/debug/warden).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
warden="${WARDEN_BIN:-$repo/target/debug/warden}"
npm_quiet=(--no-audit --no-fund --loglevel=error)

# The build tools only (componentize-js, esbuild); jco is for the SDK's own
# component tests (`npm run test:component`).
(cd guest-sdk/typescript && npm ci --omit=dev "${npm_quiet[@]}" && npm test) >&2
(cd examples/typescript && npm ci "${npm_quiet[@]}" && npm test) >&2
(cd tests/fixtures/capabilities-typescript && npm ci "${npm_quiet[@]}") >&2
"$warden" build examples/typescript >&2
"$warden" build tests/fixtures/capabilities-typescript >&2
