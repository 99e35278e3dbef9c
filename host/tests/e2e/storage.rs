//! The SQLite store: filters in SQL (type-strict, `$contains`, `$or`), the
//! owner index, and persistence across reopen.

use serde_json::{Map, Value, json};
use uuid::Uuid;
use warden::storage::{Filter, SqliteStorage, Storage, ThreadQuery, ThreadStatus, wait};

fn thread(metadata: Value) -> warden::storage::Thread {
    let metadata: Map<String, Value> = metadata.as_object().cloned().unwrap();
    warden::storage::Thread {
        thread_id: Uuid::now_v7(),
        created_at: "2026-01-01T00:00:00.000000+00:00".into(),
        updated_at: "2026-01-01T00:00:00.000000+00:00".into(),
        state_updated_at: "2026-01-01T00:00:00.000000+00:00".into(),
        metadata,
        status: ThreadStatus::Idle,
        config: json!({}),
        values: Value::Null,
        interrupts: json!({}),
        error: Value::Null,
    }
}

fn matching(storage: &SqliteStorage, filter: Filter) -> Vec<Value> {
    let query = ThreadQuery {
        limit: 100,
        ..ThreadQuery::default()
    };
    let mut found: Vec<Value> = wait(storage.search_threads(&query, Some(&filter)))
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.metadata["n"].clone())
        .collect();
    found.sort_by_key(|v| v.as_i64());
    found
}

#[test]
fn filters_are_type_strict_and_support_contains_and_or() {
    let s = SqliteStorage::in_memory().unwrap();
    for (n, metadata) in [
        json!({"owner": "u1", "level": 3, "tags": ["a", "b"]}),
        json!({"owner": "u2", "level": "3", "tags": ["b", "c"]}),
        json!({"owner": "u1", "level": 3.5, "public": true, "cfg": {"x": 1}}),
        json!({"owner": null, "tags": "a"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = metadata;
        m["n"] = json!(n);
        assert!(wait(s.insert_thread(&thread(m))).unwrap());
    }
    assert_eq!(
        matching(&s, Filter::eq("owner", "u1")),
        [json!(0), json!(2)]
    );
    assert_eq!(matching(&s, Filter::eq("level", 3)), [json!(0)]);
    assert_eq!(matching(&s, Filter::eq("level", "3")), [json!(1)]);
    assert_eq!(matching(&s, Filter::eq("level", 3.5)), [json!(2)]);
    assert_eq!(matching(&s, Filter::eq("public", true)), [json!(2)]);
    assert_eq!(matching(&s, Filter::eq("owner", Value::Null)), [json!(3)]);
    assert_eq!(matching(&s, Filter::eq("cfg", json!({"x": 1}))), [json!(2)]);
    assert_eq!(
        matching(&s, Filter::contains("tags", "b")),
        [json!(0), json!(1)]
    );
    assert_eq!(
        matching(&s, Filter::contains("tags", json!(["c", "b"]))),
        [json!(1)]
    );
    // A string is not a list: `$contains` needs an array.
    assert_eq!(matching(&s, Filter::contains("tags", "a")), [json!(0)]);
    let either = Filter::any_of([Filter::eq("owner", "u2"), Filter::eq("public", true)]);
    assert_eq!(matching(&s, either), [json!(1), json!(2)]);
    let both = Filter::eq("owner", "u1").and(Filter::contains("tags", "a"));
    assert_eq!(matching(&s, both), [json!(0)]);
    assert_eq!(matching(&s, Filter::eq("missing", 1)), Vec::<Value>::new());
}

#[test]
fn the_owner_filter_is_served_by_an_index() {
    let s = SqliteStorage::in_memory().unwrap();
    let plan = s
        .thread_search_plan(&ThreadQuery::default(), Some(&Filter::eq("owner", "u1")))
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("threads_owner")),
        "plan: {plan:?}"
    );
}

#[test]
fn data_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let t = thread(json!({"owner": "u1"}));
    {
        let s = SqliteStorage::open(dir.path()).unwrap();
        wait(s.insert_thread(&t)).unwrap();
        wait(s.put_item(
            &["u1".into(), "ns".into()],
            "k",
            json!({"v": 1}).as_object().unwrap(),
            None,
        ))
        .unwrap();
    }
    let s = SqliteStorage::open(dir.path()).unwrap();
    let back = wait(s.thread(t.thread_id, None))
        .unwrap()
        .expect("thread persisted");
    assert_eq!(back.metadata, t.metadata);
    let item = wait(s.item(&["u1".into(), "ns".into()], "k", None))
        .unwrap()
        .expect("item persisted");
    assert_eq!(item.value, *json!({"v": 1}).as_object().unwrap());
    assert!(dir.path().join("warden.db").exists());
}
