//! Hostile guests fail closed, in obeyed / violated pairs, and the same
//! runtime keeps serving good calls after each fault.

use std::time::{Duration, Instant};

use serde_json::json;
use warden::plugin::{Fault, Limits};
use warden::types::{Request, ThreadAction, User};

use crate::support::{login, plugin, plugin_with};

fn authenticate(path: &str, limits: Limits) -> Result<User, Fault> {
    let hostile = plugin_with("fixture_hostile", limits);
    let mut session = hostile.session().expect("instantiates");
    let result = session
        .authenticate(&Request::new("GET", path))
        .map(|r| r.expect("no http error"));
    // The plugin still serves a good call in a fresh session.
    assert_eq!(login(&hostile, &Request::new("GET", "/")).identity, "guest");
    result
}

#[test]
fn a_loop_within_the_deadline_completes() {
    assert_eq!(
        authenticate("/spin/5", Limits::default()).unwrap().identity,
        "guest"
    );
}

#[test]
fn an_endless_loop_trips_the_deadline() {
    let limits = Limits {
        timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let hostile = plugin_with("fixture_hostile", limits);
    let mut session = hostile.session().unwrap();
    let started = Instant::now();
    let fault = session
        .authenticate(&Request::new("GET", "/spin/forever"))
        .unwrap_err();
    let elapsed = started.elapsed();
    // A timeout fault naming the plugin's deadline, not a trap or a
    // memory fault; and never before the deadline (the clock decides).
    assert!(matches!(fault, Fault::Timeout(100)), "{fault:?}");
    assert_eq!(fault.kind(), "timeout");
    assert!(
        elapsed >= Duration::from_millis(100),
        "stopped early: {elapsed:?}"
    );
    // The faulted instance refuses further calls; a new one serves.
    assert!(session.authenticate(&Request::new("GET", "/")).is_err());
    assert_eq!(login(&hostile, &Request::new("GET", "/")).identity, "guest");
}

#[test]
fn the_deadline_is_configurable_per_plugin() {
    let short = Limits {
        timeout: Duration::from_millis(10),
        ..Limits::default()
    };
    let fault = authenticate("/spin/forever", short).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(10)), "{fault:?}");
}

#[test]
fn allocation_within_the_cap_succeeds() {
    assert!(authenticate("/alloc/8", Limits::default()).is_ok());
}

/// The default memory cap with a deadline wide enough that only the cap is
/// under test: touching tens of MiB takes tens of milliseconds, more on a
/// loaded CI machine.
fn roomy(memory_bytes: usize) -> Limits {
    Limits {
        memory_bytes,
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn allocation_past_the_cap_is_a_memory_fault() {
    let fault = authenticate("/alloc/64", roomy(32 << 20)).unwrap_err();
    assert!(matches!(fault, Fault::Memory(32)), "{fault:?}");
    if let Err(fault) = authenticate("/alloc/64", roomy(128 << 20)) {
        panic!("the cap is per plugin, yet a bigger cap faulted: {fault:?}");
    }
}

#[test]
fn a_panic_is_a_trap() {
    let fault = authenticate("/panic", Limits::default()).unwrap_err();
    assert!(matches!(fault, Fault::Trap(_)), "{fault:?}");
    assert_eq!(fault.kind(), "trap");
}

#[test]
fn handlers_fault_the_same_way() {
    let hostile = plugin("fixture_hostile");
    let guest = User::new("guest");
    let mut session = hostile.session().unwrap();
    assert!(
        session
            .authorize(&guest, ThreadAction::Read, &json!({"do": "/spin/1"}))
            .unwrap()
            .is_ok()
    );
    let fault = session
        .authorize(&guest, ThreadAction::Read, &json!({"do": "/spin/forever"}))
        .unwrap_err();
    assert!(matches!(fault, Fault::Timeout(_)), "{fault:?}");
    let mut session = hostile.session().unwrap();
    let fault = session
        .authorize(&guest, ThreadAction::Read, &json!({"do": "/panic"}))
        .unwrap_err();
    assert!(matches!(fault, Fault::Trap(_)), "{fault:?}");
}

#[test]
fn garbage_output_is_refused() {
    let raw = plugin("fixture_raw_garbage");
    assert_eq!(login(&raw, &Request::new("GET", "/")).identity, "raw");
    for path in ["/bad-json", "/not-object", "/bad-status"] {
        let fault = raw
            .session()
            .unwrap()
            .authenticate(&Request::new("GET", path))
            .unwrap_err();
        assert!(matches!(fault, Fault::BadOutput(_)), "{path}: {fault:?}");
    }
    let user = User::new("raw");
    let ok = raw
        .session()
        .unwrap()
        .authorize(&user, ThreadAction::Read, &json!({"do": "fine"}));
    assert!(ok.unwrap().is_ok());
    for what in ["one-branch", "bad-operand", "bad-value"] {
        let fault = raw
            .session()
            .unwrap()
            .authorize(&user, ThreadAction::Read, &json!({"do": what}))
            .unwrap_err();
        assert!(matches!(fault, Fault::BadOutput(_)), "{what}: {fault:?}");
    }
}

#[test]
fn every_request_gets_a_fresh_instance() {
    let hostile = plugin("fixture_hostile");
    for _ in 0..3 {
        let user = login(&hostile, &Request::new("GET", "/count"));
        assert_eq!(user.extra["count"], 1, "state leaked between sessions");
    }
    let mut session = hostile.session().unwrap();
    for expected in 1..=2 {
        let user = session
            .authenticate(&Request::new("GET", "/count"))
            .unwrap()
            .unwrap();
        assert_eq!(user.extra["count"], expected, "one session is one instance");
    }
}

#[test]
fn the_sandbox_grants_nothing_ambient() {
    let user = login(&plugin("fixture_hostile"), &Request::new("GET", "/escape"));
    assert_eq!(user.extra["env_vars"], 0);
    assert_eq!(user.extra["args"], 0);
    assert_eq!(user.extra["read_root"], false);
    assert_eq!(user.extra["read_etc_passwd"], false);
    assert_eq!(user.extra["write_tmp"], false);
    assert_eq!(user.extra["connect"], false);
    // The wall clock is granted (token expiry needs it).
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let guest_now = user.extra["clock_secs"].as_u64().unwrap();
    assert!(
        host_now.abs_diff(guest_now) <= 5,
        "{guest_now} vs {host_now}"
    );
    // No allowed hosts: outbound HTTP is an error the guest sees, not a trap.
    assert_eq!(user.extra["http"], "the host is not in allowed_hosts");
}
