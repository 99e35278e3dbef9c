//! `examples/oidc` against a real identity provider on 127.0.0.1 (`idp`):
//! tokens verified through the host's crypto import, the issuer's keys
//! fetched over `wasi:http` and kept in the plugin cache, key rotation, a
//! hanging issuer, and the allowlist.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use warden::plugin::AuthPlugin;
use warden::types::Request;
use warden_sdk::jwt::testing::{SigningKey, unsigned};
use warden_sdk::jwt::{Algorithm, Curve};

use crate::idp::Idp;
use crate::support::{TestServer, plugin_from_config};

fn rsa(der: &[u8], kid: &str) -> SigningKey {
    SigningKey::rsa_pkcs8(der).with_kid(kid)
}

fn rsa_a() -> SigningKey {
    rsa(include_bytes!("../../../tests/keys/rsa-a.pk8.der"), "rsa-a")
}

fn rsa_b() -> SigningKey {
    rsa(include_bytes!("../../../tests/keys/rsa-b.pk8.der"), "rsa-b")
}

/// The OIDC example trusting `idp`, with `extra` merged into its `auth`
/// section.
fn oidc(idp: &Idp, extra: Value) -> Arc<AuthPlugin> {
    let mut auth = json!({
        "timeout_ms": 1000,
        "config": {"issuer": idp.issuer(), "audience": "warden", "jwks_refresh_seconds": 0},
        "allowed_hosts": [format!("http://127.0.0.1:{}", idp.addr.port())],
    });
    for (k, v) in extra.as_object().unwrap() {
        auth[k] = v.clone();
    }
    plugin_from_config("oidc_auth", auth).expect("the oidc example loads")
}

async fn search(app: &TestServer, token: &str) -> crate::support::Reply {
    app.user(token)
        .send("POST", "/threads/search", json!({}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_rs256_and_es256_tokens_are_accepted() {
    let (rsa, ec) = (rsa_a(), SigningKey::generate_ec(Curve::P256).with_kid("ec"));
    let idp = Idp::start(&[&rsa, &ec]);
    let app = TestServer::new(Some(oidc(&idp, json!({}))));
    for token in [
        idp.token(&rsa, Algorithm::Rs256, "alice", json!({})),
        idp.token(&ec, Algorithm::Es256, "alice", json!({})),
    ] {
        let reply = search(&app, &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    // The owner is stamped from the token's subject; roles give permissions.
    let token = idp.token(&rsa, Algorithm::Rs256, "alice", json!({}));
    let created = app
        .user(&token)
        .send("POST", "/threads", json!({"metadata": {"owner": "x"}}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json["metadata"]["owner"], "alice");
    let reader = idp.token(&rsa, Algorithm::Rs256, "rita", json!({"roles": ["reader"]}));
    let refused = app.user(&reader).send("POST", "/threads", json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "the issuer's keys are fetched once, then cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_with_the_reason() {
    let (a, b) = (rsa_a(), rsa_b());
    let idp = Idp::start(&[&a]);
    let app = TestServer::new(Some(oidc(&idp, json!({}))));
    let now = crate::idp::now();
    let token = |changes: Value| idp.token(&a, Algorithm::Rs256, "alice", changes);
    let tampered = {
        let good = token(json!({}));
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let forged = a.sign(Algorithm::Rs256, &idp.claims("mallory", json!({})));
        parts[1] = forged.split('.').nth(1).unwrap().to_owned();
        parts.join(".")
    };
    // HS256 "signed" with the RSA key's public modulus as the secret.
    let confused = SigningKey::hmac(a.jwk()["n"].as_str().unwrap())
        .with_kid("rsa-a")
        .sign(Algorithm::Hs256, &idp.claims("alice", json!({})));
    let cases = [
        (token(json!({"exp": now - 120})), "Token expired"),
        (token(json!({"nbf": now + 600})), "Token not yet valid"),
        (
            token(json!({"aud": "someone-else"})),
            "Invalid token audience",
        ),
        (
            token(json!({"iss": "http://evil.example"})),
            "Invalid token issuer",
        ),
        (tampered, "Invalid token signature"),
        (
            idp.token(&b, Algorithm::Rs256, "alice", json!({})),
            "Unknown signing key \"rsa-b\"",
        ),
        (
            unsigned(&idp.claims("alice", json!({}))),
            "Unsupported token algorithm \"none\"",
        ),
        (confused, "Token algorithm HS256 is not accepted"),
        ("not.a.token".to_owned(), "Malformed token"),
    ];
    for (token, detail) in cases {
        let reply = search(&app, &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{detail}: {}",
            reply.text
        );
        let got = reply.json["detail"].as_str().unwrap_or_default();
        assert!(got.starts_with(detail), "expected {detail:?}, got {got:?}");
    }
    let missing = search(&app, "").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json["detail"], "Missing Authorization header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_needs_no_restart() {
    let (a, b) = (rsa_a(), rsa_b());
    let idp = Idp::start(&[&a]);
    let app = TestServer::new(Some(oidc(&idp, json!({}))));
    let old = idp.token(&a, Algorithm::Rs256, "alice", json!({}));
    assert_eq!(search(&app, &old).await.status, StatusCode::OK);
    assert_eq!(search(&app, &old).await.status, StatusCode::OK);
    assert_eq!(idp.jwks_fetches(), 1);

    idp.publish(&[&b]);
    let new = idp.token(&b, Algorithm::Rs256, "alice", json!({}));
    let reply = search(&app, &new).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(idp.jwks_fetches(), 2, "an unknown kid refetched the keys");
    // The retired key is gone with the refreshed set.
    assert_eq!(search(&app, &old).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_at_most_once_per_refresh_interval() {
    let (a, b) = (rsa_a(), rsa_b());
    let idp = Idp::start(&[&a]);
    let app = TestServer::new(Some(oidc(
        &idp,
        json!({"config": {"issuer": idp.issuer(), "jwks_refresh_seconds": 300}}),
    )));
    let good = idp.token(&a, Algorithm::Rs256, "alice", json!({}));
    let stranger = idp.token(&b, Algorithm::Rs256, "alice", json!({}));
    assert_eq!(search(&app, &good).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            search(&app, &stranger).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "random kids cannot make the plugin hammer the issuer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_issuer_fails_closed_on_the_deadline() {
    let a = rsa_a();
    let idp = Idp::start(&[&a]);
    idp.hang();
    let app = TestServer::new(Some(oidc(&idp, json!({"timeout_ms": 300}))));
    let token = idp.token(&a, Algorithm::Rs256, "alice", json!({}));
    let reply = search(&app, &token).await;
    // The fetch gives up within what is left of the call's deadline: the
    // plugin answers that the keys are unavailable, or, if the deadline
    // ends first, the call is a timeout fault. Either way, refused.
    let refusal = (reply.status, reply.detail());
    assert!(
        refusal
            == (
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot verify the token: the issuer's keys are unavailable"
            )
            || refusal
                == (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Authentication failed: auth plugin timeout"
                ),
        "{} {}",
        reply.status,
        reply.text
    );
    // The server keeps serving.
    let reply = search(&app, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_off_the_allowlist_is_an_error_and_the_request_is_refused() {
    let a = rsa_a();
    let idp = Idp::start(&[&a]);
    let token = idp.token(&a, Algorithm::Rs256, "alice", json!({}));
    for allowed in [
        json!([]),
        json!(["http://127.0.0.1:1", "https://127.0.0.1:*"]),
    ] {
        let app = TestServer::new(Some(oidc(&idp, json!({"allowed_hosts": allowed}))));
        let reply = search(&app, &token).await;
        // The plugin saw an error (503 is its answer), not a trap (500).
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text
        );
        assert_eq!(idp.jwks_fetches(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_cache_hits_skip_the_plugin_and_a_new_plugin_starts_empty() {
    let a = rsa_a();
    let idp = Idp::start(&[&a]);
    let cache = json!({"cache": {"cache_keys": ["authorization"], "ttl_seconds": 60}});
    let plugin = oidc(&idp, cache.clone());
    let token = idp.token(&a, Algorithm::Rs256, "alice", json!({}));
    let request = Request::new("POST", "/threads/search")
        .with_header("authorization", format!("Bearer {token}"));

    // Plugin calls run off the async workers, as the server runs them.
    let calls = {
        let plugin = plugin.clone();
        move || {
            let first = plugin.authenticate(&request).unwrap();
            assert_eq!(first.result.unwrap().identity, "alice");
            assert!(
                first.session.is_some(),
                "a miss runs authenticate in an instance"
            );
            let hit = plugin.authenticate(&request).unwrap();
            assert_eq!(hit.result.unwrap().identity, "alice");
            assert!(hit.session.is_none(), "a hit creates no instance");

            // Errors are never cached.
            let bad = Request::new("GET", "/").with_header("authorization", "Bearer nope");
            for _ in 0..2 {
                let refused = plugin.authenticate(&bad).unwrap();
                assert_eq!(refused.result.unwrap_err().status, 401);
                assert!(refused.session.is_some());
            }
            request
        }
    };
    let request = tokio::task::spawn_blocking(calls).await.unwrap();

    // A hit still authorizes: handlers get an instance when they need one.
    let app = TestServer::new(Some(plugin));
    let created = app.user(&token).send("POST", "/threads", json!({})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json["metadata"]["owner"], "alice");

    // A new plugin (as a reload makes) starts with empty caches.
    let reloaded = oidc(&idp, cache);
    let fresh = tokio::task::spawn_blocking(move || reloaded.authenticate(&request).unwrap());
    assert!(fresh.await.unwrap().session.is_some());
    assert_eq!(idp.jwks_fetches(), 2, "its plugin cache started empty too");
}
