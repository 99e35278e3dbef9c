//! The `checkpoints`, `tasks` and `debug` stream modes: the chunks
//! `langgraph dev` (langgraph-api 0.16.7) sends, derived from Warden's
//! checkpoints, whose ids are those `/history` and `/state` show.

use serde_json::{Value, json};

use crate::support::{Client, Event, TestServer, events, unhurried_plugin};

fn server() -> TestServer {
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("agent", "reference_agent")
        .graph("approval", "approval_graph")
        .build()
}

fn said(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

/// The run's events but its `metadata`.
async fn stream(user: &Client, thread: &str, body: Value) -> Vec<Event> {
    let reply = user
        .post(&format!("/threads/{thread}/runs/stream"), body)
        .await;
    events(&reply.text)
        .into_iter()
        .filter(|e| e.event != "metadata")
        .collect()
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

async fn get(user: &Client, path: &str) -> Value {
    user.get(path).await.json
}

/// The ids of the thread's checkpoints, oldest first.
async fn history(user: &Client, thread: &str) -> Vec<Value> {
    let history = get(user, &format!("/threads/{thread}/history?limit=20")).await;
    let mut ids: Vec<Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["checkpoint"]["checkpoint_id"].clone())
        .collect();
    ids.reverse();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_tasks_stream_in_the_order_of_langgraphs_loop() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let body = json!({"assistant_id": "agent", "input": said("hi"),
                      "stream_mode": ["checkpoints", "tasks", "values", "updates"]});
    let streamed = stream(&user1, &thread, body).await;
    // As `langgraph dev`, but for its checkpoint of the bare input, which
    // Warden does not have (its `input` checkpoint already holds it).
    assert_eq!(
        names(&streamed),
        [
            "values",
            "checkpoints",
            "tasks",
            "updates",
            "tasks",
            "values",
            "checkpoints"
        ],
    );
    let (input, start, result, last) = (
        &streamed[1].data,
        &streamed[2].data,
        &streamed[4].data,
        &streamed[6].data,
    );
    let shape = [
        "config",
        "metadata",
        "next",
        "parent_config",
        "tasks",
        "values",
    ];
    assert_eq!(keys(input), shape);
    assert_eq!(keys(last), shape);
    assert_eq!(input["next"], json!(["echo"]));
    assert_eq!(input["metadata"]["step"], -1);
    assert_eq!(input["metadata"]["source"], "input");
    assert_eq!(input["parent_config"], Value::Null);
    assert_eq!(input["values"]["messages"][0]["content"], "hi");
    assert_eq!(input["tasks"][0]["name"], "echo");
    assert_eq!(input["tasks"][0]["interrupts"], json!([]));
    assert_eq!(last["next"], json!([]));
    assert_eq!(last["tasks"], json!([]));
    assert_eq!(last["metadata"]["step"], 0);
    assert_eq!(
        last["parent_config"]["configurable"]["checkpoint_id"],
        input["config"]["configurable"]["checkpoint_id"]
    );
    // The checkpoints are the thread's.
    let ids = [input, last].map(|c| c["config"]["configurable"]["checkpoint_id"].clone());
    assert_eq!(history(&user1, &thread).await, ids);

    assert_eq!(keys(start), ["id", "input", "metadata", "name", "triggers"]);
    assert_eq!(start["name"], "echo");
    assert_eq!(start["id"], input["tasks"][0]["id"]);
    assert_eq!(start["input"], input["values"]);
    assert_eq!(start["triggers"], json!(["branch:to:echo"]));
    assert_eq!(
        keys(result),
        ["error", "id", "interrupts", "name", "result"]
    );
    assert_eq!(result["id"], start["id"]);
    assert_eq!(result["error"], Value::Null);
    assert_eq!(result["interrupts"], json!([]));
    assert_eq!(result["result"], streamed[3].data["echo"]);
    assert_eq!(result["result"]["seen_user"], "user1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_wraps_checkpoints_and_tasks_with_their_step_and_time() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let mut runs = Vec::new();
    for text in ["hi", "again"] {
        let body = json!({"assistant_id": "agent", "input": said(text), "stream_mode": ["debug"]});
        runs.push(stream(&user1, &thread, body).await);
    }
    let ids = history(&user1, &thread).await;
    assert_eq!(ids.len(), 4);
    for (run, (steps, ids)) in runs
        .iter()
        .zip([([-1, 0, 0, 0], &ids[..2]), ([1, 2, 2, 2], &ids[2..])])
    {
        assert!(run.iter().all(|e| e.event == "debug"));
        let kinds: Vec<&Value> = run.iter().map(|e| &e.data["type"]).collect();
        assert_eq!(kinds, ["checkpoint", "task", "task_result", "checkpoint"]);
        let got: Vec<&Value> = run.iter().map(|e| &e.data["step"]).collect();
        assert_eq!(got, steps);
        for e in run {
            assert_eq!(keys(&e.data), ["payload", "step", "timestamp", "type"]);
            let at = e.data["timestamp"].as_str().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        }
        let (first, last) = (&run[0].data["payload"], &run[3].data["payload"]);
        assert_eq!(first["checkpoint"]["checkpoint_id"], ids[0]);
        assert_eq!(last["checkpoint"]["checkpoint_id"], ids[1]);
        assert_eq!(last["parent_checkpoint"]["checkpoint_id"], ids[0]);
        assert_eq!(first["checkpoint"]["thread_id"], thread.as_str());
        assert_eq!(run[1].data["payload"]["id"], first["tasks"][0]["id"]);
        assert_eq!(run[2].data["payload"]["id"], first["tasks"][0]["id"]);
    }
    // The second run's first checkpoint follows the first run's last.
    assert_eq!(
        runs[1][0].data["payload"]["parent_checkpoint"]["checkpoint_id"],
        ids[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_breakpoint_the_streamed_task_is_the_states() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let modes = json!(["checkpoints", "tasks"]);
    let body = json!({"assistant_id": "agent", "input": said("hi"),
                      "interrupt_before": ["echo"], "stream_mode": modes});
    let paused = stream(&user1, &thread, body).await;
    // Paused before the node: its checkpoint, no task.
    assert_eq!(names(&paused), ["checkpoints"]);
    let state = get(&user1, &format!("/threads/{thread}/state")).await;
    let task = &state["tasks"][0]["id"];
    assert_eq!(&paused[0].data["tasks"][0]["id"], task);
    assert_eq!(
        paused[0].data["config"]["configurable"]["checkpoint_id"],
        state["checkpoint"]["checkpoint_id"]
    );

    // Resumed: the checkpoint it resumes again, then the task it ran.
    let body = json!({"assistant_id": "agent", "input": null, "stream_mode": modes});
    let resumed = stream(&user1, &thread, body).await;
    assert_eq!(
        names(&resumed),
        ["checkpoints", "tasks", "tasks", "checkpoints"]
    );
    // The same checkpoint, in the resuming run's config.
    for key in ["values", "next", "tasks", "metadata", "parent_config"] {
        assert_eq!(resumed[0].data[key], paused[0].data[key], "{key}");
    }
    assert_eq!(
        resumed[0].data["config"]["configurable"]["checkpoint_id"],
        state["checkpoint"]["checkpoint_id"]
    );
    assert_eq!(&resumed[1].data["id"], task);
    assert_eq!(&resumed[2].data["id"], task);
    assert_eq!(resumed[2].data["result"]["messages"][0]["content"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_interrupts_streams_a_result_with_its_interrupts() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let body = json!({"assistant_id": "approval", "input": {"request": "z"},
                      "stream_mode": ["tasks", "updates", "debug"]});
    let paused = stream(&user1, &thread, body).await;
    let state = get(&user1, &format!("/threads/{thread}/state")).await;
    assert_eq!(state["next"], json!(["review"]), "{state}");
    let task = &state["tasks"][0];
    let tail: Vec<&Event> = paused.iter().rev().take(6).rev().collect();
    let tail_names: Vec<&str> = tail.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        tail_names,
        ["debug", "tasks", "debug", "updates", "tasks", "debug"]
    );
    // The paused checkpoint, then the task that asked.
    assert_eq!(tail[0].data["type"], "checkpoint");
    assert_eq!(
        tail[0].data["payload"]["checkpoint"]["checkpoint_id"],
        state["checkpoint"]["checkpoint_id"]
    );
    assert_eq!(tail[1].data["name"], "review");
    assert_eq!(tail[1].data["id"], task["id"]);
    assert_eq!(tail[2].data["type"], "task");
    assert_eq!(tail[2].data["payload"], tail[1].data);
    let result = &tail[4].data;
    assert_eq!(tail[5].data["type"], "task_result");
    assert_eq!(tail[5].data["payload"], *result);
    assert_eq!(result["id"], task["id"]);
    assert_eq!(result["result"], json!({}));
    assert_eq!(result["interrupts"], tail[3].data["__interrupt__"]);
    assert_eq!(result["interrupts"][0]["id"], task["interrupts"][0]["id"]);
}
