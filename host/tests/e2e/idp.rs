//! A small OpenID Connect identity provider on 127.0.0.1 for the tests and
//! benchmarks: serves `/.well-known/openid-configuration` and `/jwks`, with
//! keys that can be rotated and a switch that makes it hang, and token
//! introspection (RFC 7662, `POST /introspect`) of opaque tokens it was
//! given, for the client [`CLIENT_ID`]. It runs on its own thread and
//! runtime, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use warden_sdk::jwt::Algorithm;
use warden_sdk::jwt::testing::SigningKey;

use crate::support::Background;

#[derive(Default)]
struct Shared {
    issuer: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    hang: AtomicBool,
    jwks_fetches: AtomicUsize,
    /// Opaque tokens and their subjects.
    opaque: Mutex<HashMap<String, String>>,
}

/// The client that may introspect tokens, and its secret.
pub const CLIENT_ID: &str = "warden";
/// [`CLIENT_ID`]'s secret.
pub const CLIENT_SECRET: &str = "s3cret:with colon";

/// The running identity provider.
pub struct Idp {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _server: Background,
}

impl Idp {
    /// Starts serving on a free port of 127.0.0.1, publishing `keys`.
    pub fn start(keys: &[&SigningKey]) -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(shared.clone());
        let server = Background::serve(app);
        *shared.issuer.lock().unwrap() = format!("http://{}", server.addr);
        let idp = Self {
            addr: server.addr,
            shared,
            _server: server,
        };
        idp.publish(keys);
        idp
    }

    /// Makes `token` an active opaque token of `subject`.
    pub fn issue_opaque(&self, token: &str, subject: &str) {
        self.shared
            .opaque
            .lock()
            .unwrap()
            .insert(token.to_owned(), subject.to_owned());
    }

    /// The issuer URL (`http://127.0.0.1:<port>`).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves exactly these keys from now on (a rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.shared.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Makes every response hang (never answered).
    pub fn hang(&self) {
        self.shared.hang.store(true, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// A token for `sub` signed by `key` with `alg`, valid for an hour,
    /// issued by this IdP for the audience `warden`, with `changes` merged
    /// into the claims (a `null` removes a claim).
    pub fn token(&self, key: &SigningKey, alg: Algorithm, sub: &str, changes: Value) -> String {
        key.sign(alg, &self.claims(sub, changes))
    }

    /// The claims [`Idp::token`] signs.
    pub fn claims(&self, sub: &str, changes: Value) -> Value {
        let now = now();
        let mut claims = json!({"iss": self.issuer(), "aud": "warden", "sub": sub,
                                "iat": now, "nbf": now, "exp": now + 3600, "roles": ["user"]});
        for (k, v) in changes.as_object().expect("an object") {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn hang_if_asked(shared: &Shared) {
    if shared.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    hang_if_asked(&shared).await;
    let issuer = shared.issuer.lock().unwrap().clone();
    Json(
        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"]}),
    )
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    hang_if_asked(&shared).await;
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": shared.keys.lock().unwrap().clone()}))
}

/// RFC 7662: the client authenticates with HTTP Basic, the token comes as
/// a form field; the answer says whether it is active and whose it is.
async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    hang_if_asked(&shared).await;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    let form = headers.get("content-type").and_then(|v| v.to_str().ok())
        == Some("application/x-www-form-urlencoded");
    let token = form
        .then(|| {
            form_urlencoded::parse(body.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned())
        })
        .flatten();
    let Some(token) = token else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        );
    };
    match shared.opaque.lock().unwrap().get(&token) {
        Some(sub) => (
            StatusCode::OK,
            Json(json!({"active": true, "sub": sub, "client_id": CLIENT_ID})),
        ),
        None => (StatusCode::OK, Json(json!({"active": false}))),
    }
}
