//! What an operator sees: the auth decision log (`auth.decision_log`), read
//! back with `warden decisions`; request ids; the Prometheus metrics, with
//! every metric the README and the dashboard name exported.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Client, ServerProcess, component, eventually, root};

/// A project serving `auth` (merged over the reference policy with
/// `auth.cache` and a decision log into `decisions.jsonl`) and the echo
/// graph; the log's path.
fn project(auth: Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = |c: &str| component(c).display().to_string();
    let mut section = json!({
        "path": path("reference_auth"),
        "cache": {"cache_keys": ["authorization"]},
        "decision_log": {
            "path": "decisions.jsonl",
            "headers": ["x-tenant"],
            "user_fields": ["permissions"],
        },
    });
    for (key, value) in auth.as_object().cloned().unwrap_or_default() {
        section[key] = value;
    }
    let config = json!({"graphs": {"agent": path("reference_agent")}, "auth": section});
    std::fs::write(dir.path().join("langgraph.json"), config.to_string()).unwrap();
    let log = dir.path().join("decisions.jsonl");
    (dir, log)
}

fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start(&dir.join("langgraph.json"), &dir.join("data")).expect("starts")
}

/// The log's records, once it holds at least `n`.
async fn records(log: &Path, n: usize) -> Vec<Value> {
    eventually(&format!("{n} decision records"), async || {
        let text = std::fs::read_to_string(log).ok()?;
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record per line"))
            .collect();
        (records.len() >= n).then_some(records)
    })
    .await
}

fn of_request<'a>(records: &'a [Value], id: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["request_id"] == id).collect()
}

/// `warden decisions <args>`: its standard output.
fn decisions(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("decisions")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn each_authentication_and_decision_is_logged_with_its_outcome_handler_and_version() {
    let (dir, log) = project(json!({}));
    let server = start(dir.path());
    let client = server.client();
    let digest = server.client().get("/info").await.json["plugins"][0]["digest"].clone();
    assert!(digest.is_string(), "{digest}");

    // No credentials: the 401 is logged, without an identity.
    let reply = client
        .get("/threads")
        .header("x-request-id", "anonymous")
        .await;
    assert_eq!(reply.status, 401);
    // A thread created with a spoofed owner: the handler's filter, and the
    // owner it stamped over the spoof; the named header and user field.
    let user1 = client.as_user("user1-token");
    let created = user1
        .post("/threads", json!({"metadata": {"owner": "user2"}}))
        .header("x-request-id", "create")
        .header("x-tenant", "acme")
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.headers["x-request-id"], "create");
    let id = created.json["thread_id"].as_str().unwrap().to_owned();
    // A reader may not create threads: the handler's 403 and its detail.
    let denied = client
        .as_user("reader-token")
        .post("/threads", json!({}))
        .header("x-request-id", "denied")
        .await;
    assert_eq!(denied.status, 403);
    // user1 again: `auth.cache` answers, the read is filtered.
    let read = user1
        .get(&format!("/threads/{id}"))
        .header("x-request-id", "read")
        .await;
    assert_eq!(read.status, 200);
    // A request that sent no id gets one.
    let fresh = user1.get(&format!("/threads/{id}")).await;
    let fresh_id = fresh.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&fresh_id).is_ok(), "{fresh_id}");

    let records = records(&log, 9).await;
    for record in &records {
        assert_eq!(record["plugin"]["digest"], digest, "{record}");
        assert_eq!(record["plugin"]["contract"], "warden:auth@0.2.0");
        assert!(record["time"].as_str().is_some_and(|t| t.starts_with("20")));
        assert!(record.get("latency_us").is_some_and(Value::is_u64));
    }
    let anonymous = of_request(&records, "anonymous");
    assert_eq!(anonymous.len(), 1, "{records:?}");
    let record = anonymous[0];
    assert_eq!(
        (
            &record["kind"],
            &record["outcome"],
            &record["status"],
            &record["route"]
        ),
        (
            &json!("authenticate"),
            &json!("deny"),
            &json!(401),
            &json!("/threads")
        ),
        "{record}"
    );
    assert!(record.get("identity").is_none(), "{record}");

    let create = of_request(&records, "create");
    assert_eq!(create.len(), 2, "{records:?}");
    assert_eq!(create[0]["kind"], "authenticate");
    assert_eq!(create[0]["outcome"], "allow");
    assert_eq!(create[0]["identity"], "user1");
    assert_eq!(create[0]["cache"], "miss");
    let decision = create[1];
    assert_eq!(decision["event"], "threads.create", "{decision}");
    assert_eq!(decision["handler"], "threads.create");
    assert_eq!(decision["outcome"], "filter");
    assert_eq!(decision["filter"], json!({"owner": "user1"}));
    assert_eq!(decision["stamped"], json!(["metadata.owner"]));
    assert_eq!(decision["route"], "/threads");
    assert_eq!(decision["method"], "POST");
    assert_eq!(decision["headers"], json!({"x-tenant": "acme"}));
    let permissions = &decision["user"]["permissions"];
    assert!(
        permissions
            .as_array()
            .is_some_and(|p| p.contains(&json!("threads:create"))),
        "{decision}"
    );

    let denied = of_request(&records, "denied");
    let decision = denied.last().unwrap();
    assert_eq!(
        (
            &decision["identity"],
            &decision["outcome"],
            &decision["status"]
        ),
        (&json!("reader"), &json!("deny"), &json!(403)),
        "{decision}"
    );
    assert_eq!(decision["detail"], "Missing permission: threads:create");

    let read = of_request(&records, "read");
    assert_eq!(read[0]["cache"], "hit", "{read:?}");
    assert_eq!(read[1]["event"], "threads.read");
    assert_eq!(read[1]["handler"], "*");
    assert_eq!(read[1]["route"], "/threads/{thread_id}");
    assert_eq!(of_request(&records, &fresh_id).len(), 2);

    // `warden decisions` answers the common questions.
    let log_arg = log.to_str().unwrap();
    let denials = decisions(&[log_arg, "--identity", "reader", "--outcome", "deny"]);
    let denials: Vec<Value> = denials
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["request_id"], "denied");
    let request = decisions(&[log_arg, "--request-id", "create"]);
    assert_eq!(request.lines().count(), 2, "{request}");
    let by_digest = decisions(&[log_arg, "--by-digest"]);
    let short = &digest.as_str().unwrap()[..12];
    assert!(
        by_digest.lines().any(|l| l.starts_with(short)),
        "{by_digest}"
    );
}

#[tokio::test]
async fn a_plugin_fault_is_logged_and_counted_by_kind() {
    let (dir, log) = project(
        json!({"path": component("fixture_hostile").display().to_string(), "timeout_ms": 200}),
    );
    let server = start(dir.path());
    let reply = server
        .client()
        .as_user("anyone")
        .get("/spin/forever")
        .header("x-request-id", "spinning")
        .await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    let records = records(&log, 1).await;
    let record = of_request(&records, "spinning")[0];
    assert_eq!(record["outcome"], "fault", "{record}");
    assert_eq!(record["fault"], "timeout");
    assert_eq!(record["status"], 500);
    assert_eq!(record["route"], "/spin/forever");

    let metrics = server.client().get("/metrics").await.text;
    assert!(
        metrics.contains("warden_plugin_faults_total{plugin=\"auth\",kind=\"timeout\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "warden_plugin_calls_total{plugin=\"auth\",event=\"authenticate\",outcome=\"fault\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_decision_log_records_total 1"),
        "{metrics}"
    );
}

/// The leaky fixture's secret: a quote, a backslash and a non-ASCII letter.
const SECRET: &str = "pä55\"w0rd\\leak-me";

#[tokio::test]
async fn no_secret_and_no_credential_reaches_the_decision_log() {
    let (dir, log) = project(json!({
        "path": component("fixture_leaky").display().to_string(),
        "cache": null,
        "secrets": {"LEAKY_SECRET": "env:WARDEN_TEST_LEAKY_SECRET"},
        "decision_log": {"path": "decisions.jsonl", "user_fields": ["note", "permissions"]},
    }));
    let server = ServerProcess::start_with(
        &["serve"],
        &dir.path().join("langgraph.json"),
        &dir.path().join("data"),
        &[("WARDEN_TEST_LEAKY_SECRET", Path::new(SECRET))],
    )
    .expect("starts");
    let alice = server.client().as_user("alice");
    // The user carries the secret in `note`; the handler stamps it into
    // the thread's metadata; `/escaped` answers 401 with it in the detail.
    assert_eq!(alice.post("/threads", json!({})).await.status, 200);
    assert_eq!(alice.get("/escaped").await.status, 401);
    let records = records(&log, 3).await;
    let bytes = std::fs::read_to_string(&log).unwrap();
    for form in [
        SECRET,
        r#"pä55\"w0rd\\leak-me"#,
        r#"p\u00e455\"w0rd\\leak-me"#,
        "Bearer",
    ] {
        assert!(!bytes.contains(form), "the log shows {form:?}: {bytes}");
    }
    let note = records
        .iter()
        .find_map(|r| r["user"]["note"].as_str())
        .expect("the note field is logged");
    assert!(note.contains("[secret]"), "{note}");
}

#[test]
fn a_decision_log_that_would_show_credentials_is_refused() {
    let (dir, _) = project(json!({
        "decision_log": {"path": "decisions.jsonl", "headers": ["Authorization"]},
    }));
    let (code, log) = ServerProcess::refused(
        &dir.path().join("langgraph.json"),
        &dir.path().join("data"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        log.contains("carries credentials and is never logged"),
        "{log}"
    );
}

/// The families `/metrics` exports, counters with `_total`.
async fn exported(client: &Client) -> Vec<String> {
    let reply = client.get("/metrics").await;
    assert_eq!(reply.status, 200);
    reply
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `warden_…` metric name in `text`, without a histogram's
/// `_bucket`, `_sum` and `_count` suffixes.
fn named(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("warden_") && w.len() > "warden_".len())
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s))
                .unwrap_or(w)
                .to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn every_metric_the_readme_and_the_dashboard_name_is_exported() {
    let (dir, _) = project(json!({}));
    let server = start(dir.path());
    let client = server.client();
    let user1 = client.as_user("user1-token");
    let thread = user1.post("/threads", json!({})).await.json["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = json!({"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}});
    let reply = user1
        .post(&format!("/threads/{thread}/runs/wait"), run)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(user1.get(&format!("/threads/{thread}")).await.status, 200);
    let metrics = client.get("/metrics").await.text;
    assert!(
        metrics.contains(
            "warden_http_requests_total{method=\"POST\",route=\"/threads\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_runs_finished_total{status=\"success\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("warden_plugin_info{plugin=\"auth\","));
    // Each route's storage work, reads and writes alike.
    for route in [
        "/threads",
        "/threads/{thread_id}",
        "/threads/{thread_id}/runs/wait",
    ] {
        let count = format!(
            "warden_storage_operation_duration_seconds_count{{backend=\"sqlite\",operation=\"{route}\"}}"
        );
        assert!(metrics.contains(&count), "{count} missing: {metrics}");
    }
    assert!(
        metrics.contains(
            "warden_plugin_calls_total{plugin=\"agent\",event=\"run\",outcome=\"allow\"} 1"
        ),
        "{metrics}"
    );
    let exported = exported(&client).await;
    // The README's metrics table: its rows start with a metric's name.
    let readme: String = std::fs::read_to_string(root().join("README.md"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| `warden_"))
        .collect::<Vec<_>>()
        .join("\n");
    let dashboard = std::fs::read_to_string(root().join("deploy/grafana/warden.json")).unwrap();
    for (what, text) in [("README.md", &readme), ("the dashboard", &dashboard)] {
        let names = named(text);
        assert!(names.len() > 10, "{what} names only {names:?}");
        let missing: Vec<&String> = names.iter().filter(|n| !exported.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "{what} names metrics /metrics lacks: {missing:?}"
        );
    }
}

/// A stand-in OTLP collector on a free loopback port: keeps the bodies of
/// the requests it receives (`POST /v1/traces`, protobuf) and answers 200.
struct Collector {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Collector {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut length = 0;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let header = line.trim_end().to_ascii_lowercase();
                            if header.is_empty() {
                                break;
                            }
                            if let Some(value) = header.strip_prefix("content-length:") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        kept.lock().unwrap().extend_from_slice(&body);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, bodies }
    }

    fn received(&self) -> Vec<u8> {
        self.bodies.lock().unwrap().clone()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn with_an_otlp_endpoint_each_request_is_a_span_with_its_auth_and_storage_work() {
    let collector = Collector::start();
    let (dir, _) = project(json!({}));
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let server = ServerProcess::start_with(
        &["serve"],
        &dir.path().join("langgraph.json"),
        &dir.path().join("data"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", Path::new(&endpoint)),
            ("OTEL_BSP_SCHEDULE_DELAY", Path::new("50")),
        ],
    )
    .expect("starts");
    let user1 = server.client().as_user("user1-token");
    let thread = user1.post("/threads", json!({})).await.json["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = user1
        .get(&format!("/threads/{thread}"))
        .header("x-request-id", "trace-me-7f3a")
        .await;
    assert_eq!(read.status, 200);
    // The spans' names and the request's id, as the protobuf carries them.
    let received = eventually("the spans at the collector", async || {
        let received = collector.received();
        let all = [
            "trace-me-7f3a",
            "authenticate",
            "authorize",
            "storage",
            "warden",
        ]
        .iter()
        .all(|n| contains(&received, n));
        all.then_some(received)
    })
    .await;
    assert!(contains(&received, "request"));
    assert!(
        !contains(&received, "user1-token"),
        "a credential was exported"
    );
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_log_lines_carry_the_request_id() {
    // The hostile fixture's `/log` logs through the host.
    let hostile = component("fixture_hostile").display().to_string();
    let (dir, _) = project(json!({"path": hostile, "cache": null}));
    let server = start(dir.path());
    let reply = server
        .client()
        .as_user("anyone")
        .get("/log")
        .header("x-request-id", "log-me-1")
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.headers["x-request-id"], "log-me-1");
    let log = eventually("the plugin's log line", async || {
        let log = server.log();
        log.lines()
            .any(|l| l.contains("log-me-1") && l.contains("plugin"))
            .then_some(log)
    })
    .await;
    assert!(!log.contains("exporting request spans"), "{log}");
}

#[tokio::test]
async fn decisions_by_digest_show_what_a_plugin_swap_changed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("auth.wasm");
    std::fs::copy(component("reference_auth"), &live).unwrap();
    let config = json!({"auth": {
        "path": "auth.wasm",
        "decision_log": {"path": "decisions.jsonl"},
    }});
    std::fs::write(dir.path().join("langgraph.json"), config.to_string()).unwrap();
    let log = dir.path().join("decisions.jsonl");
    let server = start(dir.path());
    let client = server.client();
    let user1 = client.as_user("user1-token");
    let digest = async || client.get("/info").await.json["plugins"][0]["digest"].clone();
    let before = digest().await;
    assert_eq!(user1.post("/threads", json!({})).await.status, 200);

    // The tutorial's policy, renamed into place: authentication only.
    let aside = dir.path().join("auth.wasm.new");
    std::fs::copy(component("tutorial_auth"), &aside).unwrap();
    std::fs::rename(&aside, &live).unwrap();
    let after = eventually("the swap", async || {
        let now = digest().await;
        (now != before).then_some(now)
    })
    .await;
    assert_eq!(user1.post("/threads", json!({})).await.status, 200);

    records(&log, 4).await;
    let table = decisions(&[log.to_str().unwrap(), "--by-digest"]);
    let short = |d: &Value| d.as_str().unwrap()[..12].to_owned();
    let (a, b) = (short(&before), short(&after));
    assert!(
        table.contains(&format!("{a} -> {b}: outcomes changed for")),
        "{table}"
    );
    assert!(
        table.contains("threads.create: filter 1 -> allow 1"),
        "{table}"
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].starts_with(&a) && lines[2].starts_with(&b),
        "{table}"
    );
}
