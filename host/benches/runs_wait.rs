//! End-to-end `runs.wait` on the echo graph: Warden on SQLite, on
//! PostgreSQL with one replica and with two, beside `langgraph dev`.
//!
//! Starts `warden serve` (this build, release) on `examples/reference`
//! with a fresh data dir and measures, over HTTP on loopback with a
//! keep-alive client as the SDK holds one:
//! - the latency of `POST /threads/{id}/runs/wait` (the SDK's
//!   `runs.wait`), 50 sequential calls, each on a thread of its own made
//!   beforehand (untimed): median, p90, max;
//! - a run that pauses for a human and its resume: `runs.wait` with
//!   `interrupt_before: ["echo"]`, then `runs.wait` with no input, which
//!   runs the node; 20 such pairs in sequence, each on a thread of its
//!   own: the pair's median and p90;
//! - the throughput of the same at concurrency 16 (16 clients, each
//!   calling in a loop for `WARDEN_BENCH_SECS`, default 10), and the
//!   servers' CPU (user + system, from `/proc/<pid>/stat`, summed over the
//!   replicas) per run over that window, and PostgreSQL's (every
//!   `postgres` process on the machine).
//!
//! Setups, one after the other in one run:
//! - `sqlite`: one `warden serve` on SQLite in its data dir;
//! - `postgres x1`: one `warden serve --database-url` on a fresh database;
//! - `postgres x2`: two `warden serve` on one fresh database, each client
//!   sending its requests to the two replicas in turn (one keep-alive
//!   connection to each); a run waited for on one replica may be claimed
//!   and executed by either.
//!
//! The PostgreSQL setups create and drop their database
//! (`warden_bench_<random>`) on the server at `WARDEN_BENCH_POSTGRES`
//! (an admin URI ending in `/<database>`; default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `off`, or no connection:
//! skipped with a note).
//!
//! When the `langgraph` CLI of `langgraph-cli[inmem]` is found (`LANGGRAPH_CLI`,
//! or `langgraph` on `PATH`), the same measures run against `langgraph dev`
//! serving a copy of `shared/reference/` (`LANGGRAPH_REFERENCE`, default
//! `../shared/reference` from the workspace root), and the ratios print.
//!
//! `cargo bench -p warden --bench runs_wait` (builds the guests first if
//! they are missing: `cargo build --release --target wasm32-wasip2
//! --workspace --exclude warden`).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{Database, Postgres, Server, postgres_cpu_seconds, tree_cpu_seconds};

const SEQUENTIAL: usize = 50;
const PAUSES: usize = 20;
const CONCURRENCY: usize = 16;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runs_wait: run it with `cargo bench -p warden --bench runs_wait`");
        return;
    }
    let secs = std::env::var("WARDEN_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10u64);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();

    let ours = sqlite(&root, secs);
    match Postgres::admin() {
        Ok(postgres) => {
            let one = postgres_replicas(&root, &postgres, 1, secs);
            let two = postgres_replicas(&root, &postgres, 2, secs);
            println!(
                "\npostgres x1 vs sqlite: median latency {:.2}x, throughput {:.2}x, CPU per run {}\n\
                 postgres x2 vs x1: median latency {:.2}x, throughput {:.2}x, CPU per run {}",
                ms(one.median) / ms(ours.median),
                one.throughput / ours.throughput,
                ratio(one.cpu_per_run, ours.cpu_per_run),
                ms(two.median) / ms(one.median),
                two.throughput / one.throughput,
                ratio(two.cpu_per_run, one.cpu_per_run),
            );
        }
        Err(note) => println!("\n(PostgreSQL skipped: {note})"),
    }
    langgraph_dev(&root, secs, &ours);
}

/// One `warden serve` on SQLite.
fn sqlite(root: &Path, secs: u64) -> Figures {
    let data = tempdir();
    let server = warden(root, &data, None);
    let figures = measure(&[&server], secs);
    if !figures.failures.is_empty() {
        println!("(server log: {})", server.log.display());
    }
    print("sqlite", &figures);
    figures
}

/// `replicas` × `warden serve` on one fresh PostgreSQL database.
fn postgres_replicas(root: &Path, postgres: &Postgres, replicas: usize, secs: u64) -> Figures {
    let database = postgres.create();
    let servers: Vec<Server> = (0..replicas)
        .map(|_| warden(root, &tempdir(), Some(&database)))
        .collect();
    let figures = measure(&servers.iter().collect::<Vec<_>>(), secs);
    if !figures.failures.is_empty() {
        for server in &servers {
            println!("(server log: {})", server.log.display());
        }
    }
    drop(servers);
    postgres.drop_database(&database);
    print(&format!("postgres x{replicas}"), &figures);
    figures
}

/// `langgraph dev` on the reference project, when its CLI is found.
fn langgraph_dev(root: &Path, secs: u64, ours: &Figures) {
    let Some(cli) = langgraph_cli() else {
        println!(
            "\n(langgraph dev not found: set LANGGRAPH_CLI to the `langgraph` of `pip install \"langgraph-cli[inmem]\"` to compare)"
        );
        return;
    };
    let reference = std::env::var_os("LANGGRAPH_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/reference"));
    let project = tempdir();
    copy_dir(&reference, &project);
    let dev = Server::start(
        Command::new(cli).current_dir(&project).args([
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
        ]),
        "langgraph dev",
    );
    let theirs = measure(&[&dev], secs);
    drop(dev);
    print("langgraph dev", &theirs);
    println!(
        "\nwarden (sqlite) vs langgraph dev: median latency {:.0}x lower, pause and resume \
         {:.0}x lower, throughput at concurrency {CONCURRENCY} {:.0}x higher",
        theirs.median.as_secs_f64() / ours.median.as_secs_f64(),
        theirs.paused_median.as_secs_f64() / ours.paused_median.as_secs_f64(),
        ours.throughput / theirs.throughput
    );
}

/// `warden serve` on the reference project: SQLite in `data`, or the
/// PostgreSQL database at `database` (compiled plugins still in `data`).
fn warden(root: &Path, data: &Path, database: Option<&Database>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .env_remove("DATABASE_URI")
        .args(["serve", "--no-watch", "--config"])
        .arg(root.join("examples/reference/langgraph.json"))
        .arg("--data-dir")
        .arg(data);
    if let Some(database) = database {
        command.arg("--database-url").arg(&database.uri);
    }
    Server::start(command.arg("--port"), "warden")
}

struct Figures {
    median: Duration,
    p90: Duration,
    max: Duration,
    /// A paused run and its resume, in sequence.
    paused_median: Duration,
    paused_p90: Duration,
    throughput: f64,
    runs: u64,
    /// The servers' CPU per run at concurrency 16, when `/proc` tells.
    cpu_per_run: Option<Duration>,
    /// PostgreSQL's CPU per run over the same window (every `postgres`
    /// process on the machine: meaningful only on the PostgreSQL setups).
    postgres_per_run: Duration,
    /// Calls that did not answer 200 with the run's values.
    failures: Vec<String>,
}

fn print(name: &str, f: &Figures) {
    let cpu = f
        .cpu_per_run
        .map_or("n/a".to_owned(), |d| format!("{:.2} ms", ms(d)));
    println!(
        "{name:>14}: runs.wait sequential median {:.2} ms, p90 {:.2} ms, max {:.2} ms; \
         pause + resume median {:.2} ms, p90 {:.2} ms; \
         concurrency {CONCURRENCY}: {:.1} runs/s ({} runs), server CPU {cpu} per run, \
         postgres CPU {:.2} ms per run",
        ms(f.median),
        ms(f.p90),
        ms(f.max),
        ms(f.paused_median),
        ms(f.paused_p90),
        f.throughput,
        f.runs,
        ms(f.postgres_per_run),
    );
    if !f.failures.is_empty() {
        println!("{name:>14}: {} FAILED calls:", f.failures.len());
        for failure in f.failures.iter().take(10) {
            println!("{:>16}{failure}", "");
        }
    }
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "n/a".to_owned(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Measures the servers in `servers` (replicas of one service: each
/// client sends its requests to them in turn).
fn measure(servers: &[&Server], secs: u64) -> Figures {
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.pid()).collect();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let client = Client::new(&urls);
    // Warm-up: the first run compiles and caches nothing on Warden, but
    // Python imports lazily.
    for _ in 0..3 {
        let thread = client.thread();
        client.wait(&thread).unwrap();
    }
    // One call (or pair) at a time, each on a thread made beforehand:
    // the sorted latencies.
    let sequential = |n: usize, what: &str, call: &dyn Fn(&str) -> Result<(), String>| {
        let threads: Vec<String> = (0..n).map(|_| client.thread()).collect();
        let mut latencies: Vec<Duration> = threads
            .iter()
            .map(|thread| {
                let started = Instant::now();
                if let Err(e) = call(thread) {
                    failures.lock().unwrap().push(format!("{what}: {e}"));
                }
                started.elapsed()
            })
            .collect();
        latencies.sort();
        latencies
    };
    let latencies = sequential(SEQUENTIAL, "sequential", &|t| client.wait(t));
    let paused = sequential(PAUSES, "pause and resume", &|t| client.pause_and_resume(t));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (urls, stop, done, failures) =
                (urls.clone(), stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                let client = Client::new(&urls);
                let thread = client.thread();
                while !stop.load(Ordering::Relaxed) {
                    match client.wait(&thread) {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(format!("concurrent: {e}")),
                    }
                }
            })
        })
        .collect();
    let cpu_before = cpu(&pids);
    let postgres_before = postgres_cpu_seconds();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu_after = cpu(&pids);
    let postgres_after = postgres_cpu_seconds();
    let runs_in_window = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    Figures {
        median: latencies[latencies.len() / 2],
        p90: latencies[latencies.len() * 9 / 10],
        max: *latencies.last().unwrap(),
        paused_median: paused[paused.len() / 2],
        paused_p90: paused[paused.len() * 9 / 10],
        // Over the window only: a call that hangs must not stretch it.
        throughput: runs_in_window as f64 / elapsed.as_secs_f64(),
        runs: runs_in_window,
        cpu_per_run: cpu_before
            .zip(cpu_after)
            .filter(|_| runs_in_window > 0)
            .map(|(a, b)| Duration::from_secs_f64((b - a) / runs_in_window as f64)),
        postgres_per_run: Duration::from_secs_f64(
            (postgres_after - postgres_before).max(0.0) / runs_in_window.max(1) as f64,
        ),
        failures,
    }
}

/// User + system CPU seconds of the processes (and their children),
/// summed; `None` when one cannot be read.
fn cpu(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&pid| tree_cpu_seconds(pid)).sum()
}

/// A keep-alive client as user1 of the reference policy: one connection
/// to each replica, requests sent to them in turn.
struct Client {
    replicas: Vec<(ureq::Agent, String)>,
    next: Cell<usize>,
}

impl Client {
    fn new(urls: &[String]) -> Self {
        let replicas = urls
            .iter()
            .map(|url| {
                let config = ureq::Agent::config_builder()
                    // An echo run takes milliseconds: a call still
                    // unanswered after this is a failure to report.
                    .timeout_global(Some(Duration::from_secs(30)))
                    .http_status_as_error(false)
                    .build();
                (config.into(), url.clone())
            })
            .collect();
        Self {
            replicas,
            next: Cell::new(0),
        }
    }

    /// POSTs to the next replica: the body of a 200, else what went wrong.
    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let turn = self.next.get();
        self.next.set((turn + 1) % self.replicas.len());
        let (agent, url) = &self.replicas[turn];
        let mut response = agent
            .post(format!("{url}{path}"))
            .header("authorization", "Bearer user1-token")
            .header("content-type", "application/json")
            .send(body.to_string())
            .map_err(|e| format!("POST {url}{path}: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("POST {url}{path}: {status}, body unread: {e}"))?;
        if status != 200 {
            return Err(format!("POST {url}{path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST {url}{path}: {e}: {text}"))
    }

    fn thread(&self) -> String {
        self.post("/threads", &json!({})).unwrap()["thread_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A run that pauses before `echo`, then the run that resumes it.
    fn pause_and_resume(&self, thread: &str) -> Result<(), String> {
        let path = format!("/threads/{thread}/runs/wait");
        let body = json!({"assistant_id": "agent", "interrupt_before": ["echo"],
                          "input": {"messages": [{"role": "user", "content": "hello"}]}});
        let values = self.post(&path, &body)?;
        if values.get("seen_user").is_some() {
            return Err(format!("thread {thread}: the run did not pause: {values}"));
        }
        let values = self.post(&path, &json!({"assistant_id": "agent", "input": null}))?;
        if values["seen_user"] != "user1" {
            return Err(format!(
                "thread {thread}: the resume did not run echo: {values}"
            ));
        }
        Ok(())
    }

    fn wait(&self, thread: &str) -> Result<(), String> {
        let body = json!({"assistant_id": "agent",
                          "input": {"messages": [{"role": "user", "content": "hello"}]}});
        let values = self.post(&format!("/threads/{thread}/runs/wait"), &body)?;
        if values["seen_user"] != "user1" {
            return Err(format!("thread {thread}: unexpected values {values}"));
        }
        Ok(())
    }
}

fn langgraph_cli() -> Option<PathBuf> {
    if let Some(cli) = std::env::var_os("LANGGRAPH_CLI") {
        return Some(PathBuf::from(cli));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("langgraph"))
        .find(|p| p.is_file())
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
