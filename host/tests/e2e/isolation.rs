//! Tenant isolation through the router (no sockets), with graphs loaded:
//! no caller reaches another's run, thread stream, store item or system
//! assistant, and every cancel goes through `threads.update`. The plugins
//! are the reference policy (`user1-token`, `user2-token`, `admin-token`)
//! and `fixture_sharing` (token = identity; an owner shares a thread by
//! listing readers in `metadata.shared_with`; the store is scoped by
//! filters only; `guest` may not create threads).

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use warden::config::{Config, GraphConfig};
use warden::server::{AppState, router, system_assistant_id};
use warden::storage::{SqliteStorage, Storage};

use crate::support::{Client, Reply, Stream, TestServer, root, unhurried_plugin};

/// The server of one test, over a database in a temporary directory,
/// serving the echo graph `agent`.
struct Server(TestServer);

fn config(graphs: &[&str]) -> Config {
    Config {
        file: root().join("langgraph.json"),
        graphs: graphs
            .iter()
            .map(|g| ((*g).to_owned(), GraphConfig::from("./unused")))
            .collect(),
        auth: None,
        limits: Default::default(),
    }
}

fn server(auth: &str) -> Server {
    // These tests are about who sees what, not about time.
    Server(
        TestServer::builder()
            .auth(unhurried_plugin(auth))
            .graph("agent", "reference_agent")
            .on_disk()
            .build(),
    )
}

impl Server {
    async fn send(&self, method: &str, path: &str, token: &str, body: Value) -> Reply {
        self.0.user(token).send(method, path, body).await
    }

    /// Sends a GET and returns the response as it starts.
    async fn open(&self, path: &str, token: &str, last_event_id: Option<&str>) -> Stream {
        let mut request = self.0.user(token).get(path);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.open().await
    }

    async fn new_thread(&self, token: &str, metadata: Value) -> String {
        self.0
            .user(token)
            .create_thread(json!({"metadata": metadata}))
            .await
            .thread_id
    }

    /// A run that stays pending for an hour: in flight, and never started.
    async fn pending_run(&self, thread: &str, token: &str) -> String {
        self.0.user(token).pending_run(thread, "agent").await.run_id
    }

    /// Runs the echo graph on `thread` to its end.
    async fn run_to_end(&self, thread: &str, token: &str, text: &str, extra: Value) -> Value {
        let mut body = json!({"assistant_id": "agent",
                              "input": {"messages": [{"role": "user", "content": text}]}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.0.user(token).wait_run(thread, body).await
    }

    async fn run_status(&self, thread: &str, run: &str, token: &str) -> Value {
        let path = format!("/threads/{thread}/runs/{run}");
        let reply = self.send("GET", &path, token, Value::Null).await;
        if reply.status == StatusCode::NOT_FOUND {
            return Value::Null;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["status"].clone()
    }

    /// Polls a run's status until it is `wanted`.
    async fn wait_status(&self, thread: &str, run: &str, token: &str, wanted: &str) {
        self.0.user(token).until_run_is(thread, run, wanted).await;
    }
}

// --- 1. runs are reached through their own thread ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_reached_only_through_its_own_thread() {
    let server = server("reference_auth");
    let theirs = server.new_thread("user2-token", json!({})).await;
    let run = server.pending_run(&theirs, "user2-token").await;
    let own = server.new_thread("user1-token", json!({})).await;
    let base = format!("/threads/{own}/runs/{run}");
    for (method, path, body) in [
        ("GET", base.clone(), Value::Null),
        ("GET", format!("{base}/join"), Value::Null),
        ("POST", format!("{base}/cancel"), Value::Null),
        (
            "POST",
            format!("{base}/cancel?action=rollback"),
            Value::Null,
        ),
        (
            "POST",
            "/runs/cancel".to_owned(),
            json!({"thread_id": own, "run_ids": [run]}),
        ),
        ("DELETE", base.clone(), Value::Null),
    ] {
        let reply = server.send(method, &path, "user1-token", body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.text
        );
    }
    // As `langgraph dev` answers.
    let reply = server
        .send("DELETE", &base, "user1-token", Value::Null)
        .await;
    assert_eq!(reply.json["detail"], "Run not found");
    // Its stream is refused by the stream's one event, as `langgraph dev`
    // sends it; so is the run through its own thread, to another user.
    for (path, token, message) in [
        (
            format!("{base}/stream"),
            "user1-token",
            "404: Run not found",
        ),
        (
            format!("/threads/{theirs}/runs/{run}/stream"),
            "user1-token",
            "404: Thread not found",
        ),
    ] {
        let reply = server.send("GET", &path, token, Value::Null).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(
            reply.text,
            format!(
                "event: error\r\ndata: {}\r\n\r\n",
                json!({"error": "HTTPException", "message": message})
            ),
            "{path}"
        );
    }
    assert_eq!(
        server.run_status(&theirs, &run, "user2-token").await,
        "pending"
    );
}

// --- 2. cancel_on_disconnect needs threads.update ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_cancels_on_disconnect_only_for_a_caller_who_may_update_the_thread() {
    let server = server("fixture_sharing");
    let thread = server
        .new_thread("alice", json!({"shared_with": ["bob"]}))
        .await;
    // A run queued behind another: a cancel ends it at once.
    server.pending_run(&thread, "alice").await;
    let run = server.pending_run(&thread, "alice").await;
    // Bob may read the thread (he joins), not update it: leaving does not
    // cancel Alice's run, as in `langgraph dev`, whose cancel is refused.
    for path in ["join", "stream"] {
        let path = format!("/threads/{thread}/runs/{run}/{path}?cancel_on_disconnect=true");
        let response = server.open(&path, "bob", None).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        drop(response);
        assert_eq!(
            server.run_status(&thread, &run, "alice").await,
            "pending",
            "{path}"
        );
    }
    // The owner's join does cancel when she leaves.
    let path = format!("/threads/{thread}/runs/{run}/join?cancel_on_disconnect=1");
    drop(server.open(&path, "alice", None).await);
    server
        .wait_status(&thread, &run, "alice", "interrupted")
        .await;
}

// --- 3. multitask interrupt / rollback needs threads.update ---------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multitask_interrupt_or_rollback_needs_the_right_to_update_the_thread() {
    let server = server("fixture_sharing");
    let thread = server
        .new_thread("alice", json!({"shared_with": ["bob"]}))
        .await;
    let run = server.pending_run(&thread, "alice").await;
    for strategy in ["interrupt", "rollback"] {
        let reply = server
            .send(
                "POST",
                &format!("/threads/{thread}/runs"),
                "bob",
                json!({"assistant_id": "agent", "multitask_strategy": strategy}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{strategy}: {}",
            reply.text
        );
        assert_eq!(
            server.run_status(&thread, &run, "alice").await,
            "pending",
            "{strategy}"
        );
    }
    // Nothing was created either.
    let runs = server
        .send(
            "GET",
            &format!("/threads/{thread}/runs"),
            "alice",
            Value::Null,
        )
        .await;
    assert_eq!(runs.json.as_array().unwrap().len(), 1, "{}", runs.text);
    // Bob may still queue his run behind Alice's.
    let reply = server
        .send(
            "POST",
            &format!("/threads/{thread}/runs"),
            "bob",
            json!({"assistant_id": "agent", "multitask_strategy": "enqueue", "after_seconds": 3600}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The owner may interrupt.
    let reply = server
        .send(
            "POST",
            &format!("/threads/{thread}/runs"),
            "alice",
            json!({"assistant_id": "agent", "multitask_strategy": "interrupt", "after_seconds": 3600}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    server
        .wait_status(&thread, &run, "alice", "interrupted")
        .await;
}

// --- 4. a thread stream is bound to the thread it was opened on ------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_ends_with_its_thread_and_never_follows_a_new_one_of_the_same_id() {
    let server = server("reference_auth");
    let thread = server.new_thread("user1-token", json!({})).await;
    let mut stream = server
        .open(&format!("/threads/{thread}/stream"), "user1-token", None)
        .await;
    // A run of another thread's stream is a cancelled pending run: its
    // stream ends with the thread too.
    let run = server.pending_run(&thread, "user1-token").await;
    let mut run_stream = server
        .open(
            &format!("/threads/{thread}/runs/{run}/stream"),
            "user1-token",
            None,
        )
        .await;
    let deleted = server
        .send(
            "DELETE",
            &format!("/threads/{thread}"),
            "user1-token",
            Value::Null,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(run_stream.until(|_| false).await.1);

    // Another user takes the id and runs on it.
    let reply = server
        .send(
            "POST",
            "/threads",
            "user2-token",
            json!({"thread_id": thread}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    server
        .run_to_end(&thread, "user2-token", "user2's secret", json!({}))
        .await;
    let (text, ended) = stream.until(|text| text.contains("user2's secret")).await;
    assert!(ended && !text.contains("user2's secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_never_replays_the_runs_of_a_deleted_thread() {
    let server = server("reference_auth");
    let thread = server.new_thread("user1-token", json!({})).await;
    server
        .run_to_end(
            &thread,
            "user1-token",
            "user1's secret",
            json!({"stream_resumable": true}),
        )
        .await;
    let deleted = server
        .send(
            "DELETE",
            &format!("/threads/{thread}"),
            "user1-token",
            Value::Null,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let reply = server
        .send(
            "POST",
            "/threads",
            "user2-token",
            json!({"thread_id": thread}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut stream = server
        .open(
            &format!("/threads/{thread}/stream"),
            "user2-token",
            Some("0-0"),
        )
        .await;
    // The new owner's own run, to see the stream's end of replay.
    let run = server.pending_run(&thread, "user2-token").await;
    let (text, _) = stream.until(|text| text.contains(&run)).await;
    assert!(!text.contains("user1's secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stream_stops_following_a_reader_whose_access_was_revoked() {
    let server = server("fixture_sharing");
    let thread = server
        .new_thread("alice", json!({"shared_with": ["bob"]}))
        .await;
    let mut stream = server
        .open(&format!("/threads/{thread}/stream"), "bob", None)
        .await;
    let reply = server
        .send(
            "PATCH",
            &format!("/threads/{thread}"),
            "alice",
            json!({"metadata": {"shared_with": []}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    server
        .run_to_end(&thread, "alice", "alice's secret", json!({}))
        .await;
    let (text, ended) = stream.until(|text| text.contains("alice's secret")).await;
    assert!(ended && !text.contains("alice's secret"), "{text}");
    assert!(text.contains("404: Thread not found"), "{text}");
}

// --- 5. deleting a run keeps a copy's checkpoints -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_run_leaves_the_checkpoints_it_wrote_on_a_copy() {
    let server = server("reference_auth");
    let thread = server.new_thread("user1-token", json!({})).await;
    let values = server
        .run_to_end(&thread, "user1-token", "hello", json!({}))
        .await;
    let runs = server
        .send(
            "GET",
            &format!("/threads/{thread}/runs"),
            "user1-token",
            Value::Null,
        )
        .await;
    let run = runs.json[0]["run_id"].as_str().unwrap().to_owned();
    let copy = server
        .send(
            "POST",
            &format!("/threads/{thread}/copy"),
            "user1-token",
            Value::Null,
        )
        .await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.text);
    let copy = copy.json["thread_id"].as_str().unwrap().to_owned();
    let history = |id: String| {
        let server = &server;
        async move {
            server
                .send(
                    "GET",
                    &format!("/threads/{id}/history?limit=100"),
                    "user1-token",
                    Value::Null,
                )
                .await
                .json
        }
    };
    let before = history(copy.clone()).await;
    assert!(!before.as_array().unwrap().is_empty(), "{before}");

    let deleted = server
        .send(
            "DELETE",
            &format!("/threads/{thread}/runs/{run}"),
            "user1-token",
            Value::Null,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(history(thread.clone()).await, json!([]));
    assert_eq!(history(copy.clone()).await, before);
    let state = server
        .send(
            "GET",
            &format!("/threads/{copy}/state"),
            "user1-token",
            Value::Null,
        )
        .await;
    assert_eq!(state.json["values"], values);
}

// --- 6. a copy is a thread creation ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_goes_through_the_threads_create_handler() {
    let server = server("fixture_sharing");
    let thread = server
        .new_thread("alice", json!({"shared_with": ["bob", "guest"]}))
        .await;
    let path = format!("/threads/{thread}/copy");
    // The guest may read the thread but not create one.
    let refused = server.send("POST", &path, "guest", Value::Null).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json["detail"], "Guests cannot create threads");
    let count = server
        .send("POST", "/threads/count", "alice", json!({}))
        .await;
    assert_eq!(count.json, 1);
    // Bob's copy is his, as the handler stamps it.
    let copy = server.send("POST", &path, "bob", Value::Null).await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.text);
    assert_eq!(copy.json["metadata"]["owner"], "bob", "{}", copy.text);
    let copy = copy.json["thread_id"].as_str().unwrap().to_owned();
    let get = |token: &'static str| {
        let (server, copy) = (&server, copy.clone());
        async move {
            server
                .send("GET", &format!("/threads/{copy}"), token, Value::Null)
                .await
                .status
        }
    };
    assert_eq!(get("bob").await, StatusCode::OK);
    assert_eq!(get("alice").await, StatusCode::NOT_FOUND);
}

// --- 7. configurable.user_id is the caller's identity ---------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurable_user_id_is_always_the_callers_identity() {
    let server = server("reference_auth");
    for spoof in [
        json!({"config": {"configurable": {"user_id": "user2"}}}),
        json!({"context": {"user_id": "user2"}}),
    ] {
        let thread = server.new_thread("user1-token", json!({})).await;
        server
            .run_to_end(&thread, "user1-token", "hi", spoof.clone())
            .await;
        let runs = server
            .send(
                "GET",
                &format!("/threads/{thread}/runs"),
                "user1-token",
                Value::Null,
            )
            .await;
        let kwargs = &runs.json[0]["kwargs"];
        assert_eq!(
            kwargs["config"]["configurable"]["user_id"], "user1",
            "{spoof}: {kwargs}"
        );
        assert_ne!(kwargs["context"]["user_id"], "user2", "{spoof}: {kwargs}");
        let history = server
            .send(
                "GET",
                &format!("/threads/{thread}/history?limit=100"),
                "user1-token",
                Value::Null,
            )
            .await;
        let checkpoints = history.json.as_array().unwrap();
        assert!(!checkpoints.is_empty());
        for checkpoint in checkpoints {
            assert_eq!(
                checkpoint["metadata"]["user_id"], "user1",
                "{spoof}: {checkpoint}"
            );
        }
    }
    // A cron keeps no client user_id for the runs it will create.
    let cron = server
        .send(
            "POST",
            "/runs/crons",
            "user1-token",
            json!({"assistant_id": "agent", "schedule": "0 0 1 1 *",
                   "config": {"configurable": {"user_id": "user2"}},
                   "context": {"user_id": "user2"}}),
        )
        .await;
    assert_eq!(cron.status, StatusCode::OK, "{}", cron.text);
    let payload = &cron.json["payload"];
    assert_ne!(
        payload["config"]["configurable"]["user_id"], "user2",
        "{payload}"
    );
    assert_ne!(payload["context"]["user_id"], "user2", "{payload}");
}

// --- 8. store filters scope every store operation --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_filter_scopes_get_put_delete_and_namespaces_as_it_scopes_search() {
    let server = server("fixture_sharing");
    let put = |token: &'static str, key: &'static str, value: Value| {
        let server = &server;
        async move {
            server
                .send(
                    "PUT",
                    "/store/items",
                    token,
                    json!({"namespace": ["shared", "docs"], "key": key, "value": value}),
                )
                .await
        }
    };
    let get = |token: &'static str, key: &'static str| {
        let server = &server;
        async move {
            server
                .send(
                    "GET",
                    &format!("/store/items?namespace=shared.docs&key={key}"),
                    token,
                    Value::Null,
                )
                .await
        }
    };
    let namespaces = |token: &'static str| {
        let server = &server;
        async move {
            server
                .send("POST", "/store/namespaces", token, json!({}))
                .await
                .json["namespaces"]
                .clone()
        }
    };
    let stored = put("alice", "k", json!({"text": "alice's"})).await;
    assert_eq!(stored.status, StatusCode::NO_CONTENT, "{}", stored.text);
    let own = get("alice", "k").await;
    assert_eq!(
        own.json["value"],
        json!({"text": "alice's", "owner": "alice"})
    );

    // Bob's get sees nothing, as for a missing item.
    let theirs = get("bob", "k").await;
    assert_eq!(
        (theirs.status, &theirs.json),
        (StatusCode::OK, &Value::Null)
    );
    // Bob cannot overwrite Alice's item, nor write one that would be hers.
    let overwrite = put("bob", "k", json!({"text": "bob's"})).await;
    assert_eq!(
        overwrite.status,
        StatusCode::FORBIDDEN,
        "{}",
        overwrite.text
    );
    let forged = put("bob", "k2", json!({"text": "forged", "owner": "alice"})).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert_eq!(get("alice", "k2").await.json, Value::Null);
    // Bob's delete deletes nothing (and answers as for a missing item).
    let delete = server
        .send(
            "DELETE",
            "/store/items",
            "bob",
            json!({"namespace": ["shared", "docs"], "key": "k"}),
        )
        .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT, "{}", delete.text);
    assert_eq!(get("alice", "k").await.json["value"]["text"], "alice's");
    // Namespaces: only those holding an item of the caller's.
    assert_eq!(namespaces("bob").await, json!([]));
    assert_eq!(namespaces("alice").await, json!([["shared", "docs"]]));
    let stored = put("bob", "mine", json!({"text": "bob's"})).await;
    assert_eq!(stored.status, StatusCode::NO_CONTENT, "{}", stored.text);
    assert_eq!(namespaces("bob").await, json!([["shared", "docs"]]));
    assert_eq!(get("bob", "mine").await.json["value"]["owner"], "bob");
    let search = server
        .send("POST", "/store/items/search", "bob", json!({}))
        .await;
    let keys: Vec<&Value> = search.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(keys, [&json!("mine")]);
}

// --- 9. system assistants are the server's ----------------------------------------

#[tokio::test]
async fn a_client_cannot_claim_to_be_the_system() {
    let server = server("reference_auth");
    let reply = server
        .send(
            "POST",
            "/assistants",
            "admin-token",
            json!({"graph_id": "agent", "metadata": {"created_by": "system"}}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("created_by"),
        "{}",
        reply.text
    );
    let created = server
        .send(
            "POST",
            "/assistants",
            "admin-token",
            json!({"graph_id": "agent"}),
        )
        .await;
    let id = created.json["assistant_id"].as_str().unwrap();
    let reply = server
        .send(
            "PATCH",
            &format!("/assistants/{id}"),
            "admin-token",
            json!({"metadata": {"created_by": "system"}}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_row_squatting_a_system_id_is_replaced_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let start = |graphs: &[&str]| {
        let config = config(graphs);
        let state = warden::storage::wait(AppState::new(&config, None, storage.clone())).unwrap();
        Client::router(router(Arc::new(state)))
    };
    let later = system_assistant_id("later");
    let agent = system_assistant_id("agent");
    // Before the graph `later` is served, a client plants an assistant at
    // its system id, and edits the system assistant of `agent`.
    let app = start(&["agent"]);
    let planted = app
        .post(
            "/assistants",
            json!({"assistant_id": later, "graph_id": "agent",
                   "config": {"configurable": {"planted": true}}}),
        )
        .await;
    assert_eq!(planted.status, StatusCode::OK, "{}", planted.text);
    let edited = app
        .patch(
            &format!("/assistants/{agent}"),
            json!({"config": {"configurable": {"tuned": true}}}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);

    let app = start(&["agent", "later"]);
    let reply = app.get(&format!("/assistants/{later}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["graph_id"], "later", "{}", reply.text);
    assert_eq!(reply.json["config"], json!({}), "{}", reply.text);
    assert_eq!(reply.json["metadata"]["created_by"], "system");
    // The server's own assistant keeps what an authorized user made of it.
    let reply = app.get(&format!("/assistants/{agent}")).await;
    assert_eq!(
        reply.json["config"]["configurable"]["tuned"], true,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn rows_from_before_the_servers_marker_are_adopted_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let (agent, later) = (system_assistant_id("agent"), system_assistant_id("later"));
    AppState::new(&config(&["agent"]), None, storage.clone())
        .await
        .unwrap();
    let tuned = warden::storage::AssistantPatch {
        config: Some(json!({"configurable": {"tuned": true}})),
        ..Default::default()
    };
    storage.update_assistant(agent, None, &tuned).await.unwrap();
    // A squatter of the old days claimed to be the system.
    let mut squatter = storage.assistant(agent, None).await.unwrap().unwrap();
    squatter.assistant_id = later;
    squatter.config = json!({"configurable": {"planted": true}});
    assert!(storage.insert_assistant(&squatter).await.unwrap());
    // As a database written before the marker: no row is marked.
    let db = rusqlite::Connection::open(dir.path().join("warden.db")).unwrap();
    db.execute("UPDATE assistants SET server_owned = 0", [])
        .unwrap();

    AppState::new(&config(&["agent", "later"]), None, storage.clone())
        .await
        .unwrap();
    let agent_row = storage.assistant(agent, None).await.unwrap().unwrap();
    assert_eq!(agent_row.config["configurable"]["tuned"], true);
    let later_row = storage.assistant(later, None).await.unwrap().unwrap();
    assert_eq!(
        (later_row.graph_id.as_str(), &later_row.config),
        ("later", &json!({}))
    );
    assert!(storage.is_system_assistant(agent).await.unwrap());
    assert!(storage.is_system_assistant(later).await.unwrap());
}
