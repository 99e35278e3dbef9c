//! The public system routes, outside auth: health, server information,
//! the OpenAPI document and its docs page, metrics.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::{AppState, Pending, as_caller};
use axum::http::StatusCode;

/// `/`, `/ok`, `/info`, `/openapi.json`, `/docs`, `/metrics`.
pub(in crate::server) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(ok))
        .route("/ok", get(ok))
        .route("/info", get(info))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/metrics", get(metrics))
}

/// The OpenAPI document the router serves (built once, with it).
#[derive(Clone)]
pub(in crate::server) struct Document(pub(in crate::server) Arc<Value>);

async fn openapi(Extension(Document(document)): Extension<Document>) -> Json<Value> {
    Json(Value::clone(&document))
}

async fn docs(Extension(Document(document)): Extension<Document>) -> axum::response::Html<String> {
    axum::response::Html(crate::server::openapi::docs_html(&document))
}

#[derive(Deserialize)]
struct Format {
    format: Option<String>,
}

/// `GET /metrics[?format=prometheus|json]`.
async fn metrics(State(state): State<Arc<AppState>>, Query(query): Query<Format>) -> Response {
    crate::server::metrics::render(&state, query.format.as_deref() == Some("json")).await
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
            "previous_digest": status.previous_digest,
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
        "replica": state.replica.describe(),
        "storage": state.storage.backend(),
    }))
}

/// 404 `{"detail": "Not Found"}` for an unknown path, once authenticated.
pub(in crate::server) async fn not_found(pending: Pending) -> Response {
    as_caller(pending, |_| Err(ApiError::not_found("Not Found"))).await
}

/// 405 for a known path with another method, once authenticated.
pub(in crate::server) async fn method_not_allowed(pending: Pending, allow: String) -> Response {
    as_caller(pending, move |_| {
        let mut error = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        error.headers.push(("allow".into(), allow));
        Err(error)
    })
    .await
}
