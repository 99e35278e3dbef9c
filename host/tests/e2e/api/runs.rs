//! Runs in this process, with graph slots: graphs that fail in every way a
//! guest can, multitask strategies and cancellation on a busy thread,
//! streams, delayed runs and what a run stamps. (The `langgraph_sdk`
//! client flows are in `tests/compat/test_runs.py`; a cron firing in the
//! served binary is in `cli`.)
//!
//! A busy thread's run waits an hour in the `slow` graph (a deadline no
//! test reaches): it ends when the test cancels, interrupts or rolls it
//! back, never by running out of time.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use warden::plugin::GraphLimits;

use crate::support::{Client, Event, Run, TestServer, events, unhurried_plugin};

/// The reference policy (its deadline unhurried: these runs load the
/// machine), the echo graph `agent`, the `hostile` fixture
/// graph (2 s deadline, 64 MiB) and the same fixture as `slow` (an hour).
fn server() -> TestServer {
    let limits = |timeout| GraphLimits {
        timeout,
        memory_bytes: 64 << 20,
    };
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("agent", "reference_agent")
        .graph_with("hostile", "hostile_graph", limits(Duration::from_secs(2)))
        .graph_with("slow", "hostile_graph", limits(Duration::from_secs(3600)))
        .on_disk()
        .build()
}

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "hello"}]})
}

/// A run of the `slow` graph that sleeps an hour, once it is running.
async fn busy(user1: &Client, thread: &str) -> Run {
    let run = user1
        .create_run(
            thread,
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 3600}}),
        )
        .await;
    user1.until_run_is(thread, &run.run_id, "running").await
}

/// A quick run of the `hostile` graph with this multitask strategy.
fn quick(strategy: &str) -> Value {
    json!({"assistant_id": "hostile", "input": {"mode": "ok"}, "multitask_strategy": strategy})
}

// --- faults ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_graph_fails_its_run_closed_naming_the_fault() {
    let server = server();
    let user1 = server.user("user1-token");
    for (mode, error, kind) in [
        ("error", "ValueError", "boom requested"),
        ("trap", "GraphFault", "The graph failed: trap:"),
        ("loop", "GraphFault", "The graph failed: timeout:"),
        ("alloc", "GraphFault", "The graph failed: memory:"),
    ] {
        let thread = user1.create_thread(json!({})).await.thread_id;
        let values = user1
            .wait_run(
                &thread,
                json!({"assistant_id": "hostile", "input": {"mode": mode}}),
            )
            .await;
        assert_eq!(values["__error__"]["error"], error, "{mode}: {values}");
        let message = values["__error__"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(kind), "{mode}: {values}");
        assert_eq!(user1.runs(&thread).await[0].status, "error", "{mode}");
        let state = user1.until_thread_is(&thread, "error").await;
        assert_eq!(state.error["error"], error, "{mode}: {state:?}");
    }
    // And the echo graph still answers.
    let values = user1
        .post(
            "/runs/wait",
            json!({"assistant_id": "agent", "input": hello()}),
        )
        .await;
    assert_eq!(values.status, StatusCode::OK);
    assert_eq!(values.json["seen_user"], "user1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_failure_is_an_error_event_that_ends_the_stream() {
    let server = server();
    let reply = server
        .user("user1-token")
        .post(
            "/runs/stream",
            json!({"assistant_id": "hostile", "input": {"mode": "trap"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let streamed = events(&reply.text);
    assert_eq!(streamed[0].event, "metadata", "{}", reply.text);
    let last = streamed.last().unwrap();
    assert_eq!(
        (last.event.as_str(), &last.data["error"]),
        ("error", &json!("GraphFault")),
        "{}",
        reply.text
    );
}

// --- what runs cannot do yet ------------------------------------------------

// --- multitask strategies and cancellation --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_with_a_run_in_flight_is_busy_and_reject_refuses_another() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let first = busy(&user1, &thread).await;
    assert_eq!(user1.thread(&thread).await.status, "busy");
    let refused = user1
        .post(&format!("/threads/{thread}/runs"), quick("reject"))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(user1.runs(&thread).await.len(), 1);
    user1.cancel(&thread, &first.run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_waits_for_the_run_in_flight_to_end() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let first = busy(&user1, &thread).await;
    // enqueue (the default): pending for as long as the first is running.
    let queued = user1
        .create_run(
            &thread,
            json!({"assistant_id": "hostile", "input": {"mode": "ok"}}),
        )
        .await;
    let seen = user1.run(&thread, &queued.run_id).await;
    assert_eq!(seen.status, "pending", "{seen:?}");
    assert_eq!(
        user1.run(&thread, &first.run_id).await.status,
        "running",
        "the queued run was seen pending while the first still ran"
    );
    // The first ends: the queued run follows.
    user1.cancel(&thread, &first.run_id).await;
    let joined = user1.join(&thread, &queued.run_id).await;
    assert_eq!(joined["done"], true, "{joined}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_cancel_a_run() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let run = busy(&user1, &thread).await;
    let refused = server
        .user("user2-token")
        .post(
            &format!("/threads/{thread}/runs/{}/cancel", run.run_id),
            Value::Null,
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(user1.run(&thread, &run.run_id).await.status, "running");
    user1.cancel(&thread, &run.run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_a_graph_that_computes() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    // Far more iterations than an hour holds: only the cancel ends it.
    let run = user1
        .create_run(
            &thread,
            json!({"assistant_id": "slow", "input": {"mode": "spin", "n": 1_000_000_000u64}}),
        )
        .await;
    user1.until_run_is(&thread, &run.run_id, "running").await;
    // `wait=1`: the answer comes once the graph has stopped.
    user1.cancel(&thread, &run.run_id).await;
    assert_eq!(user1.run(&thread, &run.run_id).await.status, "interrupted");
    user1.until_thread_is(&thread, "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_interrupts_the_run_in_flight_and_runs_the_new_one() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let second = busy(&user1, &thread).await;
    let third = user1.wait_run(&thread, quick("interrupt")).await;
    assert_eq!(third["done"], true, "{third}");
    assert_eq!(
        user1.run(&thread, &second.run_id).await.status,
        "interrupted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_deletes_the_run_in_flight() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let fourth = busy(&user1, &thread).await;
    user1.wait_run(&thread, quick("rollback")).await;
    let gone = user1
        .get(&format!("/threads/{thread}/runs/{}", fourth.run_id))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    user1.until_thread_is(&thread, "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_on_disconnect_cancel_cancels_its_run_when_the_client_leaves() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let mut stream = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 3600},
                   "stream_mode": ["custom"], "on_disconnect": "cancel"}),
        )
        .open()
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    let run = stream.headers["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    // Read until the graph's first chunk: the run is running.
    let (text, ended) = stream
        .until(|text| text.contains("data: {\"progress\""))
        .await;
    assert!(!ended, "{text}");
    drop(stream);
    crate::support::eventually("the run is interrupted", async || {
        let reply = user1.get(&run).await;
        (reply.json["status"] == "interrupted").then_some(())
    })
    .await;
}

// --- streams ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_chunks_stream_and_a_late_resumable_join_replays_what_followed() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "hostile", "input": {"mode": "custom"},
                   "stream_mode": ["custom"], "stream_resumable": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let customs: Vec<Event> = events(&reply.text)
        .into_iter()
        .filter(|e| e.event == "custom")
        .collect();
    let data: Vec<&Value> = customs.iter().map(|e| &e.data).collect();
    assert_eq!(
        data,
        [&json!({"i": 0}), &json!({"i": 1}), &json!({"i": 2})],
        "{}",
        reply.text
    );
    assert!(customs.iter().all(|e| !e.id.is_empty()), "{}", reply.text);
    // Replaying from the first id gives what followed it.
    let run = &user1.runs(&thread).await[0].run_id;
    let replay = user1
        .get(&format!("/threads/{thread}/runs/{run}/stream"))
        .header("last-event-id", &customs[0].id)
        .await;
    assert_eq!(
        replay.text.matches("event: custom").count(),
        2,
        "{}",
        replay.text
    );
}

/// A thread of user1's with one run streamed to its end (resumable): the
/// thread, and how many events the run streamed.
async fn streamed_thread(user1: &Client) -> (String, usize) {
    let thread = user1.create_thread(json!({})).await.thread_id;
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "agent", "input": hello(), "stream_resumable": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    (thread, events(&reply.text).len())
}

/// The events of `GET /threads/{thread}/stream{query}` up to and including
/// the first `run_done`.
async fn thread_stream(
    user1: &Client,
    thread: &str,
    query: &str,
    last_event_id: &str,
) -> Vec<Event> {
    let mut stream = user1
        .get(&format!("/threads/{thread}/stream{query}"))
        .header("last-event-id", last_event_id)
        .open()
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    let events = stream
        .events_until(|e| e.data["status"] == "run_done")
        .await;
    assert!(
        events
            .last()
            .is_some_and(|e| e.data["status"] == "run_done"),
        "the stream ended without run_done: {events:?}"
    );
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_from_the_start_replays_every_event_of_a_run_then_its_end() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, run_events) = streamed_thread(&user1).await;
    let all = thread_stream(&user1, &thread, "", "-").await;
    assert_eq!(all.len(), run_events + 1, "{all:?}");
    let run_id = all[0].data["run_id"].clone();
    assert_eq!(
        all.last().unwrap().data,
        json!({"status": "run_done", "run_id": run_id})
    );
    assert!(all.iter().all(|e| !e.id.is_empty()), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_from_an_id_replays_what_followed_it() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, _) = streamed_thread(&user1).await;
    let all = thread_stream(&user1, &thread, "", "-").await;
    let after_first = thread_stream(&user1, &thread, "", &all[0].id).await;
    assert_eq!(after_first, all[1..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_thread_stream_shows_a_runs_start_and_end_only() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, _) = streamed_thread(&user1).await;
    let lifecycle = thread_stream(&user1, &thread, "?stream_modes=lifecycle", "-").await;
    let names: Vec<_> = lifecycle
        .iter()
        .map(|e| (e.event.as_str(), e.data.get("status").is_some()))
        .collect();
    assert_eq!(names, [("metadata", false), ("metadata", true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_refuses_an_unknown_mode_or_a_malformed_id() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    for (query, header, detail) in [
        ("?stream_modes=values", None, "Invalid stream mode: values"),
        (
            "",
            Some("soon"),
            "Invalid last-event-id: must be a valid Redis stream ID",
        ),
    ] {
        let mut request = user1.get(&format!("/threads/{thread}/stream{query}"));
        if let Some(h) = header {
            request = request.header("last-event-id", h);
        }
        let reply = request.await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.json, json!({"detail": detail}));
    }
}

// --- what a run stamps and keeps -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_user_fields_reach_the_graph_but_are_never_stored() {
    let server = TestServer::builder()
        .auth(unhurried_plugin("fixture_private_user"))
        .graph("hostile", "hostile_graph")
        .on_disk()
        .build();
    let alice = server.user("alice");
    let thread = alice.create_thread(json!({})).await.thread_id;
    let values = alice
        .wait_run(
            &thread,
            json!({"assistant_id": "hostile", "input": {"mode": "whoami"}}),
        )
        .await;
    // The graph saw the whole user.
    assert_eq!(values["user"]["identity"], "alice");
    assert_eq!(values["user"]["team"], "blue");
    assert_eq!(values["user"]["api_key"], "key-of-alice");
    // The run record keeps the public fields only.
    let runs = alice.get(&format!("/threads/{thread}/runs")).await;
    let user = &runs.json[0]["kwargs"]["config"]["configurable"]["langgraph_auth_user"];
    assert_eq!(user["team"], "blue", "{user}");
    assert!(user.get("api_key").is_none(), "{user}");
    assert!(!runs.text.contains("key-of-alice"), "{}", runs.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_creates_its_thread_stamps_both_with_the_caller() {
    let server = server();
    let user1 = server.user("user1-token");
    // if_not_exists: create, with a client trying to claim the thread.
    let thread = uuid::Uuid::now_v7().to_string();
    let run = user1
        .create_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "if_not_exists": "create",
                   "metadata": {"owner": "user2", "topic": "t"}}),
        )
        .await;
    assert_eq!(run.metadata["owner"], "user1", "{run:?}");
    assert_eq!(run.metadata["topic"], "t", "{run:?}");
    let made = user1.thread(&thread).await;
    assert_eq!(made.metadata["owner"], "user1", "{made:?}");
    assert_eq!(made.metadata["graph_id"], "agent", "{made:?}");
    let theirs = server
        .user("user2-token")
        .get(&format!("/threads/{thread}"))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_run_kept_after_it_ends_leaves_a_thread_of_the_callers() {
    let server = server();
    let user1 = server.user("user1-token");
    let kept = user1
        .post(
            "/runs",
            json!({"assistant_id": "agent", "input": hello(), "on_completion": "keep"}),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    let kept_thread = kept.json["thread_id"].as_str().unwrap();
    let thread = crate::support::eventually("the kept thread is idle", async || {
        let thread = user1.thread(kept_thread).await;
        (thread.status == "idle").then_some(thread)
    })
    .await;
    assert_eq!(thread.metadata["owner"], "user1", "{thread:?}");
    assert_eq!(thread.values["seen_user"], "user1", "{thread:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_runs_temporary_thread_goes_when_the_run_ends() {
    let server = server();
    let user1 = server.user("user1-token");
    let temporary = user1
        .post(
            "/runs/wait",
            json!({"assistant_id": "agent", "input": hello()}),
        )
        .await;
    assert_eq!(temporary.json["seen_user"], "user1");
    let page = user1.search_threads(json!({"limit": 100})).await;
    assert_eq!(page, [], "{page:?}");
}

// --- delayed runs ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_seconds_delays_the_start() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let asked = Instant::now();
    let run = user1
        .create_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "after_seconds": 1.0}),
        )
        .await;
    assert_eq!(run.status, "pending", "{run:?}");
    let values = user1.join(&thread, &run.run_id).await;
    assert_eq!(values["seen_user"], "user1");
    // A lower bound only: it did not start before its time.
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_run_cancelled_while_it_waits_never_runs() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let run = user1
        .create_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "after_seconds": 60}),
        )
        .await;
    user1.cancel(&thread, &run.run_id).await;
    assert_eq!(user1.run(&thread, &run.run_id).await.status, "interrupted");
    assert_eq!(user1.thread(&thread).await.values, Value::Null);
}

#[tokio::test]
async fn after_seconds_must_not_be_negative() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let refused = user1
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "agent", "after_seconds": -1}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}
