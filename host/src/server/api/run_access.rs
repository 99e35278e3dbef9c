//! Reaching existing runs: get, list, join, join the stream, cancel,
//! delete. Every one first checks the thread within the caller's scope
//! (`threads.read`, `threads.update` for cancels, including a join's
//! `cancel_on_disconnect`, `threads.delete` for deletes), then reaches the
//! run through that thread only: another user's run is a 404.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{JsonBody, no_content, ok, path_id};
use super::records;
use super::threads::scoped;
use crate::runs::{CancelAction, LiveRun};
use crate::server::error::ApiError;
use crate::server::streaming::{self, CancelOnDrop, Locations, ModeFilter};
use crate::server::{AppState, Caller, Pending, as_caller};
use crate::storage::{RunStatus, Thread, wait};
use crate::types::{Action, Resource};

fn ids(thread: &str, run: &str) -> Result<(Uuid, Uuid), ApiError> {
    Ok((path_id(thread, "thread")?, path_id(run, "run")?))
}

/// A boolean query parameter: `true`/`false` (Python) or `1`/`0` (JS).
fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1" | "True"))
}

/// `GET /threads/{thread_id}/runs/{run_id}`.
#[utoipa::path(
    get,
    operation_id = "run_access_get",
    path = "/threads/{thread_id}/runs/{run_id}",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("run_id" = Uuid, Path, description = "The run (UUID)")),
    responses((status = 200, description = "The run", body = records::Run), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn get(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((thread, run)): Path<(String, String)>,
) -> Response {
    as_caller(pending, move |caller| {
        let (tid, rid) = ids(&thread, &run)?;
        scoped(&state, caller, Action::Read, json!({"thread_id": tid}), tid)?;
        ok(wait(state.storage.run(tid, rid))?
            .map(records::Run::from)
            .ok_or_else(|| ApiError::not_found("Not Found"))?)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    status: Option<String>,
}

/// `GET /threads/{thread_id}/runs`.
#[utoipa::path(
    get,
    operation_id = "run_access_list",
    path = "/threads/{thread_id}/runs",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The thread's runs, newest first", body = Vec<records::Run>), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn list(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(thread): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    as_caller(pending, move |caller| {
        let tid = path_id(&thread, "thread")?;
        let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
        scoped(&state, caller, Action::Read, json!({"thread_id": tid}), tid)?;
        // A status no run has (a name the API does not know) lists nothing.
        let status = match query.status.as_deref().map(str::parse::<RunStatus>) {
            Some(Err(_)) => return ok(Vec::<records::Run>::new()),
            status => status.transpose().ok().flatten(),
        };
        let runs: Vec<_> = wait(state.storage.list_runs(
            tid,
            status,
            query.limit.unwrap_or(10).min(1000),
            query.offset.unwrap_or(0),
        ))?
        .into_iter()
        .map(records::Run::from)
        .collect();
        ok(runs)
    })
    .await
}

/// The guard of a join with `cancel_on_disconnect`, if the caller may
/// cancel the run: `threads.update` with its filter, as `POST …/cancel`
/// (the same value). As in `langgraph dev`, whose cancel on disconnect
/// fires that event under the joiner's identity and drops a refusal, a
/// caller who may only read joins without the cancel.
fn cancel_guard(
    state: &AppState,
    caller: &mut Caller,
    live: &Arc<LiveRun>,
    wanted: bool,
) -> Option<CancelOnDrop> {
    if !wanted || live.events.is_done() {
        return None;
    }
    let (tid, rid) = (live.thread_id, live.run_id);
    let value = json!({"thread_id": tid, "action": "interrupt",
                       "metadata": {"run_ids": [rid], "status": null}});
    match scoped(state, caller, Action::Update, value, tid) {
        Ok(_) => Some(CancelOnDrop::new(state.runs.clone(), live.clone())),
        Err(refused) => {
            tracing::info!(run_id = %rid, status = %refused.status, detail = %refused.detail,
                "join without cancel_on_disconnect: the caller may not cancel the run");
            None
        }
    }
}

/// What `join` answers for a run no longer in memory: the thread's values,
/// or its error when the run failed.
fn settled_body(thread: &Thread, status: RunStatus) -> Value {
    if status == RunStatus::Error && !thread.error.is_null() {
        json!({ "__error__": thread.error })
    } else if thread.values.is_object() {
        thread.values.clone()
    } else {
        json!({})
    }
}

#[derive(Deserialize)]
pub(in crate::server) struct JoinQuery {
    cancel_on_disconnect: Option<String>,
    stream_mode: Option<Vec<String>>,
}

/// Parses a join's query: `stream_mode` repeated, or one JSON list (JS).
fn join_query(raw: Option<&str>) -> Result<JoinQuery, ApiError> {
    let mut query = JoinQuery {
        cancel_on_disconnect: None,
        stream_mode: None,
    };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "cancel_on_disconnect" => query.cancel_on_disconnect = Some(value.into_owned()),
            "stream_mode" if value.is_empty() => {}
            "stream_mode" => {
                let modes = query.stream_mode.get_or_insert_with(Vec::new);
                match serde_json::from_str::<Vec<String>>(&value) {
                    Ok(list) => modes.extend(list),
                    Err(_) => modes.push(value.into_owned()),
                }
            }
            _ => {}
        }
    }
    Ok(query)
}

/// `GET /threads/{thread_id}/runs/{run_id}/join`.
#[utoipa::path(
    get,
    operation_id = "run_access_join",
    path = "/threads/{thread_id}/runs/{run_id}/join",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("run_id" = Uuid, Path, description = "The run (UUID)")),
    responses((status = 200, description = "The final state, or `__error__`"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn join(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((thread, run)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    as_caller(pending, move |caller| {
        let (tid, rid) = ids(&thread, &run)?;
        let query = join_query(uri.query())?;
        let thread = scoped(&state, caller, Action::Read, json!({"thread_id": tid}), tid)?;
        let record =
            wait(state.storage.run(tid, rid))?.ok_or_else(|| ApiError::not_found("Not Found"))?;
        let locations = Locations {
            location: None,
            content_location: Some(format!("/threads/{tid}/runs/{rid}")),
        };
        match state.runs.get(tid, rid) {
            Some(live) => {
                let wanted = flag(query.cancel_on_disconnect.as_deref());
                let guard = cancel_guard(&state, caller, &live, wanted);
                Ok(streaming::json_when_ready(
                    async move { live.outcome().await.body() },
                    guard,
                    locations,
                ))
            }
            None => {
                let body = settled_body(&thread, record.status);
                Ok(streaming::json_when_ready(
                    async move { body },
                    None,
                    locations,
                ))
            }
        }
    })
    .await
}

/// `GET /threads/{thread_id}/runs/{run_id}/stream`.
#[utoipa::path(
    get,
    operation_id = "run_access_join_stream",
    path = "/threads/{thread_id}/runs/{run_id}/stream",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("run_id" = Uuid, Path, description = "The run (UUID)")),
    responses((status = 200, description = "SSE of the run from now on (or from `Last-Event-ID`); a thread missing or outside the caller's scope, or a run missing, is one `error` event (`404: Thread not found`, `404: Run not found`)", content_type = "text/event-stream"), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn join_stream(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((thread, run)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    as_caller(pending, move |caller| {
        let (tid, rid) = ids(&thread, &run)?;
        let query = join_query(uri.query())?;
        // As the reference, a refusal (a thread missing or outside the
        // caller's scope, a run missing) is the stream's one `error` event.
        let mut check = || {
            scoped(&state, caller, Action::Read, json!({"thread_id": tid}), tid).map_err(|e| {
                match e.status {
                    StatusCode::NOT_FOUND => ApiError::not_found("Thread not found"),
                    _ => e,
                }
            })?;
            wait(state.storage.run(tid, rid))?.ok_or_else(|| ApiError::not_found("Run not found"))
        };
        if let Err(refused) = check() {
            return Ok(streaming::error_sse(&refused));
        }
        let Some(live) = state.runs.get(tid, rid) else {
            return Ok(streaming::empty_sse());
        };
        let position = match (&last_event_id, live.resumable) {
            (Some(id), true) => live.events.position_after(id),
            // A late joiner of a run that keeps no ids sees what follows.
            _ if live.events.is_done() => return Ok(streaming::empty_sse()),
            _ => live.events.len(),
        };
        let wanted = flag(query.cancel_on_disconnect.as_deref());
        let guard = cancel_guard(&state, caller, &live, wanted);
        let path = format!("/threads/{tid}/runs/{rid}");
        Ok(streaming::sse(
            live,
            position,
            ModeFilter::only(query.stream_mode.unwrap_or_default()),
            guard,
            Locations {
                location: Some(format!("{path}/stream")),
                content_location: Some(path),
            },
        ))
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct CancelQuery {
    wait: Option<String>,
    action: Option<String>,
}

fn cancel_action(action: Option<&str>) -> Result<CancelAction, ApiError> {
    match action {
        None => Ok(CancelAction::Interrupt),
        Some(a) => CancelAction::parse(a).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "Invalid action: '{a}'. Expected 'interrupt' or 'rollback'"
            ))
        }),
    }
}

/// `POST /threads/{thread_id}/runs/{run_id}/cancel`.
#[utoipa::path(
    post,
    operation_id = "run_access_cancel",
    path = "/threads/{thread_id}/runs/{run_id}/cancel",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("run_id" = Uuid, Path, description = "The run (UUID)")),
    responses((status = 200, description = "Cancelled (`wait=1`: the final state)"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn cancel(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((thread, run)): Path<(String, String)>,
    query: Result<Query<CancelQuery>, QueryRejection>,
) -> Response {
    as_caller(pending, move |caller| {
        let (tid, rid) = ids(&thread, &run)?;
        let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
        let action = cancel_action(query.action.as_deref())?;
        let action_name = query.action.as_deref().unwrap_or("interrupt");
        let value = json!({"thread_id": tid, "action": action_name,
                           "metadata": {"run_ids": [rid], "status": null}});
        let thread = scoped(&state, caller, Action::Update, value, tid)?;
        let live = state.runs.get(thread.thread_id, rid);
        let no_match = || {
            ApiError::not_found(
                "No matching runs to cancel. The run may have finished or may not exist.",
            )
        };
        let live = live.filter(|l| !l.events.is_done()).ok_or_else(no_match)?;
        if !state.runs.cancel(rid, action) {
            return Err(no_match());
        }
        if flag(query.wait.as_deref()) {
            let locations = Locations::default();
            Ok(streaming::json_when_ready(
                async move { live.outcome().await.body() },
                None,
                locations,
            ))
        } else {
            Ok(StatusCode::ACCEPTED.into_response())
        }
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct CancelMany {
    thread_id: Option<Uuid>,
    run_ids: Option<Vec<Uuid>>,
    status: Option<String>,
}

/// `POST /runs/cancel`: runs by id on one thread, or every run pending
/// and/or running the caller may update.
#[utoipa::path(
    post,
    operation_id = "run_access_cancel_many",
    path = "/runs/cancel",
    tag = "runs",
    responses((status = 204, description = "Cancelled"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn cancel_many(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    query: Result<Query<CancelQuery>, QueryRejection>,
    JsonBody(body): JsonBody<CancelMany>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
        let action = cancel_action(query.action.as_deref())?;
        let action_name = query.action.as_deref().unwrap_or("interrupt");
        let none = || ApiError::not_found("No runs found to cancel.");
        let targets: Vec<Uuid> = match (&body.status, &body.thread_id, &body.run_ids) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::unprocessable(
                    "Cannot specify both status and thread_id/run_ids",
                ));
            }
            (Some(status), None, None) => {
                if !matches!(status.as_str(), "pending" | "running" | "all") {
                    return Err(ApiError::unprocessable(format!(
                        "Invalid status: '{status}'. Expected pending, running or all"
                    )));
                }
                let scope = caller.scope(
                    Resource::Threads,
                    Action::Update,
                    json!({"thread_id": null, "action": action_name,
                           "metadata": {"run_ids": null, "status": status}}),
                )?;
                let mut targets = Vec::new();
                for live in state.runs.all_in_flight() {
                    let started = wait(state.storage.run(live.thread_id, live.run_id))?
                        .is_some_and(|r| r.status == RunStatus::Running);
                    let wanted = match status.as_str() {
                        "pending" => !started,
                        "running" => started,
                        _ => true,
                    };
                    if wanted
                        && wait(state.storage.thread(live.thread_id, scope.as_ref()))?.is_some()
                    {
                        targets.push(live.run_id);
                    }
                }
                targets
            }
            (None, Some(tid), Some(run_ids)) => {
                let value = json!({"thread_id": tid, "action": action_name,
                                   "metadata": {"run_ids": run_ids, "status": null}});
                scoped(&state, caller, Action::Update, value, *tid).map_err(|_| none())?;
                run_ids
                    .iter()
                    .copied()
                    .filter(|rid| state.runs.get(*tid, *rid).is_some())
                    .collect()
            }
            _ => {
                return Err(ApiError::unprocessable(
                    "Specify either status, or thread_id and run_ids",
                ));
            }
        };
        let cancelled = targets
            .into_iter()
            .filter(|rid| state.runs.cancel(*rid, action))
            .count();
        if cancelled == 0 {
            return Err(none());
        }
        no_content()
    })
    .await
}

/// `DELETE /threads/{thread_id}/runs/{run_id}`: a run in flight is
/// cancelled first.
#[utoipa::path(
    delete,
    operation_id = "run_access_delete",
    path = "/threads/{thread_id}/runs/{run_id}",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("run_id" = Uuid, Path, description = "The run (UUID)")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn delete(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((thread, run)): Path<(String, String)>,
) -> Response {
    as_caller(pending, move |caller| {
        let (tid, rid) = ids(&thread, &run)?;
        let value = json!({"thread_id": tid, "run_id": rid});
        scoped(&state, caller, Action::Delete, value, tid)?;
        if let Some(live) = state.runs.get(tid, rid)
            && !live.events.is_done()
        {
            state.runs.cancel(rid, CancelAction::Rollback);
            return no_content();
        }
        if wait(state.storage.delete_run(tid, rid))? {
            no_content()
        } else {
            Err(ApiError::not_found("Run not found"))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_queries_take_python_and_js_stream_modes() {
        let q = join_query(Some("stream_mode=values&stream_mode=updates")).unwrap();
        assert_eq!(q.stream_mode.unwrap(), ["values", "updates"]);
        let q = join_query(Some(
            "stream_mode=%5B%22values%22%5D&cancel_on_disconnect=1",
        ))
        .unwrap();
        assert_eq!(q.stream_mode.unwrap(), ["values"]);
        assert!(flag(q.cancel_on_disconnect.as_deref()));
        let q = join_query(Some("stream_mode=")).unwrap();
        assert!(q.stream_mode.is_none());
    }

    #[test]
    fn a_failed_run_joins_as_its_error() {
        let mut thread = crate::storage::Thread::new(Uuid::nil(), Default::default());
        thread.values = json!({"a": 1});
        assert_eq!(settled_body(&thread, RunStatus::Success), json!({"a": 1}));
        thread.error = json!({"error": "ValueError", "message": "boom"});
        assert_eq!(
            settled_body(&thread, RunStatus::Error),
            json!({"__error__": {"error": "ValueError", "message": "boom"}})
        );
    }
}
