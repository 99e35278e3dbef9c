//! The store: under the reference policy, a caller's namespaces start with
//! their identity.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::reference;
use crate::support::Client;

const THEME: &str = "/store/items?namespace=user1.prefs&key=theme";

/// user1's item `theme` in `user1.prefs`.
async fn theme(user1: &Client) {
    user1
        .put_item(&["user1", "prefs"], "theme", json!({"dark": true}))
        .await;
}

#[tokio::test]
async fn the_owner_puts_and_gets_an_item() {
    let server = reference();
    let user1 = server.user("user1-token");
    theme(&user1).await;
    let item = user1.item(&["user1", "prefs"], "theme").await.unwrap();
    assert_eq!(item.value, json!({"dark": true}));
    assert_eq!(item.namespace, ["user1", "prefs"]);
}

#[tokio::test]
async fn another_users_namespace_is_forbidden() {
    let server = reference();
    theme(&server.user("user1-token")).await;
    let foreign = server.user("user2-token").get(THEME).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_missing_item_is_null_and_a_get_needs_a_key() {
    let server = reference();
    let user1 = server.user("user1-token");
    theme(&user1).await;
    let missing = user1
        .get("/store/items?namespace=user1.prefs&key=nope")
        .await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (StatusCode::OK, "null")
    );
    let no_key = user1.get("/store/items?namespace=user1.prefs").await;
    assert_eq!(
        (no_key.status, no_key.json),
        (StatusCode::BAD_REQUEST, json!({"error": "Key is required"}))
    );
}

#[tokio::test]
async fn labels_have_no_periods_and_values_are_objects() {
    let server = reference();
    let user1 = server.user("user1-token");
    let dotted = user1
        .put(
            "/store/items",
            json!({"namespace": ["user1", "a.b"], "key": "k", "value": {}}),
        )
        .await;
    assert_eq!(dotted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        dotted.text,
        "Namespace label 'a.b' must be a non-empty string without periods"
    );
    let not_object = user1
        .put(
            "/store/items",
            json!({"namespace": ["user1"], "key": "k", "value": [1]}),
        )
        .await;
    assert_eq!(not_object.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn search_filters_on_the_value_under_a_prefix() {
    let server = reference();
    let user1 = server.user("user1-token");
    theme(&user1).await;
    user1
        .put_item(&["user1", "notes"], "n1", json!({"tag": "a"}))
        .await;
    let found = user1
        .post(
            "/store/items/search",
            json!({"namespace_prefix": ["user1"], "filter": {"tag": "a"}}),
        )
        .await;
    let items = found.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["key"], "n1");
    assert_eq!(items[0]["score"], Value::Null);
}

#[tokio::test]
async fn namespaces_are_listed_under_the_callers_prefix_to_a_depth() {
    let server = reference();
    let user1 = server.user("user1-token");
    theme(&user1).await;
    user1
        .put_item(&["user1", "notes"], "n1", json!({"tag": "a"}))
        .await;
    let spaces = user1
        .post("/store/namespaces", json!({"prefix": ["user1"]}))
        .await;
    assert_eq!(
        spaces.json,
        json!({"namespaces": [["user1", "notes"], ["user1", "prefs"]]})
    );
    let shallow = user1
        .post(
            "/store/namespaces",
            json!({"prefix": ["user1"], "max_depth": 1}),
        )
        .await;
    assert_eq!(shallow.json, json!({"namespaces": [["user1"]]}));
    let no_prefix = user1.post("/store/namespaces", json!({})).await;
    assert_eq!(
        no_prefix.status,
        StatusCode::FORBIDDEN,
        "the handler sees namespace None"
    );
}

#[tokio::test]
async fn a_deleted_item_is_null() {
    let server = reference();
    let user1 = server.user("user1-token");
    theme(&user1).await;
    let deleted = user1
        .request("DELETE", "/store/items")
        .json(json!({"namespace": ["user1", "prefs"], "key": "theme"}))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = user1.get(THEME).await;
    assert_eq!(gone.text, "null");
    assert_eq!(user1.item(&["user1", "prefs"], "theme").await, None);
}
