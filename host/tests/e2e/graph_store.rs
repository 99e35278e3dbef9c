//! The store from a node (`warden:graph/store`): every call is the run's
//! user's, decided by the auth plugin's `store` handlers exactly as the
//! same call over `/store/...` (LangGraph lets graph code past them).
//! Driven through the `memory` fixture under the reference policy, whose
//! store handler refuses a namespace that does not start with the caller.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, TestServer, unhurried_plugin};

fn server() -> TestServer {
    TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("memory", "memory_graph")
        .build()
}

async fn remember(user: &Client, input: Value) -> Value {
    let thread = user.create_thread(json!({})).await.thread_id;
    user.wait_run(&thread, json!({"assistant_id": "memory", "input": input}))
        .await
}

async fn item(user: &Client, namespace: &str) -> (StatusCode, Value) {
    let reply = user
        .get(&format!("/store/items?namespace={namespace}&key=last"))
        .await;
    (reply.status, reply.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_notes_in_its_users_store_and_reads_them_back() {
    let server = server();
    let user1 = server.user("user1-token");
    let values = remember(&user1, json!({"note": "hi"})).await;
    assert_eq!(values["refused"], Value::Null, "{values}");
    assert_eq!(values["found"], json!(["hi"]));
    assert_eq!(values["read"], json!({"text": "hi"}));
    assert_eq!(values["namespaces"], json!([["user1", "notes"]]));

    // The item the run wrote is the user's, over the HTTP API too.
    let (status, found) = item(&user1, "user1.notes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["value"], json!({"text": "hi"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_reach_another_users_namespace() {
    let server = server();
    let user1 = server.user("user1-token");
    let user2 = server.user("user2-token");
    remember(&user1, json!({"note": "mine"})).await;

    // user2's run writes where the policy lets only user1 write: the
    // plugin refuses it, as it refuses user2 over the API.
    let values = remember(
        &user2,
        json!({"note": "pwned", "namespace": ["user1", "notes"]}),
    )
    .await;
    assert_eq!(values["refused"]["status"], 403, "{values}");
    assert!(values.get("found").is_none_or(Value::is_null), "{values}");
    let (status, _) = item(&user2, "user1.notes").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // user1's note is untouched; user2's own namespace is theirs alone.
    let (_, found) = item(&user1, "user1.notes").await;
    assert_eq!(found["value"], json!({"text": "mine"}));
    let values = remember(&user2, json!({"note": "theirs"})).await;
    assert_eq!(values["found"], json!(["theirs"]), "{values}");
    assert_eq!(values["namespaces"], json!([["user2", "notes"]]));
}
