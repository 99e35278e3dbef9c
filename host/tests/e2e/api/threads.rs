//! Threads: stamped with their owner by the reference policy, invisible to
//! anyone else, paged, copied and pruned.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::reference;
use crate::support::{TestServer, Thread};

/// user1's thread with the metadata `{"topic": "x"}`.
async fn user1_thread(server: &TestServer) -> Thread {
    server
        .user("user1-token")
        .create_thread(json!({"metadata": {"topic": "x"}}))
        .await
}

#[tokio::test]
async fn a_new_thread_is_stamped_with_its_owner_whatever_the_client_claims() {
    let server = reference();
    let user1 = server.user("user1-token");
    // A spoofed owner is overwritten by the plugin's stamp; reserved keys are dropped.
    let created = user1
        .create_thread(json!({"metadata": {"owner": "user2", "topic": "x", "run_id": "spoof"}}))
        .await;
    assert_eq!(created.metadata, json!({"owner": "user1", "topic": "x"}));
    assert_eq!(created.status, "idle");
    let id = Uuid::parse_str(&created.thread_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(user1.thread(&created.thread_id).await, created);
}

#[tokio::test]
async fn another_users_thread_is_indistinguishable_from_a_missing_one() {
    let server = reference();
    let id = user1_thread(&server).await.thread_id;
    let user2 = server.user("user2-token");
    let theirs = user2.get(&format!("/threads/{id}")).await;
    let random = Uuid::now_v7();
    let missing = user2.get(&format!("/threads/{random}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.text.replace(&id, "ID"),
        missing.text.replace(&random.to_string(), "ID")
    );
    for (method, body) in [
        ("PATCH", json!({"metadata": {"owner": "user2"}})),
        ("DELETE", Value::Null),
    ] {
        let reply = user2.send(method, &format!("/threads/{id}"), body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
    }
    assert_eq!(
        server.user("user1-token").thread(&id).await.metadata["owner"],
        "user1"
    );
}

#[tokio::test]
async fn search_and_count_see_only_the_callers_threads() {
    let server = reference();
    user1_thread(&server).await;
    let user2 = server.user("user2-token");
    let search = user2.post("/threads/search", json!({})).await;
    assert_eq!(search.json, json!([]));
    assert_eq!(search.headers["x-pagination-total"], "0");
    assert_eq!(user2.count_threads(json!({})).await, 0);
    let found = server
        .user("user1-token")
        .search_threads(json!({"metadata": {"topic": "x"}}))
        .await;
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn the_owners_patch_merges_and_the_owner_is_stamped_back() {
    let server = reference();
    let id = user1_thread(&server).await.thread_id;
    let patched = server
        .user("user1-token")
        .patch(
            &format!("/threads/{id}"),
            json!({"metadata": {"owner": "user2", "more": 1}}),
        )
        .await;
    assert_eq!(
        patched.json["metadata"],
        json!({"owner": "user1", "topic": "x", "more": 1})
    );
}

#[tokio::test]
async fn creating_an_existing_id_conflicts_unless_the_caller_may_see_it() {
    let server = reference();
    let id = user1_thread(&server).await.thread_id;
    // An existing id the caller may not see is a conflict, even with do_nothing.
    let clash = server
        .user("user2-token")
        .post(
            "/threads",
            json!({"thread_id": id, "if_exists": "do_nothing"}),
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    let user1 = server.user("user1-token");
    let again = user1
        .create_thread(json!({"thread_id": id, "if_exists": "do_nothing"}))
        .await;
    assert_eq!(again.thread_id, id);
    let raise = user1.post("/threads", json!({"thread_id": id})).await;
    assert_eq!(
        raise.json,
        json!({"detail": format!("Thread with ID {id} already exists")})
    );
}

/// Another user's thread cannot be copied, and the refusal tells nothing:
/// it reads exactly as a thread that does not exist (LangGraph answers 409
/// there, 404 for a missing one: whether an id exists leaks across users).
#[tokio::test]
async fn a_copy_of_someone_elses_thread_reads_as_missing_and_the_owners_keeps_the_metadata() {
    let server = reference();
    let user1 = server.user("user1-token");
    let user2 = server.user("user2-token");
    let id = user1_thread(&server).await.thread_id;
    let patched = user1
        .patch(&format!("/threads/{id}"), json!({"metadata": {"more": 1}}))
        .await;
    let copy = user2
        .post(&format!("/threads/{id}/copy"), Value::Null)
        .await;
    assert_eq!(
        (copy.status, copy.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Thread with ID {id} not found")})
        )
    );
    let nobody = Uuid::new_v4();
    let missing = user2
        .post(&format!("/threads/{nobody}/copy"), Value::Null)
        .await;
    assert_eq!(
        (missing.status, missing.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Thread with ID {nobody} not found")})
        )
    );
    let copy = user1.copy_thread(&id).await;
    assert_eq!(copy.metadata, patched.json["metadata"]);
    assert_ne!(copy.thread_id, id);
}

#[tokio::test]
async fn the_reader_may_not_create_threads() {
    let server = reference();
    let reader = server
        .user("reader-token")
        .post("/threads", json!({}))
        .await;
    assert_eq!(
        (reader.status, reader.json),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Missing permission: threads:create"})
        )
    );
}

#[tokio::test]
async fn a_deleted_thread_is_gone() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = user1_thread(&server).await.thread_id;
    let deleted = user1.delete(&format!("/threads/{id}")).await;
    assert_eq!(
        (deleted.status, deleted.text.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    let gone = user1.get(&format!("/threads/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_pages_with_headers_select_and_sort() {
    let server = reference();
    let user2 = server.user("user2-token");
    for i in 0..5 {
        user2.create_thread(json!({"metadata": {"i": i}})).await;
    }
    let page = user2
        .post(
            "/threads/search",
            json!({"limit": 2, "offset": 1, "sort_by": "created_at", "sort_order": "asc",
                   "select": ["thread_id", "metadata"]}),
        )
        .await;
    assert_eq!(page.headers["x-pagination-total"], "5");
    assert_eq!(page.headers["x-pagination-next"], "3");
    let items = page.json.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["metadata"]["i"], 1);
    assert_eq!(items[0].as_object().unwrap().len(), 2);
    let last = user2
        .post("/threads/search", json!({"limit": 2, "offset": 4}))
        .await;
    assert!(last.headers.get("x-pagination-next").is_none());
}

#[tokio::test]
async fn search_refuses_unknown_fields_and_bad_bounds() {
    let server = reference();
    let user2 = server.user("user2-token");
    for bad in [
        json!({"sort_by": "owner"}),
        json!({"select": ["nope"]}),
        json!({"limit": 0}),
        json!({"status": "odd"}),
    ] {
        let reply = user2.post("/threads/search", bad.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

/// Two threads of user1's and one of user2's.
async fn prune_setup(server: &TestServer) -> (Vec<String>, String) {
    let user1 = server.user("user1-token");
    let mut mine = Vec::new();
    for _ in 0..2 {
        mine.push(user1.create_thread(json!({})).await.thread_id);
    }
    let theirs = server
        .user("user2-token")
        .create_thread(json!({}))
        .await
        .thread_id;
    (mine, theirs)
}

async fn exists(server: &TestServer, id: &str, token: &str) -> bool {
    let reply = server.user(token).get(&format!("/threads/{id}")).await;
    reply.status == StatusCode::OK
}

#[tokio::test]
async fn prune_refuses_the_whole_batch_when_one_thread_is_out_of_scope() {
    let server = reference();
    let (mine, theirs) = prune_setup(&server).await;
    let refused = server
        .user("user1-token")
        .post("/threads/prune", json!({"thread_ids": [mine[0], theirs]}))
        .await;
    assert_eq!(
        (refused.status, refused.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "At least one thread not found or not authorized"})
        )
    );
    assert!(exists(&server, &mine[0], "user1-token").await);
    assert!(exists(&server, &theirs, "user2-token").await);
}

#[tokio::test]
async fn prune_deletes_the_callers_threads_and_only_those() {
    let server = reference();
    let (mine, theirs) = prune_setup(&server).await;
    let pruned = server
        .user("user1-token")
        .post("/threads/prune", json!({"thread_ids": mine}))
        .await;
    assert_eq!(pruned.json, json!({"pruned_count": 2}));
    assert!(!exists(&server, &mine[0], "user1-token").await);
    assert!(!exists(&server, &mine[1], "user1-token").await);
    assert!(exists(&server, &theirs, "user2-token").await);
}

#[tokio::test]
async fn prune_answers_an_empty_list_and_refuses_bad_ids_and_strategies() {
    let server = reference();
    let (_, theirs) = prune_setup(&server).await;
    let cases = [
        (
            json!({"thread_ids": []}),
            StatusCode::OK,
            json!({"pruned_count": 0}),
        ),
        (
            json!({"thread_ids": ["nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "Invalid thread ID: must be a UUID"}),
        ),
        (
            json!({"thread_ids": [theirs], "strategy": "all"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "\"all\" is not one of \"delete\" or \"keep_latest\"\n\n\
                Failed validating \"enum\" in schema[\"properties\"][\"strategy\"]\n\n\
                On instance[\"strategy\"]:\n    \"all\""}),
        ),
    ];
    let user2 = server.user("user2-token");
    for (body, status, reply) in cases {
        let got = user2.post("/threads/prune", body).await;
        assert_eq!((got.status, got.json), (status, reply));
    }
    assert!(exists(&server, &theirs, "user2-token").await);
}

#[tokio::test]
async fn without_a_plugin_everything_is_allowed_unscoped() {
    let server = TestServer::new(None);
    let anyone = server.client();
    let made = anyone.create_thread(json!({"metadata": {"a": 1}})).await;
    assert_eq!(made.metadata, json!({"a": 1}));
    assert_eq!(anyone.count_threads(json!({})).await, 1);
}
