//! A chat model over the OpenAI-compatible chat-completions protocol
//! (OpenAI, and the many servers that speak it: vLLM, Ollama, llama.cpp,
//! LiteLLM, ...), as LangChain's `ChatOpenAI` with `streaming=True`.
//!
//! [`ChatModel::invoke`] sends LangGraph-format messages, streams the
//! answer's tokens to the run's `messages` stream modes as
//! `AIMessageChunk`s while they arrive, and returns the whole AI message,
//! ready for the state's `messages` channel: the run does not stream it a
//! second time.
//!
//! The model's host must be in the graph's `allowed_hosts`.
//!
//! ```
//! use warden_graph::chat::ChatModel;
//! use warden_graph::http::StreamingResponse;
//! use warden_graph::prelude::*;
//!
//! fn graph(model: ChatModel) -> Result<Graph, BuildError> {
//!     StateGraph::new()
//!         .channel("messages", messages::reducer)
//!         .node("agent", move |state: &State, _: &RunConfig| {
//!             let history = state["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
//!             let answer = model.invoke(history)?;
//!             Ok(json!({"messages": [answer]}))
//!         })
//!         .edge(START, "agent")
//!         .compile()
//! }
//!
//! let model = ChatModel::new("https://api.openai.com/v1", "gpt-4o-mini").api_key("sk-...");
//! # let model = model.with_transport(|_| Ok(StreamingResponse::scripted(200, vec![], [
//! #     "data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi!\"},\"finish_reason\":null}]}\n\n",
//! #     "data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
//! # ])));
//! let run = graph(model)?.run(json!({"messages": ["hello"]}), State::new(), json!({}), Value::Null);
//! // The token chunks went to the `messages` stream; the whole message to the state.
//! assert_eq!(run.messages[0].0["type"], "AIMessageChunk");
//! assert_eq!(messages::text(&run.outcome?["messages"][1]), "Hi!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In native tests, [`ChatModel::with_transport`] and
//! [`StreamingResponse::scripted`](crate::http::StreamingResponse::scripted)
//! stand in for the server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::http::{self, Request, StreamingResponse};
use crate::{GraphError, messages, stream};

/// How a [`ChatModel`] sends its requests.
type Transport = dyn Fn(Request) -> Result<StreamingResponse, http::Error> + Send + Sync + 'static;

/// A tool the model may call: its name, what it does, and its arguments'
/// JSON Schema (sent as OpenAI's `{"type": "function", "function": ...}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its arguments: a JSON Schema object.
    pub parameters: Value,
}

impl Tool {
    /// A tool named `name`, described by `description`, whose arguments
    /// follow the JSON Schema `parameters`.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A chat model behind an OpenAI-compatible `POST {base_url}/chat/completions`.
///
/// Cheap to clone; `Send + Sync`, so a node closure can own one.
#[derive(Clone)]
#[must_use]
pub struct ChatModel {
    base_url: String,
    model: String,
    api_key: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    timeout: Option<Duration>,
    tools: Vec<Tool>,
    transport: Option<Arc<Transport>>,
}

impl fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatModel")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("timeout", &self.timeout)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl ChatModel {
    /// The model `model` of the server at `base_url` (the API's root, like
    /// `https://api.openai.com/v1`: requests go to
    /// `{base_url}/chat/completions`).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            temperature: None,
            max_tokens: None,
            timeout: None,
            tools: Vec::new(),
            transport: None,
        }
    }

    /// Sends `Authorization: Bearer key`. The key never appears in a
    /// [`ChatError`]'s text, nor in this model's `Debug`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The sampling temperature (`temperature`).
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The most tokens an answer may have (`max_tokens`).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Waits at most this long for the connection, the answer's first byte
    /// and each next part of it (always within the host's own limits and
    /// the run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Offers these tools to the model (LangChain's `bind_tools`), in
    /// addition to those bound before; its calls come back in the AI
    /// message's `tool_calls`.
    pub fn bind_tools(mut self, tools: impl IntoIterator<Item = Tool>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// Sends requests through `transport` instead of `wasi:http`: for
    /// tests, with [`StreamingResponse::scripted`] as the server.
    pub fn with_transport(
        mut self,
        transport: impl Fn(Request) -> Result<StreamingResponse, http::Error> + Send + Sync + 'static,
    ) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// The model's name, as sent.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Calls the model with `messages` (the state's `messages`: LangGraph's
    /// serialised form, or `{"role", "content"}` dicts, or anything else
    /// [`messages::coerce`] takes) and returns its answer: an `ai` message
    /// in LangGraph's serialised form, with `tool_calls` (and
    /// `invalid_tool_calls`, whose arguments are not a JSON object),
    /// `response_metadata` (`finish_reason`, `model_name`) and
    /// `usage_metadata` (`null` when the server sent no usage).
    ///
    /// The answer is streamed (`"stream": true`): each token (or tool-call
    /// fragment) is reported to the run's `messages` stream modes as an
    /// `AIMessageChunk` as it arrives, all with the id of the returned
    /// message, which the run therefore does not stream again when the
    /// node returns it. A server that answers with a whole JSON body
    /// instead has its message reported once, whole.
    pub fn invoke(&self, messages: &[Value]) -> Result<Value, ChatError> {
        self.call(messages)
            .map_err(|e| match self.api_key.as_deref() {
                Some(key) if !key.is_empty() => e.redact(key),
                _ => e,
            })
    }

    fn call(&self, messages: &[Value]) -> Result<Value, ChatError> {
        let body = self.request_body(messages)?;
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut request = Request::post(url)
            .header("accept", "text/event-stream")
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        let response = match &self.transport {
            Some(transport) => transport(request)?,
            None => request.stream()?,
        };
        if !response.is_success() {
            let status = response.status;
            let message = response
                .into_response()
                .map(|r| error_message(&r.body))
                .unwrap_or_default();
            return Err(ChatError::Status { status, message });
        }
        let is_json = response
            .header("content-type")
            .is_some_and(|t| t.trim_start().starts_with("application/json"));
        let mut answer = Answer::new(&self.model);
        if is_json {
            let body = response.into_response()?.body;
            let completion: Value = serde_json::from_slice(&body)
                .map_err(|e| ChatError::InvalidResponse(format!("the answer is not JSON: {e}")))?;
            answer.absorb(&completion, true)?;
            let message = answer.message();
            stream::message(&message, &self.metadata());
            return Ok(message);
        }
        let mut done = false;
        for event in response.events() {
            let event = event?;
            if !matches!(event.event.as_str(), "message" | "error") {
                continue;
            }
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if event.event == "error" {
                return Err(ChatError::Server(error_message(data.as_bytes())));
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                ChatError::InvalidResponse(format!(
                    "an event is not JSON ({e}): {}",
                    shorten(data, 200)
                ))
            })?;
            if let Some(chunk) = answer.absorb(&chunk, false)? {
                stream::message(&chunk, &self.metadata());
            }
        }
        if !done && answer.finish_reason.is_none() {
            return Err(ChatError::InvalidResponse(
                "the stream ended before the answer did".into(),
            ));
        }
        Ok(answer.message())
    }

    /// What LangChain's chat models add to the metadata of the messages
    /// they stream (`ls_provider`, `ls_model_name`, ...); the run adds
    /// `langgraph_node` and the rest.
    fn metadata(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert("ls_provider".into(), "openai".into());
        metadata.insert("ls_model_name".into(), self.model.clone().into());
        metadata.insert("ls_model_type".into(), "chat".into());
        if let Some(temperature) = self.temperature {
            metadata.insert("ls_temperature".into(), temperature.into());
        }
        if let Some(max_tokens) = self.max_tokens {
            metadata.insert("ls_max_tokens".into(), max_tokens.into());
        }
        Value::Object(metadata)
    }

    /// The request's JSON body.
    fn request_body(&self, messages: &[Value]) -> Result<Value, ChatError> {
        let messages = messages
            .iter()
            .map(to_openai)
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = Map::new();
        body.insert("model".into(), self.model.clone().into());
        body.insert("messages".into(), messages.into());
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
        if !self.tools.is_empty() {
            let tools: Vec<Value> = self
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters,
                    }})
                })
                .collect();
            body.insert("tools".into(), tools.into());
        }
        if let Some(temperature) = self.temperature {
            body.insert("temperature".into(), temperature.into());
        }
        if let Some(max_tokens) = self.max_tokens {
            body.insert("max_tokens".into(), max_tokens.into());
        }
        Ok(body.into())
    }
}

/// Why a [`ChatModel::invoke`] failed. Its text never holds the API key.
///
/// As a [`GraphError`] (`?` in a node), its kind is the name of the
/// `openai` Python SDK's exception for the same failure
/// ([`ChatError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    /// The request could not be sent or its answer not read: the host is
    /// not in the graph's `allowed_hosts` ([`http::Error::Denied`]), a
    /// timeout, an answer over the size cap, a connection failure.
    Http(http::Error),
    /// The server answered with an error status; `message` is the error's
    /// `message` from its body (or the body itself).
    Status {
        /// The HTTP status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The server reported an error in the middle of the stream (an
    /// `error` object).
    Server(String),
    /// The answer does not follow the protocol: an event that is not JSON,
    /// a stream that ends too soon.
    InvalidResponse(String),
    /// A message cannot be sent (an unknown type, a tool message without
    /// `tool_call_id`, ...).
    InvalidMessage(String),
}

impl ChatError {
    /// The error's kind, as [`GraphError::error`]: the `openai` SDK's
    /// exception names.
    ///
    /// - an error status: `BadRequestError` (400), `AuthenticationError`
    ///   (401), `PermissionDeniedError` (403), `NotFoundError` (404),
    ///   `ConflictError` (409), `UnprocessableEntityError` (422),
    ///   `RateLimitError` (429), `InternalServerError` (5xx), else
    ///   `APIStatusError`;
    /// - the host is not in the graph's `allowed_hosts`:
    ///   `PermissionDeniedError`;
    /// - a timeout: `APITimeoutError`;
    /// - a connection failure (or no outbound HTTP, in native builds):
    ///   `APIConnectionError`;
    /// - an `error` in the stream, an answer over the size cap: `APIError`;
    /// - a malformed answer: `APIResponseValidationError`;
    /// - an invalid URL, header or message: `ValueError`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(e) => match e {
                http::Error::Denied => "PermissionDeniedError",
                http::Error::Timeout => "APITimeoutError",
                http::Error::TooLarge => "APIError",
                http::Error::InvalidUrl(_)
                | http::Error::InvalidHeader(_)
                | http::Error::InvalidBody(_) => "ValueError",
                _ => "APIConnectionError",
            },
            Self::Status { status, .. } => match status {
                400 => "BadRequestError",
                401 => "AuthenticationError",
                403 => "PermissionDeniedError",
                404 => "NotFoundError",
                409 => "ConflictError",
                422 => "UnprocessableEntityError",
                429 => "RateLimitError",
                500.. => "InternalServerError",
                _ => "APIStatusError",
            },
            Self::Server(_) => "APIError",
            Self::InvalidResponse(_) => "APIResponseValidationError",
            Self::InvalidMessage(_) => "ValueError",
        }
    }

    /// The same error with every occurrence of `secret` masked.
    fn redact(self, secret: &str) -> Self {
        let mask = |s: String| s.replace(secret, "***");
        match self {
            Self::Http(http::Error::Failed(s)) => Self::Http(http::Error::Failed(mask(s))),
            Self::Http(http::Error::InvalidUrl(s)) => Self::Http(http::Error::InvalidUrl(mask(s))),
            Self::Http(http::Error::InvalidBody(s)) => {
                Self::Http(http::Error::InvalidBody(mask(s)))
            }
            Self::Status { status, message } => Self::Status {
                status,
                message: mask(message),
            },
            Self::Server(s) => Self::Server(mask(s)),
            Self::InvalidResponse(s) => Self::InvalidResponse(mask(s)),
            Self::InvalidMessage(s) => Self::InvalidMessage(mask(s)),
            other => other,
        }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(http::Error::Timeout) => f.write_str("Request timed out."),
            Self::Http(e) => write!(f, "Connection error: {e}"),
            Self::Status { status, message } if message.is_empty() => {
                write!(f, "Error code: {status}")
            }
            Self::Status { status, message } => write!(f, "Error code: {status} - {message}"),
            Self::Server(message) => write!(f, "The server reported an error: {message}"),
            Self::InvalidResponse(why) => write!(f, "Invalid answer from the model: {why}"),
            Self::InvalidMessage(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ChatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Http(e) => Some(e),
            _ => None,
        }
    }
}

impl From<http::Error> for ChatError {
    fn from(e: http::Error) -> Self {
        Self::Http(e)
    }
}

impl From<ChatError> for GraphError {
    fn from(e: ChatError) -> Self {
        GraphError::new(e.kind(), e.to_string())
    }
}

/// A message in OpenAI's chat-completions form.
fn to_openai(message: &Value) -> Result<Value, ChatError> {
    let message = messages::coerce(message).map_err(|e| ChatError::InvalidMessage(e.message))?;
    let kind = message["type"].as_str().unwrap_or_default();
    let mut out = Map::new();
    let with_name = |out: &mut Map<String, Value>| {
        if let Some(name) = message["name"].as_str() {
            out.insert("name".into(), name.into());
        }
    };
    match kind {
        "human" => {
            out.insert("role".into(), "user".into());
            out.insert("content".into(), user_content(&message["content"]));
            with_name(&mut out);
        }
        "system" => {
            let role = match message["additional_kwargs"]["__openai_role__"].as_str() {
                Some("developer") => "developer",
                _ => "system",
            };
            out.insert("role".into(), role.into());
            out.insert("content".into(), messages::text(&message).into());
            with_name(&mut out);
        }
        "ai" => {
            out.insert("role".into(), "assistant".into());
            let text = messages::text(&message);
            let openai_call = |call: &Value| {
                let arguments = match &call["args"] {
                    Value::String(raw) => raw.clone(),
                    args => args.to_string(),
                };
                json!({"id": call["id"], "type": "function",
                       "function": {"name": call["name"], "arguments": arguments}})
            };
            let calls: Vec<Value> = ["tool_calls", "invalid_tool_calls"]
                .iter()
                .filter_map(|key| message[*key].as_array())
                .flatten()
                .map(openai_call)
                .collect();
            // As LangChain: no text beside tool calls is `null`.
            let content = if text.is_empty() && !calls.is_empty() {
                Value::Null
            } else {
                text.into()
            };
            out.insert("content".into(), content);
            with_name(&mut out);
            if !calls.is_empty() {
                out.insert("tool_calls".into(), calls.into());
            }
        }
        "tool" => {
            out.insert("role".into(), "tool".into());
            out.insert("tool_call_id".into(), message["tool_call_id"].clone());
            out.insert("content".into(), messages::text(&message).into());
        }
        "function" => {
            out.insert("role".into(), "function".into());
            out.insert("name".into(), message["name"].clone());
            out.insert("content".into(), messages::text(&message).into());
        }
        other => {
            return Err(ChatError::InvalidMessage(format!(
                "A '{other}' message cannot be sent to a chat model"
            )));
        }
    }
    Ok(out.into())
}

/// A user message's content: a string, or OpenAI content parts (text and
/// images; other blocks are left out).
fn user_content(content: &Value) -> Value {
    let blocks = match content {
        Value::Array(blocks) => blocks,
        Value::String(_) => return content.clone(),
        other => return messages::text(&json!({ "content": other })).into(),
    };
    blocks
        .iter()
        .filter_map(|block| match block {
            Value::String(text) => Some(json!({"type": "text", "text": text})),
            b if b["type"] == "text" => Some(json!({"type": "text", "text": b["text"]})),
            b if b["type"] == "image_url" => Some(b.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .into()
}

/// The error message in an error body: OpenAI's `{"error": {"message"}}`,
/// or `{"error": "..."}`, `{"message"}`, `{"detail"}`, or the body's text.
fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let found = [
            &json["error"]["message"],
            &json["error"],
            &json["message"],
            &json["detail"],
        ]
        .into_iter()
        .find_map(Value::as_str);
        if let Some(message) = found {
            return message.to_owned();
        }
    }
    shorten(String::from_utf8_lossy(body).trim(), 500)
}

/// `text`, cut to `max` characters.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// A tool call being received, fragment by fragment.
#[derive(Debug)]
struct PartialCall {
    index: u64,
    id: Option<String>,
    name: String,
    args: String,
}

/// The answer being received, chunk by chunk.
#[derive(Debug)]
struct Answer {
    /// The id of the chunks and of the whole message.
    id: String,
    /// The model asked for, until the server names it.
    model_name: String,
    content: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Value,
}

impl Answer {
    fn new(model: &str) -> Self {
        Self {
            id: format!("run--{}", messages::new_id()),
            model_name: model.to_owned(),
            content: String::new(),
            calls: Vec::new(),
            finish_reason: None,
            usage: Value::Null,
        }
    }

    /// Takes a streamed chunk (or, `whole`, a non-streamed completion):
    /// the `AIMessageChunk` to report, `None` when it carries nothing.
    fn absorb(&mut self, chunk: &Value, whole: bool) -> Result<Option<Value>, ChatError> {
        if !chunk.is_object() {
            return Err(ChatError::InvalidResponse(format!(
                "a chunk is not a JSON object: {}",
                shorten(&chunk.to_string(), 200)
            )));
        }
        match chunk.get("error") {
            None | Some(Value::Null) => {}
            Some(error) => {
                let message = error["message"]
                    .as_str()
                    .or(error.as_str())
                    .map_or_else(|| error.to_string(), str::to_owned);
                return Err(ChatError::Server(message));
            }
        }
        if let Some(model) = chunk["model"].as_str().filter(|m| !m.is_empty()) {
            model.clone_into(&mut self.model_name);
        }
        let choice = match &chunk["choices"] {
            Value::Array(choices) => choices.first(),
            Value::Null => None,
            _ => {
                return Err(ChatError::InvalidResponse("`choices` is not a list".into()));
            }
        };
        let delta = choice.and_then(|c| c.get("delta").or_else(|| c.get("message")));

        let content = delta.and_then(|d| d["content"].as_str()).unwrap_or("");
        self.content.push_str(content);

        let mut fragments = Vec::new();
        if let Some(Value::Array(calls)) = delta.map(|d| &d["tool_calls"]) {
            for (position, call) in calls.iter().enumerate() {
                fragments.push(self.add_fragment(call, whole.then_some(position as u64)));
            }
        }

        let mut response_metadata = Map::new();
        if let Some(reason) = choice.and_then(|c| c["finish_reason"].as_str()) {
            self.finish_reason = Some(reason.to_owned());
            response_metadata.insert("finish_reason".into(), reason.into());
            response_metadata.insert("model_name".into(), self.model_name.clone().into());
        }

        let usage = match &chunk["usage"] {
            Value::Object(usage) => usage_metadata(usage),
            _ => Value::Null,
        };
        if !usage.is_null() {
            self.usage = usage.clone();
        }

        if content.is_empty()
            && fragments.is_empty()
            && response_metadata.is_empty()
            && usage.is_null()
        {
            return Ok(None);
        }
        let (tool_calls, invalid_tool_calls) = chunk_tool_calls(&fragments);
        Ok(Some(json!({
            "content": content,
            "additional_kwargs": {},
            "response_metadata": response_metadata,
            "type": "AIMessageChunk",
            "name": null,
            "id": self.id,
            "example": false,
            "tool_calls": tool_calls,
            "invalid_tool_calls": invalid_tool_calls,
            "usage_metadata": usage,
            "tool_call_chunks": fragments,
        })))
    }

    /// Adds a tool-call fragment (`{index, id?, function: {name?,
    /// arguments?}}`) to its call: the `tool_call_chunk` to report.
    fn add_fragment(&mut self, fragment: &Value, position: Option<u64>) -> Value {
        let id = fragment["id"].as_str().filter(|id| !id.is_empty());
        let function = &fragment["function"];
        let index = position
            .or_else(|| fragment["index"].as_u64())
            // No index: a new id starts a new call, else the last goes on.
            .unwrap_or_else(|| match self.calls.last() {
                Some(last) if id.is_none() || last.id.as_deref() == id => last.index,
                _ => self.calls.iter().map(|c| c.index + 1).max().unwrap_or(0),
            });
        let at = match self.calls.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                self.calls.push(PartialCall {
                    index,
                    id: None,
                    name: String::new(),
                    args: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[at];
        if call.id.is_none() {
            call.id = id.map(str::to_owned);
        }
        if let Some(name) = function["name"].as_str() {
            call.name.push_str(name);
        }
        // A whole message's arguments may be an object already.
        let args = match &function["arguments"] {
            Value::Null => Value::Null,
            Value::String(s) => s.as_str().into(),
            other => other.to_string().into(),
        };
        if let Some(args) = args.as_str() {
            call.args.push_str(args);
        }
        json!({
            "name": function["name"],
            "args": args,
            "id": fragment["id"],
            "index": index,
            "type": "tool_call_chunk",
        })
    }

    /// The whole AI message.
    fn message(self) -> Value {
        let mut tool_calls = Vec::new();
        let mut invalid_tool_calls = Vec::new();
        for call in self.calls {
            let parsed = if call.args.trim().is_empty() {
                Ok(Value::Object(Map::new()))
            } else {
                serde_json::from_str::<Value>(&call.args).map_err(|e| e.to_string())
            };
            let why = match parsed {
                Ok(args @ Value::Object(_)) => {
                    tool_calls.push(json!({
                        "name": call.name, "args": args, "id": call.id, "type": "tool_call",
                    }));
                    continue;
                }
                Ok(_) => "the arguments are not a JSON object".to_owned(),
                Err(e) => e,
            };
            let error = format!(
                "Function {} arguments:\n\n{}\n\nare not valid JSON. Received JSONDecodeError {why}",
                call.name, call.args
            );
            invalid_tool_calls.push(json!({
                "name": call.name,
                "args": call.args,
                "id": call.id,
                "error": error,
                "type": "invalid_tool_call",
            }));
        }
        let mut message = messages::ai(self.content);
        message["id"] = self.id.into();
        message["response_metadata"] = json!({
            "finish_reason": self.finish_reason,
            "model_name": self.model_name,
        });
        message["tool_calls"] = tool_calls.into();
        message["invalid_tool_calls"] = invalid_tool_calls.into();
        message["usage_metadata"] = self.usage;
        message
    }
}

/// An OpenAI `usage` object as LangChain's `usage_metadata`.
fn usage_metadata(usage: &Map<String, Value>) -> Value {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    let input = count("prompt_tokens").unwrap_or(0);
    let output = count("completion_tokens").unwrap_or(0);
    let total = count("total_tokens").unwrap_or(input + output);
    let details = |key: &str, fields: &[(&str, &str)]| {
        let given = usage.get(key).unwrap_or(&Value::Null);
        let mut details = Map::new();
        for (ours, theirs) in fields {
            if let Some(n) = given[*theirs].as_u64() {
                details.insert((*ours).into(), n.into());
            }
        }
        Value::Object(details)
    };
    let input_details = details(
        "prompt_tokens_details",
        &[("audio", "audio_tokens"), ("cache_read", "cached_tokens")],
    );
    let output_details = details(
        "completion_tokens_details",
        &[("audio", "audio_tokens"), ("reasoning", "reasoning_tokens")],
    );
    json!({
        "input_tokens": input,
        "output_tokens": output,
        "total_tokens": total,
        "input_token_details": input_details,
        "output_token_details": output_details,
    })
}

/// The `tool_calls` and `invalid_tool_calls` of a chunk, from its
/// `tool_call_chunks` alone, as LangChain's `AIMessageChunk` parses them:
/// arguments parsed as partial JSON.
fn chunk_tool_calls(fragments: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for fragment in fragments {
        let args = match fragment["args"].as_str() {
            None | Some("") => Some(Value::Object(Map::new())),
            Some(args) => parse_partial_json(args),
        };
        match args {
            Some(args @ Value::Object(_)) => valid.push(json!({
                "name": fragment["name"].as_str().unwrap_or(""),
                "args": args,
                "id": fragment["id"],
                "type": "tool_call",
            })),
            _ => invalid.push(json!({
                "name": fragment["name"],
                "args": fragment["args"],
                "id": fragment["id"],
                "error": null,
                "type": "invalid_tool_call",
            })),
        }
    }
    (valid, invalid)
}

/// Longer arguments are not parsed as partial JSON (each attempt is
/// quadratic): a server that sends them in one piece sends them whole.
const PARTIAL_JSON_LIMIT: usize = 4096;

/// LangChain's `parse_partial_json`: JSON cut off anywhere, closed by
/// closing its open string and brackets, dropping trailing characters
/// until it parses; `None` when nothing does.
fn parse_partial_json(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    if text.len() > PARTIAL_JSON_LIMIT {
        return None;
    }
    let mut pieces: Vec<&str> = Vec::new();
    let mut closers: Vec<&str> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        let mut piece = &text[at..at + c.len_utf8()];
        if in_string {
            match c {
                '"' if !escaped => in_string = false,
                '\n' if !escaped => piece = "\\n",
                '\\' => escaped = !escaped,
                _ => escaped = false,
            }
        } else {
            match c {
                '"' => {
                    in_string = true;
                    escaped = false;
                }
                '{' => closers.push("}"),
                '[' => closers.push("]"),
                '}' | ']' => {
                    if closers.last() == Some(&piece) {
                        closers.pop();
                    } else {
                        return None;
                    }
                }
                _ => {}
            }
        }
        pieces.push(piece);
    }
    if in_string {
        if escaped {
            pieces.pop();
        }
        pieces.push("\"");
    }
    closers.reverse();
    let closing = closers.concat();
    while !pieces.is_empty() {
        let candidate = pieces.concat() + &closing;
        if let Ok(value) = serde_json::from_str(&candidate) {
            return Some(value);
        }
        pieces.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_is_closed_as_langchain_does() {
        let cases = [
            (r#"{"city": "Par"#, Some(json!({"city": "Par"}))),
            (r#"{"ci"#, Some(json!({}))),
            (r#"{"a": [1, 2"#, Some(json!({"a": [1, 2]}))),
            (r#"{"a": "x\"#, Some(json!({"a": "x"}))),
            ("{\"a\": \"line\nbreak", Some(json!({"a": "line\nbreak"}))),
            (r#"{"a": 1}"#, Some(json!({"a": 1}))),
            (r#"ty": "Paris"#, None),
            (r#" "Paris"}"#, None),
            ("42", Some(json!(42))),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_partial_json(text), expected, "{text:?}");
        }
    }

    #[test]
    fn messages_are_converted_to_openai_form() {
        let converted = |m: Value| to_openai(&m).unwrap();
        assert_eq!(
            converted(json!({"role": "developer", "content": "rules"})),
            json!({"role": "developer", "content": "rules"})
        );
        assert_eq!(
            converted(messages::human(json!([
                "a", {"type": "text", "text": "b"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
                {"type": "thinking", "thinking": "hm"},
            ]))),
            json!({"role": "user", "content": [
                {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
            ]})
        );
        assert_eq!(
            converted(
                json!({"type": "ai", "content": [{"type": "text", "text": "hi"}], "name": "bot"})
            ),
            json!({"role": "assistant", "content": "hi", "name": "bot"})
        );
        let remove = to_openai(&messages::remove("x")).unwrap_err();
        assert_eq!(remove.kind(), "ValueError");
        let no_id = to_openai(&json!({"role": "tool", "content": "x"})).unwrap_err();
        assert!(matches!(no_id, ChatError::InvalidMessage(_)));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"error": {"message": "nope", "type": "x"}}"#),
            "nope"
        );
        assert_eq!(error_message(br#"{"error": "plain"}"#), "plain");
        assert_eq!(error_message(br#"{"detail": "missing"}"#), "missing");
        assert_eq!(error_message(b"  Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_message(&[b'x'; 600]).len(), 503);
    }
}
