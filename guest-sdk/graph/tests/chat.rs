//! The chat model against scripted OpenAI-compatible servers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_graph::chat::{ChatError, ChatModel, Tool};
use warden_graph::http::{self, Method, Request, StreamingResponse};
use warden_graph::prelude::*;
use warden_graph::{Map, Run};

const KEY: &str = "sk-test-0123456789abcdef";
const MODEL: &str = "gpt-4o-mini-2024-07-18";

/// A server answering every request with `status`, `content_type` and the
/// body in `chunks`; the requests it got.
fn server(
    status: u16,
    content_type: &str,
    chunks: Vec<Vec<u8>>,
) -> (ChatModel, Arc<Mutex<Vec<Request>>>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let content_type = content_type.to_owned();
    let model = ChatModel::new("https://api.example.com/v1/", "gpt-4o-mini")
        .api_key(KEY)
        .with_transport(move |request| {
            seen.lock().unwrap().push(request);
            Ok(StreamingResponse::scripted(
                status,
                vec![("Content-Type".into(), content_type.clone())],
                chunks.clone(),
            ))
        });
    (model, requests)
}

/// A streaming server sending `text` in pieces of `size` bytes.
fn streaming(text: &str, size: usize) -> (ChatModel, Arc<Mutex<Vec<Request>>>) {
    let chunks = text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect();
    server(200, "text/event-stream; charset=utf-8", chunks)
}

/// Server-sent events carrying `chunks`, then `[DONE]`.
fn sse(chunks: &[Value]) -> String {
    let mut text: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    text
}

/// A chunk as OpenAI streams it.
fn chunk(delta: Value, finish_reason: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
           "model": MODEL, "system_fingerprint": "fp_1",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
           "usage": null})
}

fn usage_chunk() -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
           "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
           "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}})
}

/// OpenAI's answer "Hello" (with `text` as its second token).
fn hello(second: &str) -> String {
    sse(&[
        chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ),
        chunk(json!({"content": "Hel"}), Value::Null),
        chunk(json!({"content": second}), Value::Null),
        chunk(json!({}), json!("stop")),
        usage_chunk(),
    ])
}

/// A graph whose `agent` node answers the conversation with `model`.
fn agent(model: ChatModel) -> Graph {
    StateGraph::new()
        .channel("messages", messages::reducer)
        .node("agent", move |state: &State, _: &RunConfig| {
            let history = state["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let answer = model.invoke(history)?;
            Ok(json!({"messages": [answer]}))
        })
        .edge(START, "agent")
        .compile()
        .unwrap()
}

fn ask(model: ChatModel, text: &str) -> Run {
    agent(model).run(
        json!({"messages": [messages::human(text)]}),
        State::new(),
        json!({}),
        Value::Null,
    )
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The model's answer: the last message of the state.
fn answer(run: &Run) -> Value {
    let values = run.outcome.as_ref().unwrap();
    values["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

#[test]
fn the_request_carries_the_model_converted_messages_tools_and_credentials() {
    let (model, requests) = streaming(&hello("lo"), 4096);
    let model = model
        .temperature(0.5)
        .max_tokens(100)
        .timeout(Duration::from_secs(30))
        .bind_tools([Tool::new(
            "get_weather",
            "The weather in a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )]);
    let mut asked = messages::ai("");
    asked["tool_calls"] = json!([{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}]);
    let history = [
        messages::system("Be brief."),
        messages::human("Weather in Paris?"),
        asked,
        messages::tool("18°C, sunny", "call_1"),
        json!({"role": "assistant", "content": "Sunny, 18°C."}),
        json!({"role": "user", "content": "Thanks!"}),
    ];
    model.invoke(&history).unwrap();

    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method(), Method::Post);
    assert_eq!(request.url(), "https://api.example.com/v1/chat/completions");
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some(&*format!("Bearer {KEY}")));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("accept"), Some("text/event-stream"));

    let body: Value = serde_json::from_slice(request.body_bytes()).unwrap();
    assert_eq!(
        keys(&body),
        [
            "model",
            "messages",
            "stream",
            "stream_options",
            "tools",
            "temperature",
            "max_tokens"
        ]
    );
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
                {"role": "assistant", "content": "Sunny, 18°C."},
                {"role": "user", "content": "Thanks!"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }}],
            "temperature": 0.5,
            "max_tokens": 100,
        })
    );

    // Without tools nor options, none of their fields.
    let (plain, requests) = streaming(&hello("lo"), 4096);
    plain.invoke(&[json!("hi")]).unwrap();
    let body: Value = serde_json::from_slice(requests.lock().unwrap()[0].body_bytes()).unwrap();
    assert_eq!(
        keys(&body),
        ["model", "messages", "stream", "stream_options"]
    );
}

#[test]
fn tokens_stream_as_chunks_and_the_whole_message_is_returned_once() {
    let (model, _) = streaming(&hello("lo"), 4096);
    let run = ask(model, "hi");
    let message = answer(&run);

    // "Hel", "lo", the end, the usage: the empty first chunk is skipped.
    let chunks: Vec<&Value> = run.messages.iter().map(|(m, _)| m).collect();
    assert_eq!(chunks.len(), 4, "{chunks:#?}");
    // LangChain's chat-model metadata, beside the run's.
    let metadata = &run.messages[0].1;
    assert_eq!(metadata["ls_provider"], "openai", "{metadata}");
    assert_eq!(metadata["ls_model_type"], "chat");
    assert!(metadata["ls_model_name"].is_string());
    let id = message["id"].as_str().unwrap();
    let uuid = id.strip_prefix("run--").expect("a LangChain run id");
    assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
    assert_eq!(
        *chunks[0],
        json!({"content": "Hel", "additional_kwargs": {}, "response_metadata": {},
               "type": "AIMessageChunk", "name": null, "id": id, "example": false,
               "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null,
               "tool_call_chunks": []})
    );
    assert_eq!(
        keys(chunks[0]),
        [
            "content",
            "additional_kwargs",
            "response_metadata",
            "type",
            "name",
            "id",
            "example",
            "tool_calls",
            "invalid_tool_calls",
            "usage_metadata",
            "tool_call_chunks"
        ]
    );
    assert_eq!(chunks[1]["content"], "lo");
    assert_eq!(chunks[2]["content"], "");
    assert_eq!(
        chunks[2]["response_metadata"],
        json!({"finish_reason": "stop", "model_name": MODEL})
    );
    let usage = json!({"input_tokens": 9, "output_tokens": 2, "total_tokens": 11,
                       "input_token_details": {"audio": 0, "cache_read": 0},
                       "output_token_details": {"audio": 0, "reasoning": 0}});
    assert_eq!(chunks[3]["usage_metadata"], usage);
    assert_eq!(chunks[3]["response_metadata"], json!({}));
    for (chunk, metadata) in &run.messages {
        assert_eq!(chunk["id"], id);
        assert_eq!(metadata["langgraph_node"], "agent");
        assert_eq!(metadata["langgraph_step"], 1);
    }

    // The whole message, in the state and not streamed a second time.
    assert_eq!(
        message,
        json!({"content": "Hello", "additional_kwargs": {},
               "response_metadata": {"finish_reason": "stop", "model_name": MODEL},
               "type": "ai", "name": null, "id": id, "example": false,
               "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": usage})
    );
    assert_eq!(keys(&message), keys(&messages::ai("")));
    assert!(
        run.messages
            .iter()
            .all(|(m, _)| m["type"] == "AIMessageChunk")
    );
}

#[test]
fn tool_calls_are_assembled_from_fragments_split_across_chunks() {
    let call = |index: u64, id: Value, name: Value, args: &str| {
        let mut function = Map::new();
        if !name.is_null() {
            function.insert("name".into(), name);
        }
        function.insert("arguments".into(), args.into());
        let mut call = json!({"index": index});
        if !id.is_null() {
            call["id"] = id;
            call["type"] = "function".into();
        }
        call["function"] = function.into();
        chunk(json!({"tool_calls": [call]}), Value::Null)
    };
    let text = sse(&[
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]}),
            Value::Null,
        ),
        call(0, Value::Null, Value::Null, "{\"ci"),
        call(0, Value::Null, Value::Null, "ty\": \"Paris\"}"),
        call(1, json!("call_b"), json!("get_time"), ""),
        call(1, Value::Null, Value::Null, "{\"tz\": \"Europe/Par"),
        call(1, Value::Null, Value::Null, "is\"}"),
        call(2, json!("call_c"), json!("broken"), "{not json"),
        chunk(json!({}), json!("tool_calls")),
    ]);
    let (model, _) = streaming(&text, 4096);
    let run = ask(model, "weather and time in Paris?");
    let message = answer(&run);

    let chunks: Vec<&Value> = run.messages.iter().map(|(m, _)| m).collect();
    assert_eq!(chunks.len(), 8);
    // Each chunk's own calls, parsed as LangChain does (partial JSON).
    assert_eq!(
        chunks[0]["tool_call_chunks"],
        json!([{"name": "get_weather", "args": "", "id": "call_a", "index": 0, "type": "tool_call_chunk"}])
    );
    assert_eq!(
        chunks[0]["tool_calls"],
        json!([{"name": "get_weather", "args": {}, "id": "call_a", "type": "tool_call"}])
    );
    assert_eq!(
        chunks[1]["tool_call_chunks"],
        json!([{"name": null, "args": "{\"ci", "id": null, "index": 0, "type": "tool_call_chunk"}])
    );
    assert_eq!(
        chunks[1]["tool_calls"],
        json!([{"name": "", "args": {}, "id": null, "type": "tool_call"}])
    );
    assert_eq!(chunks[2]["tool_calls"], json!([]));
    assert_eq!(
        chunks[2]["invalid_tool_calls"],
        json!([{"name": null, "args": "ty\": \"Paris\"}", "id": null, "error": null, "type": "invalid_tool_call"}])
    );
    assert_eq!(
        chunks[4]["tool_calls"][0]["args"],
        json!({"tz": "Europe/Par"})
    );
    assert_eq!(
        chunks[7]["response_metadata"]["finish_reason"],
        "tool_calls"
    );

    assert_eq!(message["content"], "");
    assert_eq!(
        message["tool_calls"],
        json!([
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a", "type": "tool_call"},
            {"name": "get_time", "args": {"tz": "Europe/Paris"}, "id": "call_b", "type": "tool_call"},
        ])
    );
    let invalid = &message["invalid_tool_calls"];
    assert_eq!(invalid.as_array().unwrap().len(), 1);
    assert_eq!(invalid[0]["name"], "broken");
    assert_eq!(invalid[0]["args"], "{not json");
    assert_eq!(invalid[0]["id"], "call_c");
    assert_eq!(invalid[0]["type"], "invalid_tool_call");
    assert!(
        invalid[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("Function broken arguments:\n\n{not json\n\nare not valid JSON.")
    );
    assert_eq!(message["usage_metadata"], Value::Null);
    assert_eq!(
        message["response_metadata"],
        json!({"finish_reason": "tool_calls", "model_name": MODEL})
    );
}

#[test]
fn events_split_at_awkward_byte_boundaries_give_the_same_answer() {
    // Multi-byte characters, CRLF line ends and a keep-alive comment.
    let text = hello("lo wörld 👋").replace("\n", "\r\n");
    let text = format!(": keep-alive\r\n\r\n{text}");
    let contents = |size: usize| {
        let (model, _) = streaming(&text, size);
        let run = ask(model, "hi");
        let streamed: Vec<Value> = run
            .messages
            .iter()
            .map(|(m, _)| m["content"].clone())
            .collect();
        (streamed, answer(&run)["content"].clone())
    };
    let whole = contents(text.len());
    assert_eq!(
        whole,
        (
            vec![json!("Hel"), json!("lo wörld 👋"), json!(""), json!("")],
            json!("Hello wörld 👋")
        )
    );
    for size in [1, 2, 3, 5, 7, 13] {
        assert_eq!(contents(size), whole, "pieces of {size} bytes");
    }
}

#[test]
fn error_statuses_carry_the_servers_message_and_never_the_key() {
    let body = json!({"error": {
        "message": format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    let (model, _) = server(401, "application/json", vec![body.to_string().into_bytes()]);
    let run = ask(model, "hi");
    let error = run.outcome.unwrap_err();
    assert_eq!(error.error, "AuthenticationError");
    assert_eq!(
        error.message,
        "Error code: 401 - Incorrect API key provided: ***. You can find your API key at \
         https://platform.openai.com/account/api-keys."
    );
    assert!(!error.to_string().contains(KEY));
    assert!(run.messages.is_empty());

    let rate = json!({"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests", "code": "rate_limit_exceeded"}});
    let (model, _) = server(429, "application/json", vec![rate.to_string().into_bytes()]);
    let error = model.invoke(&[json!("hi")]).unwrap_err();
    assert_eq!(
        error,
        ChatError::Status {
            status: 429,
            message: "Rate limit reached for gpt-4o-mini".into()
        }
    );
    assert_eq!(
        GraphError::from(error),
        GraphError::new(
            "RateLimitError",
            "Error code: 429 - Rate limit reached for gpt-4o-mini"
        )
    );

    let (model, _) = server(
        502,
        "text/html",
        vec![b"<html>Bad Gateway</html>\n".to_vec()],
    );
    let error = GraphError::from(model.invoke(&[json!("hi")]).unwrap_err());
    assert_eq!(
        error,
        GraphError::new(
            "InternalServerError",
            "Error code: 502 - <html>Bad Gateway</html>"
        )
    );
}

#[test]
fn an_error_in_the_stream_fails_the_call() {
    let text = format!(
        "{}data: {}\n\n",
        sse(&[chunk(json!({"content": "Hel"}), Value::Null)]).replace("data: [DONE]\n\n", ""),
        json!({"error": {"message": "The server had an error processing your request.", "type": "server_error"}})
    );
    let (model, _) = streaming(&text, 4096);
    let run = ask(model, "hi");
    // The token that came before was streamed; the run fails.
    assert_eq!(run.messages.len(), 1);
    assert_eq!(
        run.outcome.unwrap_err(),
        GraphError::new(
            "APIError",
            "The server reported an error: The server had an error processing your request."
        )
    );

    for data in [
        "overloaded",
        r#"{"message": "overloaded"}"#,
        r#"{"error": {"message": "overloaded"}}"#,
    ] {
        let (model, _) = streaming(&format!("event: error\ndata: {data}\n\n"), 4096);
        assert_eq!(
            model.invoke(&[json!("hi")]),
            Err(ChatError::Server("overloaded".into())),
            "{data}"
        );
    }
}

#[test]
fn http_failures_are_named_as_the_openai_sdk_names_them() {
    let failing = |error: http::Error| {
        let model = ChatModel::new("https://api.example.com/v1", "m")
            .api_key(KEY)
            .with_transport(move |_| Err(error.clone()));
        GraphError::from(model.invoke(&[json!("hi")]).unwrap_err())
    };
    assert_eq!(
        failing(http::Error::Denied),
        GraphError::new(
            "PermissionDeniedError",
            "Connection error: the host is not in allowed_hosts"
        )
    );
    assert_eq!(
        failing(http::Error::Timeout),
        GraphError::new("APITimeoutError", "Request timed out.")
    );
    assert_eq!(failing(http::Error::TooLarge).error, "APIError");
    let failed = failing(http::Error::Failed(format!("TLS failure with {KEY}")));
    assert_eq!(
        failed,
        GraphError::new(
            "APIConnectionError",
            "Connection error: TLS failure with ***"
        )
    );

    // Natively, without a transport: no network.
    let offline = ChatModel::new("https://api.example.com/v1", "m").api_key(KEY);
    assert_eq!(
        offline.invoke(&[json!("hi")]),
        Err(ChatError::Http(http::Error::Unsupported))
    );
    let bad_url = ChatModel::new("api.example.com/v1", "m");
    assert_eq!(
        GraphError::from(bad_url.invoke(&[json!("hi")]).unwrap_err()).error,
        "ValueError"
    );
    // Nor in Debug.
    assert!(!format!("{offline:?}").contains(KEY));
}

#[test]
fn malformed_answers_are_errors() {
    let (model, _) = streaming("data: {\"choices\": [\n\n", 4096);
    let error = model.invoke(&[json!("hi")]).unwrap_err();
    assert!(matches!(error, ChatError::InvalidResponse(_)), "{error:?}");
    assert_eq!(error.kind(), "APIResponseValidationError");

    // Cut off: no end of answer, no [DONE].
    let cut = format!(
        "data: {}\n\n",
        chunk(json!({"content": "Hel"}), Value::Null)
    );
    let (model, _) = streaming(&cut, 4096);
    assert_eq!(
        model.invoke(&[json!("hi")]),
        Err(ChatError::InvalidResponse(
            "the stream ended before the answer did".into()
        ))
    );

    // A message that cannot be sent.
    let (model, requests) = streaming(&hello("lo"), 4096);
    let error = model
        .invoke(&[json!({"role": "critic", "content": "x"})])
        .unwrap_err();
    assert_eq!(error.kind(), "ValueError");
    assert!(requests.lock().unwrap().is_empty());
}

#[test]
fn a_server_that_does_not_stream_answers_with_the_whole_message() {
    let completion = json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me check.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    });
    let (model, _) = server(
        200,
        "application/json",
        vec![completion.to_string().into_bytes()],
    );
    let run = ask(model, "weather?");
    let message = answer(&run);
    assert_eq!(message["content"], "Let me check.");
    assert_eq!(
        message["tool_calls"],
        json!([
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a", "type": "tool_call"},
            {"name": "get_time", "args": {}, "id": "call_b", "type": "tool_call"},
        ])
    );
    assert_eq!(
        message["usage_metadata"],
        json!({"input_tokens": 5, "output_tokens": 7, "total_tokens": 12,
               "input_token_details": {}, "output_token_details": {}})
    );
    // Reported once, whole.
    assert_eq!(run.messages.len(), 1);
    assert_eq!(run.messages[0].0, message);
}
