//! A small OpenAI-compatible model server on 127.0.0.1 for the tests and
//! benchmarks: `POST /v1/chat/completions` streams scripted answers as
//! server-sent events, chunk by chunk, the way OpenAI's API does (content
//! deltas, tool-call fragments, a usage chunk, `data: [DONE]`). A reply can
//! be held after its first token until the test releases it, or hang for
//! good. It records every request, runs on its own thread and runtime, and
//! stops when dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::support::Background;

/// What the server answers the next request with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// These tokens, one chunk each, then `finish_reason: "stop"`.
    Tokens(Vec<String>),
    /// A call of tool `name` with `args`, its arguments split over two
    /// chunks, then `finish_reason: "tool_calls"`.
    ToolCall {
        /// The tool.
        name: String,
        /// Its arguments.
        args: Value,
        /// The call's id.
        id: String,
    },
    /// One token, then nothing more, ever.
    Hang,
    /// A 401 whose error repeats the key it was sent, as some servers do.
    Unauthorized,
}

impl Answer {
    /// An answer of these tokens.
    pub fn tokens(tokens: &[&str]) -> Self {
        Self::Tokens(tokens.iter().map(|t| (*t).to_owned()).collect())
    }
}

#[derive(Default)]
struct Shared {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<(HeaderMap, Value)>>,
    /// When set, the next streamed answer waits here after its first chunk.
    hold: Mutex<Option<Arc<Notify>>>,
    /// The pause before each content token.
    gap: Mutex<Duration>,
    /// When each content token was handed to the connection.
    sent: Mutex<Vec<Instant>>,
}

/// The running model server.
pub struct ModelServer {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _server: Background,
}

impl ModelServer {
    /// Starts serving on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let server = Background::serve(app);
        Self {
            addr: server.addr,
            shared,
            _server: server,
        }
    }

    /// Its OpenAI-compatible base URL (`http://127.0.0.1:<port>/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:<port>`, for `allowed_hosts`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the answer to a coming request (in order); a request with no
    /// answer queued gets a 500.
    pub fn answer(&self, answer: Answer) {
        self.shared.answers.lock().unwrap().push_back(answer);
    }

    /// Holds the next streamed answer after its first chunk until the
    /// returned gate is opened (`notify_one`).
    pub fn hold_next(&self) -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        *self.shared.hold.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Pauses this long before each content token (none by default), as a
    /// model generating them would.
    #[allow(dead_code, reason = "the first_token bench paces its model")]
    pub fn pace(&self, gap: Duration) {
        *self.shared.gap.lock().unwrap() = gap;
    }

    /// When each content token was sent so far (cleared by the call).
    #[allow(dead_code, reason = "the first_token bench times the tokens")]
    pub fn take_sent(&self) -> Vec<Instant> {
        std::mem::take(&mut *self.shared.sent.lock().unwrap())
    }

    /// The requests received so far: their headers and JSON bodies.
    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.shared.requests.lock().unwrap().clone()
    }
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

/// The chunks of `answer` (without the final `[DONE]`).
fn chunks(model: &str, answer: &Answer) -> Vec<Value> {
    let mut out = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    match answer {
        Answer::Tokens(tokens) => {
            out.extend(
                tokens
                    .iter()
                    .map(|t| chunk(model, json!({"content": t}), None)),
            );
            out.push(chunk(model, json!({}), Some("stop")));
        }
        Answer::ToolCall { name, args, id } => {
            let args = args.to_string();
            let (first, second) = args.split_at(args.len() / 2);
            out.push(chunk(
                model,
                json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                    "function": {"name": name, "arguments": first}}]}),
                None,
            ));
            out.push(chunk(
                model,
                json!({"tool_calls": [{"index": 0, "function": {"arguments": second}}]}),
                None,
            ));
            out.push(chunk(model, json!({}), Some("tool_calls")));
        }
        Answer::Hang => out.push(chunk(model, json!({"content": "Thinking"}), None)),
        Answer::Unauthorized => {}
    }
    if !matches!(answer, Answer::Hang) {
        out.push(json!({
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }));
    }
    out
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared
        .requests
        .lock()
        .unwrap()
        .push((headers.clone(), body.clone()));
    let Some(answer) = shared.answers.lock().unwrap().pop_front() else {
        let error = json!({"error": {"message": "no answer scripted", "type": "server_error"}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    };
    if matches!(answer, Answer::Unauthorized) {
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_owned();
        let error = json!({"error": {
            "message": format!("Incorrect API key provided: {key}."),
            "type": "invalid_request_error", "code": "invalid_api_key",
        }});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let hold = shared.hold.lock().unwrap().take();
    let gap = *shared.gap.lock().unwrap();
    let (send, receive) = mpsc::channel::<String>(4);
    tokio::spawn(async move {
        let mut chunks = chunks(&model, &answer).into_iter().enumerate();
        for (i, chunk) in chunks.by_ref() {
            let token = chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
            if token && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if token {
                shared.sent.lock().unwrap().push(Instant::now());
            }
            if send.send(format!("data: {chunk}\n\n")).await.is_err() {
                return;
            }
            if i == 1
                && let Some(gate) = &hold
            {
                gate.notified().await;
            }
        }
        if matches!(answer, Answer::Hang) {
            // Keep the connection open, silent, until the client leaves.
            send.closed().await;
            return;
        }
        let _ = send.send("data: [DONE]\n\n".to_owned()).await;
    });
    let stream = futures_util::stream::unfold(receive, |mut receive| async move {
        let text = receive.recv().await?;
        Some((Ok::<_, std::io::Error>(text), receive))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}
