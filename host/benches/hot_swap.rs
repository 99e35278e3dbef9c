//! Swap latency of `warden serve`: a plugin file renamed into place → the
//! first response under the new policy, as a client sees it.
//!
//! Starts `warden serve` on a copy of the reference policy, then replaces
//! the live `auth.wasm` by rename, alternating the reference and the
//! tutorial policy (user2 reading user1's thread: 404 under one, 200 under
//! the other), and polls that read until the answer flips:
//!
//! - **new digest**: every file is a policy with a fresh custom section, so
//!   each swap compiles (no cache of any kind can help);
//! - **cached digest**: the two plain policies, already compiled: the
//!   in-memory cache of recent components serves them.
//!
//! Beside the client's figure, the server's own reload time (read, digest,
//! compile or cache hit, validate, swap; from its log) shows where the time
//! goes. `cargo bench -p warden --bench hot_swap`; `WARDEN_BENCH_SWAPS`
//! (default 100) swaps of each kind.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warden::plugin::{AuthPlugin, Limits, Runtime, RuntimeOptions};

/// Swaps of each kind unless `WARDEN_BENCH_SWAPS` says otherwise.
const DEFAULT_SWAPS: usize = 100;
/// The pause between two polls of the policy: the resolution of the figures.
const POLL_PAUSE: Duration = Duration::from_micros(250);
/// The issue's targets for p99, in ms.
const TARGET_NEW_P99_MS: f64 = 300.0;
const TARGET_CACHED_P99_MS: f64 = 5.0;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("hot_swap: run it with `cargo bench -p warden --bench hot_swap`");
        return;
    }
    let swaps = std::env::var("WARDEN_BENCH_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SWAPS);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = |name: &str| {
        let path = root.join(format!("target/wasm32-wasip2/release/{name}.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build the guests first: \
                 cargo build --release --target wasm32-wasip2 --workspace --exclude warden",
                path.display()
            )
        })
    };
    let policies = [
        (guest("tutorial_auth"), 200),
        (guest("reference_auth"), 404),
    ];

    let mut alone = load_alone(&policies[1].0, 20);
    println!(
        "loading the reference plugin alone (in-process, no cache: compile + validate), 20 loads: p50 {:.2} ms  p99 {:.2} ms",
        percentile(&mut alone, 0.5),
        percentile(&mut alone, 0.99)
    );

    let scratch = tempfile::tempdir().expect("a temporary directory");
    let live = scratch.path().join("auth.wasm");
    std::fs::write(&live, &policies[1].0).expect("writing auth.wasm");
    let config = scratch.path().join("langgraph.json");
    std::fs::write(
        &config,
        r#"{"graphs": {}, "auth": {"path": "./auth.wasm"}}"#,
    )
    .expect("writing langgraph.json");
    let mut server = Server::start(&config, &scratch.path().join("data"));
    let client = Client::new(server.port);
    let thread = client.user1_thread();
    assert_eq!(
        client.user2_reads(&thread),
        404,
        "the reference policy is live"
    );

    let deploy = |bytes: &[u8]| {
        let aside = scratch.path().join(".auth.wasm.new");
        std::fs::write(&aside, bytes).expect("writing the new version");
        std::fs::rename(&aside, &live).expect("renaming it into place");
        Instant::now()
    };
    let measure = |server: &mut Server, label: &str, fresh: bool| {
        let mut client_ms = Vec::with_capacity(swaps);
        for swap in 0..swaps {
            let (policy, expected) = &policies[swap % 2];
            let bytes = if fresh {
                with_custom_section(policy, label, swap)
            } else {
                policy.clone()
            };
            let renamed = deploy(&bytes);
            while client.user2_reads(&thread) != *expected {
                assert!(
                    renamed.elapsed() < Duration::from_secs(30),
                    "swap {swap} ({label}) never became live"
                );
                // A pause between polls, so that polling does not take the
                // cores the compilation needs.
                std::thread::sleep(POLL_PAUSE);
            }
            client_ms.push(renamed.elapsed().as_secs_f64() * 1e3);
        }
        // The server logs one line per swap with its own reload time.
        let server_ms = server.reload_times(swaps);
        report(label, &mut client_ms, &server_ms);
        client_ms
    };
    println!("{swaps} swaps of each kind, rename → first response under the new policy:");
    // Warm the two plain policies into the cache before timing cached swaps.
    let mut new_digest = measure(&mut server, "new digest (compiles)", true);
    for (policy, expected) in &policies {
        deploy(policy);
        while client.user2_reads(&thread) != *expected {}
    }
    server.reload_times(2);
    let mut cached = measure(&mut server, "cached digest", false);

    println!(
        "  new digest: client p50 / load-alone p50 = {:.2}x (the rest is the watch, the swap and the first request)",
        percentile(&mut new_digest, 0.5) / percentile(&mut alone, 0.5)
    );
    println!("\ntargets:");
    for (name, ms, target) in [
        (
            "new digest p99",
            percentile(&mut new_digest, 0.99),
            TARGET_NEW_P99_MS,
        ),
        (
            "cached digest p99",
            percentile(&mut cached, 0.99),
            TARGET_CACHED_P99_MS,
        ),
    ] {
        let verdict = if ms <= target { "met" } else { "NOT MET" };
        println!("  [{verdict}] {name} ≤ {target} ms: {ms:.2} ms");
    }
}

/// Times `n` loads of `component`, each with a new digest, by a runtime
/// without a disk cache: what any swap to a new version must pay.
fn load_alone(component: &[u8], n: usize) -> Vec<f64> {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("a runtime");
    (0..n)
        .map(|i| {
            let bytes = with_custom_section(component, "alone", i);
            let started = Instant::now();
            AuthPlugin::from_bytes(
                &runtime,
                "auth",
                Path::new("auth.wasm"),
                &bytes,
                Limits::default(),
            )
            .expect("the reference plugin loads");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn report(label: &str, client_ms: &mut [f64], server_ms: &[f64]) {
    let mut server_ms = server_ms.to_vec();
    println!(
        "  {label:<22} client p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms   server reload p50 {:7.2} ms  p99 {:7.2} ms",
        percentile(client_ms, 0.5),
        percentile(client_ms, 0.99),
        percentile(client_ms, 1.0),
        percentile(&mut server_ms, 0.5),
        percentile(&mut server_ms, 0.99),
    );
}

/// The `q` quantile (nearest rank) of `values`.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// `component` with a custom section appended: the same plugin, another
/// digest.
fn with_custom_section(component: &[u8], label: &str, n: usize) -> Vec<u8> {
    let name = b"warden-bench";
    let payload = format!("{label} {n} {:?}", Instant::now());
    let mut content = leb128(name.len());
    content.extend_from_slice(name);
    content.extend_from_slice(payload.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(content.len()));
    out.extend(content);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The release `warden serve`, on a port it picks, its log read line by line.
struct Server {
    child: Child,
    port: u16,
    log: BufReader<std::process::ChildStderr>,
}

impl Server {
    #[allow(
        clippy::zombie_processes,
        reason = "Drop kills and waits for the child"
    )]
    fn start(config: &Path, data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--port", "0", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting warden serve");
        let mut log = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        loop {
            line.clear();
            if log.read_line(&mut line).expect("reading the log") == 0 {
                let _ = child.wait();
                panic!("warden serve exited before listening");
            }
            if let Some((_, rest)) = line.split_once("warden listening on http://127.0.0.1:") {
                let port = rest.trim().parse().expect("a port");
                return Self { child, port, log };
            }
        }
    }

    /// The reload times (ms) of the next `n` swaps the server logs.
    fn reload_times(&mut self, n: usize) -> Vec<f64> {
        let mut times = Vec::with_capacity(n);
        let mut line = String::new();
        while times.len() < n {
            line.clear();
            if self.log.read_line(&mut line).expect("reading the log") == 0 {
                panic!("warden serve exited");
            }
            if line.contains("plugin swapped")
                && let Some((_, rest)) = line.split_once("elapsed_ms=")
            {
                let ms = rest.split_whitespace().next().unwrap_or("");
                times.push(ms.parse().expect("elapsed_ms is a number"));
            }
        }
        times
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive client.
struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(port: u16) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        Self {
            agent: config.into(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn user1_thread(&self) -> String {
        let mut response = self
            .agent
            .post(format!("{}/threads", self.base))
            .header("authorization", "Bearer user1-token")
            .header("content-type", "application/json")
            .send("{}")
            .expect("POST /threads");
        let mut body = String::new();
        response
            .body_mut()
            .as_reader()
            .read_to_string(&mut body)
            .expect("reading the thread");
        let thread: serde_json::Value = serde_json::from_str(&body).expect("a thread");
        thread["thread_id"].as_str().expect("thread_id").to_owned()
    }

    fn user2_reads(&self, thread: &str) -> u16 {
        let mut response = self
            .agent
            .get(format!("{}/threads/{thread}", self.base))
            .header("authorization", "Bearer user2-token")
            .call()
            .expect("GET /threads/{id}");
        let _ = response.body_mut().read_to_string();
        response.status().as_u16()
    }
}
