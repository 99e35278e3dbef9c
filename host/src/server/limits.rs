//! The bounds of `langgraph.json`'s `limits`, as the server applies them
//! to requests: a body is read only once its sender is authenticated
//! ([`super::auth::head_first`]), and only up to its route's limit; a user
//! holds at most so many streams open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::error::ApiError;
use crate::config::LimitsConfig;
use crate::runs::{RunLimits, SubmitError};

/// The `limits` section, in the units the server uses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest body of the routes of each [`BodyClass`].
    pub body_bytes: [usize; 3],
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Streamed responses one user holds open at once.
    pub max_streams_per_user: usize,
    /// Runs in one batch.
    pub max_batch_runs: usize,
    /// Crons one user may have.
    pub max_crons_per_user: u64,
    /// States one history request may ask for.
    pub max_history: u64,
    /// The largest history answer, in bytes.
    pub history_bytes: usize,
    /// Deadline of a state update's graph code, waiting for a worker included.
    pub state_update_timeout: Duration,
    /// How long runs in flight may go on after SIGTERM.
    pub shutdown_grace: Duration,
    /// The run executor's bounds.
    pub runs: RunLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&LimitsConfig::default())
    }
}

fn bytes(value: u64, shift: u32) -> usize {
    usize::try_from(value << shift).unwrap_or(usize::MAX)
}

impl From<&LimitsConfig> for Limits {
    fn from(c: &LimitsConfig) -> Self {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            body_bytes: [
                bytes(c.body_kib, 10),
                bytes(c.run_body_kib, 10),
                bytes(c.store_body_kib, 10),
            ],
            header_timeout: Duration::from_secs(c.header_timeout_secs),
            body_timeout: Duration::from_secs(c.body_timeout_secs),
            max_connections: count(c.max_connections),
            max_streams_per_user: count(c.max_streams_per_user),
            max_batch_runs: count(c.max_batch_runs),
            max_crons_per_user: c.max_crons_per_user,
            max_history: c.max_history,
            history_bytes: bytes(c.history_mib, 20),
            state_update_timeout: Duration::from_millis(c.state_update_timeout_ms),
            shutdown_grace: Duration::from_secs(c.shutdown_grace_secs),
            runs: RunLimits::from(c),
        }
    }
}

/// Which body limit a route has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyClass {
    /// Threads, assistants, searches, …: `limits.body_kib`.
    Default = 0,
    /// Routes that carry a run's input: `limits.run_body_kib`.
    Run = 1,
    /// `PUT /store/items`: `limits.store_body_kib`.
    Store = 2,
}

impl BodyClass {
    /// The class of the route `method path` (`path` as the route table
    /// writes it).
    pub fn of(method: &Method, path: &str) -> Self {
        match (method.as_str(), path) {
            (
                "POST",
                "/runs"
                | "/runs/stream"
                | "/runs/wait"
                | "/runs/batch"
                | "/runs/crons"
                | "/threads/{thread_id}/runs"
                | "/threads/{thread_id}/runs/stream"
                | "/threads/{thread_id}/runs/wait"
                | "/threads/{thread_id}/runs/crons"
                | "/threads/{thread_id}/state",
            )
            | ("PATCH", "/runs/crons/{cron_id}") => Self::Run,
            ("PUT", "/store/items") => Self::Store,
            _ => Self::Default,
        }
    }

    /// Its key in `langgraph.json`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Default => "limits.body_kib",
            Self::Run => "limits.run_body_kib",
            Self::Store => "limits.store_body_kib",
        }
    }
}

/// How the route's body may be read: at most `limit` bytes, within
/// `timeout`. Set by [`head_first`] for [`super::api::extract::JsonBody`].
#[derive(Debug, Clone, Copy)]
pub struct BodyBudget {
    /// The most bytes.
    pub limit: usize,
    /// Its route's class, named in a 413.
    pub class: BodyClass,
    /// How long the body may take to arrive.
    pub timeout: Duration,
}

impl Default for BodyBudget {
    /// What a request that reached a route without [`head_first`] gets.
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            limit: limits.body_bytes[0],
            class: BodyClass::Default,
            timeout: limits.body_timeout,
        }
    }
}

impl BodyBudget {
    /// 413, naming the limit.
    pub fn too_large(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body too large: this route takes at most {} KiB (`{}`)",
                self.limit >> 10,
                self.class.key()
            ),
        )
    }

    /// 408, naming the limit.
    pub fn too_slow(&self) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request body did not arrive within {} s (`limits.body_timeout_secs`)",
                self.timeout.as_secs()
            ),
        )
    }
}

/// Whether `method path` answers with a stream that stays open while a run
/// goes on (SSE, or the heartbeat-padded JSON of `wait` and `join`).
pub fn is_stream(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        (
            "GET",
            "/threads/{thread_id}/stream"
                | "/threads/{thread_id}/runs/{run_id}/join"
                | "/threads/{thread_id}/runs/{run_id}/stream"
        ) | (
            "POST",
            "/runs/stream"
                | "/runs/wait"
                | "/threads/{thread_id}/runs/stream"
                | "/threads/{thread_id}/runs/wait"
        )
    )
}

/// The streamed responses open now, by user, and the signal that ends
/// them all at shutdown.
pub struct OpenStreams {
    by_user: Mutex<HashMap<String, usize>>,
    closing: watch::Sender<bool>,
}

impl Default for OpenStreams {
    fn default() -> Self {
        Self {
            by_user: Mutex::new(HashMap::new()),
            closing: watch::Sender::new(false),
        }
    }
}

/// One open stream of a user; dropping it frees its place.
pub struct StreamSlot {
    streams: Arc<OpenStreams>,
    user: String,
}

impl OpenStreams {
    /// A place for one more stream of `user`, if they hold fewer than `max`.
    pub fn open(self: &Arc<Self>, user: &str, max: usize) -> Option<StreamSlot> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let open = by_user.entry(user.to_owned()).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(StreamSlot {
            streams: Arc::clone(self),
            user: user.to_owned(),
        })
    }

    /// Streams open now, all users together.
    pub fn count(&self) -> usize {
        let by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user.values().sum()
    }

    /// Ends every stream open now or opened later.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// `body`, holding `slot`, ended when the streams are closed.
    pub(super) fn hold(&self, body: Body, slot: StreamSlot) -> Body {
        let mut closing = self.closing.subscribe();
        let closed = async move {
            let _ = closing.wait_for(|closing| *closing).await;
        };
        Body::from_stream(
            body.into_data_stream()
                .take_until(closed)
                .map(move |frame| {
                    let _held = &slot;
                    frame
                }),
        )
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut by_user = self
            .streams
            .by_user
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = by_user.get_mut(&self.user) {
            *open -= 1;
            if *open == 0 {
                by_user.remove(&self.user);
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    /// 429 naming the bound a run would pass; 503 while shutting down.
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Storage(error) => error.into(),
            SubmitError::Busy { key, limit } => {
                let what = match key {
                    "max_runs_in_flight_per_user" => {
                        format!("a user has at most {limit} runs pending or running at once")
                    }
                    "runs_in_flight_mib" => {
                        format!("the inputs of the runs in flight would pass {limit} MiB")
                    }
                    _ => format!("the server holds at most {limit} runs pending or running"),
                };
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many runs in flight: {what} (`limits.{key}`); retry once one ends"
                    ),
                );
                error.headers.push(("retry-after".into(), "1".into()));
                error
            }
            SubmitError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is shutting down: create the run again once it is back",
            ),
        }
    }
}

/// The 503 a connection past `limits.max_connections` gets before it is
/// closed.
pub fn too_many_connections(max: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "detail": format!(
            "Too many connections: the server holds at most {max} at once \
             (`limits.max_connections`); retry later"
        )
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n{}: application/json\r\n{}: 1\r\n\
         {}: close\r\n{}: {}\r\n\r\n{body}",
        header::CONTENT_TYPE,
        header::RETRY_AFTER,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_that_carries_a_run_input_has_the_run_limit() {
        for endpoint in super::super::routes::endpoints() {
            let class = BodyClass::of(&endpoint.method, &endpoint.path);
            let carries_input = endpoint.events.contains(&(
                crate::types::Resource::Threads,
                crate::types::Action::CreateRun,
            )) || endpoint
                .events
                .contains(&(crate::types::Resource::Crons, crate::types::Action::Create));
            if carries_input {
                assert_eq!(
                    class,
                    BodyClass::Run,
                    "{} {}",
                    endpoint.method,
                    endpoint.path
                );
            }
        }
        assert_eq!(
            BodyClass::of(&Method::PUT, "/store/items"),
            BodyClass::Store
        );
        assert_eq!(BodyClass::of(&Method::POST, "/threads"), BodyClass::Default);
    }

    #[test]
    fn stream_routes_are_routes() {
        let endpoints = super::super::routes::endpoints();
        let streams: Vec<_> = endpoints
            .iter()
            .filter(|e| is_stream(&e.method, &e.path))
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(streams.len(), 7, "{streams:?}");
    }

    #[test]
    fn a_user_holds_at_most_max_streams_and_a_dropped_one_frees_its_place() {
        let streams = Arc::new(OpenStreams::default());
        let a = streams.open("alice", 2).unwrap();
        let _b = streams.open("alice", 2).unwrap();
        assert!(streams.open("alice", 2).is_none());
        let _c = streams.open("bob", 2).unwrap();
        assert_eq!(streams.count(), 3);
        drop(a);
        assert!(streams.open("alice", 2).is_some());
    }

    #[tokio::test]
    async fn closing_ends_a_held_stream() {
        let streams = Arc::new(OpenStreams::default());
        let slot = streams.open("alice", 1).unwrap();
        let endless = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        let body = streams.hold(Body::from_stream(endless), slot);
        streams.close_all();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert!(bytes.is_empty());
        assert_eq!(streams.count(), 0, "the ended stream freed its place");
    }
}
