//! Auth plugins written in TypeScript (`guest-sdk/typescript`, built with
//! esbuild and componentize-js by `warden build`): the reference policy in
//! TypeScript decides exactly as the Rust one, and a TypeScript policy built
//! with `--enable http` reaches its identity provider with `fetch`, within
//! `allowed_hosts`. `tests/run` builds them first
//! (`tests/typescript-plugins.sh`).

use std::sync::Arc;

use serde_json::Value;
use warden::plugin::AuthPlugin;

use crate::capabilities::{
    introspects_a_token_at_its_issuer, reaches_only_its_allowed_hosts,
    sees_a_hanging_issuer_time_out,
};
use crate::python::{built_from_config, built_plugin, decides_as_the_rust_reference, unhurried};

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

fn typescript_capabilities(auth: Value) -> Arc<AuthPlugin> {
    built_from_config(
        "tests/fixtures/capabilities-typescript",
        "plugin.wasm",
        "tests/typescript-plugins.sh",
        auth,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_policy_introspects_a_token_at_its_issuer_with_fetch() {
    introspects_a_token_at_its_issuer(typescript_capabilities).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_policy_reaches_only_its_allowed_hosts() {
    // StarlingMonkey's `fetch` turns every `wasi:http` error, the host's
    // `http-request-denied` included, into this one.
    reaches_only_its_allowed_hosts(
        typescript_capabilities,
        "TypeError: NetworkError when attempting to fetch resource",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_policy_sees_a_hanging_issuer_time_out() {
    sees_a_hanging_issuer_time_out(typescript_capabilities, "NetworkError").await;
}
