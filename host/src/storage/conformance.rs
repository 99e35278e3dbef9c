//! What every backend must do, tested on each from one body: each test is
//! an `async fn(&dyn Storage)`, and [`on_every_backend!`] runs it on a
//! private in-memory SQLite database and on a fresh PostgreSQL database
//! ([`TestDatabase`]: created for the test, dropped after it, also when it
//! fails).
//!
//! PostgreSQL is the one at `WARDEN_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`): its user creates and
//! drops the databases.

use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

/// A private PostgreSQL database, dropped with the guard.
pub(crate) struct TestDatabase {
    admin: String,
    name: String,
}

impl TestDatabase {
    /// The server's administrative URI (its `postgres` database).
    pub(crate) fn admin_uri() -> String {
        std::env::var("WARDEN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    /// Creates `warden_test_<random>`.
    pub(crate) async fn create() -> Self {
        let admin = Self::admin_uri();
        let name = format!("warden_test_{}", Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (WARDEN_TEST_POSTGRES): {e}"));
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = connection.await;
        Self { admin, name }
    }

    /// The database's URI.
    pub(crate) fn uri(&self) -> String {
        let (base, _) = self
            .admin
            .rsplit_once('/')
            .expect("a URI ending with /database");
        format!("{base}/{}", self.name)
    }

    /// The backend over the database.
    pub(crate) async fn storage(&self) -> PostgresStorage {
        PostgresStorage::connect(&self.uri())
            .await
            .expect("the test database opens")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Its own thread and runtime: the test's may be gone or busy.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Instantiates each named `async fn(&dyn Storage)` on every backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let storage = crate::storage::SqliteStorage::in_memory().unwrap();
                    super::$test(&storage).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let database = super::TestDatabase::create().await;
                    let storage = database.storage().await;
                    super::$test(&storage).await;
                }
            )*
        }
    };
}

on_every_backend!(
    filters_are_type_strict_and_support_contains_and_or,
    filters_agree_with_the_reference_semantics,
    keys_and_values_with_quotes_and_unicode_mean_themselves,
    what_no_backend_can_express_is_refused_alike,
    threads_are_scoped_searched_counted_and_paged,
    assistants_keep_their_versions,
    system_assistants_are_created_kept_and_replaced,
    crons_are_scoped_by_their_thread_and_fall_due,
    runs_and_checkpoints_make_a_threads_state,
    checkpoints_keep_the_interrupts_a_run_paused_on,
    store_items_are_written_only_within_scope,
);

fn object(value: Value) -> Object {
    value.as_object().cloned().expect("an object")
}

fn thread(metadata: Value) -> Thread {
    let mut t = Thread::new(Uuid::now_v7(), object(metadata));
    t.created_at = "2026-01-01T00:00:00.000000+00:00".into();
    t.updated_at = t.created_at.clone();
    t.state_updated_at = t.created_at.clone();
    t
}

/// Inserts a thread per document, each with its index as `n`.
async fn threads_numbered(s: &dyn Storage, docs: &[Value]) {
    for (n, doc) in docs.iter().enumerate() {
        let mut doc = doc.clone();
        doc["n"] = json!(n);
        assert!(s.insert_thread(&thread(doc)).await.unwrap());
    }
}

/// The `n` of the threads within `filter`, in order.
async fn matching(s: &dyn Storage, filter: Filter) -> Vec<i64> {
    let query = ThreadQuery {
        limit: 1000,
        ..ThreadQuery::default()
    };
    let page = s.search_threads(&query, Some(&filter)).await;
    let page = page.unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    let mut found: Vec<i64> = page
        .items
        .iter()
        .map(|t| t.metadata["n"].as_i64().unwrap())
        .collect();
    found.sort_unstable();
    found
}

async fn filters_are_type_strict_and_support_contains_and_or(s: &dyn Storage) {
    threads_numbered(
        s,
        &[
            json!({"owner": "u1", "level": 3, "tags": ["a", "b"]}),
            json!({"owner": "u2", "level": "3", "tags": ["b", "c"]}),
            json!({"owner": "u1", "level": 3.5, "public": true, "cfg": {"x": 1}}),
            json!({"owner": null, "tags": "a"}),
            json!({"owner": 1, "level": 3.0, "tags": [1, 2, {"x": 1}, ["a"]]}),
        ],
    )
    .await;
    assert_eq!(matching(s, Filter::eq("owner", "u1")).await, [0, 2]);
    // `{"owner": "1"}` is not the number 1, nor the number the string.
    assert_eq!(matching(s, Filter::eq("owner", "1")).await, [] as [i64; 0]);
    assert_eq!(matching(s, Filter::eq("owner", 1)).await, [4]);
    assert_eq!(matching(s, Filter::eq("level", 3)).await, [0]);
    assert_eq!(matching(s, Filter::eq("level", "3")).await, [1]);
    assert_eq!(matching(s, Filter::eq("level", 3.5)).await, [2]);
    // A float operand matches any number of its value.
    assert_eq!(matching(s, Filter::eq("level", 3.0)).await, [0, 4]);
    assert_eq!(matching(s, Filter::eq("public", true)).await, [2]);
    assert_eq!(
        matching(s, Filter::eq("public", false)).await,
        [] as [i64; 0]
    );
    assert_eq!(matching(s, Filter::eq("owner", Value::Null)).await, [3]);
    assert_eq!(matching(s, Filter::eq("cfg", json!({"x": 1}))).await, [2]);
    assert_eq!(
        matching(s, Filter::eq("cfg", json!({}))).await,
        [] as [i64; 0]
    );
    assert_eq!(
        matching(s, Filter::eq("tags", json!(["a", "b"]))).await,
        [0]
    );
    assert_eq!(
        matching(s, Filter::eq("tags", json!(["a"]))).await,
        [] as [i64; 0]
    );
    assert_eq!(matching(s, Filter::contains("tags", "b")).await, [0, 1]);
    assert_eq!(
        matching(s, Filter::contains("tags", json!(["c", "b"]))).await,
        [1]
    );
    // A string is not a list: `$contains` needs an array.
    assert_eq!(matching(s, Filter::contains("tags", "a")).await, [0]);
    // An empty list is in every list.
    assert_eq!(
        matching(s, Filter::contains("tags", json!([]))).await,
        [0, 1, 4]
    );
    assert_eq!(matching(s, Filter::contains("tags", 1)).await, [4]);
    assert_eq!(
        matching(s, Filter::contains("tags", json!({"x": 1}))).await,
        [4]
    );
    assert_eq!(
        matching(s, Filter::contains("tags", json!([["a"]]))).await,
        [4]
    );
    assert_eq!(
        matching(s, Filter::contains("tags", json!(["a", 1]))).await,
        [] as [i64; 0]
    );
    let either = Filter::any_of([Filter::eq("owner", "u2"), Filter::eq("public", true)]);
    assert_eq!(matching(s, either).await, [1, 2]);
    let both = Filter::eq("owner", "u1").and(Filter::contains("tags", "a"));
    assert_eq!(matching(s, both).await, [0]);
    let nested = Filter::eq("owner", "u1").and(Filter::any_of([
        Filter::contains("tags", "a").and(Filter::eq("level", 3)),
        Filter::eq("cfg", json!({"x": 1})),
    ]));
    assert_eq!(matching(s, nested).await, [0, 2]);
    assert_eq!(matching(s, Filter::eq("missing", 1)).await, [] as [i64; 0]);
    assert_eq!(matching(s, Filter::default()).await, [0, 1, 2, 3, 4]);
    // As `Filter::matches`: a branch without conditions holds, no branch
    // at all does not (a plugin's `$or` has two at least).
    let owner_u2 = || match Filter::eq("owner", "u2").clauses.remove(0) {
        warden_types::Clause::Condition(c) => c,
        warden_types::Clause::AnyOf(_) => unreachable!(),
    };
    let any_of = |branches| Filter {
        clauses: vec![warden_types::Clause::AnyOf(branches)],
    };
    let empty_branch = any_of(vec![vec![], vec![owner_u2()]]);
    assert_eq!(matching(s, empty_branch).await, [0, 1, 2, 3, 4]);
    assert_eq!(matching(s, any_of(vec![])).await, [] as [i64; 0]);
    assert_eq!(matching(s, any_of(vec![vec![owner_u2()]])).await, [1]);
}

/// Every operator on every kind of operand, against every kind of stored
/// value, gives what `Filter::matches` says (the operands avoid the one
/// case where the backends are looser: a float operand equal to an
/// integer).
async fn filters_agree_with_the_reference_semantics(s: &dyn Storage) {
    let values = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(-7),
        json!(1.5),
        json!("1"),
        json!("a"),
        json!(""),
        json!("é\"'"),
        json!([]),
        json!([1]),
        json!(["a", "b"]),
        json!([1.5, null, true]),
        json!({"x": 1}),
        json!([{"x": 1}, ["a"]]),
    ];
    let docs: Vec<Value> = values
        .iter()
        .map(|v| json!({"k": v, "other": "a"}))
        .chain([json!({"other": 1})])
        .collect();
    threads_numbered(s, &docs).await;
    let mut filters = Vec::new();
    for v in &values {
        filters.push(Filter::eq("k", v.clone()));
        filters.push(Filter::contains("k", v.clone()));
        filters.push(Filter::any_of([
            Filter::eq("k", v.clone()),
            Filter::eq("other", 1),
        ]));
    }
    for filter in filters {
        let expected: Vec<i64> = docs
            .iter()
            .enumerate()
            .filter(|(_, d)| filter.matches(d.as_object().unwrap()))
            .map(|(n, _)| n as i64)
            .collect();
        assert_eq!(matching(s, filter.clone()).await, expected, "{filter:?}");
    }
}

async fn keys_and_values_with_quotes_and_unicode_mean_themselves(s: &dyn Storage) {
    threads_numbered(
        s,
        &[
            json!({"it's": "o'brien", "a.b": "x", "\"q\"": "\"", "ключ": "значение 🦀"}),
            json!({"it's": "o\"brien", "a": {"b": "x"}, "$.k": "\\", "": "empty"}),
        ],
    )
    .await;
    assert_eq!(matching(s, Filter::eq("it's", "o'brien")).await, [0]);
    assert_eq!(matching(s, Filter::eq("it's", "o\"brien")).await, [1]);
    assert_eq!(matching(s, Filter::eq("a.b", "x")).await, [0]);
    assert_eq!(matching(s, Filter::eq("\"q\"", "\"")).await, [0]);
    assert_eq!(matching(s, Filter::eq("ключ", "значение 🦀")).await, [0]);
    assert_eq!(matching(s, Filter::eq("$.k", "\\")).await, [1]);
    assert_eq!(matching(s, Filter::eq("", "empty")).await, [1]);
    assert_eq!(matching(s, Filter::eq("a", json!({"b": "x"}))).await, [1]);
    // Read back as written.
    let all = s
        .search_threads(
            &ThreadQuery {
                limit: 10,
                ..ThreadQuery::default()
            },
            None,
        )
        .await
        .unwrap();
    let first = all.items.iter().find(|t| t.metadata["n"] == 0).unwrap();
    assert_eq!(first.metadata["ключ"], "значение 🦀");
    assert_eq!(first.metadata["\"q\""], "\"");
}

async fn what_no_backend_can_express_is_refused_alike(s: &dyn Storage) {
    let refused = s.insert_thread(&thread(json!({"owner\u{0}x": "u1"}))).await;
    let Err(StorageError::BadQuery(detail)) = refused else {
        panic!("accepted: {refused:?}");
    };
    assert_eq!(
        detail,
        "Unsupported key in metadata: \"owner\\u0000x\": a key cannot contain the character U+0000"
    );
    let plugin = s
        .search_threads(
            &ThreadQuery::default(),
            Some(&Filter::eq("owner\u{0}", "u1")),
        )
        .await;
    assert!(matches!(plugin, Err(StorageError::Filter(_))), "{plugin:?}");
    let many: Object = (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
    let query = ThreadQuery {
        metadata: many,
        ..ThreadQuery::default()
    };
    let Err(StorageError::BadQuery(detail)) = s.search_threads(&query, None).await else {
        panic!("accepted");
    };
    assert_eq!(detail, "Filter too large: 101 conditions (at most 100)");
}

async fn threads_are_scoped_searched_counted_and_paged(s: &dyn Storage) {
    let u1 = Filter::eq("owner", "u1");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut t = thread(json!({"owner": if i < 3 { "u1" } else { "u2" }, "i": i}));
        t.updated_at = format!("2026-01-01T00:00:0{i}.000000+00:00");
        assert!(s.insert_thread(&t).await.unwrap());
        assert!(!s.insert_thread(&t).await.unwrap(), "the id is taken");
        ids.push(t.thread_id);
    }
    assert!(s.thread(ids[0], Some(&u1)).await.unwrap().is_some());
    assert!(s.thread(ids[4], Some(&u1)).await.unwrap().is_none());
    // Newest first, paged, with the total of all matches.
    let query = |limit, offset| ThreadQuery {
        limit,
        offset,
        ..ThreadQuery::default()
    };
    let page = s.search_threads(&query(2, 0), Some(&u1)).await.unwrap();
    let got: Vec<Uuid> = page.items.iter().map(|t| t.thread_id).collect();
    assert_eq!((got, page.total), (vec![ids[2], ids[1]], 3));
    let page = s.search_threads(&query(2, 2), Some(&u1)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1, 3));
    let page = s.search_threads(&query(2, 9), Some(&u1)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (0, 3));
    let huge = s.search_threads(&query(u64::MAX, u64::MAX), None).await;
    assert_eq!(huge.unwrap().items.len(), 0);
    let asc = ThreadQuery {
        order: Order::Asc,
        sort_by: Some("updated_at"),
        ids: Some(vec![ids[4], ids[3], Uuid::nil()]),
        limit: 10,
        ..ThreadQuery::default()
    };
    let page = s.search_threads(&asc, None).await.unwrap();
    let got: Vec<Uuid> = page.items.iter().map(|t| t.thread_id).collect();
    assert_eq!(got, [ids[3], ids[4]]);
    let by_metadata = ThreadQuery {
        metadata: object(json!({"i": 1})),
        ..ThreadQuery::default()
    };
    assert_eq!(s.count_threads(&by_metadata, Some(&u1)).await.unwrap(), 1);
    assert_eq!(
        s.count_threads(&ThreadQuery::default(), None)
            .await
            .unwrap(),
        5
    );
    // Updates merge, within scope only.
    let patch = object(json!({"i": 10, "new": true}));
    assert!(
        s.update_thread(ids[4], Some(&u1), &patch)
            .await
            .unwrap()
            .is_none()
    );
    let updated = s.update_thread(ids[0], Some(&u1), &patch).await.unwrap();
    let updated = updated.unwrap();
    assert_eq!(
        updated.metadata,
        object(json!({"owner": "u1", "i": 10, "new": true}))
    );
    let back = s.thread(ids[0], None).await.unwrap().unwrap();
    assert_eq!(back.metadata, updated.metadata);
    assert_eq!(back.updated_at, updated.updated_at);
    // By status and values.
    s.set_thread_status(ids[1], ThreadStatus::Error, Some(&json!({"e": 1})))
        .await
        .unwrap();
    let errored = ThreadQuery {
        status: Some(ThreadStatus::Error),
        limit: 10,
        ..ThreadQuery::default()
    };
    let page = s.search_threads(&errored, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].error, json!({"e": 1}));
    s.set_thread_status(ids[1], ThreadStatus::Idle, Some(&Value::Null))
        .await
        .unwrap();
    assert_eq!(
        s.thread(ids[1], None).await.unwrap().unwrap().error,
        Value::Null
    );
    // Deletes within scope only.
    assert!(!s.delete_thread(ids[4], Some(&u1)).await.unwrap());
    assert!(s.delete_thread(ids[4], None).await.unwrap());
    assert!(s.thread(ids[4], None).await.unwrap().is_none());
}

fn assistant(graph_id: &str, metadata: Value) -> Assistant {
    let now = crate::timestamp::now();
    Assistant {
        assistant_id: Uuid::new_v4(),
        graph_id: graph_id.into(),
        config: json!({}),
        context: json!({}),
        metadata: object(metadata),
        name: format!("The {graph_id}"),
        description: None,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    }
}

async fn assistants_keep_their_versions(s: &dyn Storage) {
    let u1 = Filter::eq("owner", "u1");
    let a = assistant("agent", json!({"owner": "u1"}));
    let b = assistant("other", json!({"owner": "u2"}));
    assert!(s.insert_assistant(&a).await.unwrap());
    assert!(!s.insert_assistant(&a).await.unwrap());
    assert!(s.insert_assistant(&b).await.unwrap());
    assert!(
        s.assistant(b.assistant_id, Some(&u1))
            .await
            .unwrap()
            .is_none()
    );
    let patch = AssistantPatch {
        config: Some(json!({"configurable": {"x": 1}})),
        metadata: Some(object(json!({"tag": "v2"}))),
        name: Some("Renamed".into()),
        ..AssistantPatch::default()
    };
    assert!(
        s.update_assistant(b.assistant_id, Some(&u1), &patch)
            .await
            .unwrap()
            .is_none()
    );
    let v2 = s
        .update_assistant(a.assistant_id, Some(&u1), &patch)
        .await
        .unwrap();
    let v2 = v2.unwrap();
    assert_eq!((v2.version, v2.name.as_str()), (2, "Renamed"));
    let versions = s
        .assistant_versions(a.assistant_id, Some(&u1), &Object::new(), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    let tagged = s
        .assistant_versions(a.assistant_id, None, &object(json!({"tag": "v2"})), 10, 0)
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);
    let SetLatest::Done(back) = s
        .set_latest_assistant_version(a.assistant_id, Some(&u1), 1)
        .await
        .unwrap()
    else {
        panic!("not restored");
    };
    assert_eq!((back.version, back.name.as_str()), (1, "The agent"));
    assert!(matches!(
        s.set_latest_assistant_version(a.assistant_id, None, 9)
            .await
            .unwrap(),
        SetLatest::NoVersion
    ));
    assert!(matches!(
        s.set_latest_assistant_version(b.assistant_id, Some(&u1), 1)
            .await
            .unwrap(),
        SetLatest::NoAssistant
    ));
    // A PATCH after a restore is the version after the latest made.
    let v3 = s
        .update_assistant(a.assistant_id, None, &patch)
        .await
        .unwrap();
    assert_eq!(v3.unwrap().version, 3);
    let query = AssistantQuery {
        name: Some("THE OTH".into()),
        limit: 10,
        ..AssistantQuery::default()
    };
    let found = s.search_assistants(&query, None).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].assistant_id, b.assistant_id);
    let by_graph = AssistantQuery {
        graph_id: Some("agent".into()),
        ..AssistantQuery::default()
    };
    assert_eq!(s.count_assistants(&by_graph, None).await.unwrap(), 1);
    assert_eq!(
        s.count_assistants(&AssistantQuery::default(), Some(&u1))
            .await
            .unwrap(),
        1
    );
    // Deleting an assistant deletes its crons.
    s.insert_cron(&cron(a.assistant_id, None, json!({})))
        .await
        .unwrap();
    assert!(
        !s.delete_assistant(a.assistant_id, Some(&Filter::eq("owner", "u2")))
            .await
            .unwrap()
    );
    assert!(s.delete_assistant(a.assistant_id, Some(&u1)).await.unwrap());
    let crons = s.search_crons(&cron_query(), None, None).await.unwrap();
    assert_eq!(crons.total, 0);
}

async fn system_assistants_are_created_kept_and_replaced(s: &dyn Storage) {
    let mut system = assistant("agent", json!({"created_by": "system"}));
    assert_eq!(
        s.upsert_system_assistant(&system).await.unwrap(),
        SystemAssistant::Created
    );
    assert!(s.is_system_assistant(system.assistant_id).await.unwrap());
    system.name = "Renamed by the graph".into();
    assert_eq!(
        s.upsert_system_assistant(&system).await.unwrap(),
        SystemAssistant::Kept
    );
    let back = s
        .assistant(system.assistant_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.name, "Renamed by the graph");
    // A client's row at another graph's system id.
    let squatter = assistant("agent", json!({"created_by": "system"}));
    assert!(s.insert_assistant(&squatter).await.unwrap());
    assert!(!s.is_system_assistant(squatter.assistant_id).await.unwrap());
    let mut later = assistant("later", json!({"created_by": "system"}));
    later.assistant_id = squatter.assistant_id;
    assert_eq!(
        s.upsert_system_assistant(&later).await.unwrap(),
        SystemAssistant::Replaced
    );
    let back = s
        .assistant(later.assistant_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.graph_id, "later");
    assert!(!s.is_system_assistant(Uuid::nil()).await.unwrap());
}

fn cron(assistant_id: Uuid, thread_id: Option<Uuid>, metadata: Value) -> Cron {
    let now = crate::timestamp::now();
    Cron {
        cron_id: Uuid::now_v7(),
        assistant_id,
        thread_id,
        user_id: Some("u1".into()),
        end_time: None,
        schedule: "* * * * *".into(),
        timezone: None,
        payload: object(json!({"input": {}})),
        next_run_date: Some("2026-01-01T00:00:00.000000+00:00".into()),
        metadata: object(metadata),
        on_run_completed: None,
        enabled: true,
        created_at: now.clone(),
        updated_at: now,
    }
}

fn cron_query() -> CronQuery {
    CronQuery {
        limit: 10,
        ..CronQuery::default()
    }
}

async fn crons_are_scoped_by_their_thread_and_fall_due(s: &dyn Storage) {
    let u1 = Filter::eq("owner", "u1");
    let (mine, theirs) = (
        thread(json!({"owner": "u1"})),
        thread(json!({"owner": "u2"})),
    );
    s.insert_thread(&mine).await.unwrap();
    s.insert_thread(&theirs).await.unwrap();
    let a = Uuid::new_v4();
    let on_mine = cron(a, Some(mine.thread_id), json!({"owner": "u1"}));
    let on_theirs = cron(a, Some(theirs.thread_id), json!({"owner": "u1"}));
    let mut stateless = cron(a, None, json!({"owner": "u1"}));
    stateless.end_time = Some("2025-01-01T00:00:00.000000+00:00".into());
    let mut other = cron(Uuid::new_v4(), None, json!({"owner": "u2"}));
    other.user_id = Some("u2".into());
    for c in [&on_mine, &on_theirs, &stateless, &other] {
        s.insert_cron(c).await.unwrap();
    }
    let found = s
        .search_crons(&cron_query(), Some(&u1), Some(&u1))
        .await
        .unwrap();
    let mut got: Vec<Uuid> = found.items.iter().map(|c| c.cron_id).collect();
    got.sort();
    let mut want = vec![on_mine.cron_id, stateless.cron_id];
    want.sort();
    assert_eq!((got, found.total), (want, 2));
    let of_a = CronQuery {
        assistant_id: Some(a),
        thread_id: Some(theirs.thread_id),
        enabled: Some(true),
        ..cron_query()
    };
    assert_eq!(s.search_crons(&of_a, None, None).await.unwrap().total, 1);
    assert_eq!(s.count_crons_of("u1").await.unwrap(), 3);
    // Due: enabled, at or before now, not past its end.
    let due = s
        .due_crons("2026-06-01T00:00:00.000000+00:00")
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    // A due firing is claimed once, however many servers try at once.
    let due_at = due
        .iter()
        .find(|c| c.cron_id == on_mine.cron_id)
        .and_then(|c| c.next_run_date.clone())
        .expect("a due cron has a next run");
    let claims = futures_util::future::join_all(
        (0..8).map(|_| s.claim_cron(on_mine.cron_id, &due_at, None)),
    )
    .await;
    let won = claims.into_iter().map(Result::unwrap).filter(|won| *won);
    assert_eq!(won.count(), 1);
    let later = "2026-07-01T00:00:00.000000+00:00";
    assert!(
        !s.claim_cron(on_mine.cron_id, &due_at, Some(later))
            .await
            .unwrap()
    );
    let patch = CronPatch {
        enabled: Some(false),
        metadata: Some(object(json!({"k": "v"}))),
        ..CronPatch::default()
    };
    let off = s
        .update_cron(on_theirs.cron_id, Some(&u1), &patch)
        .await
        .unwrap();
    assert_eq!(off.unwrap().metadata["k"], "v");
    assert!(
        s.update_cron(other.cron_id, Some(&u1), &patch)
            .await
            .unwrap()
            .is_none()
    );
    let due = s
        .due_crons("2026-06-01T00:00:00.000000+00:00")
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|c| c.cron_id).collect::<Vec<_>>(),
        [other.cron_id]
    );
    let disabled = s.cron(on_theirs.cron_id, None).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    // A thread's crons go with it.
    assert!(s.delete_thread(mine.thread_id, None).await.unwrap());
    assert!(s.cron(on_mine.cron_id, None).await.unwrap().is_none());
    assert!(!s.delete_cron(other.cron_id, Some(&u1)).await.unwrap());
    assert!(s.delete_cron(other.cron_id, None).await.unwrap());
}

fn checkpoint(thread_id: Uuid, run_id: Option<Uuid>, values: Value, step: i64) -> Checkpoint {
    Checkpoint {
        thread_id,
        checkpoint_id: Uuid::now_v7().to_string(),
        parent_checkpoint_id: None,
        run_id,
        values,
        next: vec!["node".into()],
        metadata: object(json!({"step": step, "source": "loop"})),
        created_at: crate::timestamp::now(),
        interrupts: Vec::new(),
        sends: Vec::new(),
        finished: Vec::new(),
    }
}

async fn runs_and_checkpoints_make_a_threads_state(s: &dyn Storage) {
    let t = thread(json!({"owner": "u1"}));
    s.insert_thread(&t).await.unwrap();
    let run = |status| Run {
        run_id: Uuid::now_v7(),
        thread_id: t.thread_id,
        assistant_id: Uuid::new_v4(),
        created_at: crate::timestamp::now(),
        updated_at: crate::timestamp::now(),
        status,
        metadata: object(json!({"m": 1})),
        kwargs: json!({"input": {"x": 1}}),
        multitask_strategy: "enqueue".into(),
    };
    let first = run(RunStatus::Pending);
    s.insert_run(&first).await.unwrap();
    assert_eq!(
        s.thread(t.thread_id, None).await.unwrap().unwrap().status,
        ThreadStatus::Busy
    );
    let second = run(RunStatus::Running);
    s.insert_run(&second).await.unwrap();
    let back = s.run(t.thread_id, first.run_id).await.unwrap().unwrap();
    assert_eq!(
        (back.status, back.kwargs),
        (RunStatus::Pending, first.kwargs.clone())
    );
    assert!(s.run(Uuid::nil(), first.run_id).await.unwrap().is_none());
    assert_eq!(s.runs_in_flight().await.unwrap().len(), 2);
    s.set_run_status(first.run_id, RunStatus::Success)
        .await
        .unwrap();
    let listed = s.list_runs(t.thread_id, None, 10, 0).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [second.run_id, first.run_id]
    );
    let done = s
        .list_runs(t.thread_id, Some(RunStatus::Success), 10, 0)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    // Checkpoints: the latest's values are the thread's, at once whatever
    // the write's durability (read on another connection).
    let c1 = checkpoint(t.thread_id, Some(first.run_id), json!({"v": 1}), 1);
    s.put_checkpoint(&c1, Durability::Durable).await.unwrap();
    let c2 = checkpoint(t.thread_id, Some(second.run_id), json!({"v": 2}), 2);
    s.put_checkpoint(&c2, Durability::Deferred).await.unwrap();
    assert_eq!(
        s.thread(t.thread_id, None).await.unwrap().unwrap().values,
        json!({"v": 2})
    );
    let all = s
        .checkpoints(t.thread_id, 10, None, &Object::new())
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|c| c.checkpoint_id.clone())
            .collect::<Vec<_>>(),
        [c2.checkpoint_id.clone(), c1.checkpoint_id.clone()]
    );
    let before = s
        .checkpoints(t.thread_id, 10, Some(&c2.checkpoint_id), &Object::new())
        .await
        .unwrap();
    assert_eq!(before.len(), 1);
    let step1 = s
        .checkpoints(t.thread_id, 10, None, &object(json!({"step": 1})))
        .await
        .unwrap();
    assert_eq!(step1[0].checkpoint_id, c1.checkpoint_id);
    let one = s
        .checkpoint(t.thread_id, &c1.checkpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (one.values, one.next, one.run_id),
        (json!({"v": 1}), vec!["node".to_owned()], Some(first.run_id))
    );
    // A copy holds the same state.
    let copy = thread(json!({"owner": "u1"}));
    s.insert_thread(&copy).await.unwrap();
    s.copy_state(t.thread_id, copy.thread_id).await.unwrap();
    assert_eq!(
        s.thread(copy.thread_id, None)
            .await
            .unwrap()
            .unwrap()
            .values,
        json!({"v": 2})
    );
    assert_eq!(
        s.checkpoints(copy.thread_id, 10, None, &Object::new())
            .await
            .unwrap()
            .len(),
        2
    );
    // Deleting a run deletes what it wrote on that thread only.
    assert!(!s.delete_run(Uuid::nil(), second.run_id).await.unwrap());
    assert!(s.delete_run(t.thread_id, second.run_id).await.unwrap());
    assert_eq!(
        s.thread(t.thread_id, None).await.unwrap().unwrap().values,
        json!({"v": 1})
    );
    assert_eq!(
        s.checkpoints(copy.thread_id, 10, None, &Object::new())
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.prune_checkpoints(copy.thread_id).await.unwrap(), 1);
    assert_eq!(s.runs_in_flight().await.unwrap().len(), 0);
}

async fn checkpoints_keep_the_interrupts_a_run_paused_on(s: &dyn Storage) {
    let t = thread(json!({"owner": "u1"}));
    s.insert_thread(&t).await.unwrap();
    let before = checkpoint(t.thread_id, None, json!({"v": 1}), 1);
    s.put_checkpoint(&before, Durability::Durable)
        .await
        .unwrap();
    // Three tasks paused: two sent to `ask` (the second at its first
    // `interrupt` call), and `review` at its third, the first two answered
    // by earlier resumes.
    let mut paused = checkpoint(t.thread_id, None, json!({"v": 2}), 2);
    paused.next = vec!["ask".into(), "ask".into(), "review".into()];
    paused.sends = vec![json!({"subject": "cats"}), json!({"subject": "«é»"})];
    paused.interrupts = vec![
        PendingInterrupt {
            node: "ask".into(),
            send: Some(1),
            id: "0f6c1d2e-0000-4000-8000-000000000001".into(),
            value: json!({"question": "Name? «é» \"quoted\"", "choices": [1, null, true]}),
            answers: Vec::new(),
        },
        PendingInterrupt {
            node: "review".into(),
            send: None,
            id: "0f6c1d2e-0000-4000-8000-000000000002".into(),
            value: json!("third"),
            answers: vec![json!("yes"), json!({"edited": {"x": [1, 2]}})],
        },
    ];
    s.put_checkpoint(&paused, Durability::Deferred)
        .await
        .unwrap();
    let interrupts = |cs: &[Checkpoint]| {
        cs.iter()
            .map(|c| (c.checkpoint_id.clone(), c.interrupts.clone()))
            .collect::<Vec<_>>()
    };
    let expected = vec![
        (paused.checkpoint_id.clone(), paused.interrupts.clone()),
        (before.checkpoint_id.clone(), Vec::new()),
    ];
    let all = s
        .checkpoints(t.thread_id, 10, None, &Object::new())
        .await
        .unwrap();
    assert_eq!(interrupts(&all), expected);
    assert_eq!(all[0].next, paused.next);
    assert_eq!(all[0].sends, paused.sends);
    assert!(all[1].sends.is_empty());
    // The thread shows them by task, as LangGraph's `Thread.interrupts`.
    let shown = s
        .thread(t.thread_id, None)
        .await
        .unwrap()
        .unwrap()
        .interrupts;
    assert_eq!(shown, paused.thread_interrupts());
    assert_eq!(
        shown[paused.task_id("review", None).to_string()],
        json!([{"id": "0f6c1d2e-0000-4000-8000-000000000002", "value": "third"}])
    );
    assert_eq!(
        shown[paused.task_id("ask", Some(1)).to_string()][0]["id"],
        "0f6c1d2e-0000-4000-8000-000000000001"
    );
    assert!(
        shown
            .get(paused.task_id("ask", Some(0)).to_string())
            .is_none()
    );
    let one = s
        .checkpoint(t.thread_id, &paused.checkpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.interrupts, paused.interrupts);
    let none = s
        .checkpoint(t.thread_id, &before.checkpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert!(none.interrupts.is_empty());
    // A copy of the thread holds them too.
    let copy = thread(json!({"owner": "u1"}));
    s.insert_thread(&copy).await.unwrap();
    s.copy_state(t.thread_id, copy.thread_id).await.unwrap();
    let copied = s
        .checkpoints(copy.thread_id, 10, None, &Object::new())
        .await
        .unwrap();
    assert_eq!(interrupts(&copied), expected);
    let one = s
        .checkpoint(copy.thread_id, &paused.checkpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.interrupts, paused.interrupts);
    assert_eq!(one.sends, paused.sends);
    // Rewriting the checkpoint rewrites them (here: answered, none left).
    paused.interrupts.clear();
    s.put_checkpoint(&paused, Durability::Durable)
        .await
        .unwrap();
    let one = s
        .checkpoint(t.thread_id, &paused.checkpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert!(one.interrupts.is_empty());
    assert_eq!(
        s.checkpoint(copy.thread_id, &paused.checkpoint_id)
            .await
            .unwrap()
            .unwrap()
            .interrupts
            .len(),
        2
    );
}

async fn store_items_are_written_only_within_scope(s: &dyn Storage) {
    let ns = |labels: &[&str]| labels.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    let u1 = Filter::eq("owner", "u1");
    let mine = object(json!({"owner": "u1", "v": 1}));
    let theirs = object(json!({"owner": "u2", "v": 2}));
    assert!(
        s.put_item(&ns(&["a", "b"]), "k", &mine, Some(&u1))
            .await
            .unwrap()
    );
    assert!(
        s.put_item(&ns(&["a", "c"]), "k", &theirs, None)
            .await
            .unwrap()
    );
    assert!(s.put_item(&ns(&["ab"]), "k", &mine, None).await.unwrap());
    // Neither replacing an item outside the scope, nor writing one outside it.
    assert!(
        !s.put_item(&ns(&["a", "c"]), "k", &mine, Some(&u1))
            .await
            .unwrap()
    );
    assert!(
        !s.put_item(&ns(&["a", "b"]), "k", &theirs, Some(&u1))
            .await
            .unwrap()
    );
    let kept = s.item(&ns(&["a", "b"]), "k", None).await.unwrap().unwrap();
    assert_eq!(kept.value, mine);
    assert!(
        s.item(&ns(&["a", "c"]), "k", Some(&u1))
            .await
            .unwrap()
            .is_none()
    );
    let query = ItemQuery {
        prefix: ns(&["a"]),
        limit: 10,
        ..ItemQuery::default()
    };
    assert_eq!(s.search_items(&query).await.unwrap().len(), 2);
    let scoped = ItemQuery {
        scope: Some(u1.clone()),
        filter: Filter::eq("v", 1),
        ..query
    };
    let found = s.search_items(&scoped).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|i| i.namespace.clone())
            .collect::<Vec<_>>(),
        [ns(&["a", "b"])]
    );
    let namespaces = NamespaceQuery {
        limit: 10,
        ..NamespaceQuery::default()
    };
    assert_eq!(
        s.list_namespaces(&namespaces).await.unwrap(),
        [ns(&["a", "b"]), ns(&["a", "c"]), ns(&["ab"])]
    );
    let shallow = NamespaceQuery {
        prefix: ns(&["a"]),
        max_depth: Some(1),
        filter: u1.clone(),
        limit: 10,
        ..NamespaceQuery::default()
    };
    assert_eq!(s.list_namespaces(&shallow).await.unwrap(), [ns(&["a"])]);
    assert!(
        !s.delete_item(&ns(&["a", "c"]), "k", Some(&u1))
            .await
            .unwrap()
    );
    assert!(s.delete_item(&ns(&["a", "c"]), "k", None).await.unwrap());
    assert!(s.item(&ns(&["a", "c"]), "k", None).await.unwrap().is_none());
}

/// The filter of an owner with few threads among many is served by the GIN
/// index, not a scan of every thread (one with many is served as well by
/// the `updated_at` index: the planner picks by the owner's statistics).
#[tokio::test]
async fn postgres_serves_the_owner_filter_from_an_index() {
    let database = TestDatabase::create().await;
    let storage = database.storage().await;
    let (client, connection) = tokio_postgres::connect(&database.uri(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, \
             status, config, interrupts) \
             SELECT gen_random_uuid(), t, t, t, jsonb_build_object('owner', \
             CASE WHEN i % 2000 = 0 THEN 'u1' ELSE 'u' || (i % 100 + 2) END), 'idle', '{}', '{}' \
             FROM generate_series(1, 20000) AS i, \
             to_char(timestamp '2026-01-01' + i * interval '1 second', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00') AS t; ANALYZE threads",
        )
        .await
        .unwrap();
    let plan = storage
        .thread_search_plan(&ThreadQuery::default(), Some(&Filter::eq("owner", "u1")))
        .await
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("threads_metadata")),
        "plan: {plan:#?}"
    );
}

/// Replicas starting at once migrate the database once.
#[tokio::test]
async fn postgres_replicas_starting_at_once_migrate_once() {
    let database = TestDatabase::create().await;
    let uri = database.uri();
    let starts = (0..4).map(|_| PostgresStorage::connect(&uri));
    for started in futures_util::future::join_all(starts).await {
        started.expect("every replica starts");
    }
    let (client, connection) = tokio_postgres::connect(&uri, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let versions = client
        .query("SELECT version FROM warden_schema ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = versions.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        (1..=crate::storage::postgres::MIGRATIONS_APPLIED as i32).collect::<Vec<_>>()
    );
}

/// A URI that is not one, or a server out of reach, is an error naming it.
#[tokio::test]
async fn postgres_refuses_a_bad_uri_and_reports_an_unreachable_server() {
    let bad = PostgresStorage::connect("postgres://[nope").await;
    assert!(
        matches!(bad, Err(ConnectError::BadUri(_))),
        "{:?}",
        bad.err()
    );
    // A port nothing listens on (the discard port, on loopback).
    let down = PostgresStorage::connect("postgres://postgres@127.0.0.1:9/postgres").await;
    let Err(ConnectError::Storage(StorageError::Unavailable(_))) = down else {
        panic!("not unavailable: {:?}", down.err());
    };
}

#[tokio::test]
async fn sqlite_serves_the_owner_filter_from_an_index() {
    let s = SqliteStorage::in_memory().unwrap();
    let plan = s
        .thread_search_plan(&ThreadQuery::default(), Some(&Filter::eq("owner", "u1")))
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("threads_owner")),
        "plan: {plan:?}"
    );
}

/// Writes a thread and an item: what [`reads_back`] reads.
async fn writes(s: &dyn Storage) -> Thread {
    let t = thread(json!({"owner": "u1"}));
    s.insert_thread(&t).await.unwrap();
    let ns = ["u1".to_owned(), "ns".to_owned()];
    s.put_item(&ns, "k", &object(json!({"v": 1})), None)
        .await
        .unwrap();
    t
}

/// What [`writes`] wrote, read by another opening of the database.
async fn reads_back(s: &dyn Storage, t: &Thread) {
    let back = s.thread(t.thread_id, None).await.unwrap();
    assert_eq!(back.expect("thread persisted").metadata, t.metadata);
    let ns = ["u1".to_owned(), "ns".to_owned()];
    let item = s.item(&ns, "k", None).await.unwrap();
    assert_eq!(item.expect("item persisted").value, object(json!({"v": 1})));
}

#[tokio::test]
async fn sqlite_data_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let t = writes(&SqliteStorage::open(dir.path()).unwrap()).await;
    reads_back(&SqliteStorage::open(dir.path()).unwrap(), &t).await;
    assert!(dir.path().join("warden.db").exists());
}

#[tokio::test]
async fn postgres_data_survives_reconnecting() {
    let database = TestDatabase::create().await;
    let t = writes(&database.storage().await).await;
    reads_back(&database.storage().await, &t).await;
}
