//! A model's tokens through Warden, against the same tokens straight from
//! the model server: `examples/assistant` served by `warden serve` (this
//! build, release, SQLite), its model the scripted OpenAI-compatible
//! server of the tests (`tests/e2e/model_server.rs`) on loopback, pacing
//! its tokens like a model generating them (`WARDEN_BENCH_TOKEN_GAP_MS`,
//! default 2 ms; `WARDEN_BENCH_TOKENS` per answer, default 20).
//!
//! Measured in one run, side by side, `WARDEN_BENCH_ITERS` times each
//! (default 50), sequentially:
//! - `direct`: `POST /v1/chat/completions` to the model server itself, read
//!   as server-sent events;
//! - `warden`: `POST /threads/{id}/runs/stream` with
//!   `stream_mode: "messages-tuple"` on a thread made beforehand
//!   (untimed), authenticated by the reference policy: the run's graph
//!   instance sends the same request over `wasi:http` and streams each
//!   token as an `AIMessageChunk`.
//!
//! Printed: time to first token (request sent to first token read), p50
//! and p99; the delay of each token (the model server handing it to its
//! connection to the client reading it: loopback, SSE, and for Warden the
//! sandbox's HTTP, the graph's parsing, the run's stream), p50 and p99 over
//! every token; and the whole answer.
//!
//! `cargo bench -p warden --bench first_token` (needs the guests built:
//! `cargo build --release --target wasm32-wasip2 --workspace --exclude
//! warden`).

#[path = "../tests/e2e/model_server.rs"]
#[allow(dead_code)]
mod model_server;

#[path = "../tests/e2e/support/background.rs"]
mod background;

/// What `model_server` takes from the tests' `support`.
mod support {
    pub use super::background::Background;
}

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use model_server::{Answer, ModelServer};
use serde_json::{Value, json};

mod common;
use common::{Server, env_or};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if !std::env::args().any(|a| a == "--bench") {
        println!("first_token: run it with `cargo bench -p warden --bench first_token`");
        return;
    }
    let iters = env_or("WARDEN_BENCH_ITERS", 50) as usize;
    let tokens = env_or("WARDEN_BENCH_TOKENS", 20) as usize;
    let gap = Duration::from_millis(env_or("WARDEN_BENCH_TOKEN_GAP_MS", 2));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let component = target(&root).join("wasm32-wasip2/release/assistant_agent.wasm");
    let auth = target(&root).join("wasm32-wasip2/release/reference_auth.wasm");
    assert!(
        component.is_file() && auth.is_file(),
        "build the guests first: cargo build --release --target wasm32-wasip2 --workspace \
         --exclude warden"
    );

    // The model server runs on its own runtime, on its own thread.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let model = runtime.block_on(async { ModelServer::start() });
    model.pace(gap);
    let words: Vec<String> = (0..tokens).map(|i| format!("w{i} ")).collect();
    let answer = || Answer::Tokens(words.clone());

    let dir = std::env::temp_dir().join(format!("warden-first-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("langgraph.json");
    let text = json!({
        "graphs": {"assistant": {
            "path": component,
            "config": {"base_url": model.base_url(), "model": "bench-model"},
            "allowed_hosts": [model.origin()],
        }},
        "auth": {"path": auth, "disable_studio_auth": true},
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let warden = Server::start(
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .env_remove("DATABASE_URI")
            .args(["serve", "--no-watch", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--port"),
        "warden",
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();

    // One warm-up of each, not counted.
    model.answer(answer());
    direct(&agent, &model, tokens);
    model.answer(answer());
    let thread = new_thread(&agent, &warden.url);
    through_warden(&agent, &warden.url, &thread, tokens);
    model.take_sent();

    let mut sides = Vec::new();
    for side in ["direct", "warden"] {
        let mut figures = Figures::default();
        for _ in 0..iters {
            model.answer(answer());
            let run = if side == "direct" {
                direct(&agent, &model, tokens)
            } else {
                let thread = new_thread(&agent, &warden.url);
                through_warden(&agent, &warden.url, &thread, tokens)
            };
            let sent = model.take_sent();
            assert_eq!(sent.len(), tokens, "{side}: the model sent every token");
            figures.add(&run, &sent);
        }
        sides.push((side, figures));
    }
    println!(
        "first_token: {iters} answers of {tokens} tokens, {} ms apart, sequential",
        gap.as_millis()
    );
    for (side, f) in &sides {
        f.print(side);
    }
    let (direct, warden) = (&sides[0].1, &sides[1].1);
    println!(
        "   overhead: first token +{:.2} ms (p50), +{:.2} ms (p99); per token +{:.3} ms (p50), \
         +{:.3} ms (p99)",
        ms(percentile(&warden.first, 50)) - ms(percentile(&direct.first, 50)),
        ms(percentile(&warden.first, 99)) - ms(percentile(&direct.first, 99)),
        ms(percentile(&warden.delay, 50)) - ms(percentile(&direct.delay, 50)),
        ms(percentile(&warden.delay, 99)) - ms(percentile(&direct.delay, 99)),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn target(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// When the request left, and when each token was read.
struct Timed {
    start: Instant,
    tokens: Vec<Instant>,
    end: Instant,
}

#[derive(Default)]
struct Figures {
    first: Vec<Duration>,
    delay: Vec<Duration>,
    whole: Vec<Duration>,
}

impl Figures {
    fn add(&mut self, run: &Timed, sent: &[Instant]) {
        self.first.push(run.tokens[0] - run.start);
        self.whole.push(run.end - run.start);
        for (read, sent) in run.tokens.iter().zip(sent) {
            self.delay.push(read.saturating_duration_since(*sent));
        }
    }

    fn print(&self, side: &str) {
        println!(
            "{side:>11}: first token p50 {:.2} ms, p99 {:.2} ms; token delay p50 {:.3} ms, \
             p99 {:.3} ms; whole answer p50 {:.2} ms",
            ms(percentile(&self.first, 50)),
            ms(percentile(&self.first, 99)),
            ms(percentile(&self.delay, 50)),
            ms(percentile(&self.delay, 99)),
            ms(percentile(&self.whole, 50)),
        );
    }
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads server-sent events from `reader`, calling `event(name, data)` for
/// each; stops at the end of the body.
fn read_events(reader: impl std::io::Read, mut event: impl FnMut(&str, &str)) {
    let mut name = String::new();
    for line in BufReader::new(reader).lines() {
        let line = line.expect("the stream reads");
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("event:") {
            name = rest.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data:") {
            event(&name, data.trim());
        }
    }
}

fn direct(agent: &ureq::Agent, model: &ModelServer, tokens: usize) -> Timed {
    let body = json!({"model": "bench-model", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let start = Instant::now();
    let mut response = agent
        .post(format!("{}/chat/completions", model.base_url()))
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("the model answers");
    let mut read = Vec::new();
    read_events(response.body_mut().as_reader(), |_, data| {
        let chunk: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if chunk["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            read.push(Instant::now());
        }
    });
    assert_eq!(read.len(), tokens, "direct: every token arrived");
    Timed {
        start,
        tokens: read,
        end: Instant::now(),
    }
}

fn new_thread(agent: &ureq::Agent, url: &str) -> String {
    let mut response = agent
        .post(format!("{url}/threads"))
        .header("authorization", "Bearer user1-token")
        .header("content-type", "application/json")
        .send("{}")
        .expect("a thread");
    let thread: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap())
        .expect("a thread as JSON");
    thread["thread_id"].as_str().expect("an id").to_owned()
}

fn through_warden(agent: &ureq::Agent, url: &str, thread: &str, tokens: usize) -> Timed {
    let body = json!({"assistant_id": "assistant", "stream_mode": "messages-tuple",
                      "input": {"messages": [{"role": "user", "content": "hi"}]}});
    let start = Instant::now();
    let mut response = agent
        .post(format!("{url}/threads/{thread}/runs/stream"))
        .header("authorization", "Bearer user1-token")
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("the run streams");
    assert_eq!(response.status(), 200);
    let mut read = Vec::new();
    let mut failed = None;
    read_events(response.body_mut().as_reader(), |name, data| {
        if name == "error" {
            failed = Some(data.to_owned());
        }
        if name != "messages" {
            return;
        }
        let chunk: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if chunk[0]["content"].as_str().is_some_and(|t| !t.is_empty()) {
            read.push(Instant::now());
        }
    });
    assert!(failed.is_none(), "the run failed: {failed:?}");
    assert_eq!(read.len(), tokens, "warden: every token arrived");
    Timed {
        start,
        tokens: read,
        end: Instant::now(),
    }
}
