//! Errors as the Agent Server answers them: `{"detail": ...}` with the
//! reference's status codes.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::schedule::ScheduleError;
use crate::storage::StorageError;
use crate::types::HttpError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The `detail` (or the whole body, for `plain` errors).
    pub detail: String,
    /// Extra headers (e.g. a plugin's `WWW-Authenticate`).
    pub headers: Vec<(String, String)>,
    /// Answer in plain text rather than JSON (the reference's store
    /// namespace errors).
    pub plain: bool,
}

impl ApiError {
    /// An error with `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            headers: Vec::new(),
            plain: false,
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404 with `detail`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409 with `detail`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422 with `detail`.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 500 with `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// The same error in plain text.
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }
}

impl From<HttpError> for ApiError {
    /// A plugin's error: its status (500 when invalid), its detail (the
    /// reason phrase when it gave none) and its headers.
    fn from(error: HttpError) -> Self {
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let detail = error
            .detail
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
        Self {
            status,
            detail,
            headers: error.headers,
            plain: false,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        let error = match error {
            StorageError::Schedule(error) => return Self::from(error),
            StorageError::BadQuery(detail) => return Self::unprocessable(detail),
            error => error,
        };
        tracing::error!(%error, "storage failed");
        Self::internal("Internal Server Error")
    }
}

impl From<ScheduleError> for ApiError {
    fn from(error: ScheduleError) -> Self {
        Self::unprocessable(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.plain {
            (self.status, self.detail).into_response()
        } else {
            (self.status, Json(json!({"detail": self.detail}))).into_response()
        };
        for (name, value) in self.headers {
            match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                (Ok(name), Ok(value)) => {
                    response.headers_mut().append(name, value);
                }
                _ => tracing::warn!("dropping an invalid header from the auth plugin's error"),
            }
        }
        response
    }
}

/// The body of every error: `{"detail": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub detail: String,
}
