//! The streamed responses of runs: SSE (`…/runs/stream`, `…/stream`), a
//! thread's SSE of all its runs (`/threads/{id}/stream`) and the
//! heartbeat-padded JSON of `wait` and `join`.
//!
//! Both keep the connection alive while the run goes on: SSE sends a
//! `: heartbeat` comment, JSON a newline (parsers skip leading
//! whitespace), every five seconds. An SSE stream ends only once the run
//! has left pending/running: the SDK otherwise reconnects.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::runs::{CancelAction, LiveRun, Progress, Runs, StreamEvent, id_key};
use crate::storage::{Filter, Storage, Thread};

/// How often an idle stream sends a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Cancels a run when the client streaming or waiting on it goes away
/// before it ends (`on_disconnect: cancel`).
pub struct CancelOnDrop {
    runs: Arc<Runs>,
    live: Arc<LiveRun>,
}

impl CancelOnDrop {
    /// A guard over `live`.
    pub fn new(runs: Arc<Runs>, live: Arc<LiveRun>) -> Self {
        Self { runs, live }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.live.events.is_done() {
            tracing::info!(run_id = %self.live.run_id, "client disconnected: cancelling the run");
            self.runs.cancel(self.live.run_id, CancelAction::Interrupt);
        }
    }
}

/// Which events a follower forwards.
#[derive(Debug, Clone, Default)]
pub struct ModeFilter(Option<Vec<String>>);

impl ModeFilter {
    /// Every event.
    pub fn all() -> Self {
        Self(None)
    }

    /// Only these stream modes (plus `metadata` and `error`); an empty list
    /// means every mode.
    pub fn only(modes: Vec<String>) -> Self {
        Self((!modes.is_empty()).then_some(modes))
    }

    fn wants(&self, event: &str) -> bool {
        let Some(modes) = &self.0 else { return true };
        let mode = event.split(['/', '|']).next().unwrap_or(event);
        matches!(mode, "metadata" | "error")
            || modes
                .iter()
                .any(|m| m == mode || (m == "messages-tuple" && event == "messages"))
    }
}

struct Follower {
    live: Arc<LiveRun>,
    progress: watch::Receiver<Progress>,
    position: usize,
    filter: ModeFilter,
    pending: VecDeque<Bytes>,
    _guard: Option<CancelOnDrop>,
}

/// An SSE response following `live` from event `position` on.
pub fn sse(
    live: Arc<LiveRun>,
    position: usize,
    filter: ModeFilter,
    guard: Option<CancelOnDrop>,
    locations: Locations,
) -> Response {
    let follower = Follower {
        progress: live.events.subscribe(),
        live,
        position,
        filter,
        pending: VecDeque::new(),
        _guard: guard,
    };
    let body = stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(bytes) = f.pending.pop_front() {
                return Some((Ok::<_, Infallible>(bytes), f));
            }
            let progress = *f.progress.borrow_and_update();
            if progress.len > f.position {
                let (events, next) = f.live.events.read(f.position);
                f.position = next;
                for event in events.iter().filter(|e| f.filter.wants(&e.event)) {
                    f.pending.push_back(event.to_sse(f.live.resumable));
                }
                continue;
            }
            if progress.done {
                return None;
            }
            tokio::select! {
                changed = f.progress.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep(HEARTBEAT) => {
                    return Some((Ok(Bytes::from_static(b": heartbeat\r\n\r\n")), f));
                }
            }
        }
    });
    let mut response = event_stream(Body::from_stream(body));
    locations.apply(&mut response);
    response
}

/// A `text/event-stream` response of `body`, uncached and unbuffered by
/// proxies.
fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What a thread stream forwards (`stream_modes`, any combination).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadModes {
    /// `run_modes`: every event of the thread's runs (the default).
    pub run_modes: bool,
    /// `lifecycle`: each run's start and end (`metadata` events).
    pub lifecycle: bool,
    /// `state_update`: thread state updates.
    pub state_update: bool,
}

impl ThreadModes {
    /// Parses `stream_modes` (one mode or a comma-separated list); `None`
    /// or empty means `run_modes`. Names the first unknown mode.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let text = text.unwrap_or("").trim();
        if text.is_empty() {
            return Ok(Self {
                run_modes: true,
                ..Self::default()
            });
        }
        let mut modes = Self::default();
        for mode in text.split(',').map(str::trim) {
            match mode {
                "run_modes" => modes.run_modes = true,
                "lifecycle" => modes.lifecycle = true,
                "state_update" => modes.state_update = true,
                other => return Err(other.to_owned()),
            }
        }
        Ok(modes)
    }

    /// Whether an event goes out, as the reference decides.
    fn wants(self, event: &str, data: &str) -> bool {
        if event == "state_update" {
            return self.state_update;
        }
        if self.run_modes {
            return true;
        }
        self.lifecycle && event == "metadata" && {
            let data: Value = serde_json::from_str(data).unwrap_or_default();
            data["status"] == "run_done"
                || (data.get("attempt").is_some() && data.get("run_id").is_some())
        }
    }
}

/// One run a thread stream follows.
struct Followed {
    live: Arc<LiveRun>,
    position: usize,
}

/// The thread a thread stream was opened on, and who may read it: the
/// stream follows that thread, not its id. A run it picks up is of the
/// same thread (created at the same time) and the thread still within the
/// reader's scope, or the stream ends.
pub struct ThreadBinding {
    /// Where the thread lives.
    pub storage: Arc<dyn Storage>,
    /// The thread, as the reader saw it when the stream opened.
    pub thread: Thread,
    /// The reader's `threads.read` filter.
    pub scope: Option<Filter>,
}

impl ThreadBinding {
    /// Whether the thread still exists, is the same one, and is within the
    /// reader's scope (a storage failure counts as no).
    async fn still_readable(&self) -> bool {
        let found = self
            .storage
            .thread(self.thread.thread_id, self.scope.as_ref())
            .await;
        matches!(found, Ok(Some(t)) if t.created_at == self.thread.created_at)
    }

    fn owns(&self, live: &LiveRun) -> bool {
        live.thread_id == self.thread.thread_id && live.thread_created_at == self.thread.created_at
    }
}

/// The state of a thread stream.
struct ThreadFollower {
    runs: Arc<Runs>,
    thread_id: Uuid,
    binding: ThreadBinding,
    modes: ThreadModes,
    submitted: broadcast::Receiver<Weak<LiveRun>>,
    deleted: broadcast::Receiver<Uuid>,
    /// The thread is gone (or out of reach): the stream ends once what
    /// is pending is sent.
    ended: bool,
    seen: HashSet<Uuid>,
    followed: Vec<Followed>,
    /// Yields whenever a followed run's log moves.
    moved: SelectAll<BoxStream<'static, ()>>,
    /// Events older than this were seen by the client (`Last-Event-ID`).
    after: Option<(u128, u64)>,
    pending: VecDeque<Bytes>,
}

impl ThreadFollower {
    /// Follows `live` from `position` on, unless it is followed already
    /// or belongs to another thread of the same id.
    fn follow(&mut self, live: Arc<LiveRun>, position: usize) {
        if !self.binding.owns(&live) || !self.seen.insert(live.run_id) {
            return;
        }
        let progress = live.events.subscribe();
        self.moved.push(
            stream::unfold(progress, |mut p| async move {
                p.changed().await.ok().map(|()| ((), p))
            })
            .boxed(),
        );
        self.followed.push(Followed { live, position });
    }

    /// Queues what the followed runs logged since last time, and each
    /// ended run's `run_done`; stops following ended runs.
    fn collect(&mut self) {
        let (modes, after) = (self.modes, self.after);
        let fresh = |event: &StreamEvent| after.is_none_or(|a| id_key(&event.id) > a);
        let pending = &mut self.pending;
        self.followed.retain_mut(|f| {
            let done = f.live.events.is_done();
            let (events, next) = f.live.events.read(f.position);
            f.position = next;
            for event in events.iter().filter(|e| fresh(e)) {
                if modes.wants(&event.event, &event.data) {
                    pending.push_back(event.to_sse(true));
                }
            }
            if !done || f.position < f.live.events.len() {
                return true;
            }
            let run_done = StreamEvent {
                id: f.live.events.id_after_last(),
                event: "metadata".into(),
                data: json!({"status": "run_done", "run_id": f.live.run_id}).to_string(),
            };
            if fresh(&run_done) && modes.wants(&run_done.event, &run_done.data) {
                pending.push_back(run_done.to_sse(true));
            }
            false
        });
    }

    /// Picks up runs new to the stream, once the reader is checked again:
    /// a thread deleted, replaced or out of the reader's scope ends the
    /// stream (the last with the refusal the stream would open with).
    async fn pick_up(&mut self, runs: Vec<Arc<LiveRun>>) {
        let new: Vec<_> = runs
            .into_iter()
            .filter(|r| r.thread_id == self.thread_id && !self.seen.contains(&r.run_id))
            .collect();
        if new.is_empty() {
            return;
        }
        if !self.binding.still_readable().await {
            self.end();
            self.pending
                .push_back(error_event(&super::ApiError::not_found("Thread not found")));
            return;
        }
        for live in new {
            self.follow(live, 0);
        }
    }

    /// Ends the stream after what the followed runs logged so far.
    fn end(&mut self) {
        self.collect();
        self.ended = true;
    }
}

/// An SSE response following every run of a thread, current and to come,
/// until the client leaves or the thread goes: each run's events (with
/// ids), then `metadata` `{"status": "run_done", "run_id": ...}` when it
/// ends. With `last_event_id`, the resumable runs of that thread known in
/// memory replay what followed that id first.
pub fn thread_sse(
    runs: Arc<Runs>,
    binding: ThreadBinding,
    modes: ThreadModes,
    last_event_id: Option<&str>,
) -> Response {
    let thread_id = binding.thread.thread_id;
    let mut follower = ThreadFollower {
        submitted: runs.submissions(),
        deleted: runs.deletions(),
        runs: runs.clone(),
        thread_id,
        binding,
        modes,
        ended: false,
        seen: HashSet::new(),
        followed: Vec::new(),
        moved: SelectAll::new(),
        after: last_event_id.filter(|id| *id != "-").map(id_key),
        pending: VecDeque::new(),
    };
    for live in runs.on_thread(thread_id) {
        let position = match last_event_id {
            Some(_) if live.resumable => 0,
            _ if live.events.is_done() => continue,
            _ => live.events.len(),
        };
        follower.follow(live, position);
    }
    let body = stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(bytes) = f.pending.pop_front() {
                return Some((Ok::<_, Infallible>(bytes), f));
            }
            if f.ended {
                return None;
            }
            f.collect();
            if !f.pending.is_empty() {
                continue;
            }
            tokio::select! {
                submitted = f.submitted.recv() => match submitted {
                    Ok(live) => {
                        if let Some(live) = live.upgrade() {
                            f.pick_up(vec![live]).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let in_flight = f.runs.in_flight(f.thread_id);
                        f.pick_up(in_flight).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                deleted = f.deleted.recv() => match deleted {
                    Ok(id) if id == f.thread_id => f.end(),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !f.binding.still_readable().await {
                            f.end();
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                Some(()) = f.moved.next(), if !f.moved.is_empty() => {}
                () = tokio::time::sleep(HEARTBEAT) => {
                    return Some((Ok(Bytes::from_static(b": heartbeat\r\n\r\n")), f));
                }
            }
        }
    });
    event_stream(Body::from_stream(body))
}

/// An SSE response of one `error` event, as the reference streams a
/// refusal it meets once the stream has begun:
/// `{"error": "HTTPException", "message": "404: Thread not found"}`.
pub fn error_sse(error: &super::ApiError) -> Response {
    event_stream(Body::from(error_event(error)))
}

/// The SSE `error` event of a refusal met once a stream has begun.
fn error_event(error: &super::ApiError) -> Bytes {
    let data = json!({
        "error": "HTTPException",
        "message": format!("{}: {}", error.status.as_u16(), error.detail),
    });
    Bytes::from(format!("event: error\r\ndata: {data}\r\n\r\n"))
}

/// An SSE response with no event: a run that has ended and cannot replay.
pub fn empty_sse() -> Response {
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

type BoxedBody = Pin<Box<dyn Future<Output = Value> + Send>>;

/// A `200 application/json` response whose body is `outcome`'s value, with
/// a newline every five seconds until it is ready.
pub fn json_when_ready(
    outcome: impl Future<Output = Value> + Send + 'static,
    guard: Option<CancelOnDrop>,
    locations: Locations,
) -> Response {
    let state: Option<(BoxedBody, Option<CancelOnDrop>)> = Some((Box::pin(outcome), guard));
    let body = stream::unfold(state, |state| async move {
        let (mut outcome, guard) = state?;
        tokio::select! {
            value = &mut outcome => {
                drop(guard);
                let bytes = serde_json::to_vec(&value).unwrap_or_default();
                Some((Ok::<_, Infallible>(Bytes::from(bytes)), None))
            }
            () = tokio::time::sleep(HEARTBEAT) => Some((Ok(Bytes::from_static(b"\n")), Some((outcome, guard)))),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    locations.apply(&mut response);
    response
}

/// The `Location` and `Content-Location` headers of a run response.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    /// Where to reconnect (`…/stream` or `…/join`).
    pub location: Option<String>,
    /// The run (`/threads/{tid}/runs/{rid}` or `/runs/{rid}`).
    pub content_location: Option<String>,
}

impl Locations {
    /// Sets the headers on `response`.
    pub fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        for (name, value) in [
            (header::LOCATION, &self.location),
            (header::CONTENT_LOCATION, &self.content_location),
        ] {
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use serde_json::json;

    async fn next(body: &mut axum::body::BodyDataStream) -> Option<String> {
        let frame = body.next().await?.unwrap();
        Some(String::from_utf8(frame.to_vec()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn wait_pads_with_a_newline_every_five_seconds_then_sends_the_value() {
        let (done, outcome) = tokio::sync::oneshot::channel::<Value>();
        let response = json_when_ready(
            async move { outcome.await.unwrap() },
            None,
            Locations::default(),
        );
        let mut body = response.into_body().into_data_stream();
        let started = tokio::time::Instant::now();
        assert_eq!(next(&mut body).await.as_deref(), Some("\n"));
        assert_eq!(started.elapsed(), HEARTBEAT);
        assert_eq!(next(&mut body).await.as_deref(), Some("\n"));
        done.send(json!({"a": 1})).unwrap();
        assert_eq!(next(&mut body).await.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn sse_sends_heartbeats_until_the_run_ends_then_closes() {
        let live = LiveRun::standalone(false);
        live.events.push("metadata", &json!({"run_id": "r"}));
        let response = sse(
            live.clone(),
            0,
            ModeFilter::all(),
            None,
            Locations::default(),
        );
        let mut body = response.into_body().into_data_stream();
        assert_eq!(
            next(&mut body).await.as_deref(),
            Some("event: metadata\r\ndata: {\"run_id\":\"r\"}\r\n\r\n")
        );
        let started = tokio::time::Instant::now();
        assert_eq!(
            next(&mut body).await.as_deref(),
            Some(": heartbeat\r\n\r\n")
        );
        assert_eq!(started.elapsed(), HEARTBEAT);
        live.events.push("values", &json!({"x": 1}));
        assert_eq!(
            next(&mut body).await.as_deref(),
            Some("event: values\r\ndata: {\"x\":1}\r\n\r\n")
        );
        live.events.finish();
        assert_eq!(next(&mut body).await, None);
    }

    #[test]
    fn a_filter_keeps_metadata_errors_and_its_modes() {
        let filter = ModeFilter::only(vec!["updates".into(), "messages-tuple".into()]);
        assert!(filter.wants("metadata"));
        assert!(filter.wants("error"));
        assert!(filter.wants("updates"));
        assert!(filter.wants("messages"));
        assert!(!filter.wants("values"));
        assert!(!filter.wants("custom"));
        assert!(ModeFilter::only(vec![]).wants("values"));
        let messages = ModeFilter::only(vec!["messages".into()]);
        assert!(messages.wants("messages/partial"));
    }
}
