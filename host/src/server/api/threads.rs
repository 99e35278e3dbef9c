//! `/threads`: create, read, update, delete, search, count, copy, prune,
//! and the stream of all a thread's runs.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::server::error::ErrorBody;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{
    JsonBody, client_metadata, limits, no_content, ok, order, paged, path_id, select, sort_by,
    stamped_metadata,
};
use super::records;
use crate::server::error::ApiError;
use crate::server::streaming::{ThreadBinding, ThreadModes, error_sse, thread_sse};
use crate::server::{AppState, Pending, as_caller, as_caller_then};
use crate::storage::{Filter, Object, Thread, ThreadQuery, ThreadStatus, wait};
use crate::types::{Action, Resource};

const FIELDS: &[&str] = &[
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "config",
    "values",
    "interrupts",
    "error",
];
const SORTS: &[&str] = &[
    "thread_id",
    "status",
    "created_at",
    "updated_at",
    "state_updated_at",
];

/// 404 `Thread with ID <id> not found`.
pub(in crate::server) fn missing(id: Uuid) -> ApiError {
    ApiError::not_found(format!("Thread with ID {id} not found"))
}

/// The thread, if the caller may `action` it (the event fired with
/// `value`); otherwise [`missing`].
pub(in crate::server) fn scoped(
    state: &AppState,
    caller: &mut crate::server::Caller,
    action: Action,
    value: Value,
    id: Uuid,
) -> Result<Thread, ApiError> {
    let scope = caller.scope(Resource::Threads, action, value)?;
    wait(state.storage.thread(id, scope.as_ref()))?.ok_or_else(|| missing(id))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ThreadCreate)]
pub(in crate::server) struct Create {
    thread_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    if_exists: Option<String>,
}

#[utoipa::path(
    post,
    operation_id = "threads_create",
    path = "/threads",
    tag = "threads",
    request_body = Create,
    responses((status = 200, description = "The thread", body = records::Thread), (status = 409, description = "The id is taken", body = ErrorBody), (status = 403, description = "Refused by the auth plugin", body = ErrorBody))
)]
pub(in crate::server) async fn create(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Create>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let if_exists = body.if_exists.unwrap_or_else(|| "raise".into());
        if !matches!(if_exists.as_str(), "raise" | "do_nothing") {
            return Err(ApiError::unprocessable(format!(
                "Invalid if_exists: '{if_exists}'. Expected 'raise' or 'do_nothing'"
            )));
        }
        let id = body.thread_id.unwrap_or_else(Uuid::now_v7);
        let metadata = client_metadata(body.metadata);
        let value = json!({"thread_id": id, "metadata": metadata, "if_exists": if_exists});
        let authorized = caller.authorize(Resource::Threads, Action::Create, value)?;
        let thread = Thread::new(id, stamped_metadata(&authorized.value, metadata));
        if wait(state.storage.insert_thread(&thread))? {
            return ok(records::Thread::from(thread));
        }
        let exists = || ApiError::conflict(format!("Thread with ID {id} already exists"));
        // The id is taken: one the caller may not see stays a conflict.
        let Some(existing) = wait(state.storage.thread(id, authorized.filter.as_ref()))? else {
            return Err(exists());
        };
        match if_exists.as_str() {
            "do_nothing" => ok(records::Thread::from(existing)),
            _ => Err(exists()),
        }
    })
    .await
}

#[utoipa::path(
    get,
    operation_id = "threads_get",
    path = "/threads/{thread_id}",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The thread", body = records::Thread), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn get(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    let storage = state.storage.clone();
    as_caller_then(
        pending,
        &*state.storage,
        move |caller| {
            let id = path_id(&id, "thread")?;
            let scope = caller.scope(Resource::Threads, Action::Read, json!({"thread_id": id}))?;
            Ok((id, scope))
        },
        move |(id, scope)| async move {
            ok(storage
                .thread(id, scope.as_ref())
                .await?
                .map(records::Thread::from)
                .ok_or_else(|| missing(id))?)
        },
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ThreadPatch)]
pub(in crate::server) struct Patch {
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
}

#[utoipa::path(
    patch,
    operation_id = "threads_patch",
    path = "/threads/{thread_id}",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    request_body = Patch,
    responses((status = 200, description = "The updated thread", body = records::Thread), (status = 204, description = "Updated (`Prefer: return=minimal`)"), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn patch(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Patch>,
) -> Response {
    let minimal = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("return=minimal"));
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "thread")?;
        let metadata = client_metadata(body.metadata);
        let value = json!({"thread_id": id, "metadata": metadata});
        let authorized = caller.authorize(Resource::Threads, Action::Update, value)?;
        let metadata = stamped_metadata(&authorized.value, metadata);
        let thread = wait(
            state
                .storage
                .update_thread(id, authorized.filter.as_ref(), &metadata),
        )?
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
        if minimal {
            no_content()
        } else {
            ok(records::Thread::from(thread))
        }
    })
    .await
}

#[utoipa::path(
    delete,
    operation_id = "threads_delete",
    path = "/threads/{thread_id}",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn delete(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        let scope = caller.scope(Resource::Threads, Action::Delete, json!({"thread_id": id}))?;
        if delete_within(&state, id, scope.as_ref())? {
            no_content()
        } else {
            Err(missing(id))
        }
    })
    .await
}

/// Deletes the thread if it lies within `scope`, its runs in flight
/// stopped first (they write nothing after), then forgets it in memory
/// (its runs' events dropped, its streams ended); false when it does not.
fn delete_within(state: &AppState, id: Uuid, scope: Option<&Filter>) -> Result<bool, ApiError> {
    if wait(state.storage.thread(id, scope))?.is_none() {
        return Ok(false);
    }
    for run in state.runs.in_flight(id) {
        state
            .runs
            .cancel(run.run_id, crate::runs::CancelAction::Interrupt);
    }
    let deleted = wait(state.storage.delete_thread(id, scope))?;
    if deleted {
        state.runs.forget_thread(id);
    }
    Ok(deleted)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ThreadPrune)]
pub(in crate::server) struct Prune {
    /// The threads (UUIDs).
    thread_ids: Vec<String>,
    /// `delete` (the default) deletes the threads; `keep_latest` keeps each
    /// thread with only its latest checkpoint.
    strategy: Option<String>,
}

#[utoipa::path(
    post,
    operation_id = "threads_prune",
    path = "/threads/prune",
    tag = "threads",
    request_body = Prune,
    responses((status = 200, description = "How many threads were pruned: `{\"pruned_count\": n}`", body = Object), (status = 404, description = "A thread is missing or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn prune(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Prune>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let ids = body
            .thread_ids
            .iter()
            .map(|id| {
                Uuid::parse_str(id)
                    .map_err(|_| ApiError::unprocessable("Invalid thread ID: must be a UUID"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keep_latest = match body.strategy.as_deref() {
            None | Some("delete") => false,
            Some("keep_latest") => true,
            Some(other) => {
                // The reference's request-schema message.
                let other = Value::from(other);
                return Err(ApiError::unprocessable(format!(
                    "{other} is not one of \"delete\" or \"keep_latest\"\n\n\
                     Failed validating \"enum\" in schema[\"properties\"][\"strategy\"]\n\n\
                     On instance[\"strategy\"]:\n    {other}"
                )));
            }
        };
        if ids.is_empty() {
            return ok(json!({"pruned_count": 0}));
        }
        // As the reference: one event for the whole batch, whose filter
        // every thread must pass; then each thread's own delete event,
        // whose refusals are skipped.
        let scope = caller.scope(
            Resource::Threads,
            Action::Delete,
            json!({"thread_ids": body.thread_ids}),
        )?;
        if scope.is_some() {
            for &id in &ids {
                if wait(state.storage.thread(id, scope.as_ref()))?.is_none() {
                    return Err(ApiError::not_found(
                        "At least one thread not found or not authorized",
                    ));
                }
            }
        }
        let mut pruned = 0;
        for id in ids {
            let Ok(scope) =
                caller.scope(Resource::Threads, Action::Delete, json!({"thread_id": id}))
            else {
                continue;
            };
            let done = if keep_latest {
                let found = wait(state.storage.thread(id, scope.as_ref()))?.is_some();
                if found {
                    wait(state.storage.prune_checkpoints(id))?;
                }
                found
            } else {
                delete_within(&state, id, scope.as_ref())?
            };
            pruned += u64::from(done);
        }
        ok(json!({"pruned_count": pruned}))
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::server) struct StreamQuery {
    stream_modes: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "threads_stream",
    path = "/threads/{thread_id}/stream",
    tag = "threads",
    params(
        ("thread_id" = Uuid, Path, description = "The thread (UUID)"),
        ("stream_modes" = Option<String>, Query, description = "`run_modes` (default), `lifecycle`, `state_update`, comma-separated"),
    ),
    responses((status = 200, description = "SSE of the thread's runs, current and to come, until the client leaves or the thread is deleted", content_type = "text/event-stream"), (status = 404, description = "Missing, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn stream(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        if last_event_id
            .as_deref()
            .is_some_and(|last| !is_stream_id(last))
        {
            return Err(ApiError::unprocessable(
                "Invalid last-event-id: must be a valid Redis stream ID",
            ));
        }
        let modes = ThreadModes::parse(query.stream_modes.as_deref())
            .map_err(|mode| ApiError::unprocessable(format!("Invalid stream mode: {mode}")))?;
        // As the reference, a refusal comes as the stream's one event.
        // Unlike it, the thread must exist (even unscoped): the stream
        // follows that thread, not runs of whatever later takes its id.
        let mut check = || {
            let scope = caller.scope(Resource::Threads, Action::Read, json!({"thread_id": id}))?;
            match wait(state.storage.thread(id, scope.as_ref()))? {
                Some(thread) => Ok((thread, scope)),
                None => Err(ApiError::not_found("Thread not found")),
            }
        };
        let (thread, scope) = match check() {
            Ok(found) => found,
            Err(refused) => return Ok(error_sse(&refused)),
        };
        let binding = ThreadBinding {
            storage: state.storage.clone(),
            thread,
            scope,
        };
        Ok(thread_sse(
            state.runs.clone(),
            binding,
            modes,
            last_event_id.as_deref(),
        ))
    })
    .await
}

/// A Redis stream id as the reference accepts it: `-`, `<ms>`, `<ms>-<seq>`
/// or `<ms>-*`.
fn is_stream_id(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('-') {
        _ if id == "-" => true,
        None => digits(id),
        Some((ms, seq)) => digits(ms) && (seq == "*" || digits(seq)),
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = ThreadSearch)]
pub(in crate::server) struct Search {
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    #[schema(value_type = Option<Object>)]
    values: Option<Object>,
    ids: Option<Vec<Uuid>>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    #[serde(default)]
    select: Vec<String>,
}

impl Search {
    fn query(self) -> Result<(ThreadQuery, Value, Vec<String>), ApiError> {
        let (limit, offset) = limits(self.limit, self.offset, 10)?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<ThreadStatus>().map_err(|_| {
                    let names: Vec<&str> = ThreadStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::unprocessable(format!(
                        "Invalid status: '{s}'. Expected one of {names:?}"
                    ))
                })
            })
            .transpose()?;
        let value = json!({
            "metadata": self.metadata.clone().unwrap_or_default(),
            "values": self.values.clone().unwrap_or_default(),
            "status": self.status,
            "limit": limit,
            "offset": offset,
        });
        let query = ThreadQuery {
            metadata: self.metadata.unwrap_or_default(),
            values: self.values.unwrap_or_default(),
            ids: self.ids,
            status,
            sort_by: sort_by(self.sort_by.as_deref(), SORTS)?,
            order: order(self.sort_order.as_deref())?,
            limit,
            offset,
        };
        Ok((query, value, self.select))
    }
}

#[utoipa::path(
    post,
    operation_id = "threads_search",
    path = "/threads/search",
    tag = "threads",
    request_body = Search,
    responses((status = 200, description = "A page of threads; `X-Pagination-Total` and `X-Pagination-Next` headers", body = Vec<records::Thread>))
)]
pub(in crate::server) async fn search(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    let storage = state.storage.clone();
    as_caller_then(
        pending,
        &*state.storage,
        move |caller| {
            let (query, value, fields) = body?.query()?;
            let scope = caller.scope(Resource::Threads, Action::Search, value)?;
            Ok((query, scope, fields))
        },
        move |(query, scope, fields)| async move {
            let page = storage.search_threads(&query, scope.as_ref()).await?;
            let items = select(
                page.items.into_iter().map(records::Thread::from),
                &fields,
                FIELDS,
            )?;
            paged(
                crate::storage::Page {
                    items,
                    total: page.total,
                },
                query.offset,
            )
        },
    )
    .await
}

#[utoipa::path(
    post,
    operation_id = "threads_count",
    path = "/threads/count",
    tag = "threads",
    request_body = Search,
    responses((status = 200, description = "How many threads match", body = u64, content_type = "application/json"))
)]
pub(in crate::server) async fn count(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    let storage = state.storage.clone();
    as_caller_then(
        pending,
        &*state.storage,
        move |caller| {
            let (query, mut value, _) = body?.query()?;
            value["limit"] = json!(0);
            value["offset"] = json!(0);
            let scope = caller.scope(Resource::Threads, Action::Search, value)?;
            Ok((query, scope))
        },
        move |(query, scope)| async move {
            ok(storage.count_threads(&query, scope.as_ref()).await?)
        },
    )
    .await
}

#[utoipa::path(
    post,
    operation_id = "threads_copy",
    path = "/threads/{thread_id}/copy",
    tag = "threads",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    responses((status = 200, description = "The new thread", body = records::Thread), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn copy(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "thread")?;
        // A thread outside the caller's scope reads as missing (LangGraph
        // answers 409 there: whether the id exists would leak).
        let source = scoped(&state, caller, Action::Read, json!({"thread_id": id}), id)?;
        // A copy is a thread creation: the handler sees the copy's metadata
        // (the source's), may stamp it, and may refuse.
        let new_id = Uuid::now_v7();
        let value = json!({"thread_id": new_id, "metadata": source.metadata});
        let authorized = caller.authorize(Resource::Threads, Action::Create, value)?;
        let mut thread = Thread::new(new_id, stamped_metadata(&authorized.value, source.metadata));
        thread.values = source.values;
        thread.config = source.config;
        wait(state.storage.insert_thread(&thread))?;
        wait(state.storage.copy_state(id, new_id))?;
        ok(records::Thread::from(thread))
    })
    .await
}
