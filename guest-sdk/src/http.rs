//! Outbound HTTP from a plugin, through `wasi:http`.
//!
//! The host sends a request only to a host in the plugin's
//! `auth.allowed_hosts` (none by default); any other fails with
//! [`Error::Denied`]. Each request has its own timeout, cut to what is left
//! of the call's deadline, and a response-size cap; the whole body is read
//! before [`get`] returns. Native builds (unit tests) have no network:
//! [`get`] answers [`Error::Unsupported`] there.

use std::fmt;

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Failed(format!("not JSON: {e}")))
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL is not `http(s)://host[:port][/path][?query]`.
    InvalidUrl(String),
    /// The host is not in `auth.allowed_hosts`.
    Denied,
    /// No response within the request's timeout (or the call's deadline).
    Timeout,
    /// The response body is larger than the host's cap.
    TooLarge,
    /// Any other failure (connection refused, TLS, protocol).
    Failed(String),
    /// Outbound HTTP exists only inside Warden, not in native builds.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(url) => write!(f, "invalid URL {url:?}"),
            Self::Denied => f.write_str("the host is not in auth.allowed_hosts"),
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge => f.write_str("the response is too large"),
            Self::Failed(why) => f.write_str(why),
            Self::Unsupported => f.write_str("outbound HTTP needs the Warden host"),
        }
    }
}

impl std::error::Error for Error {}

/// The parts of an `http(s)` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse(url: &str) -> Result<Url<'_>, Error> {
    let invalid = || Error::InvalidUrl(url.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(invalid()),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') || url.contains('#') {
        return Err(invalid());
    }
    let path_and_query = if path.is_empty() { "/" } else { path };
    Ok(Url {
        https,
        authority,
        path_and_query,
    })
}

/// Sends `GET url` and reads the whole response.
pub fn get(url: &str) -> Result<Response, Error> {
    let url = parse(url)?;
    backend::get(&url)
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
    use wasip2::io::streams::StreamError;

    use super::{Error, Response, Url};

    fn error(code: ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestDenied => Error::Denied,
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout => Error::Timeout,
            ErrorCode::HttpResponseBodySize(_) => Error::TooLarge,
            other => Error::Failed(format!("{other:?}")),
        }
    }

    pub(super) fn get(url: &Url<'_>) -> Result<Response, Error> {
        let failed = |what: &str| Error::Failed(what.to_owned());
        let request = OutgoingRequest::new(Fields::new());
        request
            .set_method(&Method::Get)
            .map_err(|()| failed("method"))?;
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| failed("scheme"))?;
        request
            .set_authority(Some(url.authority))
            .map_err(|()| Error::InvalidUrl(url.authority.to_owned()))?;
        request
            .set_path_with_query(Some(url.path_and_query))
            .map_err(|()| Error::InvalidUrl(url.path_and_query.to_owned()))?;
        let pending = outgoing_handler::handle(request, None).map_err(error)?;
        let response = loop {
            match pending.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(error(code)),
                Some(Err(())) => return Err(failed("the response was already taken")),
                None => pending.subscribe().block(),
            }
        };
        let status = response.status();
        let body = response.consume().map_err(|()| failed("no body"))?;
        let mut bytes = Vec::new();
        {
            let stream = body.stream().map_err(|()| failed("no body stream"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Error::Failed(e.to_debug_string()));
                    }
                }
            }
        }
        drop(body);
        Ok(Response {
            status,
            body: bytes,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::{Error, Response, Url};

    pub(super) fn get(_: &Url<'_>) -> Result<Response, Error> {
        Err(Error::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_scheme_authority_and_path() {
        assert_eq!(
            parse("https://idp.example.com/.well-known/jwks.json?x=1"),
            Ok(Url {
                https: true,
                authority: "idp.example.com",
                path_and_query: "/.well-known/jwks.json?x=1"
            })
        );
        assert_eq!(
            parse("http://127.0.0.1:8080").map(|u| (u.https, u.path_and_query)),
            Ok((false, "/"))
        );
        for bad in [
            "ftp://x/",
            "idp.example.com",
            "https:///x",
            "https://u@x/",
            "https://x/#f",
        ] {
            assert!(matches!(parse(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
        assert_eq!(get("http://127.0.0.1:1/"), Err(Error::Unsupported));
    }
}
