//! Every request gets an id: the client's `x-request-id` when it sent a
//! sensible one (a proxy's, say), else a new UUID. The id is in the
//! response's `x-request-id`, in every log line written while the request
//! is served (its tracing span), and in its decision-log records.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the id, both ways.
pub const HEADER: &str = "x-request-id";

/// The longest id taken from a client.
const MAX_LEN: usize = 128;

/// A request's id, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// The client's id if it is 1–128 characters of letters, digits and
    /// `-_.:/`, else a new UUID (v4): an id never carries anything that
    /// could break a log line.
    pub fn from_client(sent: Option<&HeaderValue>) -> Self {
        let sent = sent.and_then(|v| v.to_str().ok()).filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
        });
        match sent {
            Some(id) => Self(id.into()),
            None => Self(uuid::Uuid::new_v4().to_string().into()),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The middleware: the id into the request's extensions and the response's
/// header, and a `request` span around the rest.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = RequestId::from_client(request.headers().get(HEADER));
    let span = tracing::info_span!("request", id = %id.as_str());
    let header = HeaderValue::from_str(id.as_str()).ok();
    request.extensions_mut().insert(id);
    let mut response = next.run(request).instrument(span).await;
    if let Some(header) = header {
        response.headers_mut().insert(HEADER, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensible_client_id_is_kept_and_anything_else_replaced() {
        let kept = RequestId::from_client(Some(&HeaderValue::from_static("lb-7f3a:9/x_y.z")));
        assert_eq!(kept.as_str(), "lb-7f3a:9/x_y.z");
        for sent in [
            Some(HeaderValue::from_static("")),
            Some(HeaderValue::from_static("a b")),
            Some(HeaderValue::from_static("a\"}{")),
            Some(HeaderValue::from_str(&"x".repeat(129)).unwrap()),
            None,
        ] {
            let id = RequestId::from_client(sent.as_ref());
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok(), "{id:?}");
        }
    }
}
