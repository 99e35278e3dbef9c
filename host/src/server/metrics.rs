//! `/metrics`: request counters in Prometheus text (default) or JSON
//! (`?format=json`), public like the reference's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::runs::RunStats;

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

/// One request counted in `in_flight` until it is dropped: answered, or
/// abandoned when its client leaves.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware that counts every request.
pub(super) async fn count(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let _in_flight = InFlight::enter(&metrics.in_flight);
    let start = Instant::now();
    let response = next.run(request).await;
    let class = (response.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
    metrics
        .micros
        .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    response
}

/// The counters as `GET /metrics` answers with them: Prometheus text, or
/// JSON when `json`; with the runs' and the open streams' gauges.
pub(super) fn render(metrics: &Metrics, runs: RunStats, streams: usize, json: bool) -> Response {
    let (classes, seconds, in_flight) = metrics.snapshot();
    if json {
        let by_class: serde_json::Map<_, _> = classes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{}xx", i + 1), json!(n)))
            .collect();
        return Json(json!({
            "http": {"requests": by_class, "duration_seconds_sum": seconds,
                     "in_flight": in_flight, "open_streams": streams},
            "runs": {"in_flight": runs.in_flight, "retained": runs.retained,
                     "retained_events": runs.events, "retained_event_bytes": runs.bytes},
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
         warden_http_requests_in_flight {in_flight}\n\
         # HELP warden_http_open_streams Streamed responses open (SSE, wait, join).\n\
         # TYPE warden_http_open_streams gauge\n\
         warden_http_open_streams {streams}\n\
         # HELP warden_runs_in_flight Runs pending or running.\n\
         # TYPE warden_runs_in_flight gauge\n\
         warden_runs_in_flight {}\n\
         # HELP warden_run_events_retained Stream events kept in memory.\n\
         # TYPE warden_run_events_retained gauge\n\
         warden_run_events_retained {}\n\
         # HELP warden_run_events_retained_bytes Bytes of stream events kept in memory.\n\
         # TYPE warden_run_events_retained_bytes gauge\n\
         warden_run_events_retained_bytes {}\n",
        runs.in_flight, runs.events, runs.bytes
    ));
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
