//! The public system routes, outside auth: health, server information,
//! the OpenAPI document and its docs page, metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, Pending, as_caller};
use axum::http::StatusCode;

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
    let describe = |kind: &str, status: crate::plugin::SlotStatus| {
        let authorizes_nothing = status.authorizes_nothing;
        let mut plugin = json!({
            "name": status.info.name,
            "kind": kind,
            "path": status.info.path,
            "source": status.source,
            "digest": status.info.digest,
            "contract": format!("warden:{kind}@{}", status.info.contract),
            "loaded_at": status.loaded_at,
            "swap_count": status.swap_count,
            "last_reload_error": status.last_reload_error,
        });
        if kind == "auth" {
            // No authorization handler: every event allowed unfiltered.
            plugin["authorizes_nothing"] = authorizes_nothing.into();
        }
        plugin
    };
    let plugins: Vec<Value> = state
        .auth
        .iter()
        .map(|slot| describe("auth", slot.status()))
        .chain(
            state
                .graph_components
                .values()
                .map(|slot| describe("graph", slot.status())),
        )
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

/// 404 `{"detail": "Not Found"}` for an unknown path, once authenticated.
pub(super) async fn not_found(pending: Pending) -> Response {
    as_caller(pending, |_| Err(ApiError::not_found("Not Found"))).await
}

/// 405 for a known path with another method, once authenticated.
pub(super) async fn method_not_allowed(pending: Pending, allow: String) -> Response {
    as_caller(pending, move |_| {
        let mut error = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        error.headers.push(("allow".into(), allow));
        Err(error)
    })
    .await
}
