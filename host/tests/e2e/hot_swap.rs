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
        assert!(
            eventually(Duration::from_secs(20), || user2_reads(&setup, &thread)
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
    assert_eq!(plugin_info(&server)["swap_count"], 1);
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
