//! Outbound HTTP from a plugin, through `wasi:http`.
//!
//! The host sends a request only to a host in the plugin's
//! `auth.allowed_hosts` (none by default); any other fails with
//! [`Error::Denied`]. Each request has its own timeout, cut to what is left
//! of the call's deadline, and a response-size cap; the whole body is read
//! before [`Request::send`] returns. Native builds (unit tests) have no
//! network: sending answers [`Error::Unsupported`] there.
//!
//! [`get`] fetches a URL; [`Request`] builds anything else: a method,
//! headers, Basic or Bearer credentials, a JSON or form body. Token
//! introspection (RFC 7662), for instance:
//!
//! ```no_run
//! use warden_sdk::http::Request;
//!
//! # fn check(token: &str, client_secret: &str) -> Result<bool, warden_sdk::http::Error> {
//! let response = Request::post("https://idp.example.com/oauth2/introspect")
//!     .basic_auth("warden", client_secret)
//!     .form(&[("token", token), ("token_type_hint", "access_token")])
//!     .send()?;
//! let active = response.is_success()
//!     && response.json::<serde_json::Value>()?["active"] == true;
//! # Ok(active)
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use base64::Engine as _;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method's name, as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to send: built with [`Request::new`] (or [`Request::get`],
/// [`Request::post`]) and sent with [`Request::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    /// A mistake made while building (a header that cannot be sent, a body
    /// that cannot be serialised), reported by [`Request::send`].
    invalid: Option<Error>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            invalid: None,
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header (repeated names are sent as repeated fields). A name
    /// that is not an HTTP token, or a value with a line break or another
    /// control character, makes [`Request::send`] fail with
    /// [`Error::InvalidHeader`]; headers the host sets itself (`host`,
    /// `connection`, ...) are refused there too.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match check_header(name, value) {
            Ok(()) => self
                .headers
                .push((name.to_ascii_lowercase(), value.to_owned())),
            Err(e) => {
                self.invalid.get_or_insert(e);
            }
        }
        self
    }

    /// Sets `Authorization: Basic` with these credentials (RFC 7617).
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.replace_header("authorization", &format!("Basic {credentials}"))
    }

    /// Sets `Authorization: Bearer token`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.replace_header("authorization", &format!("Bearer {token}"))
    }

    /// Sends `body` as the request's content, of type `content_type`.
    pub fn body(self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut request = self.replace_header("content-type", content_type);
        request.body = body.into();
        request
    }

    /// Sends `value` as JSON (`Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body("application/json", body),
            Err(e) => {
                self.invalid
                    .get_or_insert(Error::InvalidBody(e.to_string()));
                self
            }
        }
    }

    /// Sends `fields` as an HTML form
    /// (`application/x-www-form-urlencoded`), each name and value
    /// percent-encoded.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.body("application/x-www-form-urlencoded", body)
    }

    /// Waits at most this long for the connection, the response's first
    /// byte and each next part of it (always cut to the host's
    /// `http_timeout_ms` and to what is left of the call's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, names lowercased, in the order they were added.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body (empty when none was set).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, Error> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        let url = parse(&self.url)?;
        backend::send(&self, &url)
    }

    fn replace_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.header(name, value)
    }
}

/// Whether `name: value` can be sent as a header field.
fn check_header(name: &str, value: &str) -> Result<(), Error> {
    // RFC 9110 `token` characters.
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let name_ok = !name.is_empty() && name.bytes().all(token);
    let value_ok = value
        .bytes()
        .all(|c| c == b'\t' || (c >= 0x20 && c != 0x7f));
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(Error::InvalidHeader(name.to_owned()))
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Failed(format!("not JSON: {e}")))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `http(s)://host[:port][/path][?query]`.
    InvalidUrl(String),
    /// This header (its name) cannot be sent: not a valid field, or one the
    /// host sets itself.
    InvalidHeader(String),
    /// The body could not be serialised.
    InvalidBody(String),
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
            Self::InvalidHeader(name) => write!(f, "the header {name:?} cannot be sent"),
            Self::InvalidBody(why) => write!(f, "the body cannot be serialised: {why}"),
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
    Request::get(url).send()
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, HeaderError, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{Error, Method, Request, Response, Url};

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

    fn method(method: Method) -> WasiMethod {
        match method {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Patch => WasiMethod::Patch,
            Method::Delete => WasiMethod::Delete,
            Method::Options => WasiMethod::Options,
        }
    }

    fn headers(request: &Request) -> Result<Fields, Error> {
        let fields = Fields::new();
        for (name, value) in &request.headers {
            fields
                .append(name, value.as_bytes())
                .map_err(|e: HeaderError| match e {
                    HeaderError::InvalidSyntax | HeaderError::Forbidden => {
                        Error::InvalidHeader(name.clone())
                    }
                    HeaderError::Immutable => Error::Failed("immutable headers".into()),
                })?;
        }
        Ok(fields)
    }

    fn options(request: &Request) -> Option<RequestOptions> {
        let timeout = request.timeout?;
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let options = RequestOptions::new();
        // A host that does not support one of them keeps its own.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        Some(options)
    }

    pub(super) fn send(request: &Request, url: &Url<'_>) -> Result<Response, Error> {
        let failed = |what: &str| Error::Failed(what.to_owned());
        let outgoing = OutgoingRequest::new(headers(request)?);
        outgoing
            .set_method(&method(request.method))
            .map_err(|()| failed("method"))?;
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| failed("scheme"))?;
        outgoing
            .set_authority(Some(url.authority))
            .map_err(|()| Error::InvalidUrl(url.authority.to_owned()))?;
        outgoing
            .set_path_with_query(Some(url.path_and_query))
            .map_err(|()| Error::InvalidUrl(url.path_and_query.to_owned()))?;
        let body = outgoing.body().map_err(|()| failed("no request body"))?;
        // Sent first, so that the host reads the body while it is written.
        let pending = outgoing_handler::handle(outgoing, options(request)).map_err(error)?;
        {
            let stream = body
                .write()
                .map_err(|()| failed("no request body stream"))?;
            for chunk in request.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| match e {
                        StreamError::LastOperationFailed(e) => Error::Failed(e.to_debug_string()),
                        StreamError::Closed => failed("the request body was closed"),
                    })?;
            }
        }
        OutgoingBody::finish(body, None).map_err(error)?;
        let response = loop {
            match pending.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(error(code)),
                Some(Err(())) => return Err(failed("the response was already taken")),
                None => pending.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
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
            headers,
            body: bytes,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::{Error, Request, Response, Url};

    pub(super) fn send(_: &Request, _: &Url<'_>) -> Result<Response, Error> {
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

    #[test]
    fn an_introspection_request_carries_basic_credentials_and_a_form() {
        let request = Request::post("https://idp.example.com/introspect")
            .header("Accept", "application/json")
            .basic_auth("warden", "s3cr:t")
            .form(&[("token", "a b&c=d/é"), ("token_type_hint", "access_token")]);
        assert_eq!(request.method(), Method::Post);
        assert_eq!(
            request.headers(),
            [
                ("accept".to_owned(), "application/json".to_owned()),
                // base64("warden:s3cr:t")
                (
                    "authorization".to_owned(),
                    "Basic d2FyZGVuOnMzY3I6dA==".to_owned()
                ),
                (
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned()
                ),
            ]
        );
        assert_eq!(
            std::str::from_utf8(request.body_bytes()).unwrap(),
            "token=a+b%26c%3Dd%2F%C3%A9&token_type_hint=access_token"
        );
    }

    #[test]
    fn credentials_and_bodies_replace_what_was_set_before() {
        let request = Request::post("https://x/")
            .bearer_auth("one")
            .bearer_auth("two")
            .json(&serde_json::json!({"a": 1}))
            .json(&serde_json::json!({"b": 2}));
        assert_eq!(
            request.headers(),
            [
                ("authorization".to_owned(), "Bearer two".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert_eq!(request.body_bytes(), br#"{"b":2}"#);
    }

    #[test]
    fn a_header_that_cannot_be_sent_fails_the_request_before_it_leaves() {
        for (name, value) in [
            ("x-injected", "a\r\nhost: evil.example"),
            ("bad name", "v"),
            ("", "v"),
            ("x-nul", "a\0b"),
        ] {
            let request = Request::get("https://x/").header(name, value);
            assert_eq!(
                request.send(),
                Err(Error::InvalidHeader(name.to_owned())),
                "{name:?}"
            );
        }
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        assert!(matches!(
            Request::post("https://x/").json(&map).send(),
            Err(Error::InvalidBody(_))
        ));
    }

    #[test]
    fn response_headers_are_found_in_any_case() {
        let response = Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"active\":true}".to_vec(),
        };
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.header("x-missing"), None);
        assert_eq!(
            response.json::<serde_json::Value>().unwrap()["active"],
            true
        );
    }
}
