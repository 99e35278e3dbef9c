//! Creating runs: `POST /threads/{id}/runs[/stream|/wait]`, the stateless
//! `POST /runs[/stream|/wait]` and `POST /runs/batch`. What creating one
//! means (validation, authorization, multitask strategy) is the run
//! executor's: [`crate::runs::Runs::create`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::extract::{JsonBody, ok, path_id};
use super::records;
use crate::runs::{Authorizer, CreateError, Created, RunCreate, Target};
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::streaming::{self, CancelOnDrop, Locations, ModeFilter};
use crate::server::{AppState, Pending, as_caller};
use crate::types::{Action, Filter, Resource, User};

/// `threads.create_run` and the events it leads to, as the caller.
impl Authorizer for Caller {
    type Error = ApiError;

    fn user(&self) -> &User {
        &self.user
    }

    fn authorize(
        &mut self,
        resource: Resource,
        action: Action,
        value: Value,
    ) -> Result<(Option<Filter>, Value), ApiError> {
        let authorized = Caller::authorize(self, resource, action, value)?;
        Ok((authorized.filter, authorized.value))
    }
}

impl From<CreateError<ApiError>> for ApiError {
    fn from(error: CreateError<ApiError>) -> Self {
        match error {
            CreateError::Invalid(detail) => ApiError::unprocessable(detail),
            CreateError::BadRequest(detail) => ApiError::bad_request(detail),
            CreateError::NotFound | CreateError::CheckpointNotFound(_) => {
                ApiError::not_found(error.to_string())
            }
            CreateError::ThreadBusy => ApiError::conflict(error.to_string()),
            CreateError::Forbidden => ApiError::new(StatusCode::FORBIDDEN, error.to_string()),
            CreateError::GraphNotLoaded(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            CreateError::Denied(error) => error,
            CreateError::Storage(error) => error.into(),
            CreateError::Submit(error) => error.into(),
        }
    }
}

/// Creates and submits a run as `caller` ([`crate::runs::Runs::create`]).
pub fn create_run(
    state: &Arc<AppState>,
    caller: &mut Caller,
    target: Target,
    body: RunCreate,
    default_modes: &[&str],
) -> Result<Created, ApiError> {
    Ok(state
        .runs
        .create(&state.run_graphs(), caller, target, body, default_modes)?)
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
    responses((status = 200, description = "The run, pending; `Content-Location` names it", body = records::Run), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn create_stateful(
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
    responses((status = 200, description = "The run, pending, on a temporary thread", body = records::Run), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn create_stateless(
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
    responses((status = 200, description = "SSE: `metadata`, then one event per chunk", content_type = "text/event-stream"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn stream_stateful(
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
    responses((status = 200, description = "SSE: `metadata`, then one event per chunk", content_type = "text/event-stream"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn stream_stateless(
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
    responses((status = 200, description = "The final state, or `__error__`"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn wait_stateful(
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
    responses((status = 200, description = "The final state, or `__error__`"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn wait_stateless(
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
    responses((status = 200, description = "The runs, pending", body = Vec<records::Run>), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn batch(
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
