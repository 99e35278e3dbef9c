//! Load on the HTTP API of `warden serve`, auth on against auth off.
//!
//! Seeds a fresh data dir (100 000 threads of 1 000 owners, plus threads of
//! `user1`), starts two servers on it — `examples/reference/langgraph.json`
//! (auth on, a fresh sandbox per request) and the same graphs without an
//! `auth` section (auth off) — and drives each route with `oha` on
//! loopback, interleaved (on, off, on, off…) so that machine drift hits
//! both alike. For each run it reads req/s and latency percentiles from
//! oha's JSON, and the server's CPU time from `/proc/<pid>/stat`: CPU per
//! request is far less noisy than req/s on a shared machine.
//!
//! `cargo bench -p warden --bench api_load` (needs `oha`:
//! `cargo install oha --locked`; without it the bench says so and exits 0).
//! Settings: `WARDEN_BENCH_SECS` (per run, default 10),
//! `WARDEN_BENCH_ROUNDS` (default 2), `WARDEN_BENCH_CONCURRENCY`
//! (connections, default 16: on 2 cores throughput is flat from 8 up, and
//! more connections only queue, p50 ≈ connections / throughput),
//! `WARDEN_BENCH_THREADS` (seeded threads, default 100000),
//! `WARDEN_BENCH_ROUTE` (only the routes whose name starts with it, e.g.
//! `GET /threads`).
//! `GET /threads/{id}` also runs on a third server with the decision log
//! on at full sampling (`log-on`), and, when `WARDEN_BENCH_BASELINE_BIN`
//! names another build of `warden` (an earlier commit's), on that build
//! with auth on (`baseline-bin`): what the log and the metrics cost.
//! `GET /threads/{id}` also runs on the reference policy written in Python
//! (`python-auth`: `examples/python`) and in TypeScript (`ts-auth`:
//! `examples/typescript`), each when `tests/python-plugins.sh` or
//! `tests/typescript-plugins.sh` has built it.
//! `LANGGRAPH_DEV_URL=http://127.0.0.1:<port>` (a running `langgraph dev`
//! on the reference project, loopback only) adds it to the
//! `GET /threads/{id}` runs; its CPU is read from the process listening on
//! that port and its children, or from `LANGGRAPH_DEV_PID`.
//! `LANGHOST_URL` (and `LANGHOST_PID`) does the same for `langhost`, stock
//! `langgraph-api` on PostgreSQL and Redis.
//!
//! On PostgreSQL (`WARDEN_BENCH_POSTGRES`, an admin URI ending in
//! `/<database>`, default the local server; `off` or unreachable: skipped
//! with a note), the same threads are seeded into a fresh database
//! (`warden_bench_<random>`, dropped after) and two more auth-on servers
//! run on it: `pg-x1` drives one of them, `pg-x2` both at once (half the
//! connections each, as a load balancer spreads them). For those, the
//! CPU of every `postgres` process on the machine is read too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use uuid::Uuid;
use warden::storage::{PostgresStorage, SqliteStorage, Storage, Thread};

mod common;
use common::{Database, Postgres, env_or, postgres_cpu_seconds, tree_cpu_seconds};

/// Owners of the seeded threads (`u0` … `u999`).
const OWNERS: usize = 1_000;
/// Threads of `user1`, so that its search returns a full page.
const USER1_THREADS: usize = 20;
/// The search with auth on: one page, which the plugin filters to the owner.
const SEARCH_BODY: &str = r#"{"limit": 10}"#;
/// The same search with auth off: the client asks for the owner's threads,
/// so both servers run the same SQL and answer the same page (unfiltered,
/// auth off would count all 100 000 rows per request instead).
const SEARCH_BODY_OFF: &str = r#"{"limit": 10, "metadata": {"owner": "user1"}}"#;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // must not start a minute of load.
    if !std::env::args().any(|a| a == "--bench") {
        println!("api_load: run it with `cargo bench -p warden --bench api_load`");
        return;
    }
    let Some(oha) = Oha::find() else {
        println!(
            "api_load: skipped: `oha` (the load generator) is not on PATH nor in ~/.cargo/bin.\n\
             Install it with `cargo install oha --locked`, then run this bench again."
        );
        return;
    };
    let settings = Settings {
        run: Duration::from_secs(env_or("WARDEN_BENCH_SECS", 10)),
        rounds: env_or("WARDEN_BENCH_ROUNDS", 2),
        concurrency: env_or("WARDEN_BENCH_CONCURRENCY", 16),
    };
    let n_threads = env_or("WARDEN_BENCH_THREADS", 100_000);
    let externals: Vec<External> = [
        ("langgraph-dev", "LANGGRAPH_DEV_URL", "LANGGRAPH_DEV_PID"),
        ("langhost", "LANGHOST_URL", "LANGHOST_PID"),
    ]
    .into_iter()
    .filter_map(|(mode, url, pid)| {
        let url = std::env::var(url).ok()?;
        Some(External::connect(mode, &url, pid))
    })
    .collect();

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch = tempfile::tempdir().expect("a temporary directory for the bench");
    let data_dir = scratch.path().join("data");
    let seed = seed(&data_dir, n_threads);

    let off_config = scratch.path().join("langgraph.json");
    let agent = root.join("examples/reference/agent");
    std::fs::write(
        &off_config,
        serde_json::json!({"dependencies": ["."], "graphs": {"agent": agent}}).to_string(),
    )
    .expect("writing the auth-off langgraph.json");
    let on_config = root.join("examples/reference/langgraph.json");
    let on = Server::start("auth-on", &on_config, &data_dir, None, scratch.path());
    let off = Server::start("auth-off", &off_config, &data_dir, None, scratch.path());
    // The decision log on, every allowed decision written (the most it
    // costs), to a file in the scratch directory.
    let log_config = scratch.path().join("langgraph-log.json");
    let reference = root.join("examples/reference");
    std::fs::write(
        &log_config,
        json!({"graphs": {"agent": reference.join("agent")}, "auth": {
            "path": reference.join("auth"), "disable_studio_auth": true,
            "timeout_ms": 100, "memory_mib": 32,
            "decision_log": {"path": scratch.path().join("decisions.jsonl"), "sample_allowed": 1.0},
        }})
        .to_string(),
    )
    .expect("writing the decision-log langgraph.json");
    let logged = Server::start("log-on", &log_config, &data_dir, None, scratch.path());
    // Another build of `warden` (an earlier commit's, say) on the same
    // config as auth-on, for what a change costs.
    let baseline = std::env::var_os("WARDEN_BENCH_BASELINE_BIN").map(|bin| {
        Server::start_bin(
            Path::new(&bin),
            "baseline-bin",
            &on_config,
            &data_dir,
            None,
            scratch.path(),
        )
    });
    // The reference policy in Python (`examples/python`) and in TypeScript
    // (`examples/typescript`), served from the components `warden build`
    // made of them (`tests/python-plugins.sh`, `tests/typescript-plugins.sh`);
    // each skipped when it is not built.
    let mut other_languages = Vec::new();
    for (mode, wasm) in [
        ("python-auth", "examples/python/.warden-build/auth.wasm"),
        ("ts-auth", "examples/typescript/.warden-build/plugin.wasm"),
    ] {
        let wasm = root.join(wasm);
        if !wasm.is_file() {
            println!("{mode} skipped: {} is not built", wasm.display());
            continue;
        }
        let config = scratch.path().join(format!("langgraph-{mode}.json"));
        std::fs::write(
            &config,
            json!({"graphs": {"agent": reference.join("agent")}, "auth": {
                "path": wasm, "disable_studio_auth": true,
                "timeout_ms": 250, "memory_mib": 64,
            }})
            .to_string(),
        )
        .expect("writing a policy's langgraph.json");
        let server = Server::start(mode, &config, &data_dir, None, scratch.path());
        other_languages.push(server);
    }
    println!(
        "servers: auth-on pid {} on {}, auth-off pid {} on {}",
        on.pid(),
        on.addr,
        off.pid(),
        off.addr
    );
    check_servers(&on, &off, &seed);

    let postgres = match Postgres::admin() {
        Ok(admin) => Some(OnPostgres::start(
            admin,
            n_threads,
            &on_config,
            scratch.path(),
        )),
        Err(why) => {
            println!("PostgreSQL skipped: {why}");
            None
        }
    };

    let user1 = "Authorization: Bearer user1-token";
    let routes = vec![
        Route::get("GET /ok", "/ok", None, 200),
        Route::get(
            "GET /threads/{id}",
            &format!("/threads/{}", seed.user1_thread),
            Some(user1),
            200,
        ),
        Route::search("POST /threads/search", Some(user1)),
        Route::get(
            "401 GET /threads/{id}",
            &format!("/threads/{}", seed.user1_thread),
            Some("Authorization: Bearer bad-token"),
            401,
        ),
    ];
    let only = std::env::var("WARDEN_BENCH_ROUTE").unwrap_or_default();
    let mut targets = Vec::new();
    for route in routes.iter().filter(|r| r.name.starts_with(&only)) {
        targets.push(Target::warden(route, "auth-on", &[&on]));
        // With auth off a bad token is an ordinary 200: nothing to compare.
        if route.status != 401 {
            targets.push(Target::warden(route, "auth-off", &[&off]));
        }
        let data_route = route.name == "GET /threads/{id}" || route.name == "POST /threads/search";
        if data_route && let Some(pg) = &postgres {
            let route = pg.route(route);
            targets.push(Target::warden(&route, "pg-x1", &[&pg.replicas[0]]).on_postgres());
            let both: Vec<&Server> = pg.replicas.iter().collect();
            targets.push(Target::warden(&route, "pg-x2", &both).on_postgres());
        }
        if route.name == "GET /threads/{id}" {
            targets.push(Target::warden(route, "log-on", &[&logged]));
            if let Some(baseline) = &baseline {
                targets.push(Target::warden(route, "baseline-bin", &[baseline]));
            }
            for server in &other_languages {
                targets.push(Target::warden(route, server.name, &[server]));
            }
            targets.extend(externals.iter().map(|e| e.target(route)));
        }
    }

    println!(
        "oha {}: {} rounds x {} s per run, {} connections, keep-alive, interleaved on/off",
        oha.version,
        settings.rounds,
        settings.run.as_secs(),
        settings.concurrency
    );
    for target in &targets {
        oha.run(target, Duration::from_secs(1), settings.concurrency); // warm up
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 1..=settings.rounds {
        for (target, runs) in targets.iter().zip(samples.iter_mut()) {
            let sample = oha.run(target, settings.run, settings.concurrency);
            println!(
                "  round {round}: {:<22} {:<13} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {}",
                target.route,
                target.mode,
                sample.rps(),
                sample.p50_ms,
                sample.p99_ms,
                sample.cpu_text(),
            );
            runs.push(sample);
        }
    }

    println!();
    println!(
        "{:<22} {:<13} {:>9} {:>8} {:>8} {:>12} {:>12}",
        "route", "mode", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "PG µs/req"
    );
    let summaries: Vec<Summary> = samples.iter().map(|s| Summary::of(s)).collect();
    let us = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0}"));
    for (target, s) in targets.iter().zip(&summaries) {
        println!(
            "{:<22} {:<13} {:>9.0} {:>8.2} {:>8.2} {:>12} {:>12}",
            target.route,
            target.mode,
            s.rps,
            s.p50_ms,
            s.p99_ms,
            us(s.cpu_us),
            us(s.postgres_us),
        );
    }
    let find = |route: &str, mode: &str| {
        targets
            .iter()
            .zip(&summaries)
            .find(|(t, _)| t.route == route && t.mode == mode)
            .map(|(_, s)| s)
    };

    println!();
    println!("ratios (same route, same run):");
    for route in &routes {
        for (a, b) in [
            ("auth-on", "auth-off"),
            ("log-on", "auth-on"),
            ("auth-on", "baseline-bin"),
            ("log-on", "baseline-bin"),
            ("pg-x1", "auth-on"),
            ("pg-x2", "pg-x1"),
            ("python-auth", "auth-on"),
            ("ts-auth", "auth-on"),
        ] {
            if let (Some(x), Some(y)) = (find(route.name, a), find(route.name, b)) {
                println!(
                    "  {:<22} {a} / {b}: req/s {:>5.1} %   CPU/req {}",
                    route.name,
                    x.rps / y.rps * 100.0,
                    ratio(x.cpu_us, y.cpu_us, "x"),
                );
            }
        }
    }

    let get = "GET /threads/{id}";
    let (Some(get_on), Some(get_off)) = (find(get, "auth-on"), find(get, "auth-off")) else {
        unreachable!("both modes of {get} are always run");
    };
    let mut targets_met = Vec::new();
    for base in ["auth-on", "baseline-bin"] {
        if let (Some(logged), Some(base_run)) = (find(get, "log-on"), find(get, base)) {
            let kept = logged.rps / base_run.rps;
            targets_met.push((
                format!(
                    "{get} with the decision log on (full sampling) keeps ≥ 95 % of {base} \
                     req/s: {:.1} %",
                    kept * 100.0
                ),
                kept >= 0.95,
            ));
        }
    }
    let kept = get_on.rps / get_off.rps;
    targets_met.push((
        format!(
            "{get} auth-on keeps ≥ 50 % of auth-off req/s: {:.1} %",
            kept * 100.0
        ),
        kept >= 0.5,
    ));
    for (mode, language) in [("python-auth", "Python"), ("ts-auth", "TypeScript")] {
        let (Some(policy), Some(lg)) = (find(get, mode), find(get, "langgraph-dev")) else {
            continue;
        };
        println!(
            "  warden {mode} / langgraph dev, {get}: req/s {:.2}x, CPU/req {}",
            policy.rps / lg.rps,
            ratio(lg.cpu_us, policy.cpu_us, "x less"),
        );
        targets_met.push((
            format!(
                "{get} with the {language} policy ≥ langgraph dev's req/s at ≤ 1 ms CPU/req: \
                 {:.2}x, {:.0} µs",
                policy.rps / lg.rps,
                policy.cpu_us.unwrap_or(f64::NAN)
            ),
            policy.rps >= lg.rps && policy.cpu_us.is_some_and(|us| us <= 1000.0),
        ));
    }
    match find(get, "langgraph-dev") {
        Some(lg) => {
            let times = get_on.rps / lg.rps;
            println!(
                "  warden auth-on / langgraph dev, {get}: req/s {times:.1}x, CPU/req {}",
                ratio(lg.cpu_us, get_on.cpu_us, "x less"),
            );
            targets_met.push((
                format!("{get} ≥ 30x langgraph dev (measured in this run): {times:.1}x"),
                times >= 30.0,
            ));
        }
        None => {
            // The issue's figure for `langgraph dev` on this kind of machine.
            let times = get_on.rps / 390.0;
            println!(
                "  no LANGGRAPH_DEV_URL: against the issue's langgraph dev figure (≈ 390 req/s, \
                 ≈ 2500 µs CPU/req): req/s {times:.1}x, CPU/req {}",
                ratio(Some(2500.0), get_on.cpu_us, "x less"),
            );
            targets_met.push((
                format!(
                    "{get} ≥ 30x langgraph dev (issue's 390 req/s, not measured here): {times:.1}x"
                ),
                times >= 30.0,
            ));
        }
    }
    if let Some(lh) = find(get, "langhost") {
        for mode in ["pg-x1", "pg-x2"] {
            if let Some(pg) = find(get, mode) {
                let times = pg.rps / lh.rps;
                println!(
                    "  warden {mode} / langhost, {get}: req/s {times:.1}x, CPU/req {}",
                    ratio(lh.cpu_us, pg.cpu_us, "x less"),
                );
                if mode == "pg-x1" {
                    targets_met.push((
                        format!(
                            "{get} on PostgreSQL ≥ 30x langhost (measured in this run): {times:.1}x"
                        ),
                        times >= 30.0,
                    ));
                }
            }
        }
    }

    println!();
    let search = Route::search("POST /threads/search", Some(user1));
    let seq_run = Duration::from_secs(env_or("WARDEN_BENCH_SECS", 10).div_ceil(2).max(1));
    println!(
        "sequential {} as user1 (1 connection, {} s), {} threads of {} owners:",
        search.name,
        seq_run.as_secs(),
        seed.threads,
        OWNERS
    );
    let mut sequential = vec![
        Target::warden(&search, "auth-on", &[&on]),
        Target::warden(&search, "auth-off", &[&off]),
    ];
    if let Some(pg) = &postgres {
        sequential
            .push(Target::warden(&pg.route(&search), "pg-x1", &[&pg.replicas[0]]).on_postgres());
    }
    for target in &sequential {
        let s = oha.run(target, seq_run, 1);
        println!(
            "  {:<9} p50 {:.3} ms  p99 {:.3} ms  {:.0} req/s  {}",
            target.mode,
            s.p50_ms,
            s.p99_ms,
            s.rps(),
            s.cpu_text()
        );
        if target.mode != "auth-off" {
            targets_met.push((
                format!(
                    "owner-filtered search p50 ≤ 2 ms ({}, auth on, sequential): {:.3} ms",
                    target.mode, s.p50_ms
                ),
                s.p50_ms <= 2.0,
            ));
        }
    }

    println!();
    println!("targets:");
    for (what, met) in &targets_met {
        println!("  [{}] {what}", if *met { "met" } else { "NOT MET" });
    }
    drop(postgres);
}

/// What a run is made of.
struct Settings {
    run: Duration,
    rounds: u64,
    concurrency: u64,
}

/// What seeding produced.
struct Seed {
    threads: usize,
    user1_thread: Uuid,
}

/// `n` threads of `OWNERS` owners and `USER1_THREADS` of `user1`, spread
/// through the table (not all at its end), oldest first.
fn seed_threads(n: u64) -> Vec<Thread> {
    let thread = |owner: String| {
        let now = warden::timestamp::now();
        let mut metadata = Map::new();
        metadata.insert("owner".to_owned(), Value::String(owner));
        Thread {
            thread_id: Uuid::now_v7(),
            created_at: now.clone(),
            updated_at: now.clone(),
            state_updated_at: now,
            metadata,
            status: warden::storage::ThreadStatus::Idle,
            config: json!({}),
            values: Value::Null,
            interrupts: json!({}),
            error: Value::Null,
        }
    };
    let n = usize::try_from(n).expect("WARDEN_BENCH_THREADS fits in usize");
    let total = n + USER1_THREADS;
    let step = total / USER1_THREADS;
    let mut others = 0;
    (0..total)
        .map(|i| {
            if i % step == 0 && i / step < USER1_THREADS {
                thread("user1".to_owned())
            } else {
                others += 1;
                thread(format!("u{}", others % OWNERS))
            }
        })
        .collect()
}

/// What was seeded, told.
fn seeded(threads: &[Thread], elapsed: Duration, how: &str) -> Seed {
    let total = threads.len();
    println!(
        "seeded {total} threads ({OWNERS} owners + user1) {how} in {:.1} s ({:.0} µs each)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / total as f64
    );
    Seed {
        threads: total,
        user1_thread: threads
            .iter()
            .find(|t| t.metadata["owner"] == "user1")
            .expect("user1 owns at least one thread")
            .thread_id,
    }
}

/// Seeds SQLite in `data_dir`, one `insert_thread` call each (one
/// transaction each: the server's path).
fn seed(data_dir: &Path, n: u64) -> Seed {
    let storage = SqliteStorage::open(data_dir).expect("opening the bench database");
    let threads = seed_threads(n);
    let start = Instant::now();
    for t in &threads {
        assert!(
            warden::storage::wait(storage.insert_thread(t)).expect("inserting a seed thread"),
            "thread id collision"
        );
    }
    seeded(&threads, start.elapsed(), "into SQLite with insert_thread")
}

/// Seeds the PostgreSQL `database` with `insert_thread` from 16 writers
/// at once (as a server's requests would), then `ANALYZE`s, as autovacuum
/// does shortly after a bulk insert.
fn seed_postgres(database: &Database, n: u64) -> Seed {
    let threads = seed_threads(n);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for seeding");
    let start = Instant::now();
    runtime.block_on(async {
        let storage = std::sync::Arc::new(
            PostgresStorage::connect(&database.uri)
                .await
                .expect("connecting to the bench database"),
        );
        let chunks: Vec<Vec<Thread>> = threads
            .chunks(threads.len().div_ceil(16))
            .map(<[_]>::to_vec)
            .collect();
        let writers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    for t in &chunk {
                        assert!(
                            storage
                                .insert_thread(t)
                                .await
                                .expect("inserting a seed thread"),
                            "thread id collision"
                        );
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("a seeding writer");
        }
        let (client, connection) = tokio_postgres::connect(&database.uri, tokio_postgres::NoTls)
            .await
            .expect("a connection to ANALYZE");
        tokio::spawn(connection);
        client
            .batch_execute("ANALYZE threads")
            .await
            .expect("ANALYZE threads");
    });
    seeded(&threads, start.elapsed(), "into PostgreSQL (16 writers)")
}

/// The auth-on replicas on PostgreSQL and their database.
struct OnPostgres {
    admin: Postgres,
    database: Database,
    seed: Seed,
    replicas: Vec<Server>,
}

impl OnPostgres {
    /// Seeds a fresh database and starts two auth-on replicas on it.
    fn start(admin: Postgres, n: u64, config: &Path, scratch: &Path) -> Self {
        let database = admin.create();
        let seed = seed_postgres(&database, n);
        let replicas: Vec<Server> = ["pg-a", "pg-b"]
            .into_iter()
            .map(|name| {
                let data = scratch.join(name);
                Server::start(name, config, &data, Some(&database), scratch)
            })
            .collect();
        let path = format!("/threads/{}", seed.user1_thread);
        for server in &replicas {
            for (token, status) in [("user1-token", 200), ("user2-token", 404)] {
                let (got, text) = http(&server.addr, "GET", &path, Some(token), None)
                    .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", server.name));
                assert_eq!(
                    got, status,
                    "GET {path} on {} as {token}: {text}",
                    server.name
                );
            }
        }
        println!(
            "PostgreSQL: database {}, replicas pid {} on {} and pid {} on {}",
            database.name,
            replicas[0].pid(),
            replicas[0].addr,
            replicas[1].pid(),
            replicas[1].addr
        );
        Self {
            admin,
            database,
            seed,
            replicas,
        }
    }

    /// `route` with the thread seeded on PostgreSQL.
    fn route(&self, route: &Route) -> Route {
        let mut route = route.clone();
        if route.method == "GET" && route.path.starts_with("/threads/") {
            route.path = format!("/threads/{}", self.seed.user1_thread);
        }
        route
    }
}

impl Drop for OnPostgres {
    /// Stops the replicas, then drops the database (after a panic too).
    fn drop(&mut self) {
        self.replicas.clear();
        self.admin.drop_database(&self.database);
    }
}

/// Fails fast, with the server's answer, when a route does not answer as
/// the benchmark assumes.
fn check_servers(on: &Server, off: &Server, seed: &Seed) {
    let path = format!("/threads/{}", seed.user1_thread);
    let user1 = Some("user1-token");
    for (server, token, method, path, body, status) in [
        (on, user1, "GET", path.as_str(), None, 200),
        (off, None, "GET", path.as_str(), None, 200),
        (on, Some("bad-token"), "GET", path.as_str(), None, 401),
        (on, Some("user2-token"), "GET", path.as_str(), None, 404),
        (on, user1, "POST", "/threads/search", Some(SEARCH_BODY), 200),
        (
            off,
            None,
            "POST",
            "/threads/search",
            Some(SEARCH_BODY_OFF),
            200,
        ),
    ] {
        let (got, text) = http(&server.addr, method, path, token, body)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", server.name));
        assert_eq!(
            got, status,
            "{method} {path} on {} with {token:?}: {text}",
            server.name
        );
        if path == "/threads/search" {
            let page: Vec<Value> = serde_json::from_str(json_part(&text))
                .unwrap_or_else(|e| panic!("search answer is not a JSON list ({e}): {text}"));
            assert_eq!(page.len(), 10, "a full page of 10: {text}");
            assert!(
                page.iter().all(|t| t["metadata"]["owner"] == "user1"),
                "only user1's threads: {text}"
            );
        }
    }
}

/// A route and how to call it.
#[derive(Clone)]
struct Route {
    name: &'static str,
    method: &'static str,
    path: String,
    header: Option<&'static str>,
    body: Option<&'static str>,
    /// The body sent with auth off, when it differs.
    off_body: Option<&'static str>,
    status: u16,
}

impl Route {
    fn get(name: &'static str, path: &str, header: Option<&'static str>, status: u16) -> Self {
        Self {
            name,
            method: "GET",
            path: path.to_owned(),
            header,
            body: None,
            off_body: None,
            status,
        }
    }

    fn search(name: &'static str, header: Option<&'static str>) -> Self {
        Self {
            name,
            method: "POST",
            path: "/threads/search".to_owned(),
            header,
            body: Some(SEARCH_BODY),
            off_body: Some(SEARCH_BODY_OFF),
            status: 200,
        }
    }
}

/// One thing oha drives: a route on one server, or on several replicas
/// of one at once.
struct Target {
    route: &'static str,
    mode: &'static str,
    /// One per replica: the connections are shared out among them.
    urls: Vec<String>,
    method: &'static str,
    header: Option<&'static str>,
    body: Option<&'static str>,
    status: u16,
    /// The processes whose CPU (with their children's) is the server's.
    pids: Vec<u32>,
    /// Whether to read PostgreSQL's CPU too.
    postgres: bool,
}

impl Target {
    fn warden(route: &Route, mode: &'static str, replicas: &[&Server]) -> Self {
        Self {
            route: route.name,
            mode,
            urls: replicas
                .iter()
                .map(|server| format!("http://{}{}", server.addr, route.path))
                .collect(),
            method: route.method,
            header: route.header,
            body: match mode {
                "auth-off" => route.off_body.or(route.body),
                _ => route.body,
            },
            status: route.status,
            pids: replicas.iter().map(|server| server.pid()).collect(),
            postgres: false,
        }
    }

    fn on_postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    /// The server's CPU seconds so far: all its processes', or none when
    /// one cannot be read.
    fn cpu(&self) -> Option<f64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| tree_cpu_seconds(pid)).sum()
    }
}

/// One oha run.
#[derive(Clone)]
struct Sample {
    /// Responses with the expected status.
    ok: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Server CPU seconds (user + system) during the run.
    cpu_secs: Option<f64>,
    /// PostgreSQL's CPU seconds during the run, when read.
    postgres_secs: Option<f64>,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    fn cpu_us(&self) -> Option<f64> {
        self.cpu_secs.map(|c| c * 1e6 / self.ok.max(1) as f64)
    }

    fn cpu_text(&self) -> String {
        match (self.cpu_secs, self.cpu_us()) {
            (Some(c), Some(us)) => format!(
                "CPU {us:>6.0} µs/req ({:.0} % of a core)",
                c / self.secs * 100.0
            ),
            _ => "CPU n/a".to_owned(),
        }
    }
}

/// A target's runs, added up: req/s and CPU over all of them, the median
/// of their percentiles.
struct Summary {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: Option<f64>,
    postgres_us: Option<f64>,
}

impl Summary {
    fn of(samples: &[Sample]) -> Self {
        let ok: u64 = samples.iter().map(|s| s.ok).sum();
        let secs: f64 = samples.iter().map(|s| s.secs).sum();
        let cpu: Option<f64> = samples.iter().map(|s| s.cpu_secs).sum();
        let postgres: Option<f64> = samples.iter().map(|s| s.postgres_secs).sum();
        let median = |f: fn(&Sample) -> f64| {
            let mut v: Vec<f64> = samples.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => f64::NAN,
                n if n % 2 == 1 => v[n / 2],
                n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        };
        Self {
            rps: ok as f64 / secs,
            p50_ms: median(|s| s.p50_ms),
            p99_ms: median(|s| s.p99_ms),
            cpu_us: cpu.map(|c| c * 1e6 / ok.max(1) as f64),
            postgres_us: postgres.map(|c| c * 1e6 / ok.max(1) as f64),
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>, unit: &str) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}{unit}", a / b),
        _ => "n/a".to_owned(),
    }
}

/// The `oha` binary and how to ask it for JSON.
struct Oha {
    path: PathBuf,
    version: String,
    json_args: &'static [&'static str],
}

impl Oha {
    /// `oha` on PATH, else in `~/.cargo/bin`.
    fn find() -> Option<Self> {
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|dir| dir.join("oha"));
        let in_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/oha"));
        let path = on_path.chain(in_cargo).find(|p| p.is_file())?;
        let version = Command::new(&path).arg("--version").output().ok()?;
        let help = Command::new(&path).arg("--help").output().ok()?;
        let help = String::from_utf8_lossy(&help.stdout);
        // oha ≥ 1.5 has `--output-format json`; older ones `-j`.
        let json_args: &[&str] = if help.contains("--output-format") {
            &["--output-format", "json"]
        } else {
            &["-j"]
        };
        Some(Self {
            path,
            version: String::from_utf8_lossy(&version.stdout)
                .trim()
                .trim_start_matches("oha ")
                .to_owned(),
            json_args,
        })
    }

    /// Drives `target` for `duration` on `connections` keep-alive
    /// connections (shared out among its replicas, one oha each, at
    /// once), with the server's CPU time read around it.
    fn run(&self, target: &Target, duration: Duration, connections: u64) -> Sample {
        let each = (connections / target.urls.len() as u64).max(1);
        let commands: Vec<Command> = target
            .urls
            .iter()
            .map(|url| {
                let mut cmd = Command::new(&self.path);
                cmd.arg(url)
                    .args(["-z", &format!("{}ms", duration.as_millis())])
                    .args(["-c", &each.to_string()])
                    .args(["-m", target.method, "--no-tui"])
                    .args(self.json_args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit());
                if let Some(header) = target.header {
                    cmd.args(["-H", header]);
                }
                if let Some(body) = target.body {
                    cmd.args(["-d", body, "-T", "application/json"]);
                }
                cmd
            })
            .collect();
        let cpu_before = target.cpu();
        let postgres_before = target.postgres.then(postgres_cpu_seconds);
        let children: Vec<Child> = commands
            .into_iter()
            .map(|mut cmd| cmd.spawn().expect("running oha"))
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|child| child.wait_with_output().expect("waiting for oha"))
            .collect();
        let cpu_after = target.cpu();
        let postgres_after = target.postgres.then(postgres_cpu_seconds);
        let (mut ok, mut secs, mut p50_ms, mut p99_ms) = (0, 0.0f64, 0.0f64, 0.0f64);
        for (out, url) in outputs.iter().zip(&target.urls) {
            assert!(out.status.success(), "oha failed on {url}: {}", out.status);
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "oha's output is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            let statuses = report["statusCodeDistribution"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let count = |status: &str| statuses.get(status).and_then(Value::as_u64).unwrap_or(0);
            let expected = count(&target.status.to_string());
            let all: u64 = statuses.values().filter_map(Value::as_u64).sum();
            if all != expected {
                println!(
                    "  warning: {} {}: statuses {statuses:?}, expected only {}",
                    target.route, target.mode, target.status
                );
            }
            ok += expected;
            let percentile =
                |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1e3;
            // Several replicas: the slower one's percentiles (the load
            // balancer's clients see both).
            secs = secs.max(
                report["summary"]["total"]
                    .as_f64()
                    .unwrap_or(duration.as_secs_f64()),
            );
            p50_ms = p50_ms.max(percentile("p50"));
            p99_ms = p99_ms.max(percentile("p99"));
        }
        Sample {
            ok,
            secs,
            p50_ms,
            p99_ms,
            cpu_secs: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
            postgres_secs: postgres_before.zip(postgres_after).map(|(a, b)| b - a),
        }
    }
}

/// A `warden serve` child, killed when dropped.
struct Server {
    name: &'static str,
    addr: String,
    child: Child,
}

impl Server {
    /// Starts `warden serve` on a free loopback port and waits for `/ok`
    /// (the auth-on one may first build and compile its plugin).
    /// On SQLite in `data_dir`, or on the PostgreSQL `database`.
    fn start(
        name: &'static str,
        config: &Path,
        data_dir: &Path,
        database: Option<&Database>,
        logs: &Path,
    ) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_warden"));
        Self::start_bin(bin, name, config, data_dir, database, logs)
    }

    /// [`Server::start`] with the `warden` binary at `bin`.
    fn start_bin(
        bin: &Path,
        name: &'static str,
        config: &Path,
        data_dir: &Path,
        database: Option<&Database>,
        logs: &Path,
    ) -> Self {
        let port = free_port();
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("creating the server log");
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("DATABASE_URI");
        if let Some(database) = database {
            command.arg("--database-url").arg(&database.uri);
        }
        let child = command
            .env("WARDEN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("starting warden serve");
        let mut server = Self {
            name,
            addr: format!("127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok((200, _)) = http(&server.addr, "GET", "/ok", None, None) {
                return server;
            }
            let exited = server.child.try_wait().expect("polling warden serve");
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("warden serve ({name}) did not come up ({exited:?}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (asked of the kernel, then released).
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().expect("the bound address").port();
        if port != 2024 {
            return port;
        }
    }
}

/// One HTTP/1.1 request on a fresh connection: the status and the raw body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// The JSON document in a body that may be chunked: from the first `{` or
/// `[` to the last `}` or `]`.
fn json_part(body: &str) -> &str {
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    body.get(start..end).unwrap_or(body)
}

/// A server of the reference project run by something else than this
/// bench (`langgraph dev`, `langhost`), on loopback.
struct External {
    mode: &'static str,
    addr: String,
    thread_path: String,
    pid: Option<u32>,
}

impl External {
    /// Checks the URL is loopback, creates a thread there as user1, and
    /// finds the server's pid (`pid_var`, else the process listening on
    /// the URL's port).
    fn connect(mode: &'static str, url: &str, pid_var: &str) -> Self {
        let addr = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{mode}: the URL must be http://…, got {url}"))
            .trim_end_matches('/')
            .to_owned();
        let (host, port) = addr
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{mode}: the URL needs a port: {url}"));
        assert!(
            host == "localhost" || host == "[::1]" || host.starts_with("127."),
            "{mode}: the URL must be on loopback: {url}"
        );
        let port: u16 = port
            .parse()
            .unwrap_or_else(|e| panic!("{mode}: the URL's port ({e}): {url}"));
        assert_ne!(port, 2024, "port 2024 is not ours to load");
        let (status, body) = http(&addr, "POST", "/threads", Some("user1-token"), Some("{}"))
            .unwrap_or_else(|e| panic!("POST /threads on {url}: {e}"));
        assert_eq!(status, 200, "POST /threads on {url}: {body}");
        let thread: Value = serde_json::from_str(json_part(&body))
            .unwrap_or_else(|e| panic!("POST /threads on {url} ({e}): {body}"));
        let id = thread["thread_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no thread_id from {url}: {body}"));
        let pid = std::env::var(pid_var)
            .ok()
            .and_then(|p| p.parse().ok())
            .or_else(|| listening_pid(port));
        println!(
            "{mode} at {url}: pid {} (CPU: it and its children)",
            pid.map_or_else(|| "unknown (CPU n/a)".to_owned(), |p| p.to_string())
        );
        Self {
            mode,
            addr,
            thread_path: format!("/threads/{id}"),
            pid,
        }
    }

    fn target(&self, route: &Route) -> Target {
        Target {
            route: route.name,
            mode: self.mode,
            urls: vec![format!("http://{}{}", self.addr, self.thread_path)],
            method: route.method,
            header: route.header,
            body: route.body,
            status: route.status,
            pids: self.pid.into_iter().collect(),
            // langhost keeps its threads in PostgreSQL.
            postgres: self.mode == "langhost",
        }
    }
}

/// The process with a TCP socket listening on `port`: the socket's inode
/// from `/proc/net/tcp{,6}`, then the process holding it.
fn listening_pid(port: u16) -> Option<u32> {
    let port_hex = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    // local_address, state 0A (LISTEN), inode.
                    (f.get(1)?.ends_with(&port_hex) && *f.get(3)? == "0A")
                        .then(|| f.get(9).map(|s| format!("socket:[{s}]")))
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|link| inodes.iter().any(|i| link.as_os_str() == i.as_str()))
                .then_some(pid)
        })
}
