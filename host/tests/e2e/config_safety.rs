//! Configuration that must not fail open: Studio's bypass is off unless a
//! configuration asks for it.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ServerProcess, component, plugin, root, runtime, send_with};
use warden::plugin::PluginSlot;

/// The API router serving `text` as `langgraph.json`, with the reference
/// plugin as its auth plugin (whatever `auth.path` says).
fn app_for(text: &str) -> axum::Router {
    let config = warden::config::Config::parse(&root().join("langgraph.json"), text)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let plugin = plugin("reference_auth");
    let source = plugin.info().path.clone();
    let slot = Arc::new(PluginSlot::new(Arc::clone(runtime()), &source, plugin));
    let storage = Arc::new(warden::storage::SqliteStorage::in_memory().expect("in-memory db"));
    let state = warden::server::AppState::new(&config, Some(slot), storage).expect("state");
    warden::server::router(Arc::new(state))
}

#[tokio::test]
async fn the_studio_header_is_authenticated_like_any_request_unless_the_bypass_is_asked_for() {
    let studio = ("x-auth-scheme", "langsmith");
    let forged = ("authorization", "Bearer forged");
    for (auth, bypass) in [
        (r#"{"path": "./auth"}"#, false),
        (r#"{"path": "./auth", "disable_studio_auth": true}"#, false),
        (r#"{"path": "./auth", "disable_studio_auth": false}"#, true),
    ] {
        let app = app_for(&format!(r#"{{"auth": {auth}}}"#));
        for headers in [&[studio][..], &[studio, forged][..]] {
            let reply = send_with(&app, "POST", "/threads/search", headers, json!({})).await;
            let expected = if bypass {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(reply.status, expected, "{auth} {headers:?}: {}", reply.text);
        }
    }
}

#[test]
fn the_examples_keep_the_studio_bypass_off_and_name_no_ignored_key() {
    for example in ["tutorial", "reference", "oidc"] {
        let file = root().join("examples").join(example).join("langgraph.json");
        let config = warden::config::Config::load(&file).expect("parses");
        let auth = config.auth.expect("an auth section");
        assert_eq!(auth.disable_studio_auth, Some(true), "{example}");
        let text = std::fs::read_to_string(&file).unwrap();
        let keys: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        for key in keys.keys() {
            assert!(
                ["graphs", "auth"].contains(&key.as_str()),
                "{example}: {key}"
            );
        }
    }
}

/// A project serving `auth_wasm` as `./auth.wasm` with this `langgraph.json`.
fn project(auth_wasm: &str, config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component(auth_wasm), dir.path().join("auth.wasm")).unwrap();
    std::fs::write(dir.path().join("langgraph.json"), config).unwrap();
    dir
}

fn serve(dir: &Path, env: &[(&str, &Path)]) -> Result<ServerProcess, String> {
    ServerProcess::start_with(
        &["serve"],
        &dir.join("langgraph.json"),
        &dir.join("data"),
        env,
    )
}

/// The WARN lines of a log.
fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN")).collect()
}

#[test]
fn serve_warns_at_start_up_when_the_studio_bypass_is_on() {
    let on = project(
        "reference_auth",
        r#"{"auth": {"path": "./auth.wasm", "disable_studio_auth": false}}"#,
    );
    let server = serve(on.path(), &[]).expect("starts");
    let log = server.log();
    let warned = warnings(&log)
        .into_iter()
        .any(|l| l.contains("x-auth-scheme: langsmith") && l.contains("disable_studio_auth"));
    assert!(warned, "{log}");

    let off = project("reference_auth", r#"{"auth": {"path": "./auth.wasm"}}"#);
    let server = serve(off.path(), &[]).expect("starts");
    assert!(!server.log().contains("x-auth-scheme"), "{}", server.log());
}
