//! Hot swap with a real `warden serve`: plugin files replaced under load,
//! broken files refused, SIGHUP, and `warden dev` rebuilding a crate.
//!
//! The two policies: under `examples/reference` user2 reading user1's
//! thread gets 404 (owner-scoped); under `examples/tutorial` it gets 200
//! (authentication only). Both accept the same tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::{Client, ServerProcess, component, eventually, root};

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
            // A deadline no loaded machine reaches: a plugin call that
            // timed out would count as a failed request.
            r#"{"graphs": {}, "auth": {"path": "./auth.wasm", "timeout_ms": 30000}}"#,
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

/// user1's new thread.
async fn user1_thread(client: &Client) -> String {
    client
        .as_user("user1-token")
        .create_thread(json!({}))
        .await
        .thread_id
}

/// What user2 gets reading `thread`.
async fn user2_reads(client: &Client, thread: &str) -> u16 {
    let reply = client
        .as_user("user2-token")
        .get(&format!("/threads/{thread}"))
        .await;
    reply.status.as_u16()
}

/// The `/info` entry of the plugin of `kind` (`auth` or `graph`).
async fn info_of(server: &ServerProcess, kind: &str) -> Value {
    let info = server.client().get("/info").await;
    assert_eq!(info.status, 200, "{}", info.text);
    info.json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} plugin: {}", info.text))
}

async fn plugin_info(server: &ServerProcess) -> Value {
    info_of(server, "auth").await
}

/// Waits until the plugin of `kind` has been swapped `count` times: its
/// `/info` entry then. A reload refused meanwhile fails the test at once,
/// with its reason (the poll ends on either event; building or compiling
/// a version takes what it takes).
async fn swapped(server: &ServerProcess, kind: &str, count: u64) -> Value {
    let refused_before = info_of(server, kind).await["last_reload_error"].clone();
    eventually(&format!("swap {count} of the {kind} plugin"), async || {
        let info = info_of(server, kind).await;
        let error = &info["last_reload_error"];
        assert!(
            error.is_null() || *error == refused_before,
            "the new version was refused: {error}\n{}",
            server.log()
        );
        (info["swap_count"] == count).then_some(info)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_policies_under_load_without_a_failed_request() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve"]);
    let setup = server.client();
    let thread = user1_thread(&setup).await;
    assert_eq!(user2_reads(&setup, &thread).await, 404, "reference policy");

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let user2 = server.user("user2-token");
            let (stop, thread) = (stop.clone(), thread.clone());
            tokio::spawn(async move {
                let (mut owner_scoped, mut open, mut failures) = (0, 0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/threads/{thread}");
                    match user2.get(&path).try_send().await {
                        Ok(r) if r.status == 404 && r.json["detail"].is_string() => {
                            owner_scoped += 1;
                        }
                        Ok(r) if r.status == 200 && r.json["thread_id"] == thread.as_str() => {
                            open += 1;
                        }
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
        // The swap is recorded once the new version is live.
        swapped(&server, "auth", swap as u64 + 1).await;
        assert_eq!(
            user2_reads(&setup, &thread).await,
            *expected,
            "swap {swap} not live:\n{}",
            server.log()
        );
    }
    stop.store(true, Ordering::Relaxed);

    let (mut owner_scoped, mut open) = (0, 0);
    for client in clients {
        let (s, o, failures) = client.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        owner_scoped += s;
        open += o;
    }
    assert!(owner_scoped > 0 && open > 0, "{owner_scoped} / {open}");
    assert_eq!(
        user2_reads(&setup, &thread).await,
        404,
        "the last policy is live"
    );
    let info = plugin_info(&server).await;
    assert_eq!(info["swap_count"], 100);
    assert_eq!(info["last_reload_error"], Value::Null);
}

#[tokio::test]
async fn refuses_broken_files_and_keeps_serving() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve"]);
    let client = server.client();
    let thread = user1_thread(&client).await;
    let live_digest = plugin_info(&server).await["digest"].clone();

    let tutorial = bytes("tutorial_auth");
    let refused = async |what: &str, needle: &str| {
        eventually(&format!("{what} is reported"), async || {
            let info = plugin_info(&server).await;
            let error = info["last_reload_error"]["error"]
                .as_str()
                .unwrap_or_default();
            error.contains(needle).then_some(())
        })
        .await;
        assert_eq!(
            user2_reads(&client, &thread).await,
            404,
            "{what}: old policy"
        );
        assert_eq!(plugin_info(&server).await["digest"], live_digest, "{what}");
        assert!(server.log().contains("plugin reload refused"), "{what}");
    };
    project.deploy(&tutorial[..tutorial.len() / 2]);
    refused("a truncated component", "invalid component").await;
    project.deploy(b"#!/bin/sh\necho not a plugin\n");
    refused("garbage", "not a WebAssembly binary").await;

    // An editor's save: truncate, then write in place.
    std::fs::write(&project.live, &tutorial).unwrap();
    let info = eventually("the saved version is swapped in", async || {
        let info = plugin_info(&server).await;
        (info["swap_count"] == 1).then_some(info)
    })
    .await;
    assert_eq!(user2_reads(&client, &thread).await, 200, "{}", server.log());
    assert_eq!(info["last_reload_error"], Value::Null);
    assert_ne!(info["digest"], live_digest);
}

#[tokio::test]
async fn sighup_reloads_an_unwatched_plugin() {
    let project = Project::new("reference_auth");
    let server = project.serve(&["serve", "--no-watch"]);
    let client = server.client();
    let thread = user1_thread(&client).await;
    // Not watched: no watcher started, so only SIGHUP swaps a new file in.
    assert!(
        !server.log().contains("watching for new versions"),
        "{}",
        server.log()
    );
    project.deploy(&bytes("tutorial_auth"));
    assert_eq!(user2_reads(&client, &thread).await, 404);

    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The count is recorded just after the new version goes live.
    swapped(&server, "auth", 1).await;
    assert_eq!(user2_reads(&client, &thread).await, 200, "{}", server.log());
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

#[tokio::test]
async fn dev_rebuilds_a_plugin_crate_when_its_sources_change() {
    let dir = tempfile::tempdir().unwrap();
    let krate = plugin_crate(dir.path());
    let config = dir.path().join("langgraph.json");
    std::fs::write(
        &config,
        r#"{"graphs": {}, "auth": {"path": "./auth", "timeout_ms": 30000}}"#,
    )
    .unwrap();
    let target = root().join("target");
    let server = ServerProcess::start_with(
        &["dev"],
        &config,
        &dir.path().join("data"),
        &[("CARGO_TARGET_DIR", &target)],
    )
    .expect("starts");
    let search = async |token: &str| {
        let reply = server
            .user(token)
            .post("/threads/search", json!({}))
            .try_send()
            .await;
        match reply {
            Ok(reply) => reply.status.as_u16(),
            Err(e) => panic!("{e}:\n{}", server.log()),
        }
    };
    assert_eq!(search("user1-token").await, 200, "{}", server.log());

    let source = krate.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("user1-token", "user1-rotated")).unwrap();
    // Rebuilt, then swapped in: the poll ends on the swap (or a refusal).
    swapped(&server, "auth", 1).await;
    assert_eq!(search("user1-rotated").await, 200, "{}", server.log());
    assert_eq!(search("user1-token").await, 401);
    assert!(
        server.log().contains("Compiling devloop-auth"),
        "build output shown"
    );

    std::fs::write(&source, "this is not Rust").unwrap();
    eventually("the build error is reported", async || {
        let info = plugin_info(&server).await;
        let error = info["last_reload_error"]["error"]
            .as_str()
            .unwrap_or_default();
        error.contains("building the plugin failed").then_some(())
    })
    .await;
    assert_eq!(
        search("user1-rotated").await,
        200,
        "the old version keeps serving"
    );
    assert_eq!(plugin_info(&server).await["swap_count"], 1);
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

/// The echo graph's answer to `hi` (a stateless run of `g`).
async fn echo(client: &Client, text: &str) -> Value {
    let body = json!({"assistant_id": "g",
                      "input": {"messages": [{"role": "user", "content": text}]}});
    let reply = client.post("/runs/wait", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["messages"][1]["content"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_is_swapped_while_serving_and_a_run_in_flight_stays_on_the_old_one() {
    let (dir, live) = graph_project("hostile_graph");
    let data = dir.path().join("data");
    let server = ServerProcess::start(&dir.path().join("langgraph.json"), &data).expect("starts");
    let client = server.client();
    // A run of the old version that sleeps far longer than the test:
    // only the test ends it.
    let busy = client.create_thread(json!({})).await.thread_id;
    let run = client
        .create_run(
            &busy,
            json!({"assistant_id": "g", "input": {"mode": "sleep", "n": 3600}}),
        )
        .await;
    client.until_run_is(&busy, &run.run_id, "running").await;

    // The echo graph is renamed over the file.
    let aside = dir.path().join(".graph.wasm.new");
    std::fs::write(&aside, bytes("reference_agent")).unwrap();
    std::fs::rename(&aside, &live).unwrap();
    swapped(&server, "graph", 1).await;

    // New runs use the new version...
    assert_eq!(echo(&client, "hi").await, "hi");
    // ...while the one in flight still runs on the old one (the echo graph
    // would have ended at once), until it is ended.
    let seen = client.run(&busy, &run.run_id).await;
    assert_eq!(seen.status, "running", "{seen:?}");
    client.cancel(&busy, &run.run_id).await;
    assert_eq!(client.run(&busy, &run.run_id).await.status, "interrupted");

    // A broken version is refused; the live one keeps serving.
    std::fs::write(&aside, b"\0asm garbage").unwrap();
    std::fs::rename(&aside, &live).unwrap();
    let status = eventually("the broken version is refused", async || {
        let status = info_of(&server, "graph").await;
        (!status["last_reload_error"].is_null()).then_some(status)
    })
    .await;
    assert_eq!(status["swap_count"], 1, "{status}");
    assert_eq!(status["contract"], "warden:graph@0.2.0", "{status}");
    assert_eq!(echo(&client, "still").await, "still");
}

#[tokio::test]
async fn dev_rebuilds_a_graph_crate_when_its_sources_change() {
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
    let client = server.client();
    let echo = async || {
        let body = json!({"assistant_id": "agent",
                          "input": {"messages": [{"role": "user", "content": "hi"}]}});
        match client.post("/runs/wait", body).try_send().await {
            Ok(reply) => reply.json["messages"][1]["content"].clone(),
            Err(e) => panic!("{e}:\n{}", server.log()),
        }
    };
    assert_eq!(echo().await, "hi", "{}", server.log());

    let text = std::fs::read_to_string(&source).unwrap();
    let shouting = text.replace("messages::ai(text)", "messages::ai(text.to_uppercase())");
    assert_ne!(shouting, text, "the example's echo line moved");
    std::fs::write(&source, shouting).unwrap();
    // Rebuilt, then swapped in: the poll ends on the swap (or a refusal).
    swapped(&server, "graph", 1).await;
    assert_eq!(echo().await, "HI", "{}", server.log());
    assert!(
        server.log().contains("Compiling devloop-agent"),
        "build output shown"
    );
}
