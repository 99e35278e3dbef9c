//! Assistants: every graph's system assistant, written by admin only
//! under the reference policy, versioned.

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{AGENT, reference};
use crate::support::{Assistant, Client, TestServer};

/// The admin's assistant `Helper` of the graph `agent`.
async fn helper(admin: &Client) -> Assistant {
    admin
        .create_assistant(
            json!({"graph_id": "agent", "name": "Helper", "config": {"configurable": {"x": 1}}}),
        )
        .await
}

#[tokio::test]
async fn every_graph_has_a_system_assistant_users_can_read() {
    let server = reference();
    let system = server.user("user1-token").assistant(AGENT).await;
    assert_eq!(system.metadata, json!({"created_by": "system"}));
    assert_eq!(system.graph_id, "agent");
}

#[tokio::test]
async fn only_admin_may_create_or_update_an_assistant() {
    let server = reference();
    let user1 = server.user("user1-token");
    let denied = user1
        .post("/assistants", json!({"graph_id": "agent"}))
        .await;
    assert_eq!(
        (denied.status, denied.json),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Only admin may modify assistants"})
        )
    );
    let id = helper(&server.user("admin-token")).await.assistant_id;
    let refused = user1
        .patch(&format!("/assistants/{id}"), json!({"name": "mine"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_assistant_needs_a_graph_the_server_serves() {
    let server = reference();
    let admin = server.user("admin-token");
    let unknown = admin.post("/assistants", json!({"graph_id": "nope"})).await;
    assert_eq!(
        unknown.json,
        json!({"detail": "Graph 'nope' not found. Expected one of: ['agent']"})
    );
    let missing = admin.post("/assistants", json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_assistant_is_owned_by_its_creator_and_its_configurable_is_its_context() {
    let server = reference();
    let made = helper(&server.user("admin-token")).await;
    assert_eq!(made.metadata, json!({"owner": "admin"}));
    assert_eq!(made.context, json!({"x": 1}));
    assert_eq!(made.version, 1);
}

#[tokio::test]
async fn search_and_count_find_assistants_by_name_and_graph() {
    let server = reference();
    helper(&server.user("admin-token")).await;
    let user1 = server.user("user1-token");
    let found = user1
        .post("/assistants/search", json!({"name": "help"}))
        .await;
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    // The system assistant and the helper.
    let count = user1
        .post("/assistants/count", json!({"graph_id": "agent"}))
        .await;
    assert_eq!(count.json, json!(2));
}

#[tokio::test]
async fn the_servers_configurable_keys_cannot_be_set_by_a_client() {
    let server = reference();
    let spoof = server
        .user("admin-token")
        .create_assistant(json!({"graph_id": "agent",
               "context": {"langgraph_auth_user_id": "root", "__after_seconds__": 1, "k": 1}}))
        .await;
    assert_eq!(spoof.context, json!({"k": 1}));
    assert_eq!(spoof.config["configurable"], json!({"k": 1}));
}

#[tokio::test]
async fn an_update_is_a_new_version() {
    let server = reference();
    let admin = server.user("admin-token");
    let id = helper(&admin).await.assistant_id;
    let patched = admin
        .update_assistant(&id, json!({"metadata": {"tier": "gold"}}))
        .await;
    assert_eq!(patched.version, 2);
    assert_eq!(patched.metadata["tier"], "gold");
}

#[tokio::test]
async fn an_assistant_is_addressed_by_its_uuid_only() {
    let server = reference();
    let by_name = server.user("user1-token").get("/assistants/agent").await;
    assert_eq!(
        by_name.json,
        json!({"detail": "Invalid assistant ID: must be a UUID"})
    );
}

#[tokio::test]
async fn a_deleted_assistant_is_not_found() {
    let server = reference();
    let admin = server.user("admin-token");
    let id = helper(&admin).await.assistant_id;
    let deleted = admin.delete(&format!("/assistants/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = admin.get(&format!("/assistants/{id}")).await;
    assert_eq!(
        (gone.status, gone.json),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
}

/// An assistant at version 2 (`second`, model `large`, stage `two`) whose
/// version 1 was `first` with the model `small`.
async fn two_versions(server: &TestServer) -> String {
    let admin = server.user("admin-token");
    let made = admin
        .create_assistant(
            json!({"graph_id": "agent", "name": "first", "context": {"model": "small"}}),
        )
        .await;
    admin
        .update_assistant(
            &made.assistant_id,
            json!({"name": "second", "context": {"model": "large"}, "metadata": {"stage": "two"}}),
        )
        .await;
    made.assistant_id
}

#[tokio::test]
async fn versions_are_listed_newest_first_each_a_snapshot() {
    let server = reference();
    let id = two_versions(&server).await;
    let versions = format!("/assistants/{id}/versions");
    // Readable by anyone the policy lets read.
    let user1 = server.user("user1-token");
    let listed = user1.post(&versions, json!({})).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let listed: Vec<Assistant> = serde_json::from_value(listed.json).unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|v| (v.version, v.name.as_str(), v.context.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (2, "second", json!({"model": "large"})),
            (1, "first", json!({"model": "small"})),
        ]
    );
    assert_eq!(listed[0].rest.get("updated_at"), None);
    let staged = user1
        .post(&versions, json!({"metadata": {"stage": "two"}}))
        .await;
    assert_eq!(staged.json.as_array().unwrap().len(), 1);
    let second_page = user1
        .post(&versions, json!({"limit": 1, "offset": 1}))
        .await;
    assert_eq!(second_page.json[0]["version"], 1);
}

#[tokio::test]
async fn any_version_can_become_the_latest_and_the_next_update_follows_them_all() {
    let server = reference();
    let id = two_versions(&server).await;
    let latest = format!("/assistants/{id}/latest");
    let refused = server
        .user("user1-token")
        .post(&latest, json!({"version": 1}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Back to version 1: the assistant is that snapshot again.
    let admin = server.user("admin-token");
    let back = admin.post(&latest, json!({"version": 1})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    let back: Assistant = serde_json::from_value(back.json).unwrap();
    assert_eq!(
        (
            back.version,
            back.name.as_str(),
            &back.context,
            &back.metadata
        ),
        (
            1,
            "first",
            &json!({"model": "small"}),
            &json!({"owner": "admin"})
        )
    );
    assert_eq!(admin.assistant(&id).await, back);
    // The next update is a new version after every existing one.
    let third = admin.update_assistant(&id, json!({"name": "third"})).await;
    assert_eq!(third.version, 3);
}

#[tokio::test]
async fn an_unknown_version_or_assistant_is_not_found() {
    let server = reference();
    let id = two_versions(&server).await;
    let admin = server.user("admin-token");
    let latest = format!("/assistants/{id}/latest");
    let missing = admin.post(&latest, json!({"version": 9})).await;
    assert_eq!(
        (missing.status, missing.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Version 9 not found for assistant {id}")})
        )
    );
    let unknown = Uuid::new_v4();
    for path in [
        format!("/assistants/{unknown}/versions"),
        format!("/assistants/{unknown}/latest"),
    ] {
        let gone = admin.post(&path, json!({"version": 1})).await;
        assert_eq!(
            (gone.status, gone.json),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": format!("Assistant {unknown} not found")})
            )
        );
    }
}

#[tokio::test]
async fn setting_the_latest_needs_a_version_and_a_uuid() {
    let server = reference();
    let id = two_versions(&server).await;
    let no_version = server
        .user("admin-token")
        .post(&format!("/assistants/{id}/latest"), json!({}))
        .await;
    assert_eq!(no_version.status, StatusCode::UNPROCESSABLE_ENTITY);
    let by_name = server
        .user("user1-token")
        .post("/assistants/agent/versions", json!({}))
        .await;
    assert_eq!(
        by_name.json,
        json!({"detail": "Invalid assistant ID: must be a UUID"})
    );
    // Nothing changed.
    assert_eq!(server.user("admin-token").assistant(&id).await.version, 2);
}
