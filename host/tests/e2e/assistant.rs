//! `examples/assistant` against a scripted OpenAI-compatible model server
//! ([`ModelServer`]) on 127.0.0.1: the graph reaches the model over
//! `wasi:http` (its `allowed_hosts` only), its tokens stream to the client
//! as `messages-tuple` chunks before the run ends, a tool call pauses the
//! run for a human's approval, and a model that is off the allowlist or
//! hangs ends the run with an error, never a hang.

use axum::http::StatusCode;
use serde_json::{Value, json};
use warden::config::Config;
use warden::plugin::GraphComponent;

use crate::model_server::{Answer, ModelServer};
use crate::support::{
    Client, Event, ServerProcess, TestServer, component, root, runtime, unhurried_plugin,
};

/// The assistant's `graphs` entry, reaching `model` (its origin in
/// `allowed_hosts` unless `allowed` says otherwise).
fn entry(model: &ModelServer, allowed: &[String], timeout_ms: u64) -> Value {
    json!({
        "path": "./unused",
        "timeout_ms": timeout_ms,
        "config": {"base_url": model.base_url(), "model": "test-model"},
        "allowed_hosts": allowed,
    })
}

/// The reference policy and the assistant with this `graphs` entry.
fn server(entry: Value) -> TestServer {
    let text = json!({"graphs": {"assistant": entry}}).to_string();
    let config = Config::parse(&root().join("langgraph.json"), &text).expect("the config parses");
    let settings = config.graphs["assistant"].settings();
    let graph = GraphComponent::load(
        runtime(),
        "assistant",
        &component("assistant_agent"),
        settings,
    )
    .expect("the assistant loads");
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph_component("assistant", graph)
        .build()
}

fn ask(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_tokens_stream_as_messages_tuple_chunks_before_the_run_ends() {
    let model = ModelServer::start();
    let server = server(entry(&model, &[model.origin()], 600_000));
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    model.answer(Answer::tokens(&["Hel", "lo", " there"]));
    let gate = model.hold_next();

    let mut stream = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "assistant", "input": ask("hi"),
                   "stream_mode": ["messages-tuple", "values"]}),
        )
        .open()
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    // The first token arrives while the model still holds the rest: the
    // run cannot have ended.
    let before = stream
        .events_until(|e| e.event == "messages" && e.data[0]["content"] == "Hel")
        .await;
    assert!(
        before.iter().all(|e| e.event != "end"),
        "the run ended before its first token: {before:?}"
    );
    gate.notify_one();
    let after = stream.events_until(|e| e.event == "end").await;

    let chunks: Vec<&Event> = before
        .iter()
        .chain(&after)
        .filter(|e| e.event == "messages")
        .collect();
    let text: String = chunks
        .iter()
        .map(|e| e.data[0]["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, "Hello there");
    let id = &chunks[0].data[0]["id"];
    for chunk in &chunks {
        let (message, metadata) = (&chunk.data[0], &chunk.data[1]);
        assert_eq!(message["type"], "AIMessageChunk", "{message}");
        assert_eq!(&message["id"], id, "one id for every chunk of the answer");
        assert_eq!(metadata["langgraph_node"], "agent", "{metadata}");
        assert_eq!(metadata["thread_id"], thread.as_str(), "{metadata}");
    }
    // The answer joined the conversation whole, under the chunks' id, and
    // was not streamed a second time when the node returned it.
    let values = user1.state(&thread).await["values"].clone();
    let answer = &values["messages"][1];
    assert_eq!(answer["type"], "ai");
    assert_eq!(answer["content"], "Hello there");
    assert_eq!(&answer["id"], id);
    assert_eq!(answer["usage_metadata"]["total_tokens"], 15, "{answer}");
    assert!(chunks.iter().all(|e| e.data[0]["type"] != "ai"));

    // What the model was sent: the system prompt, then the conversation.
    let requests = model.requests();
    let body = &requests[0].1;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(body["tools"][0]["function"]["name"], "send_email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_mode_sends_the_answer_so_far_after_each_token() {
    let model = ModelServer::start();
    let server = server(entry(&model, &[model.origin()], 600_000));
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    model.answer(Answer::tokens(&["Hel", "lo"]));

    let mut stream = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "assistant", "input": ask("hi"), "stream_mode": ["messages"]}),
        )
        .open()
        .await;
    let events = stream.events_until(|e| e.event == "end").await;
    let partials: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "messages/partial")
        .map(|e| &e.data[0])
        .collect();
    let texts: Vec<&str> = partials
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert!(
        texts.contains(&"Hel") && texts.last() == Some(&"Hello"),
        "{texts:?}"
    );
    assert!(partials.iter().all(|m| m["type"] == "ai"), "{partials:?}");
    assert_eq!(
        partials.last().unwrap()["response_metadata"]["finish_reason"],
        "stop"
    );
    // The answer's metadata comes first, once.
    let id = partials[0]["id"].as_str().unwrap();
    let metadata: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event == "messages/metadata" && e.data.get(id).is_some())
        .map(|(i, _)| i)
        .collect();
    let first_partial = events.iter().position(|e| e.event == "messages/partial");
    assert_eq!(metadata.len(), 1, "{events:?}");
    assert!(Some(metadata[0]) < first_partial, "{events:?}");
    assert_eq!(
        events[metadata[0]].data[id]["metadata"]["langgraph_node"],
        "agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_waits_for_approval_and_only_its_owner_can_give_it() {
    let model = ModelServer::start();
    let server = server(entry(&model, &[model.origin()], 600_000));
    let user1 = server.user("user1-token");
    let user2 = server.user("user2-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let args = json!({"to": "bob@example.com", "subject": "Lunch", "body": "Noon?"});
    model.answer(Answer::ToolCall {
        name: "send_email".into(),
        args: args.clone(),
        id: "call_1".into(),
    });

    let paused = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "assistant", "input": ask("Ask Bob to lunch")}),
        )
        .await;
    let interrupt = &paused["__interrupt__"][0];
    assert_eq!(interrupt["value"]["tool_call"]["args"], args, "{paused}");
    assert_eq!(interrupt["value"]["tool_call"]["name"], "send_email");
    assert_eq!(user1.thread(&thread).await.status, "interrupted");
    assert_eq!(user1.state(&thread).await["next"], json!(["tools"]));

    // Another tenant cannot answer it: the thread is not theirs.
    let theirs = user2
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "assistant", "command": {"resume": true}}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);

    model.answer(Answer::tokens(&["Done", "."]));
    let done = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "assistant", "command": {"resume": true}}),
        )
        .await;
    let messages = done["messages"].as_array().expect("messages");
    let texts: Vec<(&str, String)> = messages
        .iter()
        .map(|m| (m["type"].as_str().unwrap_or(""), warden_text(m)))
        .collect();
    assert_eq!(
        texts[2..],
        [
            ("tool", "Sent to bob@example.com.".to_owned()),
            ("ai", "Done.".to_owned())
        ],
        "{done}"
    );
    assert_eq!(done["sent"], json!([args]));
    assert_eq!(user1.thread(&thread).await.status, "idle");
    // The model saw its own tool call and the tool's answer.
    let second = &model.requests()[1].1;
    let sent: Vec<&str> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sent, ["system", "user", "assistant", "tool"], "{second}");
    assert_eq!(second["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(second["messages"][3]["tool_call_id"], "call_1");
}

fn warden_text(message: &Value) -> String {
    message["content"].as_str().unwrap_or_default().to_owned()
}

/// The run's error, from the `wait` body.
async fn failed_run(user: &Client, thread: &str) -> Value {
    let reply = user
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "assistant", "input": ask("hi")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let runs = user.runs(thread).await;
    assert_eq!(runs[0].status, "error", "{}", reply.text);
    reply.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_off_the_allowlist_is_an_error_the_graph_sees() {
    let model = ModelServer::start();
    let elsewhere = format!(
        "http://127.0.0.1:{}",
        model.addr.port().wrapping_add(1).max(1)
    );
    let server = server(entry(&model, &[elsewhere], 600_000));
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    model.answer(Answer::tokens(&["never"]));

    let body = failed_run(&user1, &thread).await;
    let error = &body["__error__"];
    assert_eq!(error["error"], "PermissionDeniedError", "{body}");
    assert!(
        error["message"].as_str().unwrap().contains("allowed_hosts"),
        "{body}"
    );
    assert!(model.requests().is_empty(), "the request never left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_model_ends_the_run_at_its_deadline() {
    let model = ModelServer::start();
    let server = server(entry(&model, &[model.origin()], 2_000));
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    model.answer(Answer::Hang);

    let body = failed_run(&user1, &thread).await;
    let error = &body["__error__"];
    // The graph hears of the timeout from its request, or the sandbox
    // stops it at the deadline: a timeout either way, never a hang.
    let kind = error["error"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        kind == "APITimeoutError" || message.contains("deadline"),
        "{body}"
    );
    assert_eq!(user1.thread(&thread).await.status, "error");
}

#[test]
fn a_served_assistant_sends_its_secret_to_the_model_and_never_shows_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let model = runtime.block_on(async { ModelServer::start() });
    let key = "sk-test-0123456789abcdef-do-not-leak";
    // The model refuses the key, repeating it in its error, as some do.
    model.answer(Answer::Unauthorized);
    let dir = tempfile::tempdir().unwrap();
    let agent = component("assistant_agent");
    let config = json!({
        "graphs": {"assistant": {
            "path": agent,
            "config": {"base_url": model.base_url(), "model": "test-model"},
            "secrets": {"OPENAI_API_KEY": "env:WARDEN_TEST_MODEL_KEY"},
            "allowed_hosts": [model.origin()],
        }},
        "auth": {"path": component("reference_auth"), "disable_studio_auth": true},
    });
    let file = dir.path().join("langgraph.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let server = ServerProcess::start_with(
        &["serve", "--no-watch"],
        &file,
        &dir.path().join("data"),
        &[("WARDEN_TEST_MODEL_KEY", std::path::Path::new(key))],
    )
    .unwrap_or_else(|log| panic!("warden serve starts:\n{log}"));
    runtime.block_on(async {
        let user1 = Client::http(server.port).as_user("user1-token");
        let thread = user1.create_thread(json!({})).await.thread_id;
        let body = failed_run(&user1, &thread).await;
        assert_eq!(body["__error__"]["error"], "AuthenticationError", "{body}");
        let runs = user1.runs(&thread).await;
        let everything = format!(
            "{body} {} {}",
            serde_json::to_string(&(&runs[0].rest, &runs[0].kwargs)).unwrap(),
            user1.state(&thread).await
        );
        assert!(!everything.contains(key), "the key leaked: {everything}");
    });
    let (headers, _) = &model.requests()[0];
    assert_eq!(headers["authorization"], format!("Bearer {key}"));
    assert!(!server.log().contains(key), "the key is in the log");
}
