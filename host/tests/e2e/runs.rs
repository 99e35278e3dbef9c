//! Runs against a real `warden serve`: graphs that fail in every way a
//! guest can, multitask strategies and cancellation on a slow graph, and a
//! cron that fires as its creator. (The `langgraph_sdk` client flows are in
//! `tests/compat/test_runs.py`.)

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::{Client, ServerProcess, component, eventually};

/// A server with the reference policy, the echo graph `agent` and the
/// `hostile` fixture graph (2 s deadline, 64 MiB).
fn server(dir: &Path) -> ServerProcess {
    let config = dir.join("langgraph.json");
    let path = |c: &str| component(c).display().to_string();
    std::fs::write(
        &config,
        json!({
            "graphs": {
                "agent": path("reference_agent"),
                "hostile": {"path": path("hostile_graph"), "timeout_ms": 2000, "memory_mib": 64},
            },
            "auth": {"path": path("reference_auth")},
        })
        .to_string(),
    )
    .unwrap();
    ServerProcess::start(&config, &dir.join("data")).expect("warden starts")
}

/// `method path` as `token`: the status and the JSON body.
async fn call(
    client: &Client,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let reply = client.as_user(token).send(method, path, body.clone()).await;
    (reply.status.as_u16(), reply.json)
}

/// [`call`], with the body as text (an SSE stream, read to its end).
async fn call_text(
    client: &Client,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, String) {
    let reply = client.as_user(token).send(method, path, body.clone()).await;
    (reply.status.as_u16(), reply.text)
}

async fn new_thread(client: &Client, token: &str) -> String {
    let (status, thread) = call(client, "POST", "/threads", token, &json!({})).await;
    assert_eq!(status, 200, "{thread}");
    thread["thread_id"].as_str().unwrap().to_owned()
}

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "hello"}]})
}

/// Polls `GET path` until `done` holds (the ceiling is generous).
async fn poll(client: &Client, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("{path} gets there"), async || {
        let (_, body) = call(client, "GET", path, token, &Value::Null).await;
        done(&body).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_graph_fails_its_run_closed_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    for (mode, error) in [
        ("error", "ValueError"),
        ("trap", "GraphFault"),
        ("loop", "GraphFault"),
        ("alloc", "GraphFault"),
    ] {
        let thread = new_thread(&client, "user1-token").await;
        let started = Instant::now();
        let (status, body) = call(
            &client,
            "POST",
            &format!("/threads/{thread}/runs/wait"),
            "user1-token",
            &json!({"assistant_id": "hostile", "input": {"mode": mode}}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["__error__"]["error"], error, "{mode}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode} took {:?}",
            started.elapsed()
        );
        let (_, runs) = call(
            &client,
            "GET",
            &format!("/threads/{thread}/runs"),
            "user1-token",
            &Value::Null,
        )
        .await;
        assert_eq!(runs[0]["status"], "error", "{mode}: {runs}");
        let (_, state) = call(
            &client,
            "GET",
            &format!("/threads/{thread}"),
            "user1-token",
            &Value::Null,
        )
        .await;
        assert_eq!(state["status"], "error", "{mode}: {state}");
        assert_eq!(state["error"]["error"], error, "{mode}: {state}");
    }
    // Streamed, a failure is an `error` event, after which the stream ends.
    let (status, text) = call_text(
        &client,
        "POST",
        "/runs/stream",
        "user1-token",
        &json!({"assistant_id": "hostile", "input": {"mode": "trap"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.starts_with("event: metadata\r\n"), "{text}");
    assert!(
        text.contains("event: error\r\ndata: {\"error\":\"GraphFault\""),
        "{text}"
    );
    // The log names the graph and the fault.
    let log = server.log();
    for fault in ["timeout", "memory", "trap"] {
        assert!(
            log.lines()
                .any(|l| l.contains("graph fault") && l.contains("hostile") && l.contains(fault)),
            "no {fault} fault logged:\n{log}"
        );
    }
    // And the echo graph still answers.
    let (status, body) = call(
        &client,
        "POST",
        "/runs/wait",
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello()}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["seen_user"], "user1");
}

fn spin(n: u64) -> Value {
    json!({"assistant_id": "hostile", "input": {"mode": "spin", "n": n}})
}

/// Starts a slow run on `thread` and waits until it is running.
async fn slow_run(client: &Client, thread: &str) -> String {
    let (status, run) = call(
        client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &spin(1_000_000),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    poll(
        client,
        &format!("/threads/{thread}/runs/{run_id}"),
        "user1-token",
        |r| r["status"] == "running",
    )
    .await;
    run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multitask_strategies_and_cancellation_on_a_busy_thread() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let first = slow_run(&client, &thread).await;
    let (_, busy) = call(
        &client,
        "GET",
        &format!("/threads/{thread}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(busy["status"], "busy");

    // reject: 409 while the thread is busy.
    let mut body = spin(0);
    body["multitask_strategy"] = json!("reject");
    let (status, error) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &body,
    )
    .await;
    assert_eq!(status, 409, "{error}");

    // enqueue (the default): waits for its turn.
    let (status, queued) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &spin(0),
    )
    .await;
    assert_eq!(status, 200);
    let queued = queued["run_id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let (_, run) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{queued}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(run["status"], "pending", "{run}");

    // Another user cannot cancel it.
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/{first}/cancel"),
        "user2-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 404);

    // cancel (wait=1): the spinning graph stops at once; the queued run follows.
    let started = Instant::now();
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/{first}/cancel?wait=1"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (_, run) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{first}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(run["status"], "interrupted");
    let (status, joined) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{queued}/join"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(joined["done"], true, "{joined}");

    // interrupt: the run in flight is interrupted, the new one runs.
    let second = slow_run(&client, &thread).await;
    let mut body = spin(0);
    body["multitask_strategy"] = json!("interrupt");
    let (status, third) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/wait"),
        "user1-token",
        &body,
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(third["done"], true);
    let (_, run) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{second}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(run["status"], "interrupted");

    // rollback: the run in flight is deleted.
    let fourth = slow_run(&client, &thread).await;
    let mut body = spin(0);
    body["multitask_strategy"] = json!("rollback");
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/wait"),
        "user1-token",
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{fourth}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    let (_, idle) = call(
        &client,
        "GET",
        &format!("/threads/{thread}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(idle["status"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_chunks_stream_and_a_late_resumable_join_replays() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let (status, text) = call_text(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/stream"),
        "user1-token",
        &json!({"assistant_id": "hostile", "input": {"mode": "custom"},
                    "stream_mode": ["custom"], "stream_resumable": true}),
    )
    .await;
    assert_eq!(status, 200);
    let customs: Vec<&str> = text
        .split("\r\n\r\n")
        .filter(|e| e.starts_with("event: custom"))
        .collect();
    assert_eq!(customs.len(), 3, "{text}");
    assert!(customs[0].contains("data: {\"i\":0}\r\nid: "), "{text}");
    // Replaying from the first id gives what followed it.
    let (_, runs) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &Value::Null,
    )
    .await;
    let run_id = runs[0]["run_id"].as_str().unwrap();
    let first_id = customs[0].rsplit("id: ").next().unwrap();
    let response = ureq::get(server.url(&format!("/threads/{thread}/runs/{run_id}/stream")))
        .header("authorization", "Bearer user1-token")
        .header("last-event-id", first_id)
        .call()
        .unwrap();
    let replay = response.into_body().read_to_string().unwrap();
    assert_eq!(replay.matches("event: custom").count(), 2, "{replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_fires_on_schedule_as_its_creator() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let (status, cron) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/crons"),
        "user1-token",
        &json!({"assistant_id": "agent", "schedule": "* * * * *", "input": hello()}),
    )
    .await;
    assert_eq!(status, 200, "{cron}");
    // The next minute boundary.
    let runs = poll(
        &client,
        &format!("/threads/{thread}/runs"),
        "user1-token",
        |runs| {
            runs.as_array()
                .is_some_and(|r| r.iter().any(|r| r["status"] == "success"))
        },
    )
    .await;
    let run = &runs[0];
    let configurable = &run["kwargs"]["config"]["configurable"];
    assert_eq!(configurable["langgraph_auth_user_id"], "user1", "{run}");
    assert_eq!(configurable["cron_id"], cron["cron_id"], "{run}");
    assert_eq!(run["metadata"]["owner"], "user1", "{run}");
    let (_, state) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/state"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(state["values"]["seen_user"], "user1", "{state}");
    assert!(server.log().contains("cron fired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_user_fields_reach_the_graph_but_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("langgraph.json");
    let path = |c: &str| component(c).display().to_string();
    std::fs::write(
        &config,
        json!({"graphs": {"hostile": path("hostile_graph")},
               "auth": {"path": path("fixture_private_user")}})
        .to_string(),
    )
    .unwrap();
    let server = ServerProcess::start(&config, &dir.path().join("data")).expect("warden starts");
    let client = server.client();
    let thread = new_thread(&client, "alice").await;
    let (status, values) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/wait"),
        "alice",
        &json!({"assistant_id": "hostile", "input": {"mode": "whoami"}}),
    )
    .await;
    assert_eq!(status, 200, "{values}");
    // The graph saw the whole user.
    assert_eq!(values["user"]["identity"], "alice");
    assert_eq!(values["user"]["team"], "blue");
    assert_eq!(values["user"]["api_key"], "key-of-alice");
    // The run record keeps the public fields only.
    let (_, text) = call_text(
        &client,
        "GET",
        &format!("/threads/{thread}/runs"),
        "alice",
        &Value::Null,
    )
    .await;
    let runs: Value = serde_json::from_str(&text).unwrap();
    let user = &runs[0]["kwargs"]["config"]["configurable"]["langgraph_auth_user"];
    assert_eq!(user["team"], "blue", "{user}");
    assert!(user.get("api_key").is_none(), "{user}");
    assert!(!text.contains("key-of-alice"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_on_disconnect_cancel_cancels_its_run_when_the_client_leaves() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let body = json!({"assistant_id": "hostile", "input": {"mode": "spin", "n": 1_000_000},
                      "stream_mode": ["custom"], "on_disconnect": "cancel"})
    .to_string();
    let address = server.url("").trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&address).unwrap();
    write!(
        socket,
        "POST /threads/{thread}/runs/stream HTTP/1.1\r\nhost: {address}\r\n\
         authorization: Bearer user1-token\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read until the graph's first chunk: the run is running.
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut location = None;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if let Some(path) = line.to_ascii_lowercase().strip_prefix("content-location: ") {
            location = Some(path.trim().to_owned());
        }
        if line.starts_with("data: {\"progress\"") {
            break;
        }
        line.clear();
    }
    let run = location.expect("a Content-Location header");
    drop(reader);
    socket.shutdown(std::net::Shutdown::Both).unwrap();
    drop(socket);
    poll(&client, &run, "user1-token", |r| {
        r["status"] == "interrupted"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_stamped_at_create_run_lands_in_the_run_and_the_thread_it_creates() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    // if_not_exists: create, with a client trying to claim the thread.
    let thread = uuid::Uuid::now_v7().to_string();
    let (status, run) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello(), "if_not_exists": "create",
                    "metadata": {"owner": "user2", "topic": "t"}}),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["metadata"]["owner"], "user1", "{run}");
    assert_eq!(run["metadata"]["topic"], "t", "{run}");
    let (_, made) = call(
        &client,
        "GET",
        &format!("/threads/{thread}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(made["metadata"]["owner"], "user1", "{made}");
    assert_eq!(made["metadata"]["graph_id"], "agent", "{made}");
    let (status, _) = call(
        &client,
        "GET",
        &format!("/threads/{thread}"),
        "user2-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    // A stateless run kept after it ends: its thread is the caller's.
    let (status, kept) = call(
        &client,
        "POST",
        "/runs",
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello(), "on_completion": "keep"}),
    )
    .await;
    assert_eq!(status, 200, "{kept}");
    let kept_thread = kept["thread_id"].as_str().unwrap();
    let thread = poll(
        &client,
        &format!("/threads/{kept_thread}"),
        "user1-token",
        |t| t["status"] == "idle",
    )
    .await;
    assert_eq!(thread["metadata"]["owner"], "user1", "{thread}");
    assert_eq!(thread["values"]["seen_user"], "user1", "{thread}");
    // Without `keep`, the temporary thread goes once the run ends.
    let (_, temporary) = call(
        &client,
        "POST",
        "/runs/wait",
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello()}),
    )
    .await;
    assert_eq!(temporary["seen_user"], "user1");
    let (_, page) = call(
        &client,
        "POST",
        "/threads/search",
        "user1-token",
        &json!({"limit": 100}),
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 2, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_seconds_delays_the_start_and_a_cancel_ends_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let started = Instant::now();
    let (status, run) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello(), "after_seconds": 1.0}),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (_, pending) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{run_id}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let (_, values) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{run_id}/join"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(values["seen_user"], "user1");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // A delayed run cancelled while it waits never runs.
    let (_, run) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello(), "after_seconds": 60}),
    )
    .await;
    let run_id = run["run_id"].as_str().unwrap();
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/{run_id}/cancel?wait=1"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let (_, cancelled) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/runs/{run_id}"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(cancelled["status"], "interrupted", "{cancelled}");
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        &json!({"assistant_id": "agent", "after_seconds": -1}),
    )
    .await;
    assert_eq!(status, 422);
}

/// The events of `GET /threads/{thread}/stream{query}` (as user1) up to
/// and including the first `run_done`: `(event, data, id)`.
fn thread_stream_until_done(
    server: &ServerProcess,
    thread: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> Vec<(String, Value, String)> {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent
        .get(server.url(&format!("/threads/{thread}/stream{query}")))
        .header("authorization", "Bearer user1-token");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.call().expect("the stream opens");
    let mut lines = std::io::BufReader::new(response.into_body().into_reader()).lines();
    let (mut events, mut current) = (Vec::new(), (String::new(), Value::Null, String::new()));
    while let Some(Ok(line)) = lines.next() {
        if let Some(event) = line.strip_prefix("event: ") {
            current.0 = event.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            current.1 = serde_json::from_str(data).unwrap();
        } else if let Some(id) = line.strip_prefix("id: ") {
            current.2 = id.to_owned();
        } else if line.is_empty() && !current.0.is_empty() {
            let done = current.1["status"] == "run_done";
            events.push(std::mem::take(&mut current));
            if done {
                return events;
            }
        }
    }
    panic!("the stream ended without run_done: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_replays_from_an_id_and_filters_by_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let (status, text) = call_text(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/stream"),
        "user1-token",
        &json!({"assistant_id": "agent", "input": hello(), "stream_resumable": true}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let run_events = text.matches("event: ").count();

    // From the start ("-"): every event of the run, then its end.
    let all = thread_stream_until_done(&server, &thread, "", Some("-"));
    assert_eq!(all.len(), run_events + 1, "{all:?}\n{text}");
    let run_id = all[0].1["run_id"].clone();
    assert_eq!(
        all.last().unwrap().1,
        json!({"status": "run_done", "run_id": run_id})
    );
    assert!(all.iter().all(|(_, _, id)| !id.is_empty()), "{all:?}");
    // From an id: what followed it.
    let after_first = thread_stream_until_done(&server, &thread, "", Some(&all[0].2));
    assert_eq!(after_first, all[1..]);
    // `lifecycle`: the run's start and end only.
    let lifecycle =
        thread_stream_until_done(&server, &thread, "?stream_modes=lifecycle", Some("-"));
    let names: Vec<_> = lifecycle
        .iter()
        .map(|(e, d, _)| (e.as_str(), d.get("status").is_some()))
        .collect();
    assert_eq!(names, [("metadata", false), ("metadata", true)]);

    for (query, header, detail) in [
        ("?stream_modes=values", None, "Invalid stream mode: values"),
        (
            "",
            Some("soon"),
            "Invalid last-event-id: must be a valid Redis stream ID",
        ),
    ] {
        let mut request = ureq::get(server.url(&format!("/threads/{thread}/stream{query}")))
            .header("authorization", "Bearer user1-token");
        if let Some(h) = header {
            request = request.header("last-event-id", h);
        }
        let reply = request
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        assert_eq!(reply.status(), 422);
        let body: Value =
            serde_json::from_str(&reply.into_body().read_to_string().unwrap()).unwrap();
        assert_eq!(body, json!({"detail": detail}));
    }
}
