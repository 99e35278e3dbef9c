//! Outbound HTTP from a Warden component (an auth plugin or a graph),
//! through `wasi:http`.
//!
//! The host sends a request only to a host in the component's
//! `allowed_hosts` (`auth.allowed_hosts`, or the graph's in `graphs`; none by
//! default); any other fails with [`Error::Denied`]. Each request has its
//! own timeout, cut to what is left of the call's deadline, and a
//! response-size cap. [`Request::send`] reads the whole body before it
//! returns; [`Request::stream`] returns at the headers and reads the body as
//! it arrives ([`StreamingResponse::next_chunk`], or server-sent events
//! with [`StreamingResponse::events`]): a model's tokens, for instance.
//! Native builds (unit tests) have no network: sending answers
//! [`Error::Unsupported`] there, and [`StreamingResponse::scripted`] stands
//! in for a server.
//!
//! [`get`] fetches a URL; [`Request`] builds anything else: a method,
//! headers, Basic or Bearer credentials, a JSON or form body. Token
//! introspection (RFC 7662), for instance:
//!
//! ```no_run
//! use warden_http::Request;
//!
//! # fn check(token: &str, client_secret: &str) -> Result<bool, warden_http::Error> {
//! let response = Request::post("https://idp.example.com/oauth2/introspect")
//!     .basic_auth("warden", client_secret)
//!     .form(&[("token", token), ("token_type_hint", "access_token")])
//!     .send()?;
//! let active = response.is_success()
//!     && response.json::<serde_json::Value>()?["active"] == true;
//! # Ok(active)
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

pub mod sse;

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
        self.stream()?.into_response()
    }

    /// Sends the request and returns as soon as the response's status and
    /// headers arrive; its body is read as it comes
    /// ([`StreamingResponse::next_chunk`], [`StreamingResponse::events`]).
    pub fn stream(self) -> Result<StreamingResponse, Error> {
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
    // The length is the body's, set when the request is sent.
    let name_ok =
        !name.is_empty() && name.bytes().all(token) && !name.eq_ignore_ascii_case("content-length");
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
        is_success(self.status)
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
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

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A response whose body is read as it arrives: [`Request::stream`].
#[must_use = "the body is read by next_chunk, events or into_response"]
pub struct StreamingResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    body: Body,
}

/// Where a streamed body's bytes come from.
enum Body {
    /// A `wasi:http` incoming body.
    #[cfg(target_arch = "wasm32")]
    Wasi(backend::BodyStream),
    /// Bytes given in advance ([`StreamingResponse::scripted`]).
    Scripted(VecDeque<Vec<u8>>),
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl StreamingResponse {
    /// A response that yields `chunks` as its body, one per
    /// [`next_chunk`](Self::next_chunk): what a server would send, for
    /// tests that run natively, without a network.
    pub fn scripted(
        status: u16,
        headers: Vec<(String, String)>,
        chunks: impl IntoIterator<Item = impl Into<Vec<u8>>>,
    ) -> Self {
        let headers = headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        Self {
            status,
            headers,
            body: Body::Scripted(chunks.into_iter().map(Into::into).collect()),
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        is_success(self.status)
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The next bytes of the body, as soon as some arrive; `None` at its
    /// end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match &mut self.body {
            #[cfg(target_arch = "wasm32")]
            Body::Wasi(stream) => stream.next_chunk(),
            Body::Scripted(chunks) => Ok(chunks.pop_front()),
        }
    }

    /// Reads the rest of the body: the whole response.
    pub fn into_response(mut self) -> Result<Response, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body,
        })
    }

    /// The body as server-sent events (`text/event-stream`), each as soon
    /// as its blank line arrives.
    pub fn events(self) -> sse::Events {
        sse::Events::new(self)
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
    /// The host is not in the component's `allowed_hosts`.
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
            Self::Denied => f.write_str("the host is not in allowed_hosts"),
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
        ErrorCode, Fields, HeaderError, IncomingBody, IncomingResponse, Method as WasiMethod,
        OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
    };
    use wasip2::io::streams::{InputStream, StreamError};

    use super::{Error, Method, Request, StreamingResponse, Url};

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

    /// A body's read error that carries no error code (wasmtime's hosts
    /// give only its text): the timeouts and the size cap by their words.
    fn body_error(text: String) -> Error {
        let lower = text.to_ascii_lowercase();
        if lower.contains("timeout") {
            Error::Timeout
        } else if lower.contains("body size exceeds") {
            Error::TooLarge
        } else {
            Error::Failed(text)
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
        // The body is known whole: its length goes first, so that servers
        // that do not read chunked bodies get it too.
        let sends_body = !request.body.is_empty()
            || matches!(request.method, Method::Post | Method::Put | Method::Patch);
        if sends_body {
            fields
                .append("content-length", request.body.len().to_string().as_bytes())
                .map_err(|_| Error::InvalidHeader("content-length".into()))?;
        }
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

    pub(super) fn send(request: &Request, url: &Url<'_>) -> Result<StreamingResponse, Error> {
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
        // A request the host refuses (a denied host) closes the body: the
        // response then tells why.
        let written = (|| {
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
            Ok(())
        })();
        let finished = written.and_then(|()| OutgoingBody::finish(body, None).map_err(error));
        let response = loop {
            match pending.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(error(code)),
                Some(Err(())) => return Err(failed("the response was already taken")),
                None => pending.subscribe().block(),
            }
        };
        finished?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let body = response.consume().map_err(|()| failed("no body"))?;
        let stream = body.stream().map_err(|()| failed("no body stream"))?;
        Ok(StreamingResponse {
            status,
            headers,
            body: super::Body::Wasi(BodyStream {
                stream: Some(stream),
                body: Some(body),
                _response: response,
            }),
        })
    }

    /// An incoming body being read. The stream is a child of the body,
    /// which is a child of the response: they are dropped in that order.
    pub(super) struct BodyStream {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        _response: IncomingResponse,
    }

    impl BodyStream {
        pub(super) fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
            let Some(stream) = &self.stream else {
                return Ok(None);
            };
            loop {
                match stream.blocking_read(64 * 1024) {
                    // An empty read is a wake-up without data.
                    Ok(chunk) if chunk.is_empty() => continue,
                    Ok(chunk) => return Ok(Some(chunk)),
                    Err(StreamError::Closed) => {
                        self.stream = None;
                        // The trailers say whether the body ended well.
                        if let Some(body) = self.body.take() {
                            let trailers = IncomingBody::finish(body);
                            loop {
                                match trailers.get() {
                                    Some(Ok(Ok(_))) => break,
                                    Some(Ok(Err(code))) => return Err(error(code)),
                                    Some(Err(())) => break,
                                    None => trailers.subscribe().block(),
                                }
                            }
                        }
                        return Ok(None);
                    }
                    Err(StreamError::LastOperationFailed(e)) => {
                        self.stream = None;
                        return Err(match http_error_code(&e) {
                            Some(code) => error(code),
                            None => body_error(e.to_debug_string()),
                        });
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::{Error, Request, StreamingResponse, Url};

    pub(super) fn send(_: &Request, _: &Url<'_>) -> Result<StreamingResponse, Error> {
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
            ("Content-Length", "0"),
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
