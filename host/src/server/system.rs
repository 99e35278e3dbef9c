//! The public system routes, outside auth: health, server information,
//! the OpenAPI document and its docs page, metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use axum::response::IntoResponse;

/// `/`, `/ok`, `/info`, `/openapi.json`, `/docs`, `/metrics`.
pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(ok))
        .route("/ok", get(ok))
        .route("/info", get(info))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/metrics", get(super::metrics::serve))
}

async fn openapi(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.openapi.clone())
}

async fn docs(State(state): State<Arc<AppState>>) -> axum::response::Html<String> {
    axum::response::Html(super::openapi::docs_html(&state.openapi))
}

async fn ok() -> Json<Value> {
    Json(json!({"ok": true, "services": {}}))
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
        "host": {"kind": "self-hosted", "project_id": null, "host_revision_id": null,
                 "revision_id": null, "tenant_id": null},
        "plugins": plugins,
    }))
}

/// 404 `{"detail": "Not Found"}` for an unknown path (after authentication).
pub(super) async fn not_found() -> Response {
    ApiError::not_found("Not Found").into_response()
}
