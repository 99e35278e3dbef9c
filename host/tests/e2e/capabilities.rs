//! What a plugin can be granted, through `tests/fixtures/capabilities`:
//! `auth.config` values, and outbound HTTP limited to `allowed_hosts`,
//! under a timeout and a response-size cap. (Secrets come from the
//! environment: `cli` tests them on a real `warden serve`.) The outbound
//! HTTP checks at the end are shared with the Python and TypeScript
//! capabilities fixtures (`python`, `typescript`).

use std::sync::Arc;

use serde_json::{Value, json};
use warden::plugin::AuthPlugin;
use warden::types::Request;
use warden_sdk::jwt::testing::SigningKey;

use crate::idp::Idp;
use crate::support::plugin_from_config;

fn fetch(url: &str) -> Request {
    Request::new("GET", "/fetch").with_query("url", url)
}

#[test]
fn config_values_are_readable_and_undeclared_secrets_absent() {
    let plugin = plugin_from_config(
        "fixture_capabilities",
        json!({"config": {"greeting": "hello", "retries": 3}}),
    )
    .unwrap();
    let user = crate::support::login(&plugin, &Request::new("GET", "/config"));
    assert_eq!(user.extra["greeting"], "hello");
    assert_eq!(user.extra["nope"], false);
    let plugin = plugin_from_config("fixture_capabilities", json!({})).unwrap();
    let user = crate::support::login(&plugin, &Request::new("GET", "/config"));
    assert_eq!(user.extra["greeting"], Value::Null);
}

/// Runs `authenticate` on `request`: the user's fields, or the error detail.
fn outcome(
    plugin: &std::sync::Arc<warden::plugin::AuthPlugin>,
    request: &Request,
) -> Result<Value, String> {
    let result = plugin.authenticate(request).expect("no fault").result;
    result
        .map(|user| Value::Object(user.extra))
        .map_err(|e| e.detail.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_hosts_are_reachable() {
    let idp = Idp::start(&[]);
    let port = idp.addr.port();
    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer());
    let allowed = |hosts: Value| {
        plugin_from_config("fixture_capabilities", json!({"allowed_hosts": hosts})).unwrap()
    };
    let cases = [
        (json!([format!("http://127.0.0.1:{port}")]), true),
        (json!(["http://127.0.0.1:*"]), true),
        (json!(["*://127.0.0.1:*"]), true),
        (json!([]), false),
        (json!(["https://127.0.0.1:*"]), false),
        (
            json!([format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1))]),
            false,
        ),
        (json!(["http://localhost:*"]), false),
    ];
    for (hosts, reachable) in cases {
        let plugin = allowed(hosts.clone());
        let outcome = tokio::task::spawn_blocking({
            let discovery = discovery.clone();
            move || outcome(&plugin, &fetch(&discovery))
        })
        .await
        .unwrap();
        if reachable {
            let fields = outcome.unwrap_or_else(|e| panic!("{hosts}: {e}"));
            assert_eq!(fields["status"], 200);
            assert!(fields["body"].as_str().unwrap().contains("jwks_uri"));
        } else {
            assert_eq!(
                outcome,
                Err("the host is not in allowed_hosts".into()),
                "{hosts}"
            );
        }
    }
}

/// The capabilities fixture with these `auth` settings.
fn rust_capabilities(auth: Value) -> Arc<AuthPlugin> {
    plugin_from_config("fixture_capabilities", auth).unwrap()
}

/// A plugin that checks opaque tokens with the issuer (RFC 7662 token
/// introspection) needs a POST, a form body and HTTP Basic credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_introspects_an_opaque_token_with_a_post_and_basic_credentials() {
    introspects_a_token_at_its_issuer(rust_capabilities).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_capped_and_timed_out_within_the_call_deadline() {
    let keys: Vec<SigningKey> = (0..8)
        .map(|i| SigningKey::generate_ed25519().with_kid(format!("key-{i}-{}", "x".repeat(100))))
        .collect();
    let idp = Idp::start(&keys.iter().collect::<Vec<_>>());
    let jwks = format!("{}/jwks", idp.issuer());
    let plugin = plugin_from_config(
        "fixture_capabilities",
        json!({"allowed_hosts": ["http://127.0.0.1:*"], "http_max_response_kib": 1, "timeout_ms": 400}),
    )
    .unwrap();
    let run = |request: Request| {
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || outcome(&plugin, &request))
    };
    assert_eq!(
        run(fetch(&jwks)).await.unwrap(),
        Err("the response is too large".into())
    );
    // A hanging host: the fetch ends with a timeout the guest sees.
    idp.hang();
    assert_eq!(run(fetch(&jwks)).await.unwrap(), Err("timed out".into()));
}

#[test]
fn a_swapped_in_version_keeps_the_plugins_grants() {
    let plugin = plugin_from_config(
        "fixture_capabilities",
        json!({"config": {"greeting": "hello"}, "allowed_hosts": ["http://127.0.0.1:*"]}),
    )
    .unwrap();
    let path = crate::support::component("fixture_capabilities");
    let bytes = std::fs::read(&path).unwrap();
    let swapped = plugin
        .with_component(crate::support::runtime(), &path, &bytes)
        .unwrap();
    assert_eq!(swapped.settings().allowed_hosts.len(), 1);
    let user = crate::support::login(&swapped, &Request::new("GET", "/config"));
    assert_eq!(user.extra["greeting"], "hello");
}

// What every capabilities fixture (Rust, Python, TypeScript) must do with
// outbound HTTP, one body for all three.

/// `authenticate` on `request`: the identity and fields, or the status and
/// detail.
fn identity_or_refusal(
    plugin: &Arc<AuthPlugin>,
    request: &Request,
) -> Result<(String, Value), (u16, String)> {
    let result = plugin.authenticate(request).expect("no fault").result;
    result
        .map(|user| (user.identity, Value::Object(user.extra)))
        .map_err(|e| (e.status, e.detail.unwrap_or_default()))
}

/// Asserts that the capabilities fixture `load` gives (with these `auth`
/// settings) checks an opaque token with its issuer (RFC 7662): a POST with
/// a form body and HTTP Basic credentials, through `wasi:http`.
pub(crate) async fn introspects_a_token_at_its_issuer(load: fn(Value) -> Arc<AuthPlugin>) {
    let idp = Idp::start(&[]);
    idp.issue_opaque("opaque+token/1=", "alice");
    let introspect = |token: &str, secret: &str| {
        let plugin = load(json!({
            "allowed_hosts": ["http://127.0.0.1:*"],
            "timeout_ms": 30_000,
            "config": {"client_id": crate::idp::CLIENT_ID, "client_secret": secret},
        }));
        let request = Request::new("GET", "/introspect")
            .with_query("url", format!("{}/introspect", idp.issuer()))
            .with_header("authorization", format!("Bearer {token}"));
        tokio::task::spawn_blocking(move || identity_or_refusal(&plugin, &request))
    };
    let (identity, fields) = introspect("opaque+token/1=", crate::idp::CLIENT_SECRET)
        .await
        .unwrap()
        .expect("an active token authenticates");
    assert_eq!(identity, "alice");
    assert_eq!(fields["content_type"], "application/json");
    assert_eq!(
        introspect("opaque+token/2=", crate::idp::CLIENT_SECRET)
            .await
            .unwrap(),
        Err((
            401,
            r#"introspection answered 200: {"active":false}"#.to_owned()
        ))
    );
    let (status, detail) = introspect("opaque+token/1=", "wrong")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status, 401);
    assert!(detail.starts_with("introspection answered 401"), "{detail}");
}

/// Asserts that a hanging issuer is an error the capabilities fixture
/// `load` gives sees once its `http_timeout_ms` passes (a 502 whose detail
/// contains `timed_out`), well within the call's deadline.
pub(crate) async fn sees_a_hanging_issuer_time_out(
    load: fn(Value) -> Arc<AuthPlugin>,
    timed_out: &str,
) {
    let idp = Idp::start(&[]);
    idp.hang();
    let plugin = load(json!({
        "allowed_hosts": ["http://127.0.0.1:*"],
        "timeout_ms": 30_000,
        "http_timeout_ms": 200,
    }));
    let request = Request::new("GET", "/fetch").with_query("url", format!("{}/jwks", idp.issuer()));
    let (status, detail) =
        tokio::task::spawn_blocking(move || identity_or_refusal(&plugin, &request))
            .await
            .unwrap()
            .expect_err("a hanging issuer answers nothing");
    assert_eq!(status, 502, "{detail}");
    assert!(detail.contains(timed_out), "{detail}");
}

/// Asserts that the capabilities fixture `load` gives reaches only its
/// allowed hosts: a host off the list is an error the plugin sees (a 502
/// whose detail contains `denied`), and no list at all means no network.
pub(crate) async fn reaches_only_its_allowed_hosts(
    load: fn(Value) -> Arc<AuthPlugin>,
    denied: &str,
) {
    let idp = Idp::start(&[]);
    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer());
    for (hosts, reachable) in [
        (json!(["http://127.0.0.1:*"]), true),
        (json!(["http://localhost:*"]), false),
        (json!([]), false),
    ] {
        let plugin = load(json!({"allowed_hosts": hosts.clone(), "timeout_ms": 30_000}));
        let request = Request::new("GET", "/fetch").with_query("url", discovery.clone());
        let outcome = tokio::task::spawn_blocking(move || identity_or_refusal(&plugin, &request))
            .await
            .unwrap();
        if reachable {
            let (identity, fields) = outcome.unwrap_or_else(|e| panic!("{hosts}: {e:?}"));
            assert_eq!(
                (identity.as_str(), &fields["status"]),
                ("fetcher", &json!(200))
            );
            assert!(fields["body"].as_str().unwrap().contains("jwks_uri"));
        } else {
            let (status, detail) = outcome.expect_err("denied");
            assert_eq!(status, 502, "{hosts}: {detail}");
            assert!(detail.contains(denied), "{hosts}: {detail}");
        }
    }
}
