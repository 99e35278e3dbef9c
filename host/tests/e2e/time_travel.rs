//! Time travel through the HTTP API, as LangGraph's clients drive it: a run
//! from a past checkpoint (`checkpoint_id`, `checkpoint`) and a state update
//! on one start a new branch of the thread's history, which keeps the old
//! one. On the `approval` fixture (`draft -> review (interrupt) -> send`).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, TestServer, unhurried_plugin};

fn server() -> TestServer {
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("approval", "approval_graph")
        .graph("old", "fixture_graph_v0_1")
        .build()
}

/// The thread's checkpoints, newest first.
async fn history(user: &Client, thread: &str) -> Vec<Value> {
    let reply = user
        .get(&format!("/threads/{thread}/history?limit=50"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json.as_array().cloned().unwrap_or_default()
}

/// A thread whose run paused at `review`, then was approved and sent: the
/// thread and the id of the checkpoint that paused.
async fn sent(user: &Client) -> (String, String) {
    let thread = user.create_thread(json!({})).await.thread_id;
    let body = json!({"assistant_id": "approval", "input": {"request": "lunch"}});
    user.wait_run(&thread, body).await;
    let paused = user.get(&format!("/threads/{thread}/state")).await.json;
    let checkpoint = paused["checkpoint_id"].as_str().unwrap().to_owned();
    let done = user
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "yes"}}),
        )
        .await;
    assert_eq!(done["sent"], "Dear all, lunch.", "{done}");
    (thread, checkpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_a_past_checkpoint_replays_from_there_on_a_new_branch() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, paused) = sent(&user1).await;
    let before = history(&user1, &thread).await;

    // No input: what was left there runs again, and asks again.
    let replayed = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "input": null, "checkpoint_id": paused}),
        )
        .await;
    assert_eq!(
        replayed["__interrupt__"][0]["value"]["question"], "Send it?",
        "{replayed}"
    );
    assert!(replayed.get("sent").is_none(), "{replayed}");
    assert_eq!(user1.thread(&thread).await.status, "interrupted");

    // The new branch starts with a copy of the checkpoint (`fork`), and
    // the old branch is still there.
    let after = history(&user1, &thread).await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let fork = &after[0];
    assert_eq!(fork["metadata"]["source"], "fork");
    assert_eq!(fork["parent_checkpoint_id"], paused);
    assert_eq!(fork["metadata"]["checkpoint_id"], paused);
    assert_eq!(fork["next"], json!(["review"]));
    for old in &before {
        assert!(after.contains(old), "{old} is gone");
    }

    // Answered differently this time.
    let declined = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "no"}}),
        )
        .await;
    assert_eq!(
        (declined["approved"].clone(), declined["sent"].clone()),
        (json!(false), Value::Null),
        "{declined}"
    );
    // The run's config tells which checkpoint it started from.
    let runs = user1.runs(&thread).await;
    let from = runs.iter().find(|r| {
        r.kwargs["input"].is_null() && r.kwargs.get("command").is_none_or(Value::is_null)
    });
    assert_eq!(
        from.map(|r| r.kwargs["config"]["configurable"]["checkpoint_id"].clone()),
        Some(json!(paused))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_a_past_checkpoint_with_input_or_a_command_starts_there() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, paused) = sent(&user1).await;

    // A command answers that checkpoint's question anew.
    let declined = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "command": {"resume": "no"},
                   "checkpoint": {"checkpoint_id": paused, "checkpoint_ns": ""}}),
        )
        .await;
    assert_eq!(declined["approved"], false, "{declined}");

    // New input starts the graph over from that checkpoint's values.
    let first = history(&user1, &thread).await.last().cloned().unwrap();
    let again = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "approval", "input": {"request": "dinner"},
                   "checkpoint_id": first["checkpoint_id"]}),
        )
        .await;
    assert_eq!(again["draft"], "Dear all, dinner.", "{again}");
    assert_eq!(
        again["__interrupt__"][0]["value"]["draft"],
        "Dear all, dinner."
    );
    let head = &history(&user1, &thread).await[1];
    assert_eq!(head["metadata"]["source"], "input", "{head}");
    assert_eq!(head["parent_checkpoint_id"], first["checkpoint_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_not_on_the_thread_is_refused_and_nothing_runs() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, _) = sent(&user1).await;
    let (other, elsewhere) = sent(&user1).await;
    let runs = user1.runs(&thread).await.len();
    for (from, status, detail) in [
        (
            json!("1f0c0000-0000-6000-8000-000000000000"),
            StatusCode::NOT_FOUND,
            "Checkpoint 1f0c0000-0000-6000-8000-000000000000 not found",
        ),
        (json!(elsewhere), StatusCode::NOT_FOUND, "Checkpoint"),
        (
            json!("not-a-uuid"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid checkpoint ID",
        ),
        (
            json!(7),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid checkpoint ID",
        ),
    ] {
        for path in [
            format!("/threads/{thread}/runs/wait"),
            format!("/threads/{thread}/runs"),
        ] {
            let reply = user1
                .post(
                    &path,
                    json!({"assistant_id": "approval", "input": null, "checkpoint_id": from}),
                )
                .await;
            assert_eq!(reply.status, status, "{path} from {from}: {}", reply.text);
            assert!(reply.detail().starts_with(detail), "{}", reply.text);
        }
        let reply = user1
            .post(
                &format!("/threads/{thread}/state"),
                json!({"values": {"draft": "x"}, "checkpoint_id": from}),
            )
            .await;
        assert_eq!(
            reply.status, status,
            "state update from {from}: {}",
            reply.text
        );
    }
    assert_eq!(user1.runs(&thread).await.len(), runs);
    assert_eq!(
        user1.thread(&thread).await.values["sent"],
        "Dear all, lunch."
    );
    let _ = other;

    // Another user cannot travel in someone else's thread.
    let user2 = server.user("user2-token");
    let reply = user2
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "approval", "input": null, "checkpoint_id": elsewhere}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);

    // Nor can a graph built against warden:graph@0.1.0.
    let old = user1.create_thread(json!({})).await.thread_id;
    user1
        .wait_run(
            &old,
            json!({"assistant_id": "old", "input": {"text": "hi"}}),
        )
        .await;
    let checkpoint =
        user1.get(&format!("/threads/{old}/state")).await.json["checkpoint_id"].clone();
    let reply = user1
        .post(
            &format!("/threads/{old}/runs/wait"),
            json!({"assistant_id": "old", "input": {"text": "again"}, "checkpoint_id": checkpoint}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert!(
        reply
            .detail()
            .starts_with("checkpoint_id is not supported by graph 'old'"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_update_on_a_past_checkpoint_branches_from_it() {
    let server = server();
    let user1 = server.user("user1-token");
    let (thread, paused) = sent(&user1).await;
    let reply = user1
        .post(
            &format!("/threads/{thread}/state"),
            json!({"values": {"draft": "Edited."}, "checkpoint_id": paused}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let state = user1.get(&format!("/threads/{thread}/state")).await.json;
    assert_eq!(state["parent_checkpoint_id"], paused, "{state}");
    assert_eq!(state["metadata"]["source"], "update");
    assert_eq!(state["metadata"]["checkpoint_id"], paused);
    // What was to run there is still to run, and asks about the new draft.
    assert_eq!(state["next"], json!(["review"]));
    assert!(
        state.get("values").is_some_and(|v| v.get("sent").is_none()),
        "{state}"
    );
    let asked = user1
        .wait_run(&thread, json!({"assistant_id": "approval", "input": null}))
        .await;
    assert_eq!(
        asked["__interrupt__"][0]["value"]["draft"], "Edited.",
        "{asked}"
    );
}
