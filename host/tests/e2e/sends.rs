//! Map-reduce with `Send` (`warden:graph@0.2.0`), through the HTTP API:
//! the `fanout` fixture's router sends one `write` task per subject, each
//! on its own state, in one step; their updates meet in the `jokes`
//! reducer. A sent task that asks a human pauses the run, and the answer
//! reaches that task; `command.goto` sends a task too.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, events, unhurried_plugin};

fn updates_of(stream: &str) -> Vec<Value> {
    events(stream)
        .into_iter()
        .filter(|e| e.event == "updates")
        .map(|e| e.data)
        .collect()
}

fn server() -> TestServer {
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("fanout", "fanout_graph")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_sends_one_task_per_subject_and_the_reducer_gathers_them() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;

    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "fanout", "input": {"subjects": ["cats", "dogs", "owls"]},
                   "stream_mode": ["updates", "tasks"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let chunks = events(&reply.text);
    let updates: Vec<Value> = chunks
        .iter()
        .filter(|e| e.event == "updates")
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(
        updates,
        [
            json!({"plan": {"subjects": ["cats", "dogs", "owls"]}}),
            json!({"write": {"jokes": ["joke about cats"]}}),
            json!({"write": {"jokes": ["joke about dogs"]}}),
            json!({"write": {"jokes": ["joke about owls"]}}),
            json!({"collect": {"count": 3}}),
        ],
        "{}",
        reply.text
    );
    // Each sent task starts on its own state, under its own id.
    let started: Vec<&Value> = chunks
        .iter()
        .filter(|e| {
            e.event == "tasks" && e.data["name"] == "write" && e.data.get("input").is_some()
        })
        .map(|e| &e.data)
        .collect();
    let inputs: Vec<&Value> = started.iter().map(|t| &t["input"]).collect();
    assert_eq!(
        inputs,
        [
            &json!({"subject": "cats"}),
            &json!({"subject": "dogs"}),
            &json!({"subject": "owls"})
        ]
    );
    let mut ids: Vec<&Value> = started.iter().map(|t| &t["id"]).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per sent task: {started:?}");
    assert!(
        started
            .iter()
            .all(|t| t["triggers"] == json!(["__pregel_push"]))
    );

    let done = user1.state(&thread).await;
    assert_eq!(
        done["values"]["jokes"],
        json!(["joke about cats", "joke about dogs", "joke about owls"])
    );
    assert_eq!(done["values"]["count"], 3);
    assert_eq!(done["next"], json!([]));

    // The history shows the sent tasks as LangGraph's push tasks, and the
    // step that ran them writes all three.
    let history = user1
        .get(&format!("/threads/{thread}/history?limit=10"))
        .await
        .json;
    let after_plan = history
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["next"] == json!(["write", "write", "write"]))
        .expect("the checkpoint after plan");
    let paths: Vec<&Value> = after_plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["path"])
        .collect();
    assert_eq!(
        paths,
        [
            &json!(["__pregel_push", 0, false]),
            &json!(["__pregel_push", 1, false]),
            &json!(["__pregel_push", 2, false])
        ]
    );
    let step = history
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["next"] == json!(["collect"]))
        .expect("the checkpoint of the sent tasks' step");
    assert_eq!(
        step["metadata"]["writes"],
        json!({"write": [{"jokes": ["joke about cats"]}, {"jokes": ["joke about dogs"]},
                         {"jokes": ["joke about owls"]}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_task_that_asks_a_human_pauses_alone_and_the_others_do_not_run_again() {
    let server = server();
    let user1 = server.user("user1-token");
    let user2 = server.user("user2-token");
    let thread = user1.create_thread(json!({})).await.thread_id;

    // The tasks that finished stream their updates, then the pause.
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "fanout", "input": {"subjects": ["cats", "ask", "owls"]},
                   "stream_mode": ["updates", "values"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let updates = updates_of(&reply.text);
    assert_eq!(updates.len(), 4, "{}", reply.text);
    assert_eq!(
        updates[1..3],
        [
            json!({"write": {"jokes": ["joke about cats"]}}),
            json!({"write": {"jokes": ["joke about owls"]}})
        ]
    );
    let asked = updates[3]["__interrupt__"]
        .as_array()
        .expect("an interrupt");
    assert_eq!(asked.len(), 1, "{}", reply.text);
    assert_eq!(
        asked[0]["value"],
        json!({"question": "which joke about ask?"})
    );
    // The step is not over: none of its writes is in the values yet.
    let at_pause = user1.state(&thread).await;
    assert!(at_pause["values"].get("jokes").is_none(), "{at_pause}");
    assert_eq!(user1.thread(&thread).await.status, "interrupted");

    // The pause keeps all three sent tasks: the second asked, the others
    // finished, with their results; `next` is what is left to run.
    assert_eq!(at_pause["next"], json!(["write"]));
    let tasks = at_pause["tasks"].as_array().unwrap();
    let interrupts: Vec<usize> = tasks
        .iter()
        .map(|t| t["interrupts"].as_array().unwrap().len())
        .collect();
    assert_eq!(interrupts, [0, 1, 0], "{at_pause}");
    let results: Vec<&Value> = tasks.iter().map(|t| &t["result"]).collect();
    assert_eq!(
        results,
        [
            &json!({"jokes": ["joke about cats"]}),
            &Value::Null,
            &json!({"jokes": ["joke about owls"]})
        ]
    );
    let shown = user1.thread(&thread).await.rest["interrupts"].clone();
    assert_eq!(
        shown[tasks[1]["id"].as_str().unwrap()][0]["id"],
        asked[0]["id"],
        "{shown}"
    );

    // Another user cannot answer it.
    let theirs = user2
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "fanout", "command": {"resume": "stolen"}}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);

    // Only the task that asked runs again; as LangGraph, the others'
    // updates stream again, marked cached.
    let reply = user1
        .post(
            &format!("/threads/{thread}/runs/stream"),
            json!({"assistant_id": "fanout", "command": {"resume": "the owl and the pussycat"},
                   "stream_mode": ["updates", "tasks"]}),
        )
        .await;
    assert_eq!(
        updates_of(&reply.text),
        [
            json!({"write": {"jokes": ["joke about cats"]}, "__metadata__": {"cached": true}}),
            json!({"write": {"jokes": ["the owl and the pussycat"]}}),
            json!({"write": {"jokes": ["joke about owls"]}, "__metadata__": {"cached": true}}),
            json!({"collect": {"count": 3}})
        ],
        "{}",
        reply.text
    );
    let started: Vec<Value> = events(&reply.text)
        .into_iter()
        .filter(|e| {
            e.event == "tasks" && e.data["name"] == "write" && e.data.get("input").is_some()
        })
        .map(|e| e.data["input"].clone())
        .collect();
    assert_eq!(started, [json!({"subject": "ask"})], "{}", reply.text);
    let done = user1.state(&thread).await["values"].clone();
    assert_eq!(
        done["jokes"],
        json!([
            "joke about cats",
            "the owl and the pussycat",
            "joke about owls"
        ]),
        "{done}"
    );
    assert_eq!(done["count"], 3);
    assert_eq!(user1.thread(&thread).await.status, "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_goto_sends_a_task_on_its_own_input() {
    let server = server();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    user1
        .wait_run(
            &thread,
            json!({"assistant_id": "fanout", "input": {"subjects": ["cats"]}}),
        )
        .await;

    let done = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "fanout",
                   "command": {"goto": [{"node": "write", "input": {"subject": "bats"}}]}}),
        )
        .await;
    assert_eq!(
        done["jokes"],
        json!(["joke about cats", "joke about bats"]),
        "{done}"
    );
    assert_eq!(done["count"], 2);

    for goto in [
        json!({"node": 3}),
        json!({"node": "write", "input": [1]}),
        json!({"nodes": "write"}),
    ] {
        let refused = user1
            .post(
                &format!("/threads/{thread}/runs"),
                json!({"assistant_id": "fanout", "command": {"goto": goto}}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{goto}: {}",
            refused.text
        );
        assert!(
            refused.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("command.goto must be")),
            "{}",
            refused.text
        );
    }
}
