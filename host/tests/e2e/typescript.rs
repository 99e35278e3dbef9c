//! Auth plugins written in TypeScript (`guest-sdk/typescript`, built with
//! esbuild and componentize-js by `warden build`): the reference policy in
//! TypeScript decides exactly as the Rust one. `tests/run` builds it first
//! (`tests/typescript-plugins.sh`).

use crate::python::{built_plugin, decides_as_the_rust_reference, unhurried};

#[test]
fn the_typescript_reference_policy_decides_as_the_rust_one() {
    let policy = built_plugin(
        "examples/typescript",
        "plugin.wasm",
        "tests/typescript-plugins.sh",
        unhurried(),
    );
    decides_as_the_rust_reference(&policy);
}
