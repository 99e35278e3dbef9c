#!/usr/bin/env bash
# Builds what the Warden image ships and lays it out, as the image's file
# tree, under a staging directory:
#
#   deploy/build-image.sh <stage-dir>
#
#   <stage-dir>/usr/local/bin/warden               the release server
#   <stage-dir>/usr/local/bin/warden-healthcheck   GET /ok, for HEALTHCHECK
#   <stage-dir>/srv/warden/langgraph.json          the reference example, its paths
#   <stage-dir>/srv/warden/reference_auth.wasm       rewritten to the two components
#   <stage-dir>/srv/warden/reference_agent.wasm      beside it
#
# deploy/Dockerfile runs it in its build stage and copies the tree into the
# runtime stage as is; CI runs it without Docker (deploy/check-image-layout.sh)
# and serves from the tree. One script for both, so what CI checks is what
# the image holds.
#
# The example's langgraph.json names crate directories, which `warden serve`
# would build with cargo at start-up; the image has no toolchain, so the
# components are built here and the configuration names the .wasm files.
#
# Honours CARGO_TARGET_DIR (and any cargo configuration of the target
# directory): with a built target directory it only copies. Running it again
# over the same stage directory gives the same tree.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: deploy/build-image.sh <stage-dir>" >&2
    exit 2
fi
# Files land with the modes the image needs (COPY keeps them), whatever the
# caller's umask.
umask 022
stage="$1"
mkdir -p "$stage"
stage="$(cd "$stage" && pwd)"
# A relative CARGO_TARGET_DIR means the caller's directory, not the checkout's.
if [[ -n "${CARGO_TARGET_DIR:-}" && "$CARGO_TARGET_DIR" != /* ]]; then
    export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ "$stage" == "$repo" || "$stage" == / ]]; then
    echo "deploy/build-image.sh: refusing to stage into $stage" >&2
    exit 2
fi
# What the image holds. The stage directory must hold nothing else, before
# (so that a directory given by mistake is refused before anything is
# written into it) as after: the whole of it is copied into the image.
mapfile -t image_files < <(grep -v '^#' "$repo/deploy/image-files")
foreign="$(cd "$stage" && find . -mindepth 1 ! -type d -printf '%P\n' |
    grep -vxF -f <(printf '%s\n' "${image_files[@]}") || true)"
if [[ -n "$foreign" ]]; then
    echo "deploy/build-image.sh: $stage holds files that are not the image's; give an empty" >&2
    echo "  directory, or one this script staged before. The first of them:" >&2
    head -n 10 <<<"$foreign" | sed 's/^/  /' >&2
    exit 1
fi

wasm_target=wasm32-wasip2
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$wasm_target"; then
    echo "deploy/build-image.sh: installing the $wasm_target target" >&2
    rustup target add "$wasm_target"
fi

echo "deploy/build-image.sh: building the server (release)" >&2
cargo build --release --locked -p warden
echo "deploy/build-image.sh: building the reference plugin and graph ($wasm_target)" >&2
cargo build --release --locked --target "$wasm_target" -p reference-auth -p reference-agent

# Where cargo put them: asked of cargo, so CARGO_TARGET_DIR, .cargo/config
# and CARGO_BUILD_TARGET_DIR are all honoured.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [[ -z "$target_dir" || ! -d "$target_dir" ]]; then
    echo "deploy/build-image.sh: cannot tell cargo's target directory (got '$target_dir')" >&2
    exit 1
fi
server="$target_dir/release/warden"
auth="$target_dir/$wasm_target/release/reference_auth.wasm"
agent="$target_dir/$wasm_target/release/reference_agent.wasm"
for built in "$server" "$auth" "$agent"; do
    [[ -f "$built" ]] || { echo "deploy/build-image.sh: the build left no $built" >&2; exit 1; }
done

# The configuration: the example's own, with only the two paths changed, so
# its settings (timeouts, memory caps, Studio bypass) stay as written there.
# sed rather than a JSON tool because the Rust build image has neither
# python nor jq; the checks below catch an example that no longer matches.
config_in="examples/reference/langgraph.json"
config_text="$(sed -e 's#"\./agent"#"./reference_agent.wasm"#' \
                   -e 's#"\./auth"#"./reference_auth.wasm"#' "$config_in")"
for wanted in '"./reference_agent.wasm"' '"./reference_auth.wasm"'; do
    if [[ "$(grep -cF -- "$wanted" <<<"$config_text")" -ne 1 ]]; then
        echo "deploy/build-image.sh: $config_in no longer names ./agent and ./auth once each;" >&2
        echo "  update the rewrite in deploy/build-image.sh" >&2
        exit 1
    fi
done

install -d -m 0755 "$stage/usr/local/bin" "$stage/srv/warden"
install -m 0755 "$server" "$stage/usr/local/bin/warden"
install -m 0755 deploy/warden-healthcheck "$stage/usr/local/bin/warden-healthcheck"
install -m 0644 "$auth" "$stage/srv/warden/reference_auth.wasm"
install -m 0644 "$agent" "$stage/srv/warden/reference_agent.wasm"
printf '%s\n' "$config_text" >"$stage/srv/warden/langgraph.json"
chmod 0644 "$stage/srv/warden/langgraph.json"

# The result, checked: anything else would end up in the image.
actual="$(cd "$stage" && find . -mindepth 1 ! -type d -printf '%P\n' | LC_ALL=C sort)"
if [[ "$actual" != "$(printf '%s\n' "${image_files[@]}")" ]]; then
    echo "deploy/build-image.sh: $stage does not hold exactly the image's files:" >&2
    printf '%s\n' "$actual" | sed 's/^/  /' >&2
    exit 1
fi
echo "deploy/build-image.sh: staged in $stage:" >&2
(cd "$stage" && du -h "${image_files[@]}" | sed 's/^/  /' >&2)
