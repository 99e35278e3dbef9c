//! The HTTP server: the public system routes, and everything else behind
//! authentication, which runs **before routing** as in LangGraph (an unknown
//! path with bad credentials is 401, with good ones 404). The Agent Server
//! API mounts into the protected router.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::plugin::AuthPlugin;
use crate::types::{HttpError, User};

/// What the routes share.
pub struct AppState {
    /// The auth plugin, when `langgraph.json` names one.
    pub auth: Option<Arc<AuthPlugin>>,
}

/// The user a request was authenticated as, in the request's extensions.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub User);

/// The application's router.
pub fn router(state: Arc<AppState>) -> Router {
    let public = Router::new()
        .route("/ok", get(ok))
        .route("/info", get(info));
    let protected = Router::new()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    public.merge(protected).with_state(state)
}

async fn ok() -> Json<Value> {
    Json(json!({"ok": true}))
}

async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let plugins: Vec<Value> = state
        .auth
        .iter()
        .map(|plugin| {
            let info = plugin.info();
            json!({
                "name": info.name,
                "kind": "auth",
                "path": info.path,
                "digest": info.digest,
                "contract": format!("warden:auth@{}", info.contract),
            })
        })
        .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "server": "warden",
        "flags": {"assistants": true, "crons": true, "langsmith": false},
        "plugins": plugins,
    }))
}

async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

/// Runs the plugin's `authenticate` in a fresh instance; refuses the request
/// with the plugin's error, or with a 500 when the plugin faults (fail closed).
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(plugin) = &state.auth else {
        return next.run(request).await;
    };
    let plugin_request = plugin_request(&request);
    let plugin = Arc::clone(plugin);
    // Plugin calls run on the blocking pool, never on an async worker:
    // WASI's blocking stream operations (a guest printing, or panicking)
    // drive a future to completion on the calling thread.
    let call = tokio::task::spawn_blocking(move || {
        plugin
            .session()
            .and_then(|mut session| session.authenticate(&plugin_request))
    });
    let Ok(result) = call.await else {
        return detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Authentication failed: auth plugin call aborted",
        );
    };
    match result {
        Ok(Ok(user)) => {
            request.extensions_mut().insert(AuthenticatedUser(user));
            next.run(request).await
        }
        Ok(Err(error)) => http_error(error),
        // The runtime has logged the plugin, digest, event and fault.
        Err(fault) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Authentication failed: auth plugin {}", fault.kind()),
        ),
    }
}

/// The request as `authenticate` sees it.
fn plugin_request(request: &Request<Body>) -> crate::types::Request {
    let uri = request.uri();
    crate::types::Request {
        method: request.method().as_str().to_owned(),
        path: uri.path().to_owned(),
        query: form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
    }
}

/// A `{"detail": ...}` response.
fn detail(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({"detail": detail}))).into_response()
}

/// A plugin's HTTP error: its status, its detail (the reason phrase when it
/// gave none) and its headers.
fn http_error(error: HttpError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = error
        .detail
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    let mut response = detail(status, &text);
    for (name, value) in error.headers {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                response.headers_mut().append(name, value);
            }
            _ => tracing::warn!("dropping an invalid header from the auth plugin's error"),
        }
    }
    response
}
