//! Hot swap with a real `warden serve`: plugin files replaced under load,
//! broken files refused, SIGHUP, and `warden dev` rebuilding a crate.
//!
//! The two policies: under `examples/reference` user2 reading user1's
//! thread gets 404 (owner-scoped); under `examples/tutorial` it gets 200
//! (authentication only). Both accept the same tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Client, ServerProcess, component, root};

/// A project whose `auth.path` is `./auth.wasm`, starting as `first`.
struct Project {
    dir: tempfile::TempDir,
    live: PathBuf,
}

impl Project {
    fn new(first: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("auth.wasm");
        std::fs::copy(component(first), &live).unwrap();
        std::fs::write(
            dir.path().join("langgraph.json"),
            r#"{"graphs": {}, "auth": {"path": "./auth.wasm"}}"#,
        )
        .unwrap();
        Self { dir, live }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("langgraph.json")
    }

    fn serve(&self, args: &[&str]) -> ServerProcess {
        let data = self.dir.path().join("data");
        ServerProcess::start_with(args, &self.config(), &data, &[]).expect("starts")
    }

    /// Replaces the live file as deploy tools do: write aside, rename over.
    fn deploy(&self, bytes: &[u8]) {
        let aside = self.dir.path().join(".auth.wasm.new");
        std::fs::write(&aside, bytes).unwrap();
        std::fs::rename(&aside, &self.live).unwrap();
    }
}

fn bytes(crate_name: &str) -> Vec<u8> {
    std::fs::read(component(crate_name)).unwrap()
}

/// Polls `check` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    check()
}

/// user1's new thread, and what user2 gets reading it.
fn user1_thread(client: &Client) -> String {
    let (status, thread) = client
        .send("POST", "/threads", "user1-token", &json!({}))
        .unwrap();
    assert_eq!(status, 200, "{thread}");
    thread["thread_id"].as_str().unwrap().to_owned()
}

fn user2_reads(client: &Client, thread: &str) -> u16 {
    client
        .send(
            "GET",
            &format!("/threads/{thread}"),
            "user2-token",
            &Value::Null,
        )
        .unwrap()
        .0
}

fn plugin_info(server: &ServerProcess) -> Value {
    let (status, info) = server.get("/info");
    assert_eq!(status, 200);
    info["plugins"][0].clone()
}

#[test]
fn swaps_policies_under_load_without_a_failed_request() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve"]);
    let setup = Client::new(&server);
    let thread = user1_thread(&setup);
    assert_eq!(user2_reads(&setup, &thread), 404, "reference policy");

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (client, stop, thread) = (Client::new(&server), stop.clone(), thread.clone());
            std::thread::spawn(move || {
                let (mut owner_scoped, mut open, mut failures) = (0, 0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/threads/{thread}");
                    match client.send("GET", &path, "user2-token", &Value::Null) {
                        Ok((404, body)) if body["detail"].is_string() => owner_scoped += 1,
                        Ok((200, body)) if body["thread_id"] == thread.as_str() => open += 1,
                        other => failures.push(format!("{other:?}")),
                    }
                }
                (owner_scoped, open, failures)
            })
        })
        .collect();

    let policies = [
        (bytes("tutorial_auth"), 200),
        (bytes("reference_auth"), 404),
    ];
    for swap in 0..100 {
        let (policy, expected) = &policies[swap % 2];
        project.deploy(policy);
        // The first swap to each policy compiles it: on a loaded CI machine,
        // beside the other tests, that alone can take tens of seconds.
        assert!(
            eventually(Duration::from_secs(240), || user2_reads(&setup, &thread)
                == *expected),
            "swap {swap} not live:\n{}",
            server.log()
        );
    }
    stop.store(true, Ordering::Relaxed);

    let (mut owner_scoped, mut open) = (0, 0);
    for client in clients {
        let (s, o, failures) = client.join().unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        owner_scoped += s;
        open += o;
    }
    assert!(owner_scoped > 0 && open > 0, "{owner_scoped} / {open}");
    assert_eq!(user2_reads(&setup, &thread), 404, "the last policy is live");
    let info = plugin_info(&server);
    assert_eq!(info["swap_count"], 100);
    assert_eq!(info["last_reload_error"], Value::Null);
}

#[test]
fn refuses_broken_files_and_keeps_serving() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve"]);
    let client = Client::new(&server);
    let thread = user1_thread(&client);
    let live_digest = plugin_info(&server)["digest"].clone();

    let tutorial = bytes("tutorial_auth");
    let refused = |what: &str, needle: &str| {
        assert!(
            eventually(Duration::from_secs(10), || {
                plugin_info(&server)["last_reload_error"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(needle))
            }),
            "{what} not reported:\n{}",
            server.log()
        );
        assert_eq!(user2_reads(&client, &thread), 404, "{what}: old policy");
        assert_eq!(plugin_info(&server)["digest"], live_digest, "{what}");
        assert!(server.log().contains("plugin reload refused"), "{what}");
    };
    project.deploy(&tutorial[..tutorial.len() / 2]);
    refused("a truncated component", "invalid component");
    project.deploy(b"#!/bin/sh\necho not a plugin\n");
    refused("garbage", "not a WebAssembly binary");

    // An editor's save: truncate, then write in place.
    std::fs::write(&project.live, &tutorial).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || user2_reads(&client, &thread)
            == 200),
        "{}",
        server.log()
    );
    let info = plugin_info(&server);
    assert_eq!(info["swap_count"], 1);
    assert_eq!(info["last_reload_error"], Value::Null);
    assert_ne!(info["digest"], live_digest);
}

#[test]
fn sighup_reloads_an_unwatched_plugin() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve", "--no-watch"]);
    let client = Client::new(&server);
    let thread = user1_thread(&client);

    project.deploy(&bytes("tutorial_auth"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(user2_reads(&client, &thread), 404, "not watched");

    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        eventually(Duration::from_secs(10), || user2_reads(&client, &thread)
            == 200),
        "{}",
        server.log()
    );
    // The count is recorded just after the new version goes live.
    assert!(eventually(Duration::from_secs(10), || plugin_info(&server)
        ["swap_count"]
        == 1));
}

/// A copy of `examples/tutorial/auth` outside the workspace, pinned to the
/// workspace's lock file and built into its target dir (dependencies
/// already built there: only the crate itself compiles).
fn plugin_crate(dir: &Path) -> PathBuf {
    let krate = dir.join("auth");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let sdk = root().join("guest-sdk");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            r#"[package]
name = "devloop-auth"
version = "0.0.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
warden-sdk = {{ path = {sdk:?} }}

[workspace]
"#
        ),
    )
    .unwrap();
    std::fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::copy(
        root().join("examples/tutorial/auth/src/lib.rs"),
        krate.join("src/lib.rs"),
    )
    .unwrap();
    krate
}

#[test]
fn dev_rebuilds_a_plugin_crate_when_its_sources_change() {
    let dir = tempfile::tempdir().unwrap();
    let krate = plugin_crate(dir.path());
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, r#"{"graphs": {}, "auth": {"path": "./auth"}}"#).unwrap();
    let target = root().join("target");
    let server = ServerProcess::start_with(
        &["dev"],
        &config,
        &dir.path().join("data"),
        &[("CARGO_TARGET_DIR", &target)],
    )
    .expect("starts");
    let client = Client::new(&server);
    let search = |token: &str| match client.send("POST", "/threads/search", token, &json!({})) {
        Ok((status, _)) => status,
        Err(e) => panic!("{e}:\n{}", server.log()),
    };
    assert_eq!(search("user1-token"), 200, "{}", server.log());

    let source = krate.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("user1-token", "user1-rotated")).unwrap();
    assert!(
        eventually(Duration::from_secs(240), || search("user1-rotated") == 200),
        "not rebuilt:\n{}",
        server.log()
    );
    assert_eq!(search("user1-token"), 401);
    assert!(
        server.log().contains("Compiling devloop-auth"),
        "build output shown"
    );

    std::fs::write(&source, "this is not Rust").unwrap();
    assert!(
        eventually(Duration::from_secs(240), || {
            plugin_info(&server)["last_reload_error"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("building the plugin crate failed"))
        }),
        "build error not reported:\n{}",
        server.log()
    );
    assert_eq!(
        search("user1-rotated"),
        200,
        "the old version keeps serving"
    );
    assert_eq!(plugin_info(&server)["swap_count"], 1);
}

/// A graph `g` served from `./graph.wasm`, without auth.
fn graph_project(first: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("graph.wasm");
    std::fs::copy(component(first), &live).unwrap();
    std::fs::write(
        dir.path().join("langgraph.json"),
        r#"{"graphs": {"g": "./graph.wasm"}}"#,
    )
    .unwrap();
    (dir, live)
}

fn graph_status(server: &ServerProcess) -> Value {
    let (_, info) = server.get("/info");
    info["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "graph")
        .cloned()
        .unwrap()
}

#[test]
fn a_graph_is_swapped_while_serving_and_runs_in_flight_finish_on_the_old_one() {
    let (dir, live) = graph_project("hostile_graph");
    let data = dir.path().join("data");
    let server = ServerProcess::start(&dir.path().join("langgraph.json"), &data).expect("starts");
    let client = Client::new(&server);
    let thread = |client: &Client| {
        let (_, t) = client.send("POST", "/threads", "", &json!({})).unwrap();
        t["thread_id"].as_str().unwrap().to_owned()
    };
    // A run of the old version, busy for a while.
    let busy = thread(&client);
    let (status, run) = client
        .send(
            "POST",
            &format!("/threads/{busy}/runs"),
            "",
            &json!({"assistant_id": "g", "input": {"mode": "spin", "n": 8000}}),
        )
        .unwrap();
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let running = || {
        client
            .send(
                "GET",
                &format!("/threads/{busy}/runs/{run_id}"),
                "",
                &Value::Null,
            )
            .unwrap()
            .1["status"]
            == "running"
    };
    assert!(eventually(Duration::from_secs(10), running));

    // The echo graph is renamed over the file.
    let aside = dir.path().join(".graph.wasm.new");
    std::fs::write(&aside, bytes("reference_agent")).unwrap();
    std::fs::rename(&aside, &live).unwrap();
    assert!(eventually(Duration::from_secs(10), || graph_status(
        &server
    )["swap_count"]
        == 1));
    assert!(running(), "the old version's run should still be running");

    // New runs use the new version...
    let (status, values) = client
        .send(
            "POST",
            &format!("/threads/{}/runs/wait", thread(&client)),
            "",
            &json!({"assistant_id": "g", "input": {"messages": [{"role": "user", "content": "hi"}]}}),
        )
        .unwrap();
    assert_eq!(status, 200, "{values}");
    assert_eq!(values["messages"][1]["content"], "hi", "{values}");
    // ...while the one in flight finishes on the old one.
    let (status, done) = client
        .send(
            "GET",
            &format!("/threads/{busy}/runs/{run_id}/join"),
            "",
            &Value::Null,
        )
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(done["done"], true, "{done}");

    // A broken version is refused; the live one keeps serving.
    std::fs::write(&aside, b"\0asm garbage").unwrap();
    std::fs::rename(&aside, &live).unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        !graph_status(&server)["last_reload_error"].is_null()
    }));
    let status = graph_status(&server);
    assert_eq!(status["swap_count"], 1, "{status}");
    assert_eq!(status["contract"], "warden:graph@0.1.0", "{status}");
    let (code, values) = client
        .send(
            "POST",
            "/runs/wait",
            "",
            &json!({"assistant_id": "g", "input": {"messages": [{"role": "user", "content": "still"}]}}),
        )
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(values["messages"][1]["content"], "still", "{values}");
}

#[test]
fn dev_rebuilds_a_graph_crate_when_its_sources_change() {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("agent");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let sdk = root().join("guest-sdk/graph");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"devloop-agent\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwarden-graph = {{ path = {sdk:?} }}\n\n\
             [workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let source = krate.join("src/lib.rs");
    std::fs::copy(root().join("examples/reference/agent/src/lib.rs"), &source).unwrap();
    let config = dir.path().join("langgraph.json");
    std::fs::write(&config, r#"{"graphs": {"agent": "./agent"}}"#).unwrap();
    let target = root().join("target");
    let server = ServerProcess::start_with(
        &["dev"],
        &config,
        &dir.path().join("data"),
        &[("CARGO_TARGET_DIR", &target)],
    )
    .expect("starts");
    let client = Client::new(&server);
    let echo = || {
        let body = json!({"assistant_id": "agent",
                          "input": {"messages": [{"role": "user", "content": "hi"}]}});
        match client.send("POST", "/runs/wait", "", &body) {
            Ok((_, values)) => values["messages"][1]["content"].clone(),
            Err(e) => panic!("{e}:\n{}", server.log()),
        }
    };
    assert_eq!(echo(), "hi", "{}", server.log());

    let text = std::fs::read_to_string(&source).unwrap();
    let shouting = text.replace("messages::ai(text)", "messages::ai(text.to_uppercase())");
    assert_ne!(shouting, text, "the example's echo line moved");
    std::fs::write(&source, shouting).unwrap();
    assert!(
        eventually(Duration::from_secs(240), || echo() == "HI"),
        "not rebuilt:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("Compiling devloop-agent"),
        "build output shown"
    );
}
