//! `/runs/crons`: create (stateless or on a thread), read, update, delete,
//! search, count. Firing them comes with runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::server::error::ErrorBody;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::extract::{
    JsonBody, client_metadata, limits, no_content, ok, order, paged, path_id, resolve_assistant,
    select, sort_by, stamped_metadata, strip_reserved_config, strip_user_id,
};
use super::records;
use crate::runs::refuse_in_crons;
use crate::schedule::{self, next_run};
use crate::server::error::ApiError;
use crate::server::{AppState, Caller, Pending, as_caller, as_caller_then};
use crate::storage::{Cron, CronPatch, CronQuery, Object, Page, wait};
use crate::timestamp::now;
use crate::types::{Action, Resource};

const FIELDS: &[&str] = &[
    "cron_id",
    "assistant_id",
    "thread_id",
    "user_id",
    "end_time",
    "schedule",
    "timezone",
    "payload",
    "next_run_date",
    "metadata",
    "on_run_completed",
    "enabled",
    "created_at",
    "updated_at",
];
const SORTS: &[&str] = &[
    "cron_id",
    "assistant_id",
    "thread_id",
    "next_run_date",
    "end_time",
    "created_at",
    "updated_at",
];

/// A run body's `assistant_id`: a registered graph name (its system
/// assistant) or a UUID; anything else is the reference's 422.
#[derive(Deserialize, ToSchema)]
#[schema(as = CronCreate)]
pub(in crate::server) struct Create {
    assistant_id: String,
    schedule: String,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    timezone: Option<String>,
    end_time: Option<String>,
    enabled: Option<bool>,
    on_run_completed: Option<String>,
    /// Everything else is the run payload (input, config, context, …).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    payload: Map<String, Value>,
}

async fn create(
    state: Arc<AppState>,
    pending: Pending,
    thread: Option<String>,
    body: Result<Create, ApiError>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let thread_id = thread.map(|t| path_id(&t, "thread")).transpose()?;
        let assistant_id = resolve_assistant(&state, &body.assistant_id)?;
        if let Some(timezone) = &body.timezone {
            schedule::timezone(timezone)?;
        }
        let next_run_date = next_run(&body.schedule, body.timezone.as_deref())?;
        refuse_in_crons(|name| body.payload.get(name)).map_err(ApiError::unprocessable)?;
        if let Some(end) = &body.end_time {
            chrono::DateTime::parse_from_rfc3339(end)
                .map_err(|_| ApiError::unprocessable(format!("Invalid end_time: '{end}'")))?;
        }
        let on_run_completed = match (&thread_id, body.on_run_completed) {
            (Some(_), _) => None,
            (None, None) => Some("delete".to_owned()),
            (None, Some(o)) if o == "delete" || o == "keep" => Some(o),
            (None, Some(o)) => {
                return Err(ApiError::unprocessable(format!(
                    "Invalid on_run_completed: '{o}'"
                )));
            }
        };
        let metadata = client_metadata(body.metadata);
        let system = state.graphs.values().any(|id| *id == assistant_id)
            && wait(state.storage.is_system_assistant(assistant_id))?;
        if !system {
            let scope = caller.scope(
                Resource::Assistants,
                Action::Read,
                json!({"assistant_id": assistant_id}),
            )?;
            if wait(state.storage.assistant(assistant_id, scope.as_ref()))?.is_none() {
                return Err(ApiError::not_found("Not Found"));
            }
        } else if wait(state.storage.assistant(assistant_id, None))?.is_none() {
            return Err(ApiError::not_found("Not Found"));
        }
        if let Some(tid) = thread_id {
            let scope = caller.scope(
                Resource::Threads,
                Action::Read,
                json!({"thread_id": tid, "metadata": metadata}),
            )?;
            if wait(state.storage.thread(tid, scope.as_ref()))?.is_none() {
                return Err(ApiError::not_found(format!(
                    "Thread with ID {tid} not found"
                )));
            }
        }
        let cron_id = Uuid::now_v7();
        let mut payload = body.payload;
        payload.insert("assistant_id".into(), json!(assistant_id));
        let configurable = payload
            .entry("config")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| ApiError::unprocessable("config: must be an object"))?
            .entry("configurable")
            .or_insert_with(|| json!({}));
        strip_reserved_config(configurable);
        strip_user_id(configurable);
        if let Some(c) = configurable.as_object_mut() {
            c.insert("cron_id".into(), json!(cron_id));
        }
        if let Some(context) = payload.get_mut("context") {
            strip_reserved_config(context);
            strip_user_id(context);
        }
        let value = json!({"payload": payload, "schedule": body.schedule, "cron_id": cron_id,
            "thread_id": thread_id, "end_time": body.end_time, "metadata": metadata,
            "user_id": caller.user.identity});
        let authorized = caller.authorize(Resource::Crons, Action::Create, value)?;
        let now = now();
        let cron = Cron {
            cron_id,
            assistant_id,
            thread_id,
            user_id: Some(caller.user.identity.clone()),
            end_time: body.end_time,
            schedule: body.schedule,
            timezone: body.timezone,
            payload,
            next_run_date: Some(next_run_date),
            metadata: stamped_metadata(&authorized.value, metadata),
            on_run_completed,
            enabled: body.enabled.unwrap_or(true),
            created_at: now.clone(),
            updated_at: now,
        };
        let max = state.limits.max_crons_per_user;
        if wait(state.storage.count_crons_of(&caller.user.identity))? >= max {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many crons: a user has at most {max} (`limits.max_crons_per_user`); \
                     delete one first"
                ),
            ));
        }
        wait(state.storage.insert_cron(&cron))?;
        ok(records::Cron::from(cron))
    })
    .await
}

#[utoipa::path(
    post,
    operation_id = "crons_create_stateless",
    path = "/runs/crons",
    tag = "crons",
    request_body = Create,
    responses((status = 200, description = "The cron", body = records::Cron), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn create_stateless(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Create>,
) -> Response {
    create(state, pending, None, body).await
}

#[utoipa::path(
    post,
    operation_id = "crons_create_for_thread",
    path = "/threads/{thread_id}/runs/crons",
    tag = "crons",
    params(("thread_id" = Uuid, Path, description = "The thread (UUID)")),
    request_body = Create,
    responses((status = 200, description = "The cron", body = records::Cron), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn create_for_thread(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(thread_id): Path<String>,
    JsonBody(body): JsonBody<Create>,
) -> Response {
    create(state, pending, Some(thread_id), body).await
}

#[utoipa::path(
    get,
    operation_id = "crons_get",
    path = "/runs/crons/{cron_id}",
    tag = "crons",
    params(("cron_id" = Uuid, Path, description = "The cron (UUID)")),
    responses((status = 200, description = "The cron", body = records::Cron), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
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
            let id = path_id(&id, "cron")?;
            let scope = caller.scope(Resource::Crons, Action::Read, json!({"cron_id": id}))?;
            Ok((id, scope))
        },
        move |(id, scope)| async move {
            ok(storage
                .cron(id, scope.as_ref())
                .await?
                .map(records::Cron::from)
                .ok_or_else(|| ApiError::not_found("Not Found"))?)
        },
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CronPatchBody)]
pub(in crate::server) struct Patch {
    schedule: Option<String>,
    /// IANA timezone the schedule is read in.
    timezone: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    end_time: Option<Option<String>>,
    enabled: Option<bool>,
    on_run_completed: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    payload: Map<String, Value>,
}

/// `Some(None)` for an explicit `null`, `None` when the key is absent.
fn explicit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

#[utoipa::path(
    patch,
    operation_id = "crons_patch",
    path = "/runs/crons/{cron_id}",
    tag = "crons",
    params(("cron_id" = Uuid, Path, description = "The cron (UUID)")),
    request_body = Patch,
    responses((status = 200, description = "The updated cron", body = records::Cron), (status = 400, description = "Nothing to update", body = ErrorBody), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn patch(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Patch>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "cron")?;
        if let Some(timezone) = &body.timezone {
            schedule::timezone(timezone)?;
        }
        if body.schedule.is_none()
            && body.timezone.is_none()
            && body.end_time.is_none()
            && body.enabled.is_none()
            && body.on_run_completed.is_none()
            && body.metadata.is_none()
            && body.payload.is_empty()
        {
            return Err(ApiError::bad_request(
                "At least one field must be provided to update",
            ));
        }
        if let Some(schedule) = &body.schedule {
            schedule::Schedule::parse(schedule, None)?;
        }
        refuse_in_crons(|name| body.payload.get(name)).map_err(ApiError::unprocessable)?;
        let metadata = body.metadata.map(|m| client_metadata(Some(m)));
        let mut value = json!({"cron_id": id, "schedule": body.schedule,
            "end_time": body.end_time.clone().flatten(), "enabled": body.enabled,
            "on_run_completed": body.on_run_completed, "payload": body.payload});
        if let Some(m) = &metadata {
            value["metadata"] = json!(m);
        }
        let authorized = caller.authorize(Resource::Crons, Action::Update, value)?;
        let patch = CronPatch {
            schedule: body.schedule,
            timezone: body.timezone,
            end_time: body.end_time,
            enabled: body.enabled,
            on_run_completed: body.on_run_completed,
            payload: (!body.payload.is_empty()).then_some(body.payload),
            metadata: metadata.map(|m| stamped_metadata(&authorized.value, m)),
        };
        ok(wait(
            state
                .storage
                .update_cron(id, authorized.filter.as_ref(), &patch),
        )?
        .map(records::Cron::from)
        .ok_or_else(|| ApiError::not_found(format!("Cron '{id}' not found")))?)
    })
    .await
}

#[utoipa::path(
    delete,
    operation_id = "crons_delete",
    path = "/runs/crons/{cron_id}",
    tag = "crons",
    params(("cron_id" = Uuid, Path, description = "The cron (UUID)")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn delete(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "cron")?;
        let scope = caller.scope(Resource::Crons, Action::Delete, json!({"cron_id": id}))?;
        if wait(state.storage.delete_cron(id, scope.as_ref()))? {
            no_content()
        } else {
            Err(ApiError::not_found("Not Found"))
        }
    })
    .await
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = CronSearch)]
pub(in crate::server) struct Search {
    assistant_id: Option<String>,
    thread_id: Option<String>,
    enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    #[serde(default)]
    select: Vec<String>,
}

/// Cron search fires `crons.search` (on the crons' metadata) and
/// `threads.search` (on their threads' metadata).
fn search_page(
    state: &AppState,
    caller: &mut Caller,
    body: Search,
    count: bool,
) -> Result<(Page<Cron>, u64, Vec<String>), ApiError> {
    let assistant_id = body
        .assistant_id
        .as_deref()
        .map(|a| path_id(a, "assistant"))
        .transpose()?;
    let thread_id = body
        .thread_id
        .as_deref()
        .map(|t| path_id(t, "thread"))
        .transpose()?;
    let (limit, offset) = limits(body.limit, body.offset, 10)?;
    let mut value = json!({"assistant_id": assistant_id, "thread_id": thread_id,
        "metadata": body.metadata.clone().unwrap_or_default()});
    if !count {
        value["limit"] = json!(limit);
        value["offset"] = json!(offset);
    }
    let scope = caller.scope(Resource::Crons, Action::Search, value)?;
    let thread_scope = caller.scope(Resource::Threads, Action::Search, json!({}))?;
    let query = CronQuery {
        assistant_id,
        thread_id,
        enabled: body.enabled,
        metadata: body.metadata.unwrap_or_default(),
        sort_by: sort_by(body.sort_by.as_deref(), SORTS)?,
        order: order(body.sort_order.as_deref())?,
        limit: if count { 0 } else { limit },
        offset,
    };
    let page = wait(
        state
            .storage
            .search_crons(&query, scope.as_ref(), thread_scope.as_ref()),
    )?;
    Ok((page, offset, body.select))
}

#[utoipa::path(
    post,
    operation_id = "crons_search",
    path = "/runs/crons/search",
    tag = "crons",
    request_body = Search,
    responses((status = 200, description = "A page of crons, with pagination headers", body = Vec<records::Cron>))
)]
pub(in crate::server) async fn search(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let (page, offset, fields) = search_page(&state, caller, body, false)?;
        let items = select(
            page.items.into_iter().map(records::Cron::from),
            &fields,
            FIELDS,
        )?;
        paged(
            Page {
                items,
                total: page.total,
            },
            offset,
        )
    })
    .await
}

#[utoipa::path(
    post,
    operation_id = "crons_count",
    path = "/runs/crons/count",
    tag = "crons",
    request_body = Search,
    responses((status = 200, description = "How many crons match", body = u64, content_type = "application/json"))
)]
pub(in crate::server) async fn count(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    as_caller(pending, move |caller| {
        ok(search_page(&state, caller, body?, true)?.0.total)
    })
    .await
}
