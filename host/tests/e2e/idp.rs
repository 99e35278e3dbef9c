//! A small OpenID Connect identity provider on 127.0.0.1 for the tests and
//! benchmarks: serves `/.well-known/openid-configuration` and `/jwks`, with
//! keys that can be rotated and a switch that makes it hang. It runs on its
//! own thread and runtime, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use warden_sdk::jwt::Algorithm;
use warden_sdk::jwt::testing::SigningKey;

#[derive(Default)]
struct Shared {
    issuer: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    hang: AtomicBool,
    jwks_fetches: AtomicUsize,
}

/// The running identity provider.
pub struct Idp {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Idp {
    /// Starts serving on a free port of 127.0.0.1, publishing `keys`.
    pub fn start(keys: &[&SigningKey]) -> Self {
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, addr) = std::sync::mpsc::channel();
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/.well-known/openid-configuration", get(discovery))
                    .route("/jwks", get(jwks))
                    .with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = addr.recv().expect("the IdP binds");
        *shared.issuer.lock().unwrap() = format!("http://{addr}");
        let idp = Self {
            addr,
            shared,
            stop: Some(stop),
        };
        idp.publish(keys);
        idp
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

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
