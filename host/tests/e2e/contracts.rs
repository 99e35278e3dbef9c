//! Both `warden:auth` contract versions load side by side: a plugin built
//! against 0.1.0 (`fixture_contract_v0_1`, raw `wit-bindgen`, no SDK) keeps
//! working beside 0.2.0 ones (every SDK-built plugin), with the same
//! observable policy. Likewise a graph built against `warden:graph@0.1.0`
//! (`fixture_graph_v0_1`, raw `wit-bindgen`, no SDK) keeps being served
//! whatever contract `warden-graph` moves to.

use axum::http::StatusCode;
use serde_json::json;
use warden::types::{Filter, HttpError, Outcome, ThreadAction, User};

use crate::support::{TestServer, bearer, plugin, unhurried_plugin};

/// `(contract, 401 detail for a bad token, user1, the threads.create verdict
/// on a value whose owner is spoofed)` for one plugin.
fn answers(crate_name: &str) -> (String, HttpError, User, Outcome, serde_json::Value) {
    let plugin = plugin(crate_name);
    let mut session = plugin.session().unwrap();
    let refused = session
        .authenticate(&bearer("nobody-token"))
        .unwrap()
        .unwrap_err();
    let mut session = plugin.session().unwrap();
    let user = session
        .authenticate(&bearer("user1-token"))
        .unwrap()
        .unwrap();
    let verdict = session
        .authorize(
            &user,
            ThreadAction::Create,
            &json!({"thread_id": "t", "metadata": {"owner": "user2", "topic": "x"}}),
        )
        .unwrap()
        .unwrap();
    (
        plugin.info().contract.clone(),
        refused,
        user,
        verdict.outcome,
        verdict.value.expect("the owner is stamped"),
    )
}

#[test]
fn a_0_1_plugin_loads_beside_0_2_ones_and_decides_alike() {
    let (old_contract, old_refused, old_user, old_outcome, old_value) =
        answers("fixture_contract_v0_1");
    let (new_contract, new_refused, new_user, new_outcome, new_value) = answers("reference_auth");
    assert_eq!(
        (old_contract.as_str(), new_contract.as_str()),
        ("0.1.0", "0.2.0")
    );
    for (refused, user, outcome, value) in [
        (old_refused, old_user, old_outcome, old_value),
        (new_refused, new_user, new_outcome, new_value),
    ] {
        assert_eq!(refused.status, 401);
        assert_eq!(user.identity, "user1");
        assert_eq!(outcome, Outcome::Filter(Filter::eq("owner", "user1")));
        assert_eq!(
            value,
            json!({"thread_id": "t", "metadata": {"owner": "user1", "topic": "x"}})
        );
    }
}

#[test]
fn a_0_2_plugin_declares_the_headers_it_reads() {
    let reference = plugin("reference_auth");
    assert_eq!(
        reference.declared_headers(),
        Some(&["authorization".to_owned()][..])
    );
    // The 0.1.0 contract has no declaration: every header is sent.
    assert_eq!(plugin("fixture_contract_v0_1").declared_headers(), None);
}

#[test]
fn a_0_2_session_serves_a_user_it_did_not_authenticate() {
    // An `auth.cache` hit or a run's stored user: the host makes the
    // guest's session with the session constructor.
    let reference = plugin("reference_auth");
    let admin = User::new("admin").with_permissions(["admin", "threads:create"]);
    let mut session = reference.session().unwrap();
    let verdict = session
        .authorize(&admin, ThreadAction::Create, &json!({"thread_id": "t"}))
        .unwrap()
        .unwrap();
    assert_eq!(
        verdict.outcome,
        Outcome::Filter(Filter::eq("owner", "admin"))
    );
    // A second user on the same instance gets a session of its own.
    let reader = User::new("reader").with_permissions(["threads:read"]);
    let denied = session
        .authorize(&reader, ThreadAction::Create, &json!({"thread_id": "t"}))
        .unwrap()
        .unwrap_err();
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn a_server_on_a_0_1_plugin_keeps_tenants_apart() {
    let server = TestServer::builder()
        .auth(plugin("fixture_contract_v0_1"))
        .build();
    let user1 = server.user("user1-token");
    let user2 = server.user("user2-token");
    let created = user1
        .post("/threads", json!({"metadata": {"owner": "user2"}}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json);
    assert_eq!(created.json["metadata"]["owner"], "user1");
    let id = created.json["thread_id"].as_str().unwrap();
    let theirs = user2.get(&format!("/threads/{id}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let found = user2.post("/threads/search", json!({})).await;
    assert_eq!(found.json, json!([]));
    let anonymous = server.client().get(&format!("/threads/{id}")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_built_against_graph_0_1_0_keeps_running() {
    let server = TestServer::builder()
        .auth(unhurried_plugin("reference_auth"))
        .graph("old", "fixture_graph_v0_1")
        .build();
    let user1 = server.user("user1-token");

    let thread = user1.create_thread(json!({})).await.thread_id;
    let values = user1
        .wait_run(
            &thread,
            json!({"assistant_id": "old", "input": {"text": "hi"}}),
        )
        .await;
    assert_eq!(values, json!({"text": "hi", "echoed": "hi"}));
    let state = user1.get(&format!("/threads/{thread}/state")).await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.text);
    assert_eq!(state.json["next"], json!([]), "{}", state.text);
    assert_eq!(state.json["values"], values, "{}", state.text);

    // Served as a 0.1.0 graph, described as it describes itself.
    let info = server.client().get("/info").await;
    let graphs: Vec<_> = info.json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "graph")
        .collect();
    assert_eq!(graphs.len(), 1, "{}", info.text);
    assert_eq!(graphs[0]["contract"], "warden:graph@0.1.0", "{}", info.text);
    assert!(graphs[0]["last_reload_error"].is_null(), "{}", info.text);
    let system = warden::server::system_assistant_id("old");
    assert_eq!(user1.assistant(&system.to_string()).await.name, "echo-v0-1");
    let drawing = user1.get(&format!("/assistants/{system}/graph")).await;
    assert_eq!(drawing.status, StatusCode::OK, "{}", drawing.text);
    assert_eq!(
        drawing.json["edges"],
        json!([
            {"source": "__start__", "target": "echo"},
            {"source": "echo", "target": "__end__"},
        ])
    );
}
