//! Per-request cost of RS256 (and ES256) authentication with
//! `examples/oidc` against a local identity provider (`tests/e2e/idp.rs`):
//!
//! - `cached`: an `auth.cache` hit (no instance is created);
//! - `jwks-cached`: a fresh instance verifies the token; the issuer's keys
//!   come from the plugin cache (no fetch), the signature from the host's
//!   crypto import;
//! - `cold`: the same with nothing cached (`jwks_ttl_seconds: 0`): discovery
//!   and JWKS are fetched over loopback HTTP on every call;
//! - `native-verify`: the host's RS256 check alone (`ring`), for reference.
//!
//! `cargo bench -p warden --bench oidc_auth` (needs the guests built:
//! `cargo build --release --target wasm32-wasip2 -p oidc-auth`).
//! `WARDEN_BENCH_ITERS` changes the sample size.

#[path = "../tests/e2e/idp.rs"]
#[allow(dead_code)]
mod idp;

#[path = "../tests/e2e/support/background.rs"]
mod background;

/// What `idp` takes from the tests' `support`.
mod support {
    pub use super::background::Background;
}

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use warden::plugin::{
    AuthCacheSettings, AuthPlugin, HostPattern, Limits, PluginSettings, Runtime, RuntimeOptions,
};
use warden::types::Request;
use warden_sdk::jwt::testing::SigningKey;
use warden_sdk::jwt::{self, Algorithm, Curve};

fn component() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("wasm32-wasip2/release/oidc_auth.wasm")
}

fn settings(idp: &idp::Idp, jwks_ttl: u64, cache: bool) -> PluginSettings {
    PluginSettings {
        limits: Limits {
            timeout: Duration::from_secs(2),
            ..Limits::default()
        },
        config: [
            ("issuer".to_owned(), idp.issuer()),
            ("audience".to_owned(), "warden".to_owned()),
            ("jwks_ttl_seconds".to_owned(), jwks_ttl.to_string()),
        ]
        .into(),
        allowed_hosts: vec![HostPattern::parse(&idp.issuer()).unwrap()],
        auth_cache: cache.then(|| AuthCacheSettings {
            header_names: vec!["authorization".into()],
            ttl: Duration::from_secs(600),
            max_size: 1000,
        }),
        ..PluginSettings::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn authenticate(plugin: &Arc<AuthPlugin>, request: &Request) {
    let authenticated = plugin.authenticate(request).unwrap();
    assert!(authenticated.result.is_ok(), "{:?}", authenticated.result);
    black_box(authenticated);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let iters = std::env::var("WARDEN_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000usize);
    let rsa =
        SigningKey::rsa_pkcs8(include_bytes!("../../tests/keys/rsa-a.pk8.der")).with_kid("rsa-a");
    let ec = SigningKey::generate_ec(Curve::P256).with_kid("ec");
    let idp = idp::Idp::start(&[&rsa, &ec]);
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let load = |settings| {
        AuthPlugin::load(&runtime, "oidc", &component(), settings).unwrap_or_else(|e| {
            panic!("{e} (build it: cargo build --release --target wasm32-wasip2 -p oidc-auth)")
        })
    };
    let cached = load(settings(&idp, 300, true));
    let warm = load(settings(&idp, 300, false));
    let cold = load(settings(&idp, 0, false));
    let bearer = |token: String| {
        Request::new("POST", "/threads/search")
            .with_header("host", "127.0.0.1:8123")
            .with_header("user-agent", "langgraph-sdk-py/0.4.14")
            .with_header("authorization", format!("Bearer {token}"))
    };
    let rs256 = bearer(idp.token(&rsa, Algorithm::Rs256, "alice", json!({})));
    let es256 = bearer(idp.token(&ec, Algorithm::Es256, "alice", json!({})));

    let token = idp.token(&rsa, Algorithm::Rs256, "alice", json!({}));
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let jwks = jwt::JwkSet::from_json(json!({"keys": [rsa.jwk()]}).to_string().as_bytes());
    let jwt::Key::Public(key) = jwks.unwrap().keys.remove(0).key else {
        unreachable!("an RSA JWK")
    };

    type Mode<'a> = (&'static str, usize, Box<dyn FnMut() + 'a>);
    let mut modes: Vec<Mode> = vec![
        (
            "RS256 cached",
            iters,
            Box::new(|| authenticate(&cached, &rs256)),
        ),
        (
            "RS256 jwks-cached",
            iters,
            Box::new(|| authenticate(&warm, &rs256)),
        ),
        (
            "ES256 jwks-cached",
            iters,
            Box::new(|| authenticate(&warm, &es256)),
        ),
        (
            "RS256 cold",
            iters / 10,
            Box::new(|| authenticate(&cold, &rs256)),
        ),
        (
            "RS256 native-verify",
            iters,
            Box::new(|| {
                jwt::verify_signature(Algorithm::Rs256, &key, signed.as_bytes(), &signature)
                    .unwrap()
            }),
        ),
    ];
    if let Ok(only) = std::env::var("WARDEN_BENCH_MODES") {
        let only: Vec<&str> = only.split(',').collect();
        modes.retain(|(name, _, _)| only.iter().any(|o| name.contains(o)));
    }
    println!("authenticate with examples/oidc against a local IdP, p50 per call");
    println!(
        "{:<22} {:>7} {:>10} {:>10} {:>10}",
        "mode", "calls", "p50 µs", "p90 µs", "p99 µs"
    );
    for (name, n, run) in modes.iter_mut() {
        for _ in 0..(*n / 10).max(5) {
            run(); // warm up (and fill the caches)
        }
        let mut samples = Vec::with_capacity(*n);
        for _ in 0..*n {
            let start = Instant::now();
            run();
            samples.push(start.elapsed());
        }
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<22} {:>7} {:>10.1} {:>10.1} {:>10.1}",
            name,
            n,
            us(percentile(&samples, 0.5)),
            us(percentile(&samples, 0.9)),
            us(percentile(&samples, 0.99)),
        );
    }
    println!("JWKS fetches during the run: {}", idp.jwks_fetches());
}
