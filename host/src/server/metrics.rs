//! `/metrics`, public like the reference's: the server's Prometheus metrics
//! ([`crate::telemetry::metrics`]) as text (default), or LangGraph's JSON
//! summary (`?format=json`): responses by status class, in-flight requests,
//! open streams and the runs' gauges.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::telemetry::metrics::{CONTENT_TYPE, Live, LivePlugin, method_label};

/// One request counted in flight until it is dropped: answered, or
/// abandoned when its client leaves.
struct InFlight<'a>(&'a AppState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a AppState) -> Self {
        state.http.entered();
        state.metrics.in_flight.inc();
        Self(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.http.left();
        self.0.metrics.in_flight.dec();
    }
}

/// The middleware that counts every request: by method, route template
/// (never the path: ids would make a series per thread) and status.
pub(super) async fn count(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let _in_flight = InFlight::enter(&state);
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let took = start.elapsed();
    let status = response.status().as_u16();
    state.http.answered(status, took);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.request(method, route, status, took);
    response
}

/// `GET /metrics`: Prometheus text, or the JSON summary when `json`.
pub(super) async fn render(state: &AppState, json: bool) -> Response {
    let runs = state.runs.stats();
    let streams = state.streams.count();
    if json {
        let (classes, seconds, in_flight) = state.http.snapshot();
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
    let run_queue_depth = match state.runs.queue_depth().await {
        Ok(depth) => depth,
        Err(e) => {
            tracing::warn!("/metrics: cannot read the run queue's depth: {e}");
            0
        }
    };
    let mut plugins = Vec::new();
    if let Some(slot) = &state.auth {
        let status = slot.status();
        plugins.push(LivePlugin {
            plugin: "auth".into(),
            digest: status.info.digest,
            contract: format!("warden:auth@{}", status.info.contract),
            swaps: status.swap_count,
            refused: status.refused_count,
        });
    }
    for (graph, slot) in &state.graph_components {
        let status = slot.status();
        plugins.push(LivePlugin {
            plugin: graph.clone(),
            digest: status.info.digest,
            contract: format!("warden:graph@{}", status.info.contract),
            swaps: status.swap_count,
            refused: status.refused_count,
        });
    }
    let live = Live {
        open_streams: streams,
        work_pool_queue: state.work.queued(),
        work_pool_threads: state.work.threads(),
        runs_in_flight: runs.in_flight,
        run_queue_depth,
        events_retained: runs.events,
        events_retained_bytes: runs.bytes,
        plugins,
        auth_cache_evictions: crate::plugin::auth_cache_evictions(),
        decision_log: state.decisions.as_ref().map(|log| log.counters().clone()),
    };
    (
        [("content-type", CONTENT_TYPE)],
        state.metrics.render(&live),
    )
        .into_response()
}
