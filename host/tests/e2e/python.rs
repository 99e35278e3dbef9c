//! Auth plugins written in Python (`guest-sdk/python`, built with
//! componentize-py by `warden build`): the reference policy in Python
//! decides exactly as the Rust one, and the hostile Python fixture fails
//! closed like the Rust one, and a Python policy reaches its identity
//! provider over HTTP within `allowed_hosts`. `tests/run` builds the
//! components first (`tests/python-plugins.sh`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warden::plugin::{AuthPlugin, Fault, Limits};
use warden::types::{AssistantAction, Event, Request, StoreAction, ThreadAction, User};

use crate::capabilities::{
    introspects_a_token_at_its_issuer, reaches_only_its_allowed_hosts,
    sees_a_hanging_issuer_time_out,
};
use crate::support::{bearer, component_from_config, plugin, root, runtime};

/// The component `warden build` made in `dir` (`file` under
/// `.warden-build/`), loaded; `script` is what builds it.
pub fn built_plugin(dir: &str, file: &str, script: &str, limits: Limits) -> Arc<AuthPlugin> {
    let path = root().join(dir).join(".warden-build").join(file);
    assert!(
        path.exists(),
        "{} is missing: build it first (tests/run does: {script})",
        path.display()
    );
    AuthPlugin::load(runtime(), dir, &path, limits).unwrap_or_else(|e| panic!("{dir} loads: {e}"))
}

fn python_plugin(dir: &str, limits: Limits) -> Arc<AuthPlugin> {
    built_plugin(dir, "auth.wasm", "tests/python-plugins.sh", limits)
}

/// Limits no loaded test machine reaches, for tests about answers.
pub fn unhurried() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        memory_bytes: 64 << 20,
    }
}

fn decide(plugin: &Arc<AuthPlugin>, token: &str, event: Event, value: &Value) -> String {
    let mut session = plugin.session().expect("instantiates");
    let user = match session.authenticate(&bearer(token)).expect("no fault") {
        Ok(user) => user,
        Err(error) => return format!("authenticate: {error:?}"),
    };
    format!("{user:?} {:?}", session.authorize(&user, event, value))
}

/// Asserts that `policy` decides every reference event, for every
/// reference token, and every bad credential, as the Rust reference does.
pub fn decides_as_the_rust_reference(policy: &Arc<AuthPlugin>) {
    let rust = plugin("reference_auth");
    let spoof = json!({"metadata": {"owner": "user2", "topic": "x"}});
    let events: Vec<(Event, Value)> = vec![
        (ThreadAction::Create.into(), spoof.clone()),
        (ThreadAction::Create.into(), json!({})),
        (ThreadAction::Read.into(), json!({"thread_id": "t"})),
        (ThreadAction::Update.into(), spoof.clone()),
        (
            ThreadAction::Search.into(),
            json!({"metadata": {}, "limit": 10}),
        ),
        (ThreadAction::CreateRun.into(), json!({"kwargs": {}})),
        (ThreadAction::Delete.into(), json!({"thread_id": "t"})),
        (AssistantAction::Create.into(), json!({"graph_id": "agent"})),
        (AssistantAction::Search.into(), json!({})),
        (AssistantAction::Delete.into(), json!({"assistant_id": "a"})),
        (
            StoreAction::Put.into(),
            json!({"namespace": ["user1", "notes"], "key": "k"}),
        ),
        (
            StoreAction::Get.into(),
            json!({"namespace": ["user2"], "key": "k"}),
        ),
        (StoreAction::ListNamespaces.into(), json!({"namespace": []})),
    ];
    let tokens = [
        "user1-token",
        "user2-token",
        "admin-token",
        "reader-token",
        "nobody",
    ];
    for token in tokens {
        for (event, value) in &events {
            assert_eq!(
                decide(policy, token, *event, value),
                decide(&rust, token, *event, value),
                "{token} {event:?} {value}"
            );
        }
    }
    // Bad credentials, with the reference's details.
    for header in ["", "Basic user1-token", "Bearer  ", "Bearer nope"] {
        let request = Request::new("GET", "/threads").with_header("authorization", header);
        let answer =
            |p: &Arc<AuthPlugin>| format!("{:?}", p.session().unwrap().authenticate(&request));
        assert_eq!(answer(policy), answer(&rust), "{header:?}");
    }
}

#[test]
fn the_python_reference_policy_decides_as_the_rust_one() {
    decides_as_the_rust_reference(&python_plugin("examples/python", unhurried()));
}

#[test]
fn every_request_starts_from_a_fresh_interpreter() {
    let hostile = python_plugin("tests/fixtures/hostile-python", unhurried());
    for _ in 0..3 {
        let user = hostile
            .session()
            .unwrap()
            .authenticate(&Request::new("GET", "/count"))
            .unwrap()
            .unwrap();
        assert_eq!(
            user.extra["count"], 1,
            "a global survived a request: {user:?}"
        );
    }
}

fn hostile(path: &str, limits: Limits) -> Result<User, Fault> {
    let hostile = python_plugin("tests/fixtures/hostile-python", limits);
    let result = hostile
        .session()
        .expect("instantiates")
        .authenticate(&Request::new("GET", path))
        .map(|r| r.expect("no http error"));
    // The plugin still serves a good call in a fresh session.
    let fine = hostile
        .session()
        .unwrap()
        .authenticate(&Request::new("GET", "/"))
        .unwrap();
    assert_eq!(fine.unwrap().identity, "guest");
    result
}

fn deadline(ms: u64) -> Limits {
    Limits {
        timeout: Duration::from_millis(ms),
        memory_bytes: 64 << 20,
    }
}

#[test]
fn a_python_loop_trips_the_deadline() {
    assert_eq!(
        hostile("/spin/1000", unhurried()).unwrap().identity,
        "guest"
    );
    let fault = hostile("/spin/forever", deadline(200)).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(200)), "{fault:?}");
}

#[test]
fn a_python_sleep_past_the_deadline_is_a_timeout() {
    let fault = hostile("/sleep/60000", deadline(200)).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(200)), "{fault:?}");
}

#[test]
fn python_allocation_past_the_cap_is_a_memory_fault() {
    assert_eq!(hostile("/alloc/4", unhurried()).unwrap().identity, "guest");
    let fault = hostile("/alloc/256", unhurried()).unwrap_err();
    assert!(matches!(fault, Fault::Memory(64)), "{fault:?}");
}

#[test]
fn a_python_exception_fails_closed() {
    let fault = hostile("/raise", unhurried()).unwrap_err();
    assert!(matches!(fault, Fault::Trap(_)), "{fault:?}");

    let plugin = python_plugin("tests/fixtures/hostile-python", unhurried());
    let guest = User::new("guest");
    // A handler that raises, and one that returns an operator Warden does
    // not implement (`$ne`): faults, never an allow.
    for event in [
        Event::from(StoreAction::Put),
        Event::from(warden::types::CronAction::Read),
    ] {
        let mut session = plugin.session().unwrap();
        let fault = session
            .authorize(&guest, event, &json!({"namespace": ["guest"]}))
            .unwrap_err();
        assert!(matches!(fault, Fault::Trap(_)), "{event:?}: {fault:?}");
    }
    // An async handler that returns at once allows.
    let mut session = plugin.session().unwrap();
    let verdict = session
        .authorize(&guest, ThreadAction::Read, &json!({}))
        .unwrap()
        .unwrap();
    assert_eq!(format!("{:?}", verdict.outcome), "Allow");
}

/// The component `warden build` made in `dir` (`file` under
/// `.warden-build/`), loaded with the settings of an `auth` section (JSON,
/// without `path`); `script` is what builds it.
pub fn built_from_config(dir: &str, file: &str, script: &str, auth: Value) -> Arc<AuthPlugin> {
    let path = root().join(dir).join(".warden-build").join(file);
    assert!(
        path.exists(),
        "{} is missing: build it first (tests/run does: {script})",
        path.display()
    );
    component_from_config(dir, &path, auth).unwrap_or_else(|e| panic!("{dir} loads: {e}"))
}

fn python_capabilities(auth: Value) -> Arc<AuthPlugin> {
    built_from_config(
        "tests/fixtures/capabilities-python",
        "auth.wasm",
        "tests/python-plugins.sh",
        auth,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_policy_introspects_a_token_at_its_issuer() {
    introspects_a_token_at_its_issuer(python_capabilities).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_policy_reaches_only_its_allowed_hosts() {
    reaches_only_its_allowed_hosts(python_capabilities, "the host is not in auth.allowed_hosts")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_policy_sees_a_hanging_issuer_time_out() {
    sees_a_hanging_issuer_time_out(python_capabilities, "timed out").await;
}
