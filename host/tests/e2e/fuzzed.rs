//! Bad input that fuzzing (schemathesis over `/openapi.json`, `tests/fuzz`)
//! found: each case answered a 500; now a clear answer.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, unhurried_plugin};

/// A server with the reference policy, its deadline unhurried: these
/// tests are about answers, not time, and the machine may be busy.
fn reference_app() -> TestServer {
    TestServer::new(Some(unhurried_plugin("reference_auth")))
}

/// Metadata and values keys are literal object keys, whatever they hold
/// (as in LangGraph's JSONB containment): an empty key, a quote, a
/// backslash, a dot, a control character.
#[tokio::test]
async fn filter_keys_with_any_characters_match_literally() {
    let app = reference_app();
    let odd = ["", "\"", "'", "\\", "a.b", "a[0]", "$", "\n", "\u{1}", "é"];
    let metadata: serde_json::Map<String, Value> =
        odd.iter().map(|k| ((*k).to_owned(), json!(true))).collect();
    let created = app
        .user("user1-token")
        .send("POST", "/threads", json!({"metadata": metadata}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    app.user("user1-token")
        .send("POST", "/threads", json!({"metadata": {"other": true}}))
        .await;
    for key in odd {
        let found = app
            .user("user1-token")
            .send("POST", "/threads/search", json!({"metadata": {key: true}}))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{key:?}: {}", found.text);
        let ids: Vec<&Value> = found
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["thread_id"])
            .collect();
        assert_eq!(ids, [&created.json["thread_id"]], "{key:?}");
        let other = app
            .user("user1-token")
            .send("POST", "/threads/count", json!({"metadata": {key: false}}))
            .await;
        assert_eq!(
            (other.status, other.json),
            (StatusCode::OK, json!(0)),
            "{key:?}"
        );
    }
    // The three requests schemathesis found.
    for (path, body) in [
        ("/threads/count", json!({"values": {"": true}})),
        ("/threads/search", json!({"metadata": {"\"": 0}})),
        ("/runs/crons/search", json!({"metadata": {"": null}})),
    ] {
        let reply = app
            .user("user1-token")
            .send("POST", path, body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{path} {body}: {}",
            reply.text
        );
    }
}

/// SQLite reads a JSON key up to a U+0000 when it looks a path up: a thread
/// of user2's created with `{"owner\u0000": "user1"}` (the plugin then
/// stamps `owner: user2` after it) was user1's to list, read and delete.
/// Such keys are refused, in documents and in filters.
#[tokio::test]
async fn a_key_with_u0000_cannot_pose_as_the_owner_stamp() {
    let app = reference_app();
    let detail = "Unsupported key in metadata: \"owner\\u0000\": \
                  a key cannot contain the character U+0000";
    let planted = app
        .user("user2-token")
        .send(
            "POST",
            "/threads",
            json!({"metadata": {"owner\u{0}": "user1"}}),
        )
        .await;
    assert_eq!(
        (planted.status, planted.json),
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": detail}))
    );
    let seen = app
        .user("user1-token")
        .send("POST", "/threads/search", json!({}))
        .await;
    assert_eq!(seen.json, json!([]));

    let own = app
        .user("user2-token")
        .send("POST", "/threads", json!({}))
        .await;
    let id = own.json["thread_id"].as_str().unwrap();
    let patched = app
        .user("user2-token")
        .send(
            "PATCH",
            &format!("/threads/{id}"),
            json!({"metadata": {"owner\u{0}": "user1"}}),
        )
        .await;
    assert_eq!(
        patched.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        patched.text
    );
    let cron = app.user("user2-token").send("POST", "/runs/crons", json!({"assistant_id": "agent", "schedule": "0 0 * * *", "metadata": {"owner\u{0}": "user1"}}))
    .await;
    assert_eq!(
        cron.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        cron.text
    );
    let item = app
        .user("user2-token")
        .send(
            "PUT",
            "/store/items",
            json!({"namespace": ["user2"], "key": "k", "value": {"owner\u{0}": "user1"}}),
        )
        .await;
    assert_eq!(
        item.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        item.text
    );
    // In a client's filter, the key is named.
    let search = app
        .user("user2-token")
        .send(
            "POST",
            "/threads/search",
            json!({"metadata": {"a\u{0}": 1}}),
        )
        .await;
    assert_eq!(
        (search.status, search.json),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "Unsupported filter key: \"a\\u0000\": a key cannot contain the character U+0000"})
        )
    );
}

/// A client's filter is bounded: SQLite refuses an expression deeper than
/// 1000, which a filter of 1000 keys was (a 500).
#[tokio::test]
async fn a_filter_too_large_is_a_422() {
    let app = reference_app();
    let many: serde_json::Map<String, Value> =
        (0..1000).map(|i| (format!("k{i}"), json!(i))).collect();
    let items: Vec<Value> = (0..1000).map(Value::from).collect();
    for (path, body) in [
        ("/threads/search", json!({"metadata": many})),
        ("/threads/count", json!({"values": many})),
        ("/assistants/search", json!({"metadata": many})),
        ("/runs/crons/search", json!({"metadata": many})),
        (
            "/store/items/search",
            json!({"namespace_prefix": ["user1"], "filter": {"tags": {"$contains": items}}}),
        ),
    ] {
        let reply = app.user("user1-token").send("POST", path, body).await;
        assert_eq!(
            (reply.status, reply.json["detail"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Filter too large: 1000 conditions (at most 100)")
            ),
            "{path}"
        );
    }
}

/// SQLite's LIMIT and OFFSET are 64-bit signed and it binds at most 32766
/// parameters: a larger page (the store and the runs list take any `u64`)
/// or 40 000 thread ids were a 500 (with a body limit that lets 1.6 MB
/// of ids through).
#[tokio::test]
async fn pages_past_sqlites_range_and_many_ids_are_answered() {
    let limits = warden::config::LimitsConfig {
        body_kib: 4096,
        ..Default::default()
    };
    let app = TestServer::builder()
        .declare("agent")
        .auth(unhurried_plugin("reference_auth"))
        .limits(limits)
        .build();
    let own = app
        .user("user1-token")
        .send("POST", "/threads", json!({}))
        .await;
    let id = own.json["thread_id"].as_str().unwrap().to_owned();
    app.user("user1-token")
        .send(
            "PUT",
            "/store/items",
            json!({"namespace": ["user1"], "key": "k", "value": {"a": 1}}),
        )
        .await;
    let mut ids: Vec<Value> = (0..40_000).map(|_| json!(uuid::Uuid::now_v7())).collect();
    ids.push(json!(id));
    let cases = [
        (
            "POST",
            "/store/items/search".to_owned(),
            json!({"namespace_prefix": ["user1"], "limit": u64::MAX}),
            1,
        ),
        (
            "POST",
            "/store/items/search".to_owned(),
            json!({"namespace_prefix": ["user1"], "offset": u64::MAX}),
            0,
        ),
        (
            "GET",
            format!("/threads/{id}/runs?offset={}", u64::MAX),
            Value::Null,
            0,
        ),
        ("POST", "/threads/search".to_owned(), json!({"ids": ids}), 1),
    ];
    for (method, path, body, found) in cases {
        let reply = app.user("user1-token").send(method, &path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {}",
            reply.text
        );
        let items = reply.json.get("items").unwrap_or(&reply.json);
        assert_eq!(
            items.as_array().map(Vec::len),
            Some(found),
            "{method} {path}: {}",
            reply.text
        );
    }
}
