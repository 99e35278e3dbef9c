//! `warden new` as a plugin author uses it: the crate it creates passes
//! its own tests natively, builds for wasm32-wasip2 on its own, and is
//! called and served by `warden` as created.
//!
//! The crates are created inside this repository (under `target/`), where
//! only their own empty `[workspace]` keeps cargo from taking them for
//! members of Warden's workspace, and built in one target directory,
//! `target/scaffold-test`, shared by these tests and by later runs, so
//! the SDK and its dependencies compile once (each test's crate is new).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ServerProcess, root};

/// The target directory of the created crates' builds.
fn target_dir() -> PathBuf {
    root().join("target/scaffold-test")
}

/// A fresh directory inside the repository, removed on drop.
fn workspace() -> tempfile::TempDir {
    let parent = target_dir().join("projects");
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::Builder::new()
        .prefix("new-")
        .tempdir_in(parent)
        .unwrap()
}

/// Runs `warden <args>` in `cwd`.
fn warden(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(cwd)
        // The artefact key goes under target/, not the user's home.
        .env("XDG_STATE_HOME", root().join("target/warden-test-state"))
        // `warden call <crate dir>` builds it: in the shared directory.
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("warden runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `warden new <args>`, expected to succeed: what it printed.
fn new(cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    let out = warden(cwd, &all);
    assert!(
        out.status.success(),
        "warden {all:?} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `warden call <plugin> <args>` in `cwd`: its exit code and JSON output.
fn call(cwd: &Path, plugin: &Path, args: &[&str]) -> (i32, Value) {
    let data = cwd.join(".warden-test-data");
    let mut all = vec!["call", plugin.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
    let out = warden(cwd, &all);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "warden {all:?} printed no JSON:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// Runs cargo in the created crate, expecting success: what it printed
/// on standard output.
fn cargo(dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}\n{}",
        dir.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The SDK directory of this tree, as `warden new` writes it.
fn sdk(sub: &str) -> String {
    let sdk = root().join("guest-sdk").join(sub).canonicalize().unwrap();
    sdk.to_str().unwrap().trim_end_matches('/').to_owned()
}

#[test]
fn a_new_plugin_passes_its_tests_builds_and_answers_warden_call() {
    let work = workspace();
    let dir = work.path().join("my-plugin");
    // The defaults: the name is the directory's, the SDK this tree's.
    let printed = new(work.path(), &["my-plugin"]);
    assert!(
        printed.contains("Created the auth plugin `my-plugin`"),
        "{printed}"
    );
    for next in [
        "cd my-plugin",
        "cargo test",
        "warden dev --config langgraph.json",
        "warden call . authenticate -H 'Authorization: Bearer alice-token'",
    ] {
        assert!(printed.contains(next), "{next:?} not in:\n{printed}");
    }
    let manifest = read(&dir.join("Cargo.toml"));
    assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
    let dependency = format!("warden-sdk = {{ path = \"{}\" }}", sdk(""));
    assert!(manifest.contains(&dependency), "{manifest}");
    assert!(manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"));
    assert!(read(&dir.join("Cargo.lock")).contains("name = \"warden-sdk\""));
    assert!(read(&dir.join(".gitignore")).contains("/target/"));
    assert!(read(&dir.join("README.md")).contains("warden call ."));
    let config: Value = serde_json::from_str(&read(&dir.join("langgraph.json"))).unwrap();
    assert_eq!(config["auth"]["path"], ".");

    let tests = cargo(&dir, &["test"]);
    assert!(
        tests.contains("creating_a_thread_stamps_the_owner_over_a_spoof ... ok"),
        "{tests}"
    );
    assert!(tests.contains("test result: ok. 5 passed"), "{tests}");

    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target_dir().join("wasm32-wasip2/release/my_plugin.wasm");
    assert!(wasm.is_file(), "{} was not built", wasm.display());

    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    let (code, user) = call(
        work.path(),
        &wasm,
        &["authenticate", "-H", &bearer("alice-token")],
    );
    assert_eq!(code, 0, "{user}");
    assert_eq!(user["identity"], "alice");
    assert_eq!(user["is_authenticated"], true);
    let (code, error) = call(work.path(), &wasm, &["authenticate", "-H", &bearer("nope")]);
    assert_eq!(
        (code, error),
        (1, json!({"status": 401, "detail": "Invalid token"}))
    );
    let (code, error) = call(work.path(), &wasm, &["authenticate"]);
    assert_eq!(
        (code, error),
        (1, json!({"status": 401, "detail": "Missing bearer token"}))
    );

    // As the README says: `warden call .` in the crate builds it first.
    let (code, out) = call(
        &dir,
        Path::new("."),
        &[
            "authorize",
            "--resource",
            "threads",
            "--action",
            "create",
            "--user",
            r#"{"identity": "alice"}"#,
            "--value",
            r#"{"metadata": {"owner": "bob"}}"#,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["handler"], "*");
    assert_eq!(out["decision"], "filter");
    assert_eq!(out["filter"], json!({"owner": "alice"}));
    assert_eq!(out["value"]["metadata"]["owner"], "alice", "stamped");
    let (code, out) = call(
        &dir,
        Path::new("."),
        &[
            "authorize",
            "--resource",
            "store",
            "--action",
            "put",
            "--user",
            r#"{"identity": "alice"}"#,
            "--value",
            r#"{"namespace": ["bob"], "key": "k", "value": {}}"#,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["status"], 403);
}

#[tokio::test]
async fn a_new_graph_passes_its_tests_and_is_served_by_its_langgraph_json() {
    let work = workspace();
    let dir = work.path().join("graph");
    let sdk_tree = root().join("guest-sdk");
    let printed = new(
        work.path(),
        &[
            "graph",
            "--graph",
            "--name",
            "echo-graph",
            "--sdk",
            sdk_tree.to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("Created the graph `echo-graph`"),
        "{printed}"
    );
    let manifest = read(&dir.join("Cargo.toml"));
    let dependency = format!("warden-graph = {{ path = \"{}\" }}", sdk("graph"));
    assert!(manifest.contains(&dependency), "{manifest}");
    let config: Value = serde_json::from_str(&read(&dir.join("langgraph.json"))).unwrap();
    assert_eq!(config["graphs"], json!({"echo-graph": "."}));

    let tests = cargo(&dir, &["test"]);
    assert!(tests.contains("test result: ok. 3 passed"), "{tests}");
    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target_dir().join("wasm32-wasip2/release/echo_graph.wasm");
    assert!(wasm.is_file(), "{} was not built", wasm.display());

    // Served as created: the langgraph.json names the crate directory, which
    // `serve` builds (up to date here: the same target directory).
    let target = target_dir();
    let server = ServerProcess::start_with(
        &["serve"],
        &dir.join("langgraph.json"),
        &work.path().join("data"),
        &[("CARGO_TARGET_DIR", target.as_path())],
    )
    .unwrap_or_else(|log| panic!("warden serve refused the new graph:\n{log}"));
    let client = server.client();
    let input = json!({"messages": [{"role": "user", "content": "hi"}]});
    let reply = client
        .post(
            "/runs/wait",
            json!({"assistant_id": "echo-graph", "input": input}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let messages = reply.json["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{}", reply.text);
    assert_eq!(messages[0]["content"], "hi");
    assert_eq!(messages[1]["type"], "ai");
    assert_eq!(messages[1]["content"], "You said: hi");
}

/// Every file under `dir` and its contents.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
                files.push((path, "<dir>".to_owned()));
            } else {
                let contents = read(&path);
                files.push((path, contents));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn new_refuses_a_directory_that_is_not_empty_and_leaves_it_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("mine");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "// my own work\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    let before = snapshot(&dir);

    for graph in [false, true] {
        let mut args = vec!["new", "mine"];
        if graph {
            args.push("--graph");
        }
        let out = warden(work.path(), &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("mine exists and is not empty"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert_eq!(snapshot(&dir), before, "{args:?} changed the directory");
    }
}

#[test]
fn new_names_what_is_wrong_with_a_crate_name_or_an_sdk_and_creates_nothing() {
    let work = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["new", "My Plugin"],
            "the directory name \"My Plugin\" is not a valid crate name",
        ),
        (&["new", "p", "--name", "fn"], "it is a Rust keyword"),
        (
            &["new", "p", "--sdk", "/nowhere/guest-sdk"],
            "--sdk /nowhere/guest-sdk: cannot be read",
        ),
        (
            &["new", "p", "--graph", "--sdk", "."],
            "is not the manifest of warden-graph",
        ),
    ];
    for (args, message) in cases {
        let out = warden(work.path(), args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}
