//! An owner-filtered thread search, straight on the storage seam, over
//! each backend: 100 000 threads of 1 000 owners (100 each) plus 20 of
//! `user1`, then the search the reference policy makes (`{"owner":
//! "user1"}`, newest first, a page of 10) and one of a 100-thread owner,
//! timed over many calls. Not a test: figures to read.
//!
//! `cargo bench -p warden --bench storage_search`. Settings:
//! `WARDEN_BENCH_THREADS` (default 100000), `WARDEN_BENCH_CALLS` (default
//! 200), `WARDEN_TEST_POSTGRES` (the server whose user creates and drops
//! the bench's database `warden_bench_<random>`; default
//! `postgres://postgres@127.0.0.1:5432/postgres`; unreachable: PostgreSQL
//! is skipped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;
use warden::storage::{Filter, PostgresStorage, SqliteStorage, Storage, Thread, ThreadQuery};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn seed(storage: Arc<dyn Storage>, n: usize) -> Duration {
    let start = Instant::now();
    let owners: Vec<String> = (0..n)
        .map(|i| format!("u{}", i % 1000))
        .chain((0..20).map(|_| "user1".to_owned()))
        .collect();
    // 16 writers at once, as a server's requests would be.
    let chunks: Vec<Vec<String>> = owners
        .chunks(owners.len().div_ceil(16))
        .map(<[_]>::to_vec)
        .collect();
    let writers = chunks.into_iter().map(|chunk| {
        let storage = storage.clone();
        tokio::spawn(async move {
            for owner in chunk {
                let t = Thread::new(
                    Uuid::now_v7(),
                    json!({"owner": owner}).as_object().unwrap().clone(),
                );
                assert!(storage.insert_thread(&t).await.expect("insert"));
            }
        })
    });
    for writer in writers {
        writer.await.expect("a writer");
    }
    start.elapsed()
}

async fn measure(
    name: &str,
    storage: Arc<dyn Storage>,
    threads: usize,
    calls: usize,
    analyze: Option<&str>,
) {
    let seeded = seed(storage.clone(), threads).await;
    println!(
        "{name}: seeded {} threads in {:.1} s",
        threads + 20,
        seeded.as_secs_f64()
    );
    if let Some(uri) = analyze {
        // What autovacuum does shortly after a bulk insert: statistics.
        let (client, connection) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
            .await
            .expect("a connection");
        tokio::spawn(connection);
        client
            .batch_execute("ANALYZE threads")
            .await
            .expect("ANALYZE");
    }
    for owner in ["user1", "u7"] {
        let query = ThreadQuery {
            limit: 10,
            ..ThreadQuery::default()
        };
        let scope = Filter::eq("owner", owner);
        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            let start = Instant::now();
            let page = storage
                .search_threads(&query, Some(&scope))
                .await
                .expect("search");
            times.push(start.elapsed());
            assert_eq!(page.items.len(), 10);
        }
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        println!(
            "{name}: search owner={owner} (limit 10): p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms over {calls} calls",
            at(0.5),
            at(0.9),
            at(1.0)
        );
    }
}

#[tokio::main]
async fn main() {
    let threads = env("WARDEN_BENCH_THREADS", 100_000);
    let calls = env("WARDEN_BENCH_CALLS", 200);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = SqliteStorage::open(dir.path()).expect("SQLite opens");
    measure("sqlite", Arc::new(sqlite), threads, calls, None).await;

    let admin = std::env::var("WARDEN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let Ok((client, connection)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
    else {
        println!("postgres: {admin} unreachable: skipped");
        return;
    };
    tokio::spawn(connection);
    let name = format!("warden_bench_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    let uri = format!(
        "{}/{name}",
        admin
            .rsplit_once('/')
            .expect("a URI ending with /database")
            .0
    );
    let postgres = PostgresStorage::connect(&uri)
        .await
        .expect("PostgreSQL opens");
    let postgres: Arc<dyn Storage> = Arc::new(postgres);
    measure("postgres", postgres.clone(), threads, calls, Some(&uri)).await;
    drop(postgres);
    client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("DROP DATABASE");
}
