//! Configuration that must not fail open, and secrets that must not leave
//! the plugin: Studio's bypass is off unless a configuration asks for it,
//! `langgraph.json` keys Warden does not implement are named (one that looks
//! like `auth` stops start-up), a plugin that authorizes nothing is flagged,
//! and a plugin that tries to leak its secret every way it can is blanked
//! out everywhere.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Client, ServerProcess, component, eventually, root, runtime, unhurried_plugin,
};
use warden::plugin::PluginSlot;

/// A client of the API serving `text` as `langgraph.json`, with the
/// reference plugin as its auth plugin (whatever `auth.path` says).
fn app_for(text: &str) -> Client {
    let config = warden::config::Config::parse(&root().join("langgraph.json"), text)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let plugin = unhurried_plugin("reference_auth");
    let source = plugin.info().path.clone();
    let slot = Arc::new(PluginSlot::new(Arc::clone(runtime()), &source, plugin));
    let storage = Arc::new(warden::storage::SqliteStorage::in_memory().expect("in-memory db"));
    let state = warden::storage::wait(warden::server::AppState::new(&config, Some(slot), storage))
        .expect("state");
    Client::router(warden::server::router(Arc::new(state)))
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
            let mut request = app.post("/threads/search", json!({}));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let reply = request.await;
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

/// Runs `warden serve` on `dir`, expecting it to refuse to start: its exit
/// code and log.
fn refused(dir: &Path, env: &[(&str, &Path)]) -> (i32, String) {
    ServerProcess::refused(&dir.join("langgraph.json"), &dir.join("data"), env)
}

#[test]
fn serve_refuses_a_key_that_looks_like_auth_naming_it() {
    for key in ["atuh", "Auth", "authentication"] {
        let dir = project(
            "reference_auth",
            &format!(r#"{{"graphs": {{}}, "{key}": {{"path": "./auth.wasm"}}}}"#),
        );
        let (code, stderr) = refused(dir.path(), &[]);
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{key}: {stderr}");
        assert!(stderr.contains("`auth`"), "{key}: {stderr}");
    }
}

#[test]
fn serve_warns_naming_the_keys_it_does_not_implement() {
    let dir = project(
        "reference_auth",
        r#"{"dependencies": ["."], "env": ".env", "http": {"cors": {"allow_origins": []}},
            "graphs": {}, "auth": {"path": "./auth.wasm"}, "frobnicate": 1}"#,
    );
    let server = serve(dir.path(), &[]).expect("starts");
    let log = server.log();
    let line = warnings(&log)
        .into_iter()
        .find(|l| l.contains("langgraph.json"))
        .unwrap_or_else(|| panic!("no warning: {log}"))
        .to_owned();
    for key in ["dependencies", "env", "http", "frobnicate"] {
        assert!(line.contains(&format!("`{key}`")), "{key}: {line}");
    }
    for key in ["graphs", "auth"] {
        assert!(!line.contains(&format!("`{key}`")), "{key}: {line}");
    }
}

async fn auth_info(server: &ServerProcess) -> Value {
    let info = server.client().get("/info").await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    info.json["plugins"][0].clone()
}

#[tokio::test]
async fn a_plugin_that_registers_no_handlers_is_flagged_at_start_up_and_in_info() {
    let open = project("tutorial_auth", r#"{"auth": {"path": "./auth.wasm"}}"#);
    let server = serve(open.path(), &[]).expect("starts");
    assert_eq!(auth_info(&server).await["authorizes_nothing"], true);
    let log = server.log();
    let warned = warnings(&log)
        .into_iter()
        .any(|l| l.contains("registers no authorization handlers"));
    assert!(warned, "{log}");

    let scoped = project("reference_auth", r#"{"auth": {"path": "./auth.wasm"}}"#);
    let server = serve(scoped.path(), &[]).expect("starts");
    assert_eq!(auth_info(&server).await["authorizes_nothing"], false);
    assert!(!server.log().contains("registers no authorization handlers"));
}

#[tokio::test]
async fn a_swap_to_a_plugin_that_registers_no_handlers_is_logged_and_flagged() {
    let dir = project("reference_auth", r#"{"auth": {"path": "./auth.wasm"}}"#);
    let server = serve(dir.path(), &[]).expect("starts");
    assert_eq!(auth_info(&server).await["authorizes_nothing"], false);
    // Deployed as deploy tools do: written aside, renamed over.
    let aside = dir.path().join(".auth.wasm.new");
    std::fs::copy(component("tutorial_auth"), &aside).unwrap();
    std::fs::rename(&aside, dir.path().join("auth.wasm")).unwrap();
    let info = eventually("the plugin is swapped", async || {
        let info = auth_info(&server).await;
        (info["swap_count"] == 1).then_some(info)
    })
    .await;
    assert_eq!(info["authorizes_nothing"], true, "{info}");
    let log = server.log();
    let warned = warnings(&log)
        .into_iter()
        .any(|l| l.contains("plugin swapped") && l.contains("authorizes nothing"));
    assert!(warned, "{log}");
}

/// The secret the leaky fixture tries to leak: a quote, a backslash and a
/// non-ASCII letter, so that JSON escapes it.
const SECRET: &str = "pä55\"w0rd\\leak-me";
/// The password in the URL the fixture logs and requests.
const URL_PASSWORD: &str = "url-password-not-for-logs";

/// Every form of [`SECRET`] the fixture writes: as is, JSON-escaped and
/// ASCII-only JSON.
fn secret_forms() -> [&'static str; 3] {
    [
        SECRET,
        r#"pä55\"w0rd\\leak-me"#,
        r#"p\u00e455\"w0rd\\leak-me"#,
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for form in secret_forms() {
        assert!(!text.contains(form), "{what} shows {form:?}: {text}");
    }
}

/// The leaky fixture as the auth plugin, with `secret` as its secret
/// `LEAKY_SECRET`, the echo graph `agent`, and `auth` merged into its
/// `auth` section.
fn leaky_project(auth: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = |c: &str| component(c).display().to_string();
    let mut section = json!({
        "path": path("fixture_leaky"),
        "secrets": {"LEAKY_SECRET": "env:WARDEN_TEST_LEAKY_SECRET"},
        "timeout_ms": 30000,
    });
    section
        .as_object_mut()
        .unwrap()
        .extend(auth.as_object().cloned().unwrap_or_default());
    let config = json!({"graphs": {"agent": path("reference_agent")}, "auth": section});
    std::fs::write(dir.path().join("langgraph.json"), config.to_string()).unwrap();
    dir
}

fn leaky_server(dir: &Path) -> ServerProcess {
    serve(dir, &[("WARDEN_TEST_LEAKY_SECRET", Path::new(SECRET))]).expect("starts")
}

/// Sends a request as `alice`: its status, its body as text and as JSON.
async fn send(client: &Client, method: &str, path: &str, body: &Value) -> (u16, String, Value) {
    let reply = client
        .as_user("alice")
        .send(method, path, body.clone())
        .await;
    (reply.status.as_u16(), reply.text, reply.json)
}

#[tokio::test]
async fn a_secret_a_handler_writes_into_metadata_or_a_store_value_is_blanked_before_it_is_kept() {
    let dir = leaky_project(json!({}));
    let server = leaky_server(dir.path());
    let client = server.client();

    let (status, text, thread) = send(&client, "POST", "/threads", &json!({})).await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret("the created thread", &text);
    assert_eq!(thread["metadata"]["leak"], "[secret]", "{thread}");
    assert_eq!(thread["metadata"]["leak_debug"], "\"[secret]\"", "{thread}");
    let id = thread["thread_id"].as_str().unwrap();
    let (_, text, read) = send(&client, "GET", &format!("/threads/{id}"), &Value::Null).await;
    assert_no_secret("the stored thread", &text);
    assert_eq!(read["metadata"]["leak"], "[secret]", "{read}");

    let item = json!({"namespace": ["alice"], "key": "k", "value": {"a": 1}});
    let (status, text, _) = send(&client, "PUT", "/store/items", &item).await;
    assert_eq!(status, 204, "{text}");
    let (status, text, item) = send(
        &client,
        "GET",
        "/store/items?namespace=alice&key=k",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret("the stored item", &text);
    assert_eq!(item["value"], json!({"a": 1, "leak": "[secret]"}), "{item}");
    assert_no_secret("the log", &server.log());
}

#[tokio::test]
async fn a_json_escaped_secret_in_a_user_field_is_blanked_before_it_is_kept() {
    let dir = leaky_project(json!({}));
    let server = leaky_server(dir.path());
    let client = server.client();
    let (_, _, thread) = send(&client, "POST", "/threads", &json!({})).await;
    let id = thread["thread_id"].as_str().unwrap();
    let run = json!({"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}});
    let (status, text, _) = send(&client, "POST", &format!("/threads/{id}/runs/wait"), &run).await;
    assert_eq!(status, 200, "{text}");
    let (status, text, runs) =
        send(&client, "GET", &format!("/threads/{id}/runs"), &Value::Null).await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret("the run's kwargs", &text);
    let user = &runs[0]["kwargs"]["config"]["configurable"]["langgraph_auth_user"];
    assert_eq!(user["identity"], "alice", "{runs}");
    assert_eq!(user["note"], "[secret]", "{runs}");
}

#[tokio::test]
async fn an_escaped_secret_in_an_error_or_a_log_is_blanked() {
    let dir = leaky_project(json!({}));
    let server = leaky_server(dir.path());
    let client = server.client();
    let (status, text, error) = send(&client, "GET", "/escaped", &Value::Null).await;
    assert_eq!(status, 401, "{text}");
    assert_no_secret("the error", &text);
    assert_eq!(
        error["detail"],
        "escaped: json=[secret] ascii=[secret] debug=\"[secret]\""
    );
    let log = server.log();
    assert_no_secret("the log", &log);
    assert!(log.contains("escaped: json=[secret]"), "{log}");
}

#[tokio::test]
async fn an_identity_holding_the_secret_fails_closed() {
    let dir = leaky_project(json!({}));
    let server = leaky_server(dir.path());
    let client = server.client();
    // Blanked, the identity `user-[secret]` could be another user's.
    let (status, text, error) = send(&client, "GET", "/identity", &Value::Null).await;
    assert_eq!(status, 500, "{text}");
    assert_eq!(
        error["detail"],
        "Authentication failed: auth plugin invalid output"
    );
    assert_no_secret("the log", &server.log());
}

#[tokio::test]
async fn credentials_in_a_url_never_reach_the_log() {
    let dir = leaky_project(json!({"allowed_hosts": ["http://127.0.0.1:*"]}));
    let server = leaky_server(dir.path());
    let client = server.client();
    let (status, text, _) = send(&client, "GET", "/url", &Value::Null).await;
    assert_eq!(status, 502, "{text}");
    let log = server.log();
    assert!(!log.contains(URL_PASSWORD), "{log}");
    assert!(log.contains("fetching http://"), "{log}");
    assert!(
        log.contains("outbound request denied") && log.contains("127.0.0.1:9"),
        "{log}"
    );
}

#[test]
fn a_secret_too_short_to_redact_stops_start_up_naming_it() {
    let dir = leaky_project(json!({}));
    let (code, stderr) = refused(
        dir.path(),
        &[("WARDEN_TEST_LEAKY_SECRET", Path::new("Zq7"))],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("`LEAKY_SECRET`"), "{stderr}");
    assert!(stderr.contains("env:WARDEN_TEST_LEAKY_SECRET"), "{stderr}");
    assert!(stderr.contains("at least 8 bytes"), "{stderr}");
    assert!(!stderr.contains("Zq7"), "{stderr}");
}
