//! Runs that pause for a human and resume (`warden:graph@0.2.0`), through
//! the HTTP API as LangGraph's clients drive them: breakpoints
//! (`interrupt_before` / `interrupt_after`) on the reference echo graph,
//! `interrupt()` inside a node and `command: {resume, update, goto}` on
//! the `approval` fixture, with the envelopes `langgraph dev` writes.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, events, unhurried_plugin};

/// The reference policy, the echo graph `agent`, the `approval` fixture
/// (`draft -> review (interrupt) -> send`) and `old`, a graph built
/// against `warden:graph@0.1.0`.
fn server() -> TestServer {
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("agent", "reference_agent")
        .graph("approval", "approval_graph")
        .graph("old", "fixture_graph_v0_1")
        .build()
}

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakpoint_before_a_node_pauses_the_run_and_a_null_input_runs_it() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;

    let paused = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "interrupt_before": ["echo"]}),
        )
        .await;
    // The node did not run: only the input is in the values, and a
    // breakpoint adds no `__interrupt__` (as `langgraph dev`).
    assert_eq!(
        paused["messages"].as_array().map(Vec::len),
        Some(1),
        "{paused}"
    );
    assert!(paused.get("__interrupt__").is_none(), "{paused}");
    assert!(paused.get("seen_user").is_none(), "{paused}");
    let thread_now = user1.thread(&thread).await;
    assert_eq!(thread_now.status, "interrupted");
    assert_eq!(thread_now.rest["interrupts"], json!({}));
    let runs = user1.runs(&thread).await;
    assert_eq!(runs[0].status, "success", "a paused run succeeded");
    let at_pause = user1.state(&thread).await;
    assert_eq!(at_pause["next"], json!(["echo"]), "{at_pause}");
    assert_eq!(at_pause["tasks"][0]["name"], "echo");
    assert_eq!(at_pause["interrupts"], json!([]));

    // `input: null` runs what was left, past the breakpoint it paused on.
    let done = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "agent", "input": null, "interrupt_before": ["echo"]}),
        )
        .await;
    assert_eq!(done["seen_user"], "user1", "{done}");
    assert_eq!(done["messages"].as_array().map(Vec::len), Some(2), "{done}");
    assert_eq!(user1.thread(&thread).await.status, "idle");
    assert_eq!(user1.state(&thread).await["next"], json!([]));

    // `*` stops before every node; after the last node there is nothing to
    // stop before (as LangGraph, a breakpoint after it does nothing).
    let all = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "interrupt_before": "*"}),
        )
        .await;
    assert_eq!(all["messages"].as_array().map(Vec::len), Some(3), "{all}");
    assert_eq!(user1.state(&thread).await["next"], json!(["echo"]));
    let after_last = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "agent", "input": hello(), "interrupt_after": ["echo"]}),
        )
        .await;
    assert_eq!(after_last["messages"].as_array().map(Vec::len), Some(5));
    assert_eq!(user1.thread(&thread).await.status, "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_in_a_node_pauses_the_run_and_a_resume_answers_it() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;

    let paused = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "input": {"request": "lunch at noon"}}),
        )
        .await;
    assert_eq!(paused["draft"], "Dear all, lunch at noon.", "{paused}");
    let shown = &paused["__interrupt__"];
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{paused}");
    assert_eq!(
        shown[0]["value"],
        json!({"question": "Send it?", "draft": "Dear all, lunch at noon."})
    );
    let id = shown[0]["id"].as_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // The thread, its state and its task all show the pending question.
    let thread_now = user1.thread(&thread).await;
    assert_eq!(thread_now.status, "interrupted");
    let at_pause = user1.state(&thread).await;
    assert_eq!(at_pause["next"], json!(["review"]));
    let stored = json!([{"id": id, "value": shown[0]["value"]}]);
    assert_eq!(at_pause["interrupts"], stored, "{at_pause}");
    assert_eq!(at_pause["tasks"][0]["interrupts"], stored);
    let task = at_pause["tasks"][0]["id"].as_str().unwrap();
    assert_eq!(thread_now.rest["interrupts"], json!({ task: stored }));

    // Another user cannot resume it, nor tell it exists.
    let user2 = server.user("user2-token");
    let refused = user2
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "approval", "command": {"resume": "yes"}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    assert_eq!(user1.thread(&thread).await.status, "interrupted");

    // The owner's answer reaches the `interrupt` call, and the run goes on.
    let done = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "yes"}}),
        )
        .await;
    assert_eq!(done["approved"], true, "{done}");
    assert_eq!(done["sent"], "Dear all, lunch at noon.");
    assert!(done.get("__interrupt__").is_none(), "{done}");
    let thread_now = user1.thread(&thread).await;
    assert_eq!(thread_now.status, "idle");
    assert_eq!(thread_now.rest["interrupts"], json!({}));
    assert_eq!(user1.state(&thread).await["interrupts"], json!([]));

    // Resuming a thread with nothing paused runs nothing (as LangGraph).
    let idle = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "again"}}),
        )
        .await;
    assert_eq!(idle["sends"], 1, "{idle}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_asks_twice_pauses_twice_and_each_pause_is_answered_by_id() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let first = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "input": {"request": "x", "ask_twice": true}}),
        )
        .await;
    let first_id = first["__interrupt__"][0]["id"].clone();

    // `input: null` asks the same question again, with the same id.
    let again = user1
        .wait_run(&thread, json!({"assistant_id": "approval", "input": null}))
        .await;
    assert_eq!(again["__interrupt__"][0]["id"], first_id, "{again}");

    // Answered by id, the node asks its second question.
    let second = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": {first_id.as_str().unwrap(): "yes"}}}),
        )
        .await;
    assert_eq!(
        second["__interrupt__"][0]["value"],
        json!({"question": "Sign it?"}),
        "{second}"
    );
    assert_ne!(second["__interrupt__"][0]["id"], first_id);
    // It paused on the same checkpoint: no step was taken.
    let history = user1
        .get(&format!("/threads/{thread}/history?limit=10"))
        .await
        .json;
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");

    let done = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "Ada"}}),
        )
        .await;
    assert_eq!(
        (done["approved"].clone(), done["signature"].clone()),
        (json!(true), json!("Ada")),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_updates_the_state_or_goes_elsewhere() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "input": {"request": "x"}}),
        )
        .await;
    // `update` goes through the state before the node runs again.
    let updated = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "yes", "update": {"draft": "Edited."}}}),
        )
        .await;
    assert_eq!(updated["sent"], "Edited.", "{updated}");

    // `goto` skips the question.
    let other = user1.create_thread(json!({})).await.thread_id;
    user1
        .wait_run(
            &other,
            json!({"assistant_id": "approval", "input": {"request": "y"}}),
        )
        .await;
    let skipped = user1
        .wait_run(
            &other,
            json!({"assistant_id": "approval", "command": {"goto": "send"}}),
        )
        .await;
    assert_eq!(
        (skipped["sends"].clone(), skipped["sent"].clone()),
        (json!(1), Value::Null),
        "{skipped}"
    );
    assert_eq!(user1.thread(&other).await.status, "idle");

    // As the reference: resuming without a thread is a 400.
    let stateless = user1
        .post(
            "/runs/wait",
            json!({"assistant_id": "approval", "command": {"resume": "yes"}}),
        )
        .await;
    assert_eq!(
        stateless.status,
        StatusCode::BAD_REQUEST,
        "{}",
        stateless.text
    );
    assert!(
        stateless
            .detail()
            .starts_with("You must provide a thread_id")
    );

    // A command that is not one is a 422, naming the field.
    for (command, detail) in [
        (json!("yes"), "command must be an object"),
        (json!({"update": [1]}), "command.update must be an object"),
        (json!({"goto": 3}), "command.goto must be a node name"),
        (json!({"resum": 1}), "command has an unknown field 'resum'"),
    ] {
        let reply = user1
            .post(
                &format!("/threads/{thread}/runs/wait"),
                json!({"assistant_id": "approval", "command": command}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert!(reply.detail().starts_with(detail), "{}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_pause_sends_the_interrupt_as_updates_and_values() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "approval", "input": {"request": "z"},
                   "stream_mode": ["values", "updates"]}),
        )
        .await;
    let streamed = events(&reply.text);
    let tail: Vec<_> = streamed
        .iter()
        .rev()
        .take(2)
        .map(|e| (e.event.clone(), e.data.clone()))
        .collect();
    let (last, before) = (&tail[0], &tail[1]);
    assert_eq!(before.0, "updates", "{}", reply.text);
    let shown = before.1["__interrupt__"].clone();
    assert_eq!(shown[0]["value"]["question"], "Send it?", "{}", reply.text);
    assert_eq!(last.0, "values");
    assert_eq!(last.1["__interrupt__"], shown);
    assert_eq!(last.1["draft"], "Dear all, z.");

    // A breakpoint streams an empty `__interrupt__` update and no values.
    let other = user1.create_thread(json!({})).await.thread_id;
    let reply = user1
        .post(
            &format!("/threads/{other}/runs/stream"),
            json!({"assistant_id": "agent", "input": hello(), "interrupt_after": ["echo"],
                   "interrupt_before": ["echo"], "stream_mode": ["values", "updates"]}),
        )
        .await;
    let last = events(&reply.text).pop().unwrap();
    assert_eq!(
        (last.event.as_str(), &last.data),
        ("updates", &json!({"__interrupt__": []}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_built_against_0_1_0_is_refused_a_pause_and_runs_the_rest() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    for (field, value) in [
        ("interrupt_before", json!(["echo"])),
        ("interrupt_after", json!("*")),
        ("command", json!({"resume": "yes"})),
    ] {
        let mut body = json!({"assistant_id": "old", "input": {"text": "hi"}});
        body[field] = value;
        let reply = user1
            .post(&format!("/threads/{thread}/runs/wait"), body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert!(
            reply.detail().starts_with(&format!(
                "{field} is not supported by graph 'old', built against warden:graph@0.1.0"
            )),
            "{}",
            reply.text
        );
    }
    assert!(user1.runs(&thread).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_branches_run_in_one_step_and_pause_together() {
    let server = TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("branches", "branches_graph")
        .build();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;

    // Stopped after `plan`: both branches are next, one task each.
    let paused = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "branches", "input": {}, "interrupt_after": ["plan"]}),
        )
        .await;
    assert_eq!(paused["trail"], json!(["plan"]), "{paused}");
    let at_pause = user1.state(&thread).await;
    assert_eq!(at_pause["next"], json!(["research", "draft"]), "{at_pause}");
    let names: Vec<_> = at_pause["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("research"), json!("draft")]);

    // Going on: each branch streams its update, then the step's values;
    // the merge runs once, having seen both.
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "branches", "input": null, "stream_mode": ["updates", "values"]}),
        )
        .await;
    let streamed: Vec<_> = events(&reply.text)
        .into_iter()
        .filter(|e| e.event != "metadata")
        .map(|e| (e.event, e.data))
        .collect();
    assert_eq!(
        streamed,
        [
            (
                "updates".into(),
                json!({"research": {"trail": ["research"]}})
            ),
            ("updates".into(), json!({"draft": {"trail": ["draft"]}})),
            (
                "values".into(),
                json!({"trail": ["plan", "research", "draft"]})
            ),
            (
                "updates".into(),
                json!({"merge": {"trail": ["merge"], "seen": 3}})
            ),
            (
                "values".into(),
                json!({"trail": ["plan", "research", "draft", "merge"], "seen": 3})
            ),
        ],
        "{}",
        reply.text
    );
    // One checkpoint for the parallel step, writing both.
    let history = user1
        .get(&format!("/threads/{thread}/history?limit=10"))
        .await
        .json;
    let step = history
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["next"] == json!(["merge"]))
        .expect("the parallel step's checkpoint");
    assert_eq!(
        step["metadata"]["writes"],
        json!({"research": {"trail": ["research"]}, "draft": {"trail": ["draft"]}})
    );
}
