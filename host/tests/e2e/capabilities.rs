//! What a plugin can be granted, through `tests/fixtures/capabilities`:
//! `auth.config` values, and outbound HTTP limited to `allowed_hosts`,
//! under a timeout and a response-size cap. (Secrets come from the
//! environment: `cli` tests them on a real `warden serve`.)

use serde_json::json;
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
    assert_eq!(user.extra["greeting"], serde_json::Value::Null);
}

/// Runs `authenticate` on `request`: the user's fields, or the error detail.
fn outcome(
    plugin: &std::sync::Arc<warden::plugin::AuthPlugin>,
    request: &Request,
) -> Result<serde_json::Value, String> {
    let result = plugin.authenticate(request).expect("no fault").result;
    result
        .map(|user| serde_json::Value::Object(user.extra))
        .map_err(|e| e.detail.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_hosts_are_reachable() {
    let idp = Idp::start(&[]);
    let port = idp.addr.port();
    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer());
    let allowed = |hosts: serde_json::Value| {
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
                Err("the host is not in auth.allowed_hosts".into()),
                "{hosts}"
            );
        }
    }
}

/// A plugin that checks opaque tokens with the issuer (RFC 7662 token
/// introspection) needs a POST, a form body and HTTP Basic credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_introspects_an_opaque_token_with_a_post_and_basic_credentials() {
    let idp = Idp::start(&[]);
    idp.issue_opaque("opaque+token/1=", "alice");
    let introspect = |token: &str, secret: &str| {
        let plugin = plugin_from_config(
            "fixture_capabilities",
            json!({"allowed_hosts": ["http://127.0.0.1:*"],
                   "config": {"client_id": crate::idp::CLIENT_ID, "client_secret": secret}}),
        )
        .unwrap();
        let request = Request::new("GET", "/introspect")
            .with_query("url", format!("{}/introspect", idp.issuer()))
            .with_header("authorization", format!("Bearer {token}"));
        tokio::task::spawn_blocking(move || {
            let result = plugin.authenticate(&request).expect("no fault").result;
            result
                .map(|user| (user.identity, user.extra))
                .map_err(|e| (e.status, e.detail.unwrap_or_default()))
        })
    };
    let (identity, extra) = introspect("opaque+token/1=", crate::idp::CLIENT_SECRET)
        .await
        .unwrap()
        .expect("an active token authenticates");
    assert_eq!(identity, "alice");
    assert_eq!(extra["content_type"], "application/json");
    // An unknown token: the issuer says inactive.
    let (status, detail) = introspect("opaque+token/2=", crate::idp::CLIENT_SECRET)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (status, detail.as_str()),
        (401, r#"introspection answered 200: {"active":false}"#)
    );
    // Wrong client credentials: the issuer refuses the client.
    let (status, detail) = introspect("opaque+token/1=", "wrong")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status, 401);
    assert!(detail.starts_with("introspection answered 401"), "{detail}");
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
