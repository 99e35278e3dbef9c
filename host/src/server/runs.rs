//! Creating runs: `POST /threads/{id}/runs[/stream|/wait]`, the stateless
//! `POST /runs[/stream|/wait]` and `POST /runs/batch`.
//!
//! Every run passes `threads.create_run` first (the value of
//! auth-semantics §8.1; metadata the handler stamps lands in the run and in
//! a thread the run creates), then `assistants.read` for a non-system
//! assistant. The `langgraph_auth_*` keys and `user_id` of the client's
//! config and context are dropped and set by the server (`user_id` is the
//! caller's identity); private user fields reach the graph but are never
//! stored.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::crons::resolve_assistant;
use super::error::ApiError;
use super::extract::{JsonBody, client_metadata, ok, path_id, strip_reserved_config};
use super::records;
use super::streaming::{self, CancelOnDrop, Locations, ModeFilter};
use super::threads::new_thread;
use super::{AppState, Pending, as_caller};
use crate::runs::{CancelAction, LiveRun, RunSpec, STREAM_MODES};
use crate::storage::{Object, Run};
use crate::timestamp::now;
use crate::types::{Action, Resource, User};

/// A run body (`RunCreateStateful` / `RunCreateStateless`). Unknown keys
/// are accepted, as by the reference.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = RunCreate)]
pub struct RunCreate {
    /// A registered graph name or an assistant UUID.
    pub assistant_id: String,
    /// The input (null resumes the thread's values).
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// A command (`resume`, `update`, `goto`).
    #[schema(value_type = Option<Object>)]
    pub command: Option<Value>,
    /// The run's metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Object>,
    /// The run's config.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// The run's context.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// One stream mode or a list.
    #[schema(value_type = Option<Object>)]
    pub stream_mode: Option<Value>,
    /// Stream subgraphs' chunks too.
    pub stream_subgraphs: Option<bool>,
    /// Keep the events for `Last-Event-ID` replays.
    pub stream_resumable: Option<bool>,
    /// Interrupt before these nodes.
    #[schema(value_type = Option<Object>)]
    pub interrupt_before: Option<Value>,
    /// Interrupt after these nodes.
    #[schema(value_type = Option<Object>)]
    pub interrupt_after: Option<Value>,
    /// `reject`, `interrupt`, `rollback` or `enqueue` (default).
    pub multitask_strategy: Option<String>,
    /// `create` or `reject` (default).
    pub if_not_exists: Option<String>,
    /// Start delay.
    pub after_seconds: Option<f64>,
    /// Webhook URL.
    pub webhook: Option<String>,
    /// Feedback keys.
    #[schema(value_type = Option<Object>)]
    pub feedback_keys: Option<Value>,
    /// `sync`, `async` or `exit`.
    pub durability: Option<String>,
    /// Deprecated.
    pub checkpoint_during: Option<bool>,
    /// `cancel` or `continue` (stream and wait).
    pub on_disconnect: Option<String>,
    /// `delete` (default) or `keep` (stateless runs).
    pub on_completion: Option<String>,
}

/// Where a run goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// An existing thread (or one to create with `if_not_exists: create`).
    Thread(Uuid),
    /// A temporary thread of its own.
    Stateless,
}

/// A run just created.
pub struct Created {
    /// The record.
    pub run: Run,
    /// Its live state.
    pub live: Arc<LiveRun>,
    /// Whether the body asked to cancel it when the client leaves.
    pub cancel_on_disconnect: bool,
    /// Whether it runs on a temporary thread.
    pub stateless: bool,
}

/// The longest `after_seconds` accepted: a week.
const MAX_AFTER_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

fn one_of(value: &Option<String>, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::unprocessable(format!(
            "Invalid {what}: '{v}'. Expected one of: {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `stream_mode` as a list: one string or a list of them, each a mode this
/// server produces.
fn stream_modes(value: &Option<Value>, default: &[&str]) -> Result<Vec<String>, ApiError> {
    let modes: Vec<String> = match value {
        None | Some(Value::Null) => default.iter().map(|m| (*m).to_owned()).collect(),
        Some(Value::String(mode)) => vec![mode.clone()],
        Some(Value::Array(modes)) => modes
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::unprocessable("stream_mode: expected strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "stream_mode: expected a string or a list",
            ));
        }
    };
    for mode in &modes {
        if !STREAM_MODES.contains(&mode.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "Invalid stream_mode: '{mode}'. Expected one of: {}",
                STREAM_MODES.join(", ")
            )));
        }
    }
    Ok(modes)
}

/// The user as runs record it (`langgraph_auth_user`): its mapping view,
/// with or without the private fields.
fn user_mapping(user: &User, private: bool) -> Value {
    let mut map = Map::new();
    map.insert("identity".into(), json!(user.identity));
    map.insert("is_authenticated".into(), json!(user.is_authenticated));
    map.insert(
        "display_name".into(),
        json!(
            user.display_name
                .clone()
                .unwrap_or_else(|| user.identity.clone())
        ),
    );
    map.insert("permissions".into(), json!(user.permissions));
    for (key, value) in &user.extra {
        if private || !user.private_fields.contains(key) {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(map)
}

/// Drops `user_id` from a client's `configurable` or `context`: the server
/// sets it to the caller's identity (LangGraph lets the client choose it).
pub(super) fn strip_user_id(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("user_id");
    }
}

fn object(value: &Value) -> Object {
    value.as_object().cloned().unwrap_or_default()
}

/// Creates and submits a run as `caller`: validation, authorization,
/// assistant and thread resolution, multitask strategy, config.
pub fn create_run(
    state: &Arc<AppState>,
    caller: &mut Caller,
    target: Target,
    body: RunCreate,
    default_modes: &[&str],
) -> Result<Created, ApiError> {
    one_of(
        &body.multitask_strategy,
        &["reject", "interrupt", "rollback", "enqueue"],
        "multitask_strategy",
    )?;
    one_of(&body.if_not_exists, &["create", "reject"], "if_not_exists")?;
    one_of(
        &body.on_disconnect,
        &["cancel", "continue"],
        "on_disconnect",
    )?;
    one_of(&body.on_completion, &["delete", "keep"], "on_completion")?;
    if let Some(d) = &body.durability {
        one_of(&Some(d.clone()), &["sync", "async", "exit"], "durability")?;
    }
    let modes = stream_modes(&body.stream_mode, default_modes)?;
    if let Some(after) = body.after_seconds
        && !(after.is_finite() && (0.0..=MAX_AFTER_SECONDS).contains(&after))
    {
        return Err(ApiError::unprocessable(format!(
            "Invalid after_seconds: {after}. Expected 0 to {MAX_AFTER_SECONDS}"
        )));
    }
    let mut config = match &body.config {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(ApiError::unprocessable("config: must be an object")),
    };
    let mut context = match &body.context {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(ApiError::unprocessable("context: must be an object")),
    };
    strip_reserved_config(&mut context);
    strip_user_id(&mut context);
    if let Some(configurable) = config.get_mut("configurable") {
        strip_reserved_config(configurable);
        strip_user_id(configurable);
    }
    let has_configurable = config["configurable"]
        .as_object()
        .is_some_and(|c| !c.is_empty());
    if has_configurable && context.as_object().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::bad_request(
            "Cannot specify both configurable and context. Prefer setting context alone. \
             Context was introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable.",
        ));
    }
    if matches!(target, Target::Stateless)
        && body
            .command
            .as_ref()
            .is_some_and(|c| c.get("resume").is_some_and(|r| !r.is_null()))
    {
        return Err(ApiError::bad_request(
            "You must provide a thread_id when resuming.",
        ));
    }
    let assistant_id = resolve_assistant(state, &body.assistant_id)?;
    let run_id = Uuid::now_v7();
    let strategy = body
        .multitask_strategy
        .clone()
        .unwrap_or_else(|| "enqueue".into());
    let if_not_exists = body
        .if_not_exists
        .clone()
        .unwrap_or_else(|| "reject".into());
    let metadata = client_metadata(body.metadata.clone());
    let kwargs_seen = json!({
        "input": body.input, "command": body.command, "config": config, "context": context,
        "stream_mode": modes, "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after, "webhook": body.webhook,
        "feedback_keys": body.feedback_keys, "temporary": matches!(target, Target::Stateless),
        "subgraphs": body.stream_subgraphs.unwrap_or(false),
        "resumable": body.stream_resumable.unwrap_or(false),
    });
    let thread_id = match target {
        Target::Thread(id) => Some(id),
        Target::Stateless => None,
    };
    let value = json!({
        "thread_id": thread_id, "assistant_id": assistant_id, "run_id": run_id,
        "status": "pending", "metadata": metadata, "prevent_insert_if_inflight": true,
        "multitask_strategy": strategy, "if_not_exists": if_not_exists,
        "after_seconds": body.after_seconds, "kwargs": kwargs_seen,
    });
    let authorized = caller.authorize(Resource::Threads, Action::CreateRun, value)?;
    let stamped = match authorized.value.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => metadata,
    };
    let not_found = || ApiError::not_found("Thread or assistant not found.");

    // The assistant; a non-system one must be readable by the caller.
    let assistant = state
        .storage
        .assistant(assistant_id, None)?
        .ok_or_else(not_found)?;
    // A system assistant is the server's (marked in storage, not the
    // client-writable `metadata.created_by`) at a served graph's id.
    let system = state.graphs.values().any(|id| *id == assistant_id)
        && state.storage.is_system_assistant(assistant_id)?;
    if !system {
        let scope = caller.scope(
            Resource::Assistants,
            Action::Read,
            json!({"assistant_id": assistant_id}),
        )?;
        if scope.is_some()
            && state
                .storage
                .assistant(assistant_id, scope.as_ref())?
                .is_none()
        {
            return Err(not_found());
        }
    }
    let graph = state
        .graph_components
        .get(&assistant.graph_id)
        .map(|slot| slot.current())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Graph '{}' is not loaded", assistant.graph_id),
            )
        })?;

    // The thread: existing (within the create_run scope), or made now.
    let graph_keys = json!({"graph_id": assistant.graph_id, "assistant_id": assistant_id});
    let (thread, created) = match target {
        Target::Thread(id) => match state.storage.thread(id, authorized.filter.as_ref())? {
            Some(thread) => (thread, false),
            None if if_not_exists == "create" && state.storage.thread(id, None)?.is_none() => {
                let mut metadata = stamped.clone();
                metadata.extend(object(&graph_keys));
                let thread = new_thread(id, metadata);
                if !state.storage.insert_thread(&thread)? {
                    return Err(not_found());
                }
                (thread, true)
            }
            None => return Err(not_found()),
        },
        Target::Stateless => {
            let mut metadata = stamped.clone();
            metadata.extend(object(&graph_keys));
            let thread = new_thread(Uuid::now_v7(), metadata);
            state.storage.insert_thread(&thread)?;
            (thread, true)
        }
    };

    // Multitask: runs already in flight on the thread.
    let in_flight = state.runs.in_flight(thread.thread_id);
    if !in_flight.is_empty() {
        match strategy.as_str() {
            "reject" => {
                return Err(ApiError::conflict(
                    "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
                ));
            }
            "interrupt" | "rollback" => {
                let action = CancelAction::parse(&strategy).unwrap_or(CancelAction::Interrupt);
                let run_ids: Vec<Uuid> = in_flight.iter().map(|r| r.run_id).collect();
                let scope = caller.scope(
                    Resource::Threads,
                    Action::Update,
                    json!({"thread_id": thread.thread_id, "action": strategy,
                           "metadata": {"run_ids": run_ids, "status": null}}),
                )?;
                // As `POST /threads/{id}/state`: a thread the caller may run
                // on but not update is a 403, and nothing is cancelled.
                if scope.is_some()
                    && state
                        .storage
                        .thread(thread.thread_id, scope.as_ref())?
                        .is_none()
                {
                    return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden"));
                }
                for run in &in_flight {
                    state.runs.cancel(run.run_id, action);
                }
            }
            _ => {}
        }
    }

    if !created {
        state
            .storage
            .update_thread(thread.thread_id, None, &object(&graph_keys))?;
    }

    // Config: the assistant's, the client's, then the server's keys.
    let user = &caller.user;
    let mut configurable = object(&assistant.config["configurable"]);
    configurable.extend(object(&config["configurable"]));
    configurable.extend(object(&context));
    let server_keys = json!({
        "run_id": run_id, "thread_id": thread.thread_id, "graph_id": assistant.graph_id,
        "assistant_id": assistant_id, "user_id": user.identity,
        "langgraph_auth_user_id": user.identity,
        "langgraph_auth_permissions": user.permissions,
    });
    configurable.extend(object(&server_keys));
    let mut full_config = config.clone();
    let mut stored_config = config.clone();
    let mut stored_configurable = configurable.clone();
    configurable.insert("langgraph_auth_user".into(), user_mapping(user, true));
    stored_configurable.insert("langgraph_auth_user".into(), user_mapping(user, false));
    full_config["configurable"] = Value::Object(configurable);
    stored_config["configurable"] = Value::Object(stored_configurable);
    let mut full_context = object(&assistant.context);
    full_context.extend(object(&context));
    if full_context.contains_key("user_id") {
        full_context.insert("user_id".into(), json!(user.identity));
    }

    // Metadata: the assistant's, the thread's, the config's, the run's.
    let mut run_metadata = assistant.metadata.clone();
    run_metadata.extend(thread.metadata.clone());
    run_metadata.extend(object(&config["metadata"]));
    run_metadata.extend(stamped);
    run_metadata.insert("assistant_id".into(), json!(assistant_id));
    run_metadata.insert("graph_id".into(), json!(assistant.graph_id));

    let mut kwargs = kwargs_seen;
    kwargs["config"] = stored_config;
    kwargs["context"] = Value::Object(full_context.clone());
    kwargs["checkpoint_during"] = json!(body.checkpoint_during.unwrap_or(true));
    kwargs["durability"] = json!(body.durability.clone().unwrap_or_else(|| "async".into()));
    let now = now();
    let run = Run {
        run_id,
        thread_id: thread.thread_id,
        assistant_id,
        created_at: now.clone(),
        updated_at: now,
        status: "pending".into(),
        metadata: run_metadata,
        kwargs,
        multitask_strategy: strategy,
    };
    let stateless = matches!(target, Target::Stateless);
    let spec = RunSpec {
        run: run.clone(),
        thread_created_at: thread.created_at.clone(),
        graph,
        input: body.input.clone().unwrap_or(Value::Null),
        config: full_config,
        context: Value::Object(full_context),
        stream_modes: modes,
        resumable: body.stream_resumable.unwrap_or(false),
        delete_thread: stateless && body.on_completion.as_deref() != Some("keep"),
        start_after: body
            .after_seconds
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
    };
    let live = state.runs.submit(spec)?;
    Ok(Created {
        run,
        live,
        cancel_on_disconnect: body.on_disconnect.as_deref() == Some("cancel"),
        stateless,
    })
}

fn run_path(created: &Created) -> String {
    if created.stateless {
        format!("/runs/{}", created.run.run_id)
    } else {
        format!(
            "/threads/{}/runs/{}",
            created.run.thread_id, created.run.run_id
        )
    }
}

fn thread_target(thread: Option<String>) -> Result<Target, ApiError> {
    Ok(match thread {
        Some(id) => Target::Thread(path_id(&id, "thread")?),
        None => Target::Stateless,
    })
}

async fn create(
    state: Arc<AppState>,
    pending: Pending,
    thread: Option<String>,
    body: Result<RunCreate, ApiError>,
) -> Response {
    as_caller(pending, move |caller| {
        let target = thread_target(thread)?;
        let created = create_run(&state, caller, target, body?, &["values"])?;
        let content_location = run_path(&created);
        let mut response = ok(records::Run::from(created.run))?;
        Locations {
            location: None,
            content_location: Some(content_location),
        }
        .apply(&mut response);
        Ok(response)
    })
    .await
}

async fn stream(
    state: Arc<AppState>,
    pending: Pending,
    thread: Option<String>,
    body: Result<RunCreate, ApiError>,
) -> Response {
    as_caller(pending, move |caller| {
        let target = thread_target(thread)?;
        let created = create_run(&state, caller, target, body?, &["values"])?;
        let guard = created
            .cancel_on_disconnect
            .then(|| CancelOnDrop::new(state.runs.clone(), created.live.clone()));
        let path = run_path(&created);
        let locations = Locations {
            location: Some(format!("{path}/stream")),
            content_location: Some(path),
        };
        Ok(streaming::sse(
            created.live,
            0,
            ModeFilter::all(),
            guard,
            locations,
        ))
    })
    .await
}

async fn wait(
    state: Arc<AppState>,
    pending: Pending,
    thread: Option<String>,
    body: Result<RunCreate, ApiError>,
) -> Response {
    as_caller(pending, move |caller| {
        let target = thread_target(thread)?;
        let created = create_run(&state, caller, target, body?, &["values"])?;
        let guard = created
            .cancel_on_disconnect
            .then(|| CancelOnDrop::new(state.runs.clone(), created.live.clone()));
        let thread_path = format!(
            "/threads/{}/runs/{}",
            created.run.thread_id, created.run.run_id
        );
        let locations = Locations {
            location: Some(format!("{thread_path}/join")),
            content_location: Some(thread_path),
        };
        let live = created.live;
        Ok(streaming::json_when_ready(
            async move { live.outcome().await.body() },
            guard,
            locations,
        ))
    })
    .await
}

/// `POST /threads/{thread_id}/runs`.
#[utoipa::path(
    post,
    operation_id = "runs_create_stateful",
    path = "/threads/{thread_id}/runs",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    request_body = RunCreate,
    responses((status = 200, description = "The run, pending; `Content-Location` names it", body = records::Run), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn create_stateful(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(thread): Path<String>,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    create(state, pending, Some(thread), body).await
}

/// `POST /runs`.
#[utoipa::path(
    post,
    operation_id = "runs_create_stateless",
    path = "/runs",
    tag = "runs",
    request_body = RunCreate,
    responses((status = 200, description = "The run, pending, on a temporary thread", body = records::Run), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn create_stateless(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    create(state, pending, None, body).await
}

/// `POST /threads/{thread_id}/runs/stream`.
#[utoipa::path(
    post,
    operation_id = "runs_stream_stateful",
    path = "/threads/{thread_id}/runs/stream",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    request_body = RunCreate,
    responses((status = 200, description = "SSE: `metadata`, then one event per chunk", content_type = "text/event-stream"), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn stream_stateful(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(thread): Path<String>,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    stream(state, pending, Some(thread), body).await
}

/// `POST /runs/stream`.
#[utoipa::path(
    post,
    operation_id = "runs_stream_stateless",
    path = "/runs/stream",
    tag = "runs",
    request_body = RunCreate,
    responses((status = 200, description = "SSE: `metadata`, then one event per chunk", content_type = "text/event-stream"), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn stream_stateless(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    stream(state, pending, None, body).await
}

/// `POST /threads/{thread_id}/runs/wait`.
#[utoipa::path(
    post,
    operation_id = "runs_wait_stateful",
    path = "/threads/{thread_id}/runs/wait",
    tag = "runs",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    request_body = RunCreate,
    responses((status = 200, description = "The final state, or `__error__`"), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn wait_stateful(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(thread): Path<String>,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    wait(state, pending, Some(thread), body).await
}

/// `POST /runs/wait`.
#[utoipa::path(
    post,
    operation_id = "runs_wait_stateless",
    path = "/runs/wait",
    tag = "runs",
    request_body = RunCreate,
    responses((status = 200, description = "The final state, or `__error__`"), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn wait_stateless(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<RunCreate>,
) -> Response {
    wait(state, pending, None, body).await
}

/// `POST /runs/batch`: a list of stateless run bodies.
#[utoipa::path(
    post,
    operation_id = "runs_batch",
    path = "/runs/batch",
    tag = "runs",
    request_body = Vec<RunCreate>,
    responses((status = 200, description = "The runs, pending", body = Vec<records::Run>), (status = 404, description = "Not found, or outside the caller's scope", body = super::openapi::ErrorBody), (status = 422, description = "Invalid input", body = super::openapi::ErrorBody))
)]
pub(super) async fn batch(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Vec<RunCreate>>,
) -> Response {
    as_caller(pending, move |caller| {
        let bodies = body?;
        let max = state.limits.max_batch_runs;
        if bodies.len() > max {
            return Err(ApiError::unprocessable(format!(
                "A batch holds at most {max} runs (`limits.max_batch_runs`); this one has {}",
                bodies.len()
            )));
        }
        let mut runs = Vec::with_capacity(bodies.len());
        for body in bodies {
            let created = create_run(&state, caller, Target::Stateless, body, &["values"])?;
            runs.push(records::Run::from(created.run));
        }
        ok(runs)
    })
    .await
}
