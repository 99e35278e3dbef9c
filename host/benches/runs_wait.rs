//! End-to-end `runs.wait` on the echo graph: Warden beside `langgraph dev`.
//!
//! Starts `warden serve` (this build, release) on `examples/reference`
//! with a fresh data dir and measures, over HTTP on loopback with a
//! keep-alive client as the SDK holds one:
//! - the latency of `POST /threads/{id}/runs/wait` (the SDK's
//!   `runs.wait`), 50 sequential calls, each on a thread of its own made
//!   beforehand (untimed): median, p90, max;
//! - the throughput of the same at concurrency 16 (16 clients, each
//!   calling in a loop for `WARDEN_BENCH_SECS`, default 10).
//!
//! When the `langgraph` CLI of `langgraph-cli[inmem]` is found (`LANGGRAPH_CLI`,
//! or `langgraph` on `PATH`), the same measures run against `langgraph dev`
//! serving a copy of `shared/reference/` (`LANGGRAPH_REFERENCE`, default
//! `../shared/reference` from the workspace root), and the ratios print.
//!
//! `cargo bench -p warden --bench runs_wait` (builds the guests first if
//! they are missing: `cargo build --release --target wasm32-wasip2
//! --workspace --exclude warden`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SEQUENTIAL: usize = 50;
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

    let data = tempdir();
    let warden = Server::start(
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--no-watch", "--config"])
            .arg(root.join("examples/reference/langgraph.json"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--port"),
        "warden",
    );
    let ours = measure(&warden.url, secs);
    drop(warden);
    print("warden serve", &ours);

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
    let theirs = measure(&dev.url, secs);
    drop(dev);
    print("langgraph dev", &theirs);
    println!(
        "\nwarden vs langgraph dev: median latency {:.0}x lower, throughput at concurrency {CONCURRENCY} {:.0}x higher",
        theirs.median.as_secs_f64() / ours.median.as_secs_f64(),
        ours.throughput / theirs.throughput
    );
}

struct Figures {
    median: Duration,
    p90: Duration,
    max: Duration,
    throughput: f64,
    runs: u64,
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:>14}: runs.wait sequential median {:.2} ms, p90 {:.2} ms, max {:.2} ms; \
         concurrency {CONCURRENCY}: {:.1} runs/s ({} runs)",
        ms(f.median),
        ms(f.p90),
        ms(f.max),
        f.throughput,
        f.runs
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn measure(url: &str, secs: u64) -> Figures {
    let client = Client::new(url);
    // Warm-up: the first run compiles and caches nothing on Warden, but
    // Python imports lazily.
    for _ in 0..3 {
        let thread = client.thread();
        client.wait(&thread);
    }
    let threads: Vec<String> = (0..SEQUENTIAL).map(|_| client.thread()).collect();
    let mut latencies: Vec<Duration> = threads
        .iter()
        .map(|thread| {
            let started = Instant::now();
            client.wait(thread);
            started.elapsed()
        })
        .collect();
    latencies.sort();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (url, stop, done) = (url.to_owned(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let client = Client::new(&url);
                let thread = client.thread();
                while !stop.load(Ordering::Relaxed) {
                    client.wait(&thread);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed();
    let runs = done.load(Ordering::Relaxed);
    Figures {
        median: latencies[latencies.len() / 2],
        p90: latencies[latencies.len() * 9 / 10],
        max: *latencies.last().unwrap(),
        throughput: runs as f64 / elapsed.as_secs_f64(),
        runs,
    }
}

/// A keep-alive client as user1 of the reference policy.
struct Client {
    agent: ureq::Agent,
    url: String,
}

impl Client {
    fn new(url: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Self {
            agent: config.into(),
            url: url.to_owned(),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("authorization", "Bearer user1-token")
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn thread(&self) -> String {
        self.post("/threads", &json!({}))["thread_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn wait(&self, thread: &str) {
        let body = json!({"assistant_id": "agent",
                          "input": {"messages": [{"role": "user", "content": "hello"}]}});
        let values = self.post(&format!("/threads/{thread}/runs/wait"), &body);
        assert_eq!(values["seen_user"], "user1", "{values}");
    }
}

/// A server process on a free port, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(command: &mut Command, name: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(300);
        while ureq::get(format!("{url}/ok")).call().is_err() {
            assert!(Instant::now() < deadline, "{name} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
