//! The `warden` binary: `call` as a plugin author uses it, `serve` as a
//! deployment starts it (its port file, its log, its cron scheduler), and
//! configuration errors as a user meets them.

use std::path::Path;
use std::process::{Command, Output};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ServerProcess as Server, component, root};

fn warden(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .current_dir(root())
        .output()
        .expect("warden runs")
}

fn call(plugin: &Path, args: &[&str]) -> (i32, Value, String) {
    let data = tempfile::tempdir().unwrap();
    let mut all = vec!["call", plugin.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = warden(&all, data.path());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn call_authenticate_prints_the_user() {
    let (code, user, _) = call(
        &component("reference_auth"),
        &[
            "authenticate",
            "--header",
            "authorization: Bearer user1-token",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(user["identity"], "user1");
    assert_eq!(user["display_name"], "Alice");
    assert_eq!(user["is_authenticated"], true);
    assert!(
        user["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("threads:create"))
    );
}

#[test]
fn call_authenticate_prints_an_http_error_and_exits_1() {
    let (code, error, _) = call(
        &component("reference_auth"),
        &["authenticate", "--header", "authorization: Bearer nope"],
    );
    assert_eq!(code, 1);
    assert_eq!(error, json!({"status": 401, "detail": "Invalid token"}));
}

#[test]
fn call_authorize_prints_the_decision_filter_and_value() {
    let (code, out, _) = call(
        &component("reference_auth"),
        &[
            "authorize",
            "--resource",
            "threads",
            "--action",
            "create",
            "--user",
            r#"{"identity":"user1","permissions":["threads:create"]}"#,
            "--value",
            r#"{"metadata":{"owner":"spoof"}}"#,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["handler"], "threads.create");
    assert_eq!(out["decision"], "filter");
    assert_eq!(out["filter"], json!({"owner": "user1"}));
    assert_eq!(out["value"]["metadata"]["owner"], "user1");

    let (code, out, _) = call(
        &component("reference_auth"),
        &[
            "authorize",
            "--resource",
            "threads",
            "--action",
            "create",
            "--user",
            r#"{"identity":"reader"}"#,
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        json!({"status": 403, "detail": "Missing permission: threads:create"})
    );
}

#[test]
fn call_reports_a_fault_with_exit_2() {
    let (code, out, stderr) = call(
        &component("fixture_hostile"),
        &["authenticate", "--path", "/spin/forever"],
    );
    assert_eq!(code, 2);
    assert_eq!(out, Value::Null, "nothing on stdout");
    assert!(stderr.contains("fault (timeout)"), "{stderr}");
}

#[test]
fn guest_logs_and_output_reach_the_host_log_tagged_with_the_plugin() {
    let (code, _, stderr) = call(
        &component("fixture_hostile"),
        &["authenticate", "--path", "/log"],
    );
    assert_eq!(code, 0);
    for line in [
        "hello from the guest",
        "answer=42",
        "guest stdout line",
        "guest stderr line",
    ] {
        let found = stderr.lines().find(|l| l.contains(line));
        let found = found.unwrap_or_else(|| panic!("{line:?} not in:\n{stderr}"));
        assert!(found.contains("fixture_hostile"), "untagged: {found}");
    }
}

#[test]
fn call_builds_a_plugin_crate_directory() {
    let (code, user, _) = call(
        &root().join("examples/tutorial/auth"),
        &["authenticate", "-H", "Authorization: Bearer user2-token"],
    );
    assert_eq!(code, 0);
    assert_eq!(user["identity"], "user2");
}

#[tokio::test]
async fn serve_loads_the_plugin_and_answers_ok_and_info() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component("reference_auth");
    std::fs::copy(&wasm, dir.path().join("auth.wasm")).unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(
        &config,
        r#"{"graphs": {}, "auth": {"path": "./auth.wasm", "timeout_ms": 50}}"#,
    )
    .unwrap();

    let server = Server::start(&config, data.path()).expect("starts");
    let client = server.client();
    let ok = client.get("/ok").await;
    assert_eq!(
        (ok.status, ok.json),
        (StatusCode::OK, json!({"ok": true, "services": {}}))
    );
    let info = client.get("/info").await;
    assert_eq!(info.status, StatusCode::OK);
    let plugin = &info.json["plugins"][0];
    assert_eq!(plugin["name"], "auth");
    assert_eq!(plugin["contract"], "warden:auth@0.2.0");
    assert_eq!(plugin["digest"].as_str().unwrap().len(), 64);
    assert!(plugin["path"].as_str().unwrap().ends_with("auth.wasm"));
}

#[tokio::test]
async fn serve_writes_its_port_to_the_port_file_replacing_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, r#"{"graphs": {}}"#).unwrap();
    let port_file = dir.path().join("port");
    std::fs::write(&port_file, "left by an earlier start").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--no-watch", "--port", "0", "--port-file"])
        .arg(&port_file)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("XDG_STATE_HOME", root().join("target/warden-test-state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Whatever the file holds whenever it is read is the old text or a
    // whole port (never half a number), and the port comes.
    let port: u16 = crate::support::eventually("the port is written", async || {
        assert!(child.try_wait().unwrap().is_none(), "warden exited");
        let text = std::fs::read_to_string(&port_file).ok()?;
        if text == "left by an earlier start" {
            return None;
        }
        Some(text.trim_end().parse().expect("a whole port"))
    })
    .await;
    let ok = crate::support::Client::http(port).get("/ok").await;
    assert_eq!(ok.status, StatusCode::OK);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert_eq!(
        aside,
        Vec::<std::ffi::OsString>::new(),
        "no file left aside"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Serves a prebuilt component as the auth plugin of a fresh project, with
/// a deadline no loaded machine reaches.
fn serve_component(crate_name: &str) -> (Server, tempfile::TempDir) {
    serve_component_with(
        crate_name,
        r#"{"path": "./auth.wasm", "timeout_ms": 30000}"#,
    )
}

/// Serves a prebuilt component with this `auth` section.
fn serve_component_with(crate_name: &str, auth: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component(crate_name), dir.path().join("auth.wasm")).unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, format!(r#"{{"auth": {auth}}}"#)).unwrap();
    (Server::start(&config, dir.path()).expect("starts"), dir)
}

#[tokio::test]
async fn serve_authenticates_before_routing() {
    let (server, _dir) = serve_component("reference_auth");
    let client = server.client();
    let answer = async |client: &crate::support::Client, path: &str| {
        let reply = client.get(path).await;
        (reply.status.as_u16(), reply.json)
    };
    assert_eq!(
        answer(&client, "/threads/search").await,
        (401, json!({"detail": "Missing Authorization header"}))
    );
    assert_eq!(
        answer(&server.user("nope"), "/no/such/route").await,
        (401, json!({"detail": "Invalid token"}))
    );
    assert_eq!(
        answer(&server.user("user1-token"), "/no/such/route").await,
        (404, json!({"detail": "Not Found"}))
    );
    assert_eq!(
        answer(&client, "/ok").await,
        (200, json!({"ok": true, "services": {}})),
        "public routes need no token"
    );
}

#[tokio::test]
async fn serve_sends_the_plugin_error_headers() {
    let (server, _dir) = serve_component("fixture_levels");
    let client = server.client();
    let reply = client
        .get("/x")
        .header("x-status", "401")
        .header("x-detail", "Token expired")
        .header("x-header", "Bearer error=\"invalid_token\"")
        .await;
    assert_eq!(
        (reply.status, reply.json),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Token expired"}))
    );
    assert_eq!(
        reply.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let teapot = client.get("/x").header("x-status", "418").await;
    assert_eq!(
        (teapot.status.as_u16(), teapot.json),
        (418, json!({"detail": "I'm a teapot"}))
    );
}

#[tokio::test]
async fn serve_fails_closed_on_a_faulty_plugin_and_keeps_serving() {
    // Touching 32 MiB before the cap trips takes tens of milliseconds, more
    // on a loaded machine: a wide deadline keeps the memory fault a memory
    // fault.
    let (server, _dir) = serve_component_with(
        "fixture_hostile",
        r#"{"path": "./auth.wasm", "timeout_ms": 2000}"#,
    );
    let client = server.client();
    let faults = [
        ("/spin/forever", "timeout"),
        ("/alloc/64", "memory limit"),
        ("/panic", "trap"),
    ];
    for (path, kind) in faults {
        let reply = client.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(
            reply.detail(),
            format!("Authentication failed: auth plugin {kind}")
        );
    }
    let fine = client.get("/fine").await;
    assert_eq!(
        (fine.status, fine.json),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
}

/// A project serving the reference policy (30 s deadline), the echo graph
/// `agent` and the `hostile` fixture graph (2 s deadline, 64 MiB).
fn graphs_project(dir: &Path) -> Server {
    let config = dir.join("langgraph.json");
    let path = |c: &str| component(c).display().to_string();
    std::fs::write(
        &config,
        json!({
            "graphs": {
                "agent": path("reference_agent"),
                "hostile": {"path": path("hostile_graph"), "timeout_ms": 2000, "memory_mib": 64},
            },
            "auth": {"path": path("reference_auth"), "timeout_ms": 30000},
        })
        .to_string(),
    )
    .unwrap();
    Server::start(&config, &dir.join("data")).expect("warden starts")
}

#[tokio::test]
async fn serve_logs_a_graph_fault_naming_the_graph_and_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let server = graphs_project(dir.path());
    let user1 = server.user("user1-token");
    for mode in ["loop", "alloc", "trap"] {
        let reply = user1
            .post(
                "/runs/wait",
                json!({"assistant_id": "hostile", "input": {"mode": mode}}),
            )
            .await;
        assert_eq!(reply.json["__error__"]["error"], "GraphFault", "{mode}");
    }
    let log = server.log();
    for fault in ["timeout", "memory", "trap"] {
        assert!(
            log.lines()
                .any(|l| l.contains("graph fault") && l.contains("hostile") && l.contains(fault)),
            "no {fault} fault logged:\n{log}"
        );
    }
}

#[tokio::test]
async fn serve_fires_a_cron_on_schedule_as_its_creator() {
    let dir = tempfile::tempdir().unwrap();
    let server = graphs_project(dir.path());
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let input = json!({"messages": [{"role": "user", "content": "hello"}]});
    let cron = user1
        .create_thread_cron(
            &thread,
            json!({"assistant_id": "agent", "schedule": "* * * * *", "input": input}),
        )
        .await;
    // At the next minute boundary.
    let run = crate::support::eventually("the cron's run succeeds", async || {
        let runs = user1.runs(&thread).await;
        runs.into_iter().find(|r| r.status == "success")
    })
    .await;
    let configurable = &run.kwargs["config"]["configurable"];
    assert_eq!(configurable["langgraph_auth_user_id"], "user1", "{run:?}");
    assert_eq!(configurable["cron_id"], cron.cron_id.as_str(), "{run:?}");
    assert_eq!(run.metadata["owner"], "user1", "{run:?}");
    let state = user1.get(&format!("/threads/{thread}/state")).await;
    assert_eq!(state.json["values"]["seen_user"], "user1", "{}", state.text);
    assert!(server.log().contains("cron fired"));
}

fn serve_error(config_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, config_text).unwrap();
    match Server::start(&config, dir.path()) {
        Ok(_) => panic!("started with {config_text}"),
        Err(stderr) => stderr,
    }
}

#[test]
fn serve_refuses_an_unknown_key_naming_it_and_the_file() {
    let stderr = serve_error(r#"{"auth": {"path": "./auth.wasm", "memory": 64}}"#);
    assert!(stderr.contains("langgraph.json"), "{stderr}");
    assert!(stderr.contains("unknown field `memory`"), "{stderr}");
}

#[test]
fn serve_refuses_a_missing_plugin_file() {
    let stderr = serve_error(r#"{"auth": {"path": "./missing.wasm"}}"#);
    assert!(
        stderr.contains("missing.wasm: no such file or directory"),
        "{stderr}"
    );
}

#[test]
fn serve_names_a_missing_python_policy() {
    // LangGraph's form of a Python policy: built with componentize-py when
    // the file exists (host/tests/e2e/python.rs, tests/compat).
    let stderr = serve_error(r#"{"auth": {"path": "./src/security/auth.py:auth"}}"#);
    assert!(
        stderr.contains("src/security/auth.py: no such file or directory"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_plugin_for_another_contract() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        component("fixture_future_contract"),
        dir.path().join("auth.wasm"),
    )
    .unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, r#"{"auth": {"path": "./auth.wasm"}}"#).unwrap();
    let stderr = Server::start(&config, dir.path()).err().expect("refused");
    assert!(stderr.contains("warden:auth@9.0.0"), "{stderr}");
}

/// A project serving the capabilities fixture with the secret `JWT_SECRET`
/// from `WARDEN_TEST_JWT_SECRET`.
fn secrets_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        component("fixture_capabilities"),
        dir.path().join("auth.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("langgraph.json"),
        r#"{"auth": {"path": "./auth.wasm", "config": {"issuer": "me"}, "timeout_ms": 30000,
                     "secrets": {"JWT_SECRET": "env:WARDEN_TEST_JWT_SECRET"}}}"#,
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn serve_reads_secrets_from_the_environment_and_never_shows_them() {
    const SECRET: &str = "s3cr3t-value-that-must-never-be-shown";
    let dir = secrets_project();
    let server = Server::start_with(
        &["serve"],
        &dir.path().join("langgraph.json"),
        dir.path(),
        &[("WARDEN_TEST_JWT_SECRET", Path::new(SECRET))],
    )
    .expect("starts");
    let token = warden_sdk::jwt::testing::SigningKey::hmac(SECRET).sign(
        warden_sdk::jwt::Algorithm::Hs256,
        &json!({"sub": "alice", "iss": "me", "exp": 4102444800u64}),
    );
    // A valid HS256 token: authenticated, then routed (404).
    let routed = server.user(&token).get("/whoami").await;
    assert_eq!(routed.status, StatusCode::NOT_FOUND);
    let forged = server.user("forged").get("/whoami").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    // The plugin tries to leak the secret in an error, its log and stdout.
    let leak = server.client().get("/leak").await;
    assert_eq!(leak.status, StatusCode::UNAUTHORIZED);
    assert_eq!(leak.detail(), "the secret is [secret]");
    let info = server.client().get("/info").await;
    let logs = server.log();
    let head = format!("{:?}", leak.headers);
    for shown in [head, leak.text, info.text, logs.clone()] {
        assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    }
    assert!(logs.contains("the secret is [secret]"), "{logs}");
}

#[test]
fn serve_refuses_a_missing_secret_naming_it() {
    let dir = secrets_project();
    let stderr = match Server::start(&dir.path().join("langgraph.json"), dir.path()) {
        Ok(_) => panic!("started without its secret"),
        Err(stderr) => stderr,
    };
    assert!(
        stderr.contains("secret `JWT_SECRET` is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("env:WARDEN_TEST_JWT_SECRET"), "{stderr}");
}

#[test]
fn serve_refuses_a_malformed_allowed_host_or_secret_source() {
    let stderr =
        serve_error(r#"{"auth": {"path": "./a.wasm", "allowed_hosts": ["idp.example.com"]}}"#);
    assert!(stderr.contains("`auth.allowed_hosts[0]`"), "{stderr}");
    let stderr = serve_error(r#"{"auth": {"path": "./a.wasm", "secrets": {"K": "vault:k"}}}"#);
    assert!(stderr.contains("`auth.secrets.K`"), "{stderr}");
}
