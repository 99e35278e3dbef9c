//! Request parsing with the reference's errors, and the response helpers
//! the routes share.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use crate::reserved::{client_metadata, strip_reserved_config, strip_user_id};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::limits::BodyBudget;
use crate::storage::Page;

/// A JSON request body, parsed. An empty body reads as `{}`; malformed
/// JSON, a wrong type or a missing field is a 422 naming the problem; a
/// body past its route's limit is a 413 and one that arrives too slowly a
/// 408, each naming the `limits` key ([`BodyBudget`]). The error is kept,
/// not answered at once: the route reports it after authentication
/// (credentials come first). A large body is parsed on the blocking pool,
/// not on an async worker.
pub struct JsonBody<T>(pub Result<T, ApiError>);

/// Bodies up to this size are parsed in place; larger ones on the
/// blocking pool.
const PARSE_IN_PLACE: usize = 64 * 1024;

impl<T: DeserializeOwned + Send + 'static, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonBody(Self::read(request).await))
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonBody<T> {
    async fn read(request: Request) -> Result<T, ApiError> {
        let budget = request
            .extensions()
            .get::<BodyBudget>()
            .copied()
            .unwrap_or_default();
        let body = Limited::new(request.into_body(), budget.limit);
        let bytes = match tokio::time::timeout(budget.timeout, body.collect()).await {
            Err(_) => return Err(budget.too_slow()),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(budget.too_large());
            }
            Ok(Err(_)) => return Err(ApiError::bad_request("Failed to read the request body")),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse(b"{}");
        }
        if bytes.len() <= PARSE_IN_PLACE {
            return parse(&bytes);
        }
        tokio::task::spawn_blocking(move || parse(&bytes))
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("Internal Server Error")))
    }
}

/// Parses a JSON document into `T`, with the API's 422s.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::unprocessable("Invalid JSON in request body")
        } else {
            match e.path().to_string() {
                path if path == "." => ApiError::unprocessable(inner.to_string()),
                path => ApiError::unprocessable(format!("{path}: {inner}")),
            }
        }
    })?;
    de.end()
        .map_err(|_| ApiError::unprocessable("Invalid JSON in request body"))?;
    Ok(value)
}

/// A path id, or 422 `Invalid <what> ID: must be a UUID`.
pub fn path_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::unprocessable(format!("Invalid {what} ID: must be a UUID")))
}

/// 200 with a JSON body.
pub fn ok(body: impl Serialize) -> Result<Response, ApiError> {
    Ok(Json(body).into_response())
}

/// 204, no body.
pub fn no_content() -> Result<Response, ApiError> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A search page: the bare array, `X-Pagination-Total`, and
/// `X-Pagination-Next` when more pages exist.
pub fn paged<T: Serialize>(page: Page<T>, offset: u64) -> Result<Response, ApiError> {
    let next = offset + page.items.len() as u64;
    let mut response = Json(&page.items).into_response();
    let headers = response.headers_mut();
    headers.insert("x-pagination-total", HeaderValue::from(page.total));
    if next < page.total {
        headers.insert("x-pagination-next", HeaderValue::from(next));
    }
    Ok(response)
}

/// Validates a search's `limit` and `offset` (LangGraph: 1..=1000, ≥ 0).
pub fn limits(
    limit: Option<i64>,
    offset: Option<i64>,
    default: u64,
) -> Result<(u64, u64), ApiError> {
    let limit = limit.map_or(Ok(default), |l| {
        u64::try_from(l)
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::unprocessable("limit must be between 1 and 1000"))
    })?;
    let offset = offset.map_or(Ok(0), |o| {
        u64::try_from(o).map_err(|_| ApiError::unprocessable("offset must be >= 0"))
    })?;
    Ok((limit, offset))
}

/// Parses `sort_order` (`asc` / `desc`).
pub fn order(sort_order: Option<&str>) -> Result<crate::storage::Order, ApiError> {
    match sort_order {
        None => Ok(crate::storage::Order::Desc),
        Some(o) if o.eq_ignore_ascii_case("desc") => Ok(crate::storage::Order::Desc),
        Some(o) if o.eq_ignore_ascii_case("asc") => Ok(crate::storage::Order::Asc),
        Some(o) => Err(ApiError::unprocessable(format!(
            "Invalid sort_order: '{o}'"
        ))),
    }
}

/// Picks a sort column from the allowed ones.
pub fn sort_by(
    sort_by: Option<&str>,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, ApiError> {
    match sort_by {
        None => Ok(None),
        Some(s) => allowed
            .iter()
            .find(|a| **a == s)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "Invalid sort_by: '{s}'. Expected one of {allowed:?}"
                ))
            }),
    }
}

/// Keeps only the `select`ed fields of each record (all when empty); an
/// unknown field is a 422.
pub fn select<T: Serialize>(
    records: impl IntoIterator<Item = T>,
    select: &[String],
    allowed: &[&str],
) -> Result<Vec<serde_json::Value>, ApiError> {
    if let Some(bad) = select.iter().find(|s| !allowed.contains(&s.as_str())) {
        return Err(ApiError::unprocessable(format!(
            "Invalid select field: '{bad}'. Expected any of {allowed:?}"
        )));
    }
    records
        .into_iter()
        .map(|record| {
            let mut value = serde_json::to_value(record)
                .map_err(|e| ApiError::internal(format!("serialising a record: {e}")))?;
            if let (false, Some(object)) = (select.is_empty(), value.as_object_mut()) {
                object.retain(|k, _| select.iter().any(|s| s == k));
            }
            Ok(value)
        })
        .collect()
}

/// The `metadata` object the handler left in the event's value, else `fallback`.
pub fn stamped_metadata(
    value: &serde_json::Value,
    fallback: crate::storage::Object,
) -> crate::storage::Object {
    match value.get("metadata") {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => fallback,
    }
}

/// The assistant a body names ([`crate::runs::resolve_assistant`]); a 422
/// otherwise.
pub(in crate::server) fn resolve_assistant(state: &AppState, text: &str) -> Result<Uuid, ApiError> {
    crate::runs::resolve_assistant(&state.graphs, text).map_err(ApiError::unprocessable)
}
