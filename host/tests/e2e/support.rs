//! Shared helpers: where the prebuilt guest components are, one shared
//! runtime, and a free-port server for the binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use warden::plugin::{AuthPlugin, Limits, Runtime, RuntimeOptions};
use warden::types::{Request, User};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The prebuilt component of a guest crate (`reference_auth`,
/// `fixture_hostile`, ...). `tests/run` builds them all once before
/// `cargo test`; building them here would rebuild guests in every test.
pub fn component(crate_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests first (tests/run does: \
         cargo build --release --target wasm32-wasip2 --workspace --exclude warden)",
        path.display()
    );
    path
}

/// One runtime for the whole test binary, caching compiled components
/// under the target directory so reruns skip compilation.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(root().join("target/warden-test-cache")),
            ..RuntimeOptions::default()
        })
        .expect("the runtime starts")
    })
}

/// Loads a prebuilt guest with the default limits.
pub fn plugin(crate_name: &str) -> Arc<AuthPlugin> {
    plugin_with(crate_name, Limits::default())
}

/// Loads a prebuilt guest with these limits.
pub fn plugin_with(crate_name: &str, limits: Limits) -> Arc<AuthPlugin> {
    AuthPlugin::load(runtime(), crate_name, &component(crate_name), limits)
        .unwrap_or_else(|e| panic!("{crate_name} loads: {e}"))
}

/// A request with a bearer token.
pub fn bearer(token: &str) -> Request {
    Request::new("GET", "/threads").with_header("authorization", format!("Bearer {token}"))
}

/// Authenticates with a fresh session and expects a user.
pub fn login(plugin: &Arc<AuthPlugin>, request: &Request) -> User {
    plugin
        .session()
        .expect("instantiates")
        .authenticate(request)
        .expect("no fault")
        .expect("authenticated")
}

/// The API router over a fresh in-memory database, serving the graph
/// `agent`, with `plugin` as the auth plugin (none: LangGraph's noop auth).
pub fn app(plugin: Option<Arc<AuthPlugin>>) -> axum::Router {
    app_with(plugin, true)
}

/// [`app`], choosing `disable_studio_auth`.
pub fn app_with(plugin: Option<Arc<AuthPlugin>>, disable_studio_auth: bool) -> axum::Router {
    let config = warden::config::Config {
        file: root().join("langgraph.json"),
        graphs: [("agent".to_owned(), "./agent".into())].into(),
        auth: None,
    };
    let storage = Arc::new(warden::storage::SqliteStorage::in_memory().expect("in-memory db"));
    let mut state = warden::server::AppState::new(&config, plugin, storage).expect("state");
    state.disable_studio_auth = disable_studio_auth;
    warden::server::router(Arc::new(state))
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: axum::http::StatusCode,
    /// Its headers.
    pub headers: axum::http::HeaderMap,
    /// Its body as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
    /// Its body as text.
    pub text: String,
}

/// Sends one request through the router, socket-free: `token` as a
/// bearer token (none when empty), `body` as JSON (none when `Null`).
pub async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> Reply {
    let authorization = format!("Bearer {token}");
    let headers: &[(&str, &str)] = if token.is_empty() {
        &[]
    } else {
        &[("authorization", &authorization)]
    };
    send_with(app, method, path, headers, body).await
}

/// [`send`] with explicit headers.
pub async fn send_with(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> Reply {
    let body = (!body.is_null()).then(|| body.to_string());
    send_raw(app, method, path, headers, body).await
}

/// Sends `body` as is (JSON content type), or no body.
pub async fn send_raw(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        None => axum::body::Body::empty(),
        Some(text) => {
            request = request.header("content-type", "application/json");
            axum::body::Body::from(text)
        }
    };
    let response = app
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        text,
    }
}
