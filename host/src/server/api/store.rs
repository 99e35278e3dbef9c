//! `/store`: long-term memory items in namespaces.
//!
//! As in LangGraph, the server re-reads the event's value after the handler,
//! so a plugin may rewrite the namespace (e.g. prefix the caller's id); the
//! namespace is validated before and after it.
//!
//! A filter the handler returns scopes every operation, on the item's
//! value, as it does search (LangGraph applies it to search only, so a
//! plugin scoping the store by filters would expose every item): get and
//! delete see an item outside it as missing; put refuses (403) to replace
//! such an item or to write one that would fall outside it; list
//! namespaces lists only those holding an item within it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use serde_json::{Map, Value, json};

use super::extract::{JsonBody, no_content, ok};
use super::records;
use crate::server::error::ApiError;
use crate::server::{AppState, Caller, Pending, as_caller};
use crate::storage::{Filter, Item, ItemQuery, NamespaceQuery, Object, wait};
use crate::types::{Action, Clause, Condition, Operator, Resource};

/// Each label non-empty and without `.`; else the reference's plain-text 422.
fn validate(namespace: &[String]) -> Result<(), ApiError> {
    match namespace.iter().find(|l| l.is_empty() || l.contains('.')) {
        Some(label) => Err(ApiError::unprocessable(format!(
            "Namespace label '{label}' must be a non-empty string without periods"
        ))
        .plain()),
        None => Ok(()),
    }
}

/// The namespace the handler left in `value` (LangGraph re-reads it).
fn namespace_of(value: &Value) -> Result<Vec<String>, ApiError> {
    let namespace: Vec<String> = match value.get("namespace") {
        Some(Value::Array(labels)) => labels
            .iter()
            .map(|l| l.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::internal("the auth plugin left a namespace that is not a list of strings")
            })?,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(ApiError::internal(
                "the auth plugin left a namespace that is not a list",
            ));
        }
    };
    validate(&namespace)?;
    Ok(namespace)
}

fn text_of(value: &Value, key: &str, fallback: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_owned()
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ItemPut)]
pub(in crate::server) struct Put {
    namespace: Vec<String>,
    key: String,
    value: Value,
    index: Option<Value>,
    ttl: Option<Value>,
}

#[utoipa::path(
    put,
    operation_id = "store_put",
    path = "/store/items",
    tag = "store",
    request_body = Put,
    responses((status = 204, description = "Stored"), (status = 403, description = "Refused, or the item (the one replaced or the one written) lies outside the caller's store scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid namespace (plain text) or value"))
)]
pub(in crate::server) async fn put(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Put>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let extra = (body.index, body.ttl);
        put_item(&state, caller, body.namespace, &body.key, body.value, extra)?;
        no_content()
    })
    .await
}

/// Writes an item as `caller`: its `store.put` event, then the write within
/// the handler's scope (403 outside it). `extra` is the request's `index`
/// and `ttl`, which the handler sees.
pub(crate) fn put_item(
    state: &AppState,
    caller: &mut Caller,
    namespace: Vec<String>,
    key: &str,
    value: Value,
    (index, ttl): (Option<Value>, Option<Value>),
) -> Result<(), ApiError> {
    validate(&namespace)?;
    if !value.is_object() {
        return Err(ApiError::unprocessable("value: must be an object"));
    }
    let value = json!({"namespace": namespace, "key": key, "value": value,
                       "index": index, "ttl": ttl});
    let authorized = caller.authorize(Resource::Store, Action::Put, value)?;
    let value = authorized.value;
    let namespace = namespace_of(&value)?;
    let key = text_of(&value, "key", key);
    let item: Object = match value.get("value") {
        Some(Value::Object(o)) => o.clone(),
        _ => return Err(ApiError::unprocessable("value: must be an object")),
    };
    if !wait(
        state
            .storage
            .put_item(&namespace, &key, &item, authorized.filter.as_ref()),
    )? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden: the item lies outside the caller's store scope",
        ));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub(in crate::server) struct Get {
    namespace: Option<String>,
    key: Option<String>,
    refresh_ttl: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "store_get",
    path = "/store/items",
    tag = "store",
    params(("namespace" = String, Query, description = "Dot-joined namespace"), ("key" = String, Query, description = "The key"), ("refresh_ttl" = Option<bool>, Query, description = "Refresh the TTL")),
    responses((status = 200, description = "The item, or `null` when missing", body = Option<records::Item>), (status = 400, description = "No key"))
)]
pub(in crate::server) async fn get(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Query(query): Query<Get>,
) -> Response {
    as_caller(pending, move |caller| {
        let Some(key) = query.key.filter(|k| !k.is_empty()) else {
            return Ok((
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "Key is required"})),
            )
                .into_response());
        };
        let namespace: Vec<String> = query
            .namespace
            .unwrap_or_default()
            .split('.')
            .map(str::to_owned)
            .collect();
        let refresh = query
            .refresh_ttl
            .map(|r| matches!(r.as_str(), "true" | "1"));
        ok(get_item(&state, caller, namespace, &key, refresh)?.map(records::Item::from))
    })
    .await
}

/// The item as `caller` sees it: its `store.get` event, then the read
/// within the handler's scope (an item outside it is missing).
pub(crate) fn get_item(
    state: &AppState,
    caller: &mut Caller,
    namespace: Vec<String>,
    key: &str,
    refresh: Option<bool>,
) -> Result<Option<Item>, ApiError> {
    validate(&namespace)?;
    let value = json!({"namespace": namespace, "key": key, "refresh_ttl": refresh});
    let authorized = caller.authorize(Resource::Store, Action::Get, value)?;
    let value = authorized.value;
    let namespace = namespace_of(&value)?;
    let key = text_of(&value, "key", key);
    Ok(wait(state.storage.item(
        &namespace,
        &key,
        authorized.filter.as_ref(),
    ))?)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ItemDelete)]
pub(in crate::server) struct Delete {
    namespace: Vec<String>,
    key: String,
}

#[utoipa::path(
    delete,
    operation_id = "store_delete",
    path = "/store/items",
    tag = "store",
    request_body = Delete,
    responses((status = 204, description = "Deleted (or absent)"))
)]
pub(in crate::server) async fn delete(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Delete>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        delete_item(&state, caller, body.namespace, &body.key)?;
        no_content()
    })
    .await
}

/// Deletes an item as `caller`: its `store.delete` event, then the delete
/// within the handler's scope (an item outside it is as missing: nothing
/// deleted, no error).
pub(crate) fn delete_item(
    state: &AppState,
    caller: &mut Caller,
    namespace: Vec<String>,
    key: &str,
) -> Result<(), ApiError> {
    validate(&namespace)?;
    let value = json!({"namespace": namespace, "key": key});
    let authorized = caller.authorize(Resource::Store, Action::Delete, value)?;
    let value = authorized.value;
    let namespace = namespace_of(&value)?;
    let key = text_of(&value, "key", key);
    wait(
        state
            .storage
            .delete_item(&namespace, &key, authorized.filter.as_ref()),
    )?;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ItemSearch)]
pub(crate) struct Search {
    #[serde(default)]
    pub(crate) namespace_prefix: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub(crate) filter: Option<Map<String, Value>>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: Option<u64>,
    pub(crate) query: Option<String>,
    pub(crate) refresh_ttl: Option<bool>,
}

/// A client's item filter: `{k: v}`, `{k: {"$eq": v}}`, `{k: {"$contains": v}}`.
fn client_filter(filter: &Map<String, Value>) -> Result<Filter, ApiError> {
    let mut out = Filter::default();
    for (key, operand) in filter {
        let (op, operand) = match operand {
            Value::Object(o) if o.len() == 1 && o.keys().all(|k| k.starts_with('$')) => {
                let (name, operand) = o.iter().next().expect("one entry");
                let op = match name.as_str() {
                    "$eq" => Operator::Eq,
                    "$contains" => Operator::Contains,
                    other => {
                        return Err(ApiError::unprocessable(format!(
                            "Unsupported filter operator: '{other}'"
                        )));
                    }
                };
                (op, operand.clone())
            }
            other => (Operator::Eq, other.clone()),
        };
        out.clauses.push(Clause::Condition(Condition {
            key: key.clone(),
            op,
            operand,
        }));
    }
    Ok(out)
}

#[utoipa::path(
    post,
    operation_id = "store_search",
    path = "/store/items/search",
    tag = "store",
    request_body = Search,
    responses((status = 200, description = "`{\"items\": [Item + score]}`", body = Object))
)]
pub(in crate::server) async fn search(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Search>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        let items: Vec<Value> = search_items(&state, caller, body)?
            .into_iter()
            .map(|item| {
                let mut v = serde_json::to_value(records::Item::from(item)).unwrap_or_default();
                v["score"] = Value::Null;
                v
            })
            .collect();
        ok(json!({"items": items}))
    })
    .await
}

/// The items `caller` finds: its `store.search` event, then the search
/// within the handler's scope.
pub(crate) fn search_items(
    state: &AppState,
    caller: &mut Caller,
    search: Search,
) -> Result<Vec<Item>, ApiError> {
    validate(&search.namespace_prefix)?;
    let value = json!({"namespace": search.namespace_prefix, "filter": search.filter,
        "limit": search.limit.unwrap_or(10), "offset": search.offset.unwrap_or(0),
        "query": search.query, "refresh_ttl": search.refresh_ttl});
    let authorized = caller.authorize(Resource::Store, Action::Search, value)?;
    let value = authorized.value;
    let filter = match value.get("filter") {
        Some(Value::Object(f)) => client_filter(f)?,
        _ => Filter::default(),
    };
    let query = ItemQuery {
        prefix: namespace_of(&value)?,
        filter,
        scope: authorized.filter,
        limit: value.get("limit").and_then(Value::as_u64).unwrap_or(10),
        offset: value.get("offset").and_then(Value::as_u64).unwrap_or(0),
    };
    Ok(wait(state.storage.search_items(&query))?)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NamespaceSearch)]
pub(crate) struct Namespaces {
    pub(crate) prefix: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) suffix: Vec<String>,
    pub(crate) max_depth: Option<usize>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: Option<u64>,
}

#[utoipa::path(
    post,
    operation_id = "store_namespaces",
    path = "/store/namespaces",
    tag = "store",
    request_body = Namespaces,
    responses((status = 200, description = "`{\"namespaces\": [[label, ...], ...]}`", body = Object))
)]
pub(in crate::server) async fn namespaces(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    JsonBody(body): JsonBody<Namespaces>,
) -> Response {
    as_caller(pending, move |caller| {
        let body = body?;
        ok(json!({"namespaces": list_namespaces(&state, caller, body)?}))
    })
    .await
}

/// The namespaces `caller` sees: its `store.list_namespaces` event, then
/// those holding an item within the handler's scope.
pub(crate) fn list_namespaces(
    state: &AppState,
    caller: &mut Caller,
    list: Namespaces,
) -> Result<Vec<Vec<String>>, ApiError> {
    let value = json!({"namespace": list.prefix, "suffix": list.suffix,
        "max_depth": list.max_depth, "limit": list.limit.unwrap_or(100),
        "offset": list.offset.unwrap_or(0)});
    let authorized = caller.authorize(Resource::Store, Action::ListNamespaces, value)?;
    let query = NamespaceQuery {
        prefix: namespace_of(&authorized.value)?,
        suffix: list.suffix,
        max_depth: list.max_depth,
        filter: authorized.filter.unwrap_or_default(),
        limit: list.limit.unwrap_or(100),
        offset: list.offset.unwrap_or(0),
    };
    Ok(wait(state.storage.list_namespaces(&query))?)
}
