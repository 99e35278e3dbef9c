//! `warden serve` on PostgreSQL: chosen by `--database-url` or
//! `DATABASE_URI` (the flag wins), the reference policy's owner isolation
//! holding on it, and a database it cannot use refused at start-up with a
//! message naming it.

use std::path::Path;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ServerProcess, TestDatabase, component};

/// A project serving the reference example's auth plugin, no graph.
fn reference_project(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("langgraph.json");
    let auth = component("reference_auth").display().to_string();
    let text = json!({"graphs": {}, "auth": {"path": auth, "timeout_ms": 30000}});
    std::fs::write(&config, text.to_string()).unwrap();
    config
}

fn ids(reply: &Value) -> Vec<Value> {
    let mut ids: Vec<Value> = reply
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["thread_id"].clone())
        .collect();
    ids.sort_by_key(Value::to_string);
    ids
}

#[tokio::test]
async fn serve_keeps_its_records_in_postgres_and_isolates_owners() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = reference_project(dir.path());
    let server =
        ServerProcess::start_on_database(&config, &dir.path().join("data"), &database.uri())
            .expect("warden starts on PostgreSQL");
    let info = server.client().get("/info").await;
    assert_eq!(info.json["storage"], "postgres", "{}", info.text);

    let (user1, user2) = (server.user("user1-token"), server.user("user2-token"));
    let mut created = Vec::new();
    for (user, topic) in [(&user1, "a"), (&user1, "b"), (&user2, "a")] {
        let reply = user
            .post(
                "/threads",
                json!({"metadata": {"topic": topic, "note": "o'brien \"ü\""}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        created.push(reply.json);
    }
    let id = |n: usize| created[n]["thread_id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["metadata"]["owner"], "user1");
    assert_eq!(created[2]["metadata"]["owner"], "user2");

    // Read: one's own thread, not the other's.
    let mine = user1.get(&format!("/threads/{}", id(0))).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.json["metadata"]["note"], "o'brien \"ü\"");
    let theirs = user1.get(&format!("/threads/{}", id(2))).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);

    // Search and count: one's own threads only, with the client's filter.
    let all = user1.post("/threads/search", json!({})).await;
    assert_eq!(ids(&all.json), ids(&json!([created[0], created[1]])));
    let topic_a = user1
        .post("/threads/search", json!({"metadata": {"topic": "a"}}))
        .await;
    assert_eq!(ids(&topic_a.json), ids(&json!([created[0]])));
    let theirs = user2.post("/threads/search", json!({})).await;
    assert_eq!(ids(&theirs.json), ids(&json!([created[2]])));
    let count = user2.post("/threads/count", json!({})).await;
    assert_eq!(count.json, json!(1), "{}", count.text);

    // Neither patches nor deletes reach the other's thread.
    let patch = user2
        .patch(
            &format!("/threads/{}", id(0)),
            json!({"metadata": {"x": 1}}),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "{}", patch.text);
    let delete = user2.delete(&format!("/threads/{}", id(0))).await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND, "{}", delete.text);
    assert_eq!(
        user1.get(&format!("/threads/{}", id(0))).await.status,
        StatusCode::OK
    );
}

#[test]
fn serve_refuses_a_database_it_cannot_use_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = reference_project(dir.path());
    let data = dir.path().join("data");
    let refused = |uri: &str| match ServerProcess::start_on_database(&config, &data, uri) {
        Ok(_) => panic!("warden started on {uri}"),
        Err(log) => log,
    };
    let log = refused("mysql://root@127.0.0.1/test");
    assert!(log.contains("not a PostgreSQL database URI"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Nothing listens on the discard port; the password is not shown.
    let log = refused("postgres://postgres:secret@127.0.0.1:9/postgres");
    assert!(
        log.contains("opening the PostgreSQL database postgres://postgres:***@127.0.0.1:9/postgres (--database-url)"),
        "{log}"
    );
    assert!(!log.contains("secret"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn database_uri_selects_postgres_and_the_flag_wins_over_it() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = reference_project(dir.path());
    let data = dir.path().join("data");
    let from_env = [(
        "DATABASE_URI",
        Path::new(database.uri().as_str()).to_owned(),
    )];
    let env: Vec<(&str, &Path)> = from_env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let server = ServerProcess::start_with(&["serve"], &config, &data, &env).expect("starts");
    let info = server.client().get("/info").await;
    assert_eq!(info.json["storage"], "postgres", "{}", info.text);
    drop(server);
    // A bad DATABASE_URI does not matter when the flag names the database.
    let bad = [("DATABASE_URI", Path::new("postgres://nobody@127.0.0.1:9/x"))];
    let args = ["serve", "--database-url", &database.uri()].map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with(&args, &config, &data, &bad).expect("starts");
    let info = server.client().get("/info").await;
    assert_eq!(info.json["storage"], "postgres", "{}", info.text);
    // Without either, SQLite in the data directory.
    drop(server);
    let server = ServerProcess::start(&config, &data).expect("starts");
    let info = server.client().get("/info").await;
    assert_eq!(info.json["storage"], "sqlite", "{}", info.text);
}
