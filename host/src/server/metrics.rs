//! `/metrics`: request counters in Prometheus text (default) or JSON
//! (`?format=json`), public like the reference's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;

/// Counters of the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class: 1xx .. 5xx.
    by_class: [AtomicU64; 5],
    /// Time spent answering, in microseconds.
    micros: AtomicU64,
    /// Requests being answered now.
    in_flight: AtomicU64,
}

impl Metrics {
    fn snapshot(&self) -> ([u64; 5], f64, u64) {
        let classes = std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed));
        let seconds = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        (classes, seconds, self.in_flight.load(Ordering::Relaxed))
    }
}

/// The middleware that counts every request.
pub(super) async fn count(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let metrics = &state.metrics;
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let response = next.run(request).await;
    let class = (response.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
    metrics
        .micros
        .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    response
}

#[derive(Deserialize)]
pub(super) struct Format {
    format: Option<String>,
}

/// `GET /metrics[?format=prometheus|json]`.
pub(super) async fn serve(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Format>,
) -> Response {
    let (classes, seconds, in_flight) = state.metrics.snapshot();
    if query.format.as_deref() == Some("json") {
        let by_class: serde_json::Map<_, _> = classes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{}xx", i + 1), json!(n)))
            .collect();
        return Json(json!({
            "http": {"requests": by_class, "duration_seconds_sum": seconds, "in_flight": in_flight}
        }))
        .into_response();
    }
    let mut text = String::from(
        "# HELP warden_http_requests_total HTTP responses by status class.\n\
         # TYPE warden_http_requests_total counter\n",
    );
    for (i, n) in classes.iter().enumerate() {
        text.push_str(&format!(
            "warden_http_requests_total{{code=\"{}xx\"}} {n}\n",
            i + 1
        ));
    }
    text.push_str(&format!(
        "# HELP warden_http_request_duration_seconds_sum Time spent answering.\n\
         # TYPE warden_http_request_duration_seconds_sum counter\n\
         warden_http_request_duration_seconds_sum {seconds}\n\
         # HELP warden_http_requests_in_flight Requests being answered.\n\
         # TYPE warden_http_requests_in_flight gauge\n\
         warden_http_requests_in_flight {in_flight}\n"
    ));
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
