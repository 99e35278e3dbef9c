//! `/assistants`: create, read, update, delete, search, count, and the
//! versions every create and update leaves (list, set the latest).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::server::error::ErrorBody;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{
    JsonBody, client_metadata, limits, no_content, ok, order, paged, path_id, select, sort_by,
    stamped_metadata, strip_reserved_config,
};
use super::records;
use crate::server::error::ApiError;
use crate::server::{AppState, Pending, as_caller, as_caller_then};
use crate::storage::{Assistant, AssistantPatch, AssistantQuery, Object, Page, SetLatest, wait};
use crate::timestamp::now;
use crate::types::{Action, Resource};

const FIELDS: &[&str] = &[
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "description",
    "version",
    "created_at",
    "updated_at",
];
const SORTS: &[&str] = &[
    "assistant_id",
    "graph_id",
    "name",
    "created_at",
    "updated_at",
];

/// 404 unless `graph_id` is a graph of `langgraph.json`.
pub(in crate::server) fn known_graph(state: &AppState, graph_id: &str) -> Result<(), ApiError> {
    if state.graphs.contains_key(graph_id) {
        return Ok(());
    }
    let expected: Vec<String> = state.graphs.keys().map(|g| format!("'{g}'")).collect();
    Err(ApiError::not_found(format!(
        "Graph '{graph_id}' not found. Expected one of: [{}]",
        expected.join(", ")
    )))
}

/// Keeps `config.configurable` and `context` in sync, as LangGraph does;
/// both given is a 400.
fn config_and_context(
    config: Option<Value>,
    context: Option<Value>,
) -> Result<(Value, Value), ApiError> {
    let mut config = config.unwrap_or_else(|| json!({}));
    if !config.is_object() {
        return Err(ApiError::unprocessable("config: must be an object"));
    }
    if let Some(configurable) = config.get_mut("configurable") {
        strip_reserved_config(configurable);
    }
    let mut context = context;
    if let Some(context) = &mut context {
        strip_reserved_config(context);
    }
    let configurable = config.get("configurable").cloned();
    match (configurable, context) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "Cannot specify both configurable and context. Prefer setting context alone.",
        )),
        (Some(configurable), None) => Ok((config, configurable)),
        (None, Some(context)) => {
            config["configurable"] = context.clone();
            Ok((config, context))
        }
        (None, None) => Ok((config, json!({}))),
    }
}

/// Client metadata without the reserved keys; claiming to be the system
/// (`created_by: system`, which marks the server's assistants) is a 422.
fn assistant_metadata(metadata: Option<Object>) -> Result<Object, ApiError> {
    let metadata = client_metadata(metadata);
    if metadata.get("created_by") == Some(&json!("system")) {
        return Err(ApiError::unprocessable(
            "metadata.created_by: 'system' is reserved for the assistants the server creates",
        ));
    }
    Ok(metadata)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AssistantCreate)]
pub(in crate::server) struct Create {
    graph_id: String,
    assistant_id: Option<Uuid>,
    config: Option<Value>,
    context: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    if_exists: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(
    post,
    operation_id = "assistants_create",
    path = "/assistants",
    tag = "assistants",
    request_body = Create,
    responses((status = 200, description = "The assistant", body = records::Assistant), (status = 409, description = "The id is taken", body = ErrorBody), (status = 404, description = "Unknown graph", body = ErrorBody))
)]
pub(in crate::server) async fn create(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Create>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        known_graph(&state, &body.graph_id)?;
        let if_exists = body.if_exists.unwrap_or_else(|| "raise".into());
        if !matches!(if_exists.as_str(), "raise" | "do_nothing") {
            return Err(ApiError::unprocessable(format!(
                "Invalid if_exists: '{if_exists}'. Expected 'raise' or 'do_nothing'"
            )));
        }
        let (config, context) = config_and_context(body.config, body.context)?;
        let id = body.assistant_id.unwrap_or_else(Uuid::new_v4);
        let metadata = assistant_metadata(body.metadata)?;
        let name = body.name.unwrap_or_else(|| "Untitled".into());
        let value = json!({"assistant_id": id, "graph_id": body.graph_id, "config": config,
            "context": context, "metadata": metadata, "name": name,
            "description": body.description});
        let authorized = caller.authorize(Resource::Assistants, Action::Create, value)?;
        let now = now();
        let assistant = Assistant {
            assistant_id: id,
            graph_id: body.graph_id,
            config,
            context,
            metadata: stamped_metadata(&authorized.value, metadata),
            name,
            description: body.description,
            version: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        if wait(state.storage.insert_assistant(&assistant))? {
            return ok(records::Assistant::from(assistant));
        }
        let exists = || ApiError::conflict(format!("Assistant {id} already exists"));
        let Some(existing) = wait(state.storage.assistant(id, authorized.filter.as_ref()))? else {
            return Err(exists());
        };
        match if_exists.as_str() {
            "do_nothing" => ok(records::Assistant::from(existing)),
            _ => Err(exists()),
        }
    })
    .await
}

#[utoipa::path(
    get,
    operation_id = "assistants_get",
    path = "/assistants/{assistant_id}",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    responses((status = 200, description = "The assistant", body = records::Assistant), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn get(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller_then(
        pending,
        &*state.storage.clone(),
        move |caller| {
            let id = path_id(&id, "assistant")?;
            let scope = caller.scope(
                Resource::Assistants,
                Action::Read,
                json!({"assistant_id": id}),
            )?;
            Ok((id, scope))
        },
        move |(id, scope)| async move {
            match state.storage.assistant(id, scope.as_ref()).await? {
                // An assistant whose graph is no longer served is hidden.
                Some(a) if state.graphs.contains_key(&a.graph_id) => {
                    ok(records::Assistant::from(a))
                }
                _ => Err(ApiError::not_found("Not Found")),
            }
        },
    )
    .await
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = AssistantVersionsSearch)]
pub(in crate::server) struct Versions {
    /// Only the versions whose metadata contains this.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(
    post,
    operation_id = "assistants_versions",
    path = "/assistants/{assistant_id}/versions",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    request_body = Versions,
    responses((status = 200, description = "Its versions, newest first", body = Vec<records::AssistantVersion>), (status = 404, description = "Not found, outside the caller's scope, or no version matches", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn versions(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Versions>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "assistant")?;
        let body = body?;
        let (limit, offset) = limits(body.limit, body.offset, 10)?;
        let scope = caller.scope(
            Resource::Assistants,
            Action::Read,
            json!({"assistant_id": id}),
        )?;
        let metadata = body.metadata.unwrap_or_default();
        let versions =
            wait(
                state
                    .storage
                    .assistant_versions(id, scope.as_ref(), &metadata, limit, offset),
            )?;
        if versions.is_empty() {
            return Err(ApiError::not_found(format!("Assistant {id} not found")));
        }
        let versions: Vec<_> = versions
            .into_iter()
            .map(records::AssistantVersion::from)
            .collect();
        ok(versions)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AssistantVersionChange)]
pub(in crate::server) struct Latest {
    /// The version to make current.
    version: i64,
}

#[utoipa::path(
    post,
    operation_id = "assistants_set_latest",
    path = "/assistants/{assistant_id}/latest",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    request_body = Latest,
    responses((status = 200, description = "The assistant, at that version", body = records::Assistant), (status = 404, description = "Not found, outside the caller's scope, or no such version", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn set_latest(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Latest>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "assistant")?;
        let version = body?.version;
        let scope = caller.scope(
            Resource::Assistants,
            Action::Update,
            json!({"assistant_id": id, "version": version}),
        )?;
        match wait(
            state
                .storage
                .set_latest_assistant_version(id, scope.as_ref(), version),
        )? {
            SetLatest::Done(assistant) => ok(records::Assistant::from(*assistant)),
            SetLatest::NoAssistant => Err(ApiError::not_found(format!("Assistant {id} not found"))),
            SetLatest::NoVersion => Err(ApiError::not_found(format!(
                "Version {version} not found for assistant {id}"
            ))),
        }
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AssistantPatchBody)]
pub(in crate::server) struct Patch {
    graph_id: Option<String>,
    config: Option<Value>,
    context: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(
    patch,
    operation_id = "assistants_patch",
    path = "/assistants/{assistant_id}",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    request_body = Patch,
    responses((status = 200, description = "The assistant, at its new version", body = records::Assistant), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn patch(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Patch>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let id = path_id(&id, "assistant")?;
        if let Some(g) = &body.graph_id {
            known_graph(&state, g)?;
        }
        let (config, context) = match (&body.config, &body.context) {
            (None, None) => (None, None),
            _ => {
                let (c, x) = config_and_context(body.config, body.context)?;
                (Some(c), Some(x))
            }
        };
        let metadata = body
            .metadata
            .map(|m| assistant_metadata(Some(m)))
            .transpose()?;
        let value = json!({"assistant_id": id, "graph_id": body.graph_id, "config": config,
            "context": context, "metadata": metadata.clone().unwrap_or_default(),
            "name": body.name, "description": body.description});
        let authorized = caller.authorize(Resource::Assistants, Action::Update, value)?;
        let stamped = stamped_metadata(&authorized.value, metadata.clone().unwrap_or_default());
        let patch = AssistantPatch {
            graph_id: body.graph_id,
            config,
            context,
            metadata: (metadata.is_some() || !stamped.is_empty()).then_some(stamped),
            name: body.name,
            description: body.description,
        };
        ok(wait(
            state
                .storage
                .update_assistant(id, authorized.filter.as_ref(), &patch),
        )?
        .map(records::Assistant::from)
        .ok_or_else(|| ApiError::not_found(format!("Assistant {id} not found")))?)
    })
    .await
}

#[utoipa::path(
    delete,
    operation_id = "assistants_delete",
    path = "/assistants/{assistant_id}",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody))
)]
pub(in crate::server) async fn delete(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "assistant")?;
        let scope = caller.scope(
            Resource::Assistants,
            Action::Delete,
            json!({"assistant_id": id}),
        )?;
        // LangGraph cancels the assistant's runs first, as a threads.update.
        caller.authorize(
            Resource::Threads,
            Action::Update,
            json!({"thread_id": null, "action": "interrupt",
                   "metadata": {"run_ids": null, "status": null}}),
        )?;
        if wait(state.storage.delete_assistant(id, scope.as_ref()))? {
            no_content()
        } else {
            Err(ApiError::not_found(format!(
                "Assistant with ID {id} not found"
            )))
        }
    })
    .await
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = AssistantSearch)]
pub(in crate::server) struct Search {
    #[schema(value_type = Option<Object>)]
    metadata: Option<Object>,
    graph_id: Option<String>,
    name: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    #[serde(default)]
    select: Vec<String>,
}

impl Search {
    fn query(self, state: &AppState) -> Result<(AssistantQuery, Value, Vec<String>), ApiError> {
        if let Some(g) = &self.graph_id {
            known_graph(state, g)?;
        }
        let (limit, offset) = limits(self.limit, self.offset, 10)?;
        let value = json!({"graph_id": self.graph_id,
            "metadata": self.metadata.clone().unwrap_or_default(),
            "limit": limit, "offset": offset});
        let query = AssistantQuery {
            metadata: self.metadata.unwrap_or_default(),
            graph_id: self.graph_id,
            name: self.name,
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
    operation_id = "assistants_search",
    path = "/assistants/search",
    tag = "assistants",
    request_body = Search,
    responses((status = 200, description = "A page of assistants, with pagination headers", body = Vec<records::Assistant>), (status = 404, description = "No such graph", body = ErrorBody))
)]
pub(in crate::server) async fn search(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    let storage = state.storage.clone();
    as_caller_then(
        pending,
        &*state.storage.clone(),
        move |caller| {
            let (query, value, fields) = body?.query(&state)?;
            let scope = caller.scope(Resource::Assistants, Action::Search, value)?;
            Ok((query, scope, fields))
        },
        move |(query, scope, fields)| async move {
            let page = storage.search_assistants(&query, scope.as_ref()).await?;
            let items = select(
                page.items.into_iter().map(records::Assistant::from),
                &fields,
                FIELDS,
            )?;
            paged(
                Page {
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
    operation_id = "assistants_count",
    path = "/assistants/count",
    tag = "assistants",
    request_body = Search,
    responses((status = 200, description = "How many assistants match", body = u64, content_type = "application/json"), (status = 404, description = "No such graph", body = ErrorBody))
)]
pub(in crate::server) async fn count(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    let storage = state.storage.clone();
    as_caller_then(
        pending,
        &*state.storage.clone(),
        move |caller| {
            let (query, mut value, _) = body?.query(&state)?;
            value["limit"] = json!(0);
            value["offset"] = json!(0);
            let scope = caller.scope(Resource::Assistants, Action::Search, value)?;
            Ok((query, scope))
        },
        move |(query, scope)| async move {
            ok(storage.count_assistants(&query, scope.as_ref()).await?)
        },
    )
    .await
}
