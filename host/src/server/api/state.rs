//! A thread's state and history: `GET /threads/{id}/state[/{checkpoint}]`,
//! `POST …/state/checkpoint`, `POST …/state` (update), `GET|POST
//! …/history`. Each checkpoint is one step of a run, as graphs report them.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{JsonBody, ok, path_id};
use super::threads::scoped;
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::{AppState, Pending, as_caller};
use crate::storage::{Checkpoint, Durability, Object, Thread, wait};
use crate::timestamp::now;
use crate::types::{Action, Resource};

fn readable(state: &AppState, caller: &mut Caller, id: Uuid) -> Result<Thread, ApiError> {
    scoped(state, caller, Action::Read, json!({"thread_id": id}), id)
}

fn checkpoint_ref(thread_id: Uuid, checkpoint_id: &str) -> Value {
    json!({"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id})
}

/// A checkpoint as the API shows it (`ThreadState`): its `interrupts` are
/// the `interrupt` calls the run paused on, each also under its node's
/// task.
fn thread_state(c: &Checkpoint) -> Value {
    let tasks: Vec<Value> = c
        .tasks()
        .map(|task| {
            json!({"id": c.task_id(task.node, task.send()), "name": task.node,
                   "path": task.path(), "error": null, "interrupts": c.interrupts_of(&task),
                   "checkpoint": null, "state": null,
                   "result": c.finished_of(&task).map(|r| &r.update)})
        })
        .collect();
    let interrupts: Vec<Value> = c
        .interrupts
        .iter()
        .map(|i| json!({"id": i.id, "value": i.value}))
        .collect();
    json!({
        "values": c.values,
        "next": c.nodes_to_run(),
        "tasks": tasks,
        "metadata": c.metadata,
        "created_at": c.created_at,
        "checkpoint": checkpoint_ref(c.thread_id, &c.checkpoint_id),
        "parent_checkpoint": c.parent_checkpoint_id.as_deref().map(|p| checkpoint_ref(c.thread_id, p)),
        "interrupts": interrupts,
        "checkpoint_id": c.checkpoint_id,
        "parent_checkpoint_id": c.parent_checkpoint_id,
    })
}

/// The state of a thread with no checkpoint.
fn empty_state() -> Value {
    json!({"values": {}, "next": [], "tasks": [], "metadata": null, "created_at": null,
           "checkpoint": null, "parent_checkpoint": null, "interrupts": [],
           "checkpoint_id": null, "parent_checkpoint_id": null})
}

fn latest(state: &AppState, id: Uuid) -> Result<Option<Checkpoint>, ApiError> {
    Ok(
        wait(state.storage.checkpoints(id, 1, None, &Object::new()))?
            .into_iter()
            .next(),
    )
}

/// `GET /threads/{thread_id}/state`.
#[utoipa::path(
    get,
    operation_id = "state_get",
    path = "/threads/{thread_id}/state",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The thread's current state (`ThreadState`)"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn get(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        readable(&state, caller, id)?;
        ok(latest(&state, id)?
            .map(|c| thread_state(&c))
            .unwrap_or_else(empty_state))
    })
    .await
}

fn at_checkpoint(state: &AppState, id: Uuid, checkpoint_id: &str) -> Result<Value, ApiError> {
    wait(state.storage.checkpoint(id, checkpoint_id))?
        .map(|c| thread_state(&c))
        .ok_or_else(|| ApiError::not_found(format!("Checkpoint {checkpoint_id} not found")))
}

/// `GET /threads/{thread_id}/state/{checkpoint_id}`.
#[utoipa::path(
    get,
    operation_id = "state_get_at",
    path = "/threads/{thread_id}/state/{checkpoint_id}",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)"), ("checkpoint_id" = String, Path, description = "The checkpoint")),
    responses((status = 200, description = "The state at a checkpoint"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn get_at(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path((id, checkpoint_id)): Path<(String, String)>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        readable(&state, caller, id)?;
        ok(at_checkpoint(&state, id, &checkpoint_id)?)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct CheckpointBody {
    checkpoint: Option<Value>,
}

/// `POST /threads/{thread_id}/state/checkpoint`.
#[utoipa::path(
    post,
    operation_id = "state_post_checkpoint",
    path = "/threads/{thread_id}/state/checkpoint",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The state at a checkpoint"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn post_checkpoint(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CheckpointBody>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "thread")?;
        readable(&state, caller, id)?;
        match body
            .checkpoint
            .as_ref()
            .and_then(|c| c["checkpoint_id"].as_str())
        {
            Some(checkpoint_id) => ok(at_checkpoint(&state, id, checkpoint_id)?),
            None => ok(latest(&state, id)?
                .map(|c| thread_state(&c))
                .unwrap_or_else(empty_state)),
        }
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct UpdateBody {
    values: Option<Value>,
    as_node: Option<String>,
    /// A past checkpoint to update instead of the latest (time travel).
    checkpoint_id: Option<Value>,
    /// `{"checkpoint_id": ...}`: the same; it wins over `checkpoint_id`.
    checkpoint: Option<Value>,
}

impl UpdateBody {
    /// The past checkpoint to update, if any: a UUID.
    fn past_checkpoint(&self) -> Result<Option<String>, ApiError> {
        let named = match (&self.checkpoint, &self.checkpoint_id) {
            (Some(Value::Object(c)), _) if c.contains_key("checkpoint_id") => {
                c.get("checkpoint_id")
            }
            (Some(Value::Object(_) | Value::Null) | None, id) => id.as_ref(),
            (Some(_), _) => {
                return Err(ApiError::unprocessable(
                    "checkpoint must be an object with a checkpoint_id",
                ));
            }
        };
        match named {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(id)) if Uuid::parse_str(id).is_ok() => Ok(Some(id.clone())),
            Some(_) => Err(ApiError::unprocessable("Invalid checkpoint ID")),
        }
    }
}

/// `POST /threads/{thread_id}/state`: writes a checkpoint whose values are
/// the latest checkpoint's (or the past one `checkpoint_id` names: a new
/// branch of the history) with `values` applied through the graph's
/// reducers, as if `as_node` had returned them.
#[utoipa::path(
    post,
    operation_id = "state_update",
    path = "/threads/{thread_id}/state",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The new checkpoint"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 409, description = "A run is in flight on the thread", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn update(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "thread")?;
        let thread = readable(&state, caller, id)?;
        let scope = caller.scope(Resource::Threads, Action::Update, json!({"thread_id": id}))?;
        if scope.is_some() && wait(state.storage.thread(id, scope.as_ref()))?.is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Forbidden",
            ));
        }
        if !state.runs.unfinished(id).is_empty() {
            return Err(ApiError::conflict(
                "Thread is busy: a run is in flight. Update its state once the run ends.",
            ));
        }
        let past = body.past_checkpoint()?;
        let previous = match &past {
            Some(checkpoint_id) => Some(
                wait(state.storage.checkpoint(id, checkpoint_id))?.ok_or_else(|| {
                    ApiError::not_found(format!(
                        "Checkpoint {checkpoint_id} not found on the thread"
                    ))
                })?,
            ),
            None => latest(&state, id)?,
        };
        let mut values = previous
            .as_ref()
            .map(|c| c.values.clone())
            .or_else(|| thread.values.is_object().then(|| thread.values.clone()))
            .unwrap_or_else(|| json!({}));
        let update = body.values.unwrap_or(Value::Null);
        if !(update.is_object() || update.is_null()) {
            return Err(ApiError::bad_request(
                "values: expected an object of state keys",
            ));
        }
        // Through the graph's reducers (messages append), when the thread
        // has run a graph; key by key otherwise.
        let graph = thread
            .metadata
            .get("graph_id")
            .and_then(Value::as_str)
            .and_then(|id| state.graph_components.get(id))
            .map(|slot| slot.current());
        // What runs next, as LangGraph decides it: after `as_node`, where
        // its edges lead (a router's choice is not known here: none); else
        // what was to run before, sent tasks included (its `interrupt`
        // calls unanswered: they are asked again).
        let (next, sends): (Vec<String>, Vec<Value>) = match (&body.as_node, &graph) {
            (Some(node), Some(graph)) => {
                let ways: Vec<_> = graph
                    .info()
                    .edges
                    .iter()
                    .filter(|e| &e.source == node)
                    .collect();
                let next = if ways.iter().any(|e| e.conditional) {
                    Vec::new()
                } else {
                    ways.iter()
                        .filter(|e| e.target != "__end__")
                        .map(|e| e.target.clone())
                        .collect()
                };
                (next, Vec::new())
            }
            (Some(_), None) => (Vec::new(), Vec::new()),
            (None, _) => previous
                .as_ref()
                .map(|c| (c.next.clone(), c.sends.clone()))
                .unwrap_or_default(),
        };
        match (graph, &mut values, &update) {
            (_, _, Value::Null) => {}
            (Some(graph), _, _) => {
                // Graph code: on a run worker (within `--workers`), within
                // its own deadline, waiting for the worker included.
                let timeout = state.limits.state_update_timeout;
                let started = std::time::Instant::now();
                let _worker = run_worker(&state, timeout)?;
                let left = timeout.saturating_sub(started.elapsed());
                values = graph
                    .apply_within(&values, &update, left)
                    .map_err(|failure| {
                        let (error, message) = failure.error_and_message();
                        ApiError::bad_request(format!("{error}: {message}"))
                    })?;
            }
            (None, Value::Object(values), Value::Object(update)) => values.extend(update.clone()),
            _ => {}
        }
        let node = body.as_node.unwrap_or_else(|| "__update__".into());
        let step = previous
            .as_ref()
            .and_then(|c| c.metadata.get("step"))
            .and_then(Value::as_i64)
            .unwrap_or(-1)
            + 1;
        let mut metadata = Object::new();
        metadata.insert("source".into(), json!("update"));
        metadata.insert("step".into(), json!(step));
        metadata.insert("writes".into(), json!({ node: update }));
        metadata.insert("parents".into(), json!({}));
        if let Some(past) = &past {
            metadata.insert("checkpoint_id".into(), json!(past));
        }
        metadata.insert(
            "user_id".into(),
            json!(
                caller
                    .user
                    .display_name
                    .clone()
                    .unwrap_or_else(|| caller.user.identity.clone())
            ),
        );
        let checkpoint = Checkpoint {
            thread_id: id,
            checkpoint_id: Uuid::now_v7().to_string(),
            parent_checkpoint_id: previous.map(|c| c.checkpoint_id),
            run_id: None,
            values,
            next,
            metadata,
            created_at: now(),
            interrupts: Vec::new(),
            sends,
            finished: Vec::new(),
        };
        wait(
            state
                .storage
                .put_checkpoint(&checkpoint, Durability::Durable),
        )?;
        let reference = checkpoint_ref(id, &checkpoint.checkpoint_id);
        ok(json!({"checkpoint": reference, "configurable": reference,
                  "checkpoint_id": checkpoint.checkpoint_id}))
    })
    .await
}

/// A run worker for a state update's graph code, waited for at most
/// `timeout` (on this work-pool thread); 429 when none frees up.
fn run_worker(
    state: &AppState,
    timeout: std::time::Duration,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let workers = state.runs.workers().clone();
    let permit = match workers.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|runtime| {
                runtime
                    .block_on(tokio::time::timeout(timeout, workers.acquire_owned()))
                    .ok()
                    .and_then(Result::ok)
            }),
    };
    permit.ok_or_else(|| {
        let mut error = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Every run worker is busy (`--workers`): a state update runs the graph's \
                 reducers on one, waiting at most {} ms (`limits.state_update_timeout_ms`); \
                 retry later",
                timeout.as_millis()
            ),
        );
        error.headers.push(("retry-after".into(), "1".into()));
        error
    })
}

#[derive(Deserialize, Default)]
pub(in crate::server) struct HistoryBody {
    limit: Option<u64>,
    before: Option<Value>,
    metadata: Option<Object>,
}

fn history(state: &AppState, id: Uuid, body: HistoryBody) -> Result<Response, ApiError> {
    let before = match &body.before {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Object(c)) => c
            .get("checkpoint_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let (max, max_bytes) = (state.limits.max_history, state.limits.history_bytes);
    let limit = body.limit.unwrap_or(1);
    if limit > max {
        return Err(ApiError::unprocessable(format!(
            "limit must be at most {max} (`limits.max_history`)"
        )));
    }
    // Page by page, so that an answer past `limits.history_mib` is refused
    // before it is all in memory.
    let metadata = body.metadata.unwrap_or_default();
    let (mut states, mut bytes, mut before) = (Vec::new(), 0, before);
    while (states.len() as u64) < limit {
        let asked = (limit - states.len() as u64).min(HISTORY_PAGE);
        let page = wait(
            state
                .storage
                .checkpoints(id, asked, before.as_deref(), &metadata),
        )?;
        before = page.last().map(|c| c.checkpoint_id.clone());
        let full = page.len() as u64 == asked;
        for checkpoint in &page {
            let value = thread_state(checkpoint);
            bytes += crate::runs::json_size(&value);
            if bytes > max_bytes {
                return Err(ApiError::unprocessable(format!(
                    "The states asked for pass {} MiB (`limits.history_mib`): ask for fewer \
                     (`limit`) and page with `before`",
                    max_bytes >> 20
                )));
            }
            states.push(value);
        }
        if !full {
            break;
        }
    }
    ok(states)
}

/// Checkpoints read from storage at once for a history.
const HISTORY_PAGE: u64 = 16;

/// `POST /threads/{thread_id}/history`.
#[utoipa::path(
    post,
    operation_id = "state_post_history",
    path = "/threads/{thread_id}/history",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "Checkpoints, newest first"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn post_history(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<HistoryBody>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "thread")?;
        readable(&state, caller, id)?;
        history(&state, id, body)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct HistoryQuery {
    limit: Option<u64>,
    before: Option<String>,
}

/// `GET /threads/{thread_id}/history`.
#[utoipa::path(
    get,
    operation_id = "state_get_history",
    path = "/threads/{thread_id}/history",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "Checkpoints, newest first"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn get_history(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
        readable(&state, caller, id)?;
        history(
            &state,
            id,
            HistoryBody {
                limit: query.limit,
                before: query.before.map(Value::String),
                metadata: None,
            },
        )
    })
    .await
}
