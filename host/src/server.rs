//! The HTTP server. For now: the system routes `/ok` and `/info`; the Agent
//! Server API mounts here behind the auth pipeline.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::plugin::AuthPlugin;

/// What the routes share.
pub struct AppState {
    /// The auth plugin, when `langgraph.json` names one.
    pub auth: Option<Arc<AuthPlugin>>,
}

/// The application's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ok", get(ok))
        .route("/info", get(info))
        .fallback(not_found)
        .with_state(state)
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

async fn not_found() -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"})))
}
