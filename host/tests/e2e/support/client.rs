//! The tests' one HTTP client. It sends to an in-process router (no socket,
//! `tower::ServiceExt::oneshot`) or to a `warden` process over loopback
//! (`ureq`, keep-alive, on a blocking thread), and answers with a [`Reply`]
//! either way. Raw sockets are left to the tests whose bytes on the wire
//! matter (malformed or slow HTTP).

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// Its body as text.
    pub text: String,
}

impl Reply {
    fn new(status: StatusCode, headers: HeaderMap, bytes: &[u8]) -> Self {
        Self {
            status,
            headers,
            json: serde_json::from_slice(bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// The `detail` of an error body (empty when there is none).
    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or_default()
    }
}

/// Where a [`Client`] sends its requests.
#[derive(Clone)]
enum Target {
    Router(axum::Router),
    Http { agent: ureq::Agent, base: String },
}

/// An HTTP client of one server, holding a bearer token (or none), as a
/// user's program holds one. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    target: Target,
    token: Option<String>,
}

impl Client {
    /// A client of an in-process router.
    pub fn router(app: axum::Router) -> Self {
        Self {
            target: Target::Router(app),
            token: None,
        }
    }

    /// A client of the server listening on `127.0.0.1:<port>`.
    pub fn http(port: u16) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(super::CEILING))
            .build();
        Self {
            target: Target::Http {
                agent: config.into(),
                base: format!("http://127.0.0.1:{port}"),
            },
            token: None,
        }
    }

    /// This client sending `token` as its bearer token (none when empty).
    pub fn as_user(&self, token: &str) -> Self {
        Self {
            target: self.target.clone(),
            token: (!token.is_empty()).then(|| token.to_owned()),
        }
    }

    /// A request, sent when awaited (or with [`HttpRequest::open`]).
    pub fn request(&self, method: &str, path: &str) -> HttpRequest {
        let mut headers = Vec::new();
        if let Some(token) = &self.token {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        HttpRequest {
            target: self.target.clone(),
            method: method.to_owned(),
            path: path.to_owned(),
            headers,
            body: None,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpRequest {
        self.request("GET", path)
    }

    /// `POST path` with a JSON body (none when `Null`).
    pub fn post(&self, path: &str, body: Value) -> HttpRequest {
        self.request("POST", path).json(body)
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: Value) -> HttpRequest {
        self.request("PUT", path).json(body)
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: Value) -> HttpRequest {
        self.request("PATCH", path).json(body)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> HttpRequest {
        self.request("DELETE", path)
    }

    /// `method path` with a JSON body (none when `Null`): for tests that
    /// go through a table of requests.
    pub async fn send(&self, method: &str, path: &str, body: Value) -> Reply {
        self.request(method, path).json(body).await
    }
}

/// One request being built.
pub struct HttpRequest {
    target: Target,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl HttpRequest {
    /// `METHOD path`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// With this header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With this JSON body (none when `Null`).
    pub fn json(self, body: Value) -> Self {
        if body.is_null() {
            return self;
        }
        self.text(body.to_string())
    }

    /// With this body as is, sent as JSON (malformed JSON, for one).
    pub fn text(mut self, body: String) -> Self {
        self.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self.body = Some(body);
        self
    }

    /// Sends it: the response, or why none came (an HTTP server that
    /// closed the connection, say).
    pub async fn try_send(self) -> Result<Reply, String> {
        if let Target::Http { agent, base } = self.target {
            let url = format!("{base}{}", self.path);
            return tokio::task::spawn_blocking(move || {
                let (status, headers, mut body) =
                    http_call(&agent, &self.method, &url, &self.headers, self.body)?;
                let bytes = body
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .map_err(|e| e.to_string())?;
                Ok(Reply::new(status, headers, &bytes))
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        let mut stream = self.open_stream().await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.body.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(Reply::new(stream.status, stream.headers, &bytes))
    }

    /// Sends it and returns the response as it starts: a stream's body is
    /// read with [`Stream::until`]. Dropping it is the client leaving.
    pub async fn open(self) -> Stream {
        let what = self.describe();
        self.open_stream()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    async fn open_stream(self) -> Result<Stream, String> {
        match self.target {
            Target::Router(app) => {
                use tower::ServiceExt;
                let mut request = axum::http::Request::builder()
                    .method(self.method.as_str())
                    .uri(&self.path);
                for (name, value) in &self.headers {
                    request = request.header(name, value);
                }
                let body = self.body.map_or_else(axum::body::Body::empty, Into::into);
                let response = app
                    .oneshot(request.body(body).map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
                let (parts, body) = response.into_parts();
                let body = body
                    .into_data_stream()
                    .map(|chunk| chunk.map_err(|e| e.to_string()))
                    .boxed();
                Ok(Stream {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                })
            }
            Target::Http { agent, base } => {
                let url = format!("{base}{}", self.path);
                let (status, headers, body) = tokio::task::spawn_blocking(move || {
                    http_call(&agent, &self.method, &url, &self.headers, self.body)
                })
                .await
                .map_err(|e| e.to_string())??;
                Ok(Stream {
                    status,
                    headers,
                    body: chunks_of(body),
                })
            }
        }
    }
}

impl IntoFuture for HttpRequest {
    type Output = Reply;
    type IntoFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

    /// Sends it; panics if no response comes.
    fn into_future(self) -> Self::IntoFuture {
        let what = self.describe();
        Box::pin(async move {
            self.try_send()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"))
        })
    }
}

/// One blocking HTTP exchange: the response's status, headers and body,
/// to be read.
fn http_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<String>,
) -> Result<(StatusCode, HeaderMap, ureq::Body), String> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = match body {
        None => agent.run(request.body(()).map_err(|e| e.to_string())?),
        Some(text) => agent.run(request.body(text).map_err(|e| e.to_string())?),
    }
    .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    Ok((parts.status, parts.headers, body))
}

/// A body as a stream of chunks, read by a thread of its own (which stops
/// when the stream is dropped and the next chunk comes).
fn chunks_of(body: ureq::Body) -> BoxStream<'static, Result<Bytes, String>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut reader = body.into_with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let chunk = match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => Ok(Bytes::copy_from_slice(&buffer[..n])),
                Err(e) => Err(e.to_string()),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
    .boxed()
}

/// A response whose body is read as it comes.
pub struct Stream {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    body: BoxStream<'static, Result<Bytes, String>>,
}

impl Stream {
    /// The text received until the body ends (`true`) or `stop` holds on
    /// what came so far (`false`); a body silent for [`super::CEILING`]
    /// fails the test.
    pub async fn until(&mut self, stop: impl Fn(&str) -> bool) -> (String, bool) {
        let mut text = String::new();
        loop {
            let chunk = tokio::time::timeout(super::CEILING, self.body.next())
                .await
                .expect("the stream went silent");
            match chunk {
                None => return (text, true),
                Some(bytes) => text.push_str(&String::from_utf8_lossy(&bytes.expect("a chunk"))),
            }
            if stop(&text) {
                return (text, false);
            }
        }
    }

    /// The SSE events received until `stop` holds on one of them (it
    /// included) or the body ends.
    pub async fn events_until(&mut self, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut events = Vec::new();
        let mut pending = String::new();
        loop {
            while let Some(end) = pending.find(FRAME_END) {
                let frame: String = pending.drain(..end + FRAME_END.len()).collect();
                if let Some(event) = Event::parse(&frame) {
                    let done = stop(&event);
                    events.push(event);
                    if done {
                        return events;
                    }
                }
            }
            let (text, ended) = self
                .until(|t| format!("{pending}{t}").contains(FRAME_END))
                .await;
            pending.push_str(&text);
            if ended && !pending.contains(FRAME_END) {
                return events;
            }
        }
    }
}

/// What ends an SSE frame in Warden's streams.
const FRAME_END: &str = "\r\n\r\n";

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its `event:` name.
    pub event: String,
    /// Its `data:` as JSON (`Null` when not JSON).
    pub data: Value,
    /// Its `id:` (empty when none).
    pub id: String,
}

impl Event {
    fn parse(frame: &str) -> Option<Self> {
        let mut event = Self {
            event: String::new(),
            data: Value::Null,
            id: String::new(),
        };
        for line in frame.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                event.event = name.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                event.data = serde_json::from_str(data).unwrap_or(Value::Null);
            } else if let Some(id) = line.strip_prefix("id: ") {
                id.clone_into(&mut event.id);
            }
        }
        (!event.event.is_empty()).then_some(event)
    }
}

/// The SSE events of a whole body, as [`Stream::events_until`] parses them.
pub fn events(text: &str) -> Vec<Event> {
    text.split(FRAME_END).filter_map(Event::parse).collect()
}
