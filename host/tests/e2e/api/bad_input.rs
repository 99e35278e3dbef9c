//! Bad input is a clear 4xx naming what is wrong, never a 500.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::reference;

#[tokio::test]
async fn malformed_ids_and_fields_are_a_422_with_a_detail() {
    let server = reference();
    let user1 = server.user("user1-token");
    let cases = [
        (
            "GET",
            "/threads/not-a-uuid",
            Value::Null,
            json!({"detail": "Invalid thread ID: must be a UUID"}),
        ),
        (
            "PATCH",
            "/runs/crons/42",
            json!({"enabled": true}),
            json!({"detail": "Invalid cron ID: must be a UUID"}),
        ),
        (
            "POST",
            "/threads",
            json!({"thread_id": "nope"}),
            Value::Null,
        ),
        ("POST", "/threads", json!({"metadata": 5}), Value::Null),
        (
            "POST",
            "/threads",
            json!({"if_exists": "sometimes"}),
            Value::Null,
        ),
    ];
    for (method, path, body, expected) in cases {
        let reply = user1.send(method, path, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body}: {}",
            reply.text
        );
        assert!(
            reply.json["detail"].is_string(),
            "{method} {path}: {}",
            reply.text
        );
        if !expected.is_null() {
            assert_eq!(reply.json, expected);
        }
    }
}

#[tokio::test]
async fn an_assistant_with_both_configurable_and_context_is_a_400() {
    let server = reference();
    let both = server
        .user("admin-token")
        .post(
            "/assistants",
            json!({"graph_id": "agent", "config": {"configurable": {"a": 1}}, "context": {"a": 1}}),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn malformed_json_is_named() {
    let server = reference();
    let reply = server
        .user("user1-token")
        .request("POST", "/threads")
        .text("{oops".into())
        .await;
    assert_eq!(
        reply.json,
        json!({"detail": "Invalid JSON in request body"})
    );
}

#[tokio::test]
async fn a_body_past_its_routes_limit_is_refused_before_it_is_parsed() {
    let server = reference();
    let huge = json!({"metadata": {"blob": "y".repeat(12 << 20)}});
    let reply = server.user("user1-token").post("/threads", huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.detail().contains("limits.body_kib"), "{}", reply.text);
}

#[tokio::test]
async fn a_value_the_plugin_could_only_choke_on_is_too_large_not_a_500() {
    // A run's input, within its route's larger limit.
    let server = reference();
    let huge = json!({"assistant_id": "agent", "input": {"blob": "y".repeat(12 << 20)}});
    let path = format!("/threads/{}/runs", Uuid::now_v7());
    let reply = server.user("user1-token").post(&path, huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.detail().contains("32 MiB"), "{}", reply.text);
}
