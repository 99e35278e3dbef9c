//! Bounds on what a client can make `warden serve` hold: bodies read only
//! once authenticated and only up to their route's limit, heads and bodies
//! that must arrive in time, a connection limit, per-user quotas (streams,
//! runs in flight, crons), the events kept in memory, and a shutdown that
//! ends streams and settles runs in flight. Each talks to a real server
//! over raw sockets where the bytes on the wire matter.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::{Value, json};

use super::support::{
    CEILING, Client, ServerProcess, TestServer, component, eventually, unhurried_plugin,
};

/// A server with the reference policy (30 s deadline), the echo graph
/// `agent`, the `hostile` fixture graph (60 s deadline), these `limits`
/// and extra `serve` arguments.
fn server_with(dir: &Path, limits: Value, args: &[&str]) -> ServerProcess {
    let config = dir.join("langgraph.json");
    let path = |c: &str| component(c).display().to_string();
    std::fs::write(
        &config,
        json!({
            "graphs": {
                "agent": path("reference_agent"),
                "hostile": {"path": path("hostile_graph"), "timeout_ms": 60000},
            },
            // A deadline no loaded machine reaches: these are limits on
            // what clients make the server hold, not on time.
            "auth": {"path": path("reference_auth"), "timeout_ms": 30000},
            "limits": limits,
        })
        .to_string(),
    )
    .unwrap();
    let mut serve = vec!["serve"];
    serve.extend_from_slice(args);
    ServerProcess::start_with(&serve, &config, &dir.join("data"), &[]).expect("warden starts")
}

fn server(dir: &Path, limits: Value) -> ServerProcess {
    server_with(dir, limits, &[])
}

fn connect(server: &ServerProcess) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(CEILING)).unwrap();
    stream.set_write_timeout(Some(CEILING)).unwrap();
    stream
}

/// One response read off a socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// The head, lower-cased.
    head: String,
    body: Value,
}

/// Reads one response (a `Content-Length` body); panics if none comes
/// within the ceiling.
fn read_reply(stream: &mut TcpStream) -> Raw {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if buffer.len() >= end + 4 + length {
                let body = &buffer[end + 4..end + 4 + length];
                return Raw {
                    status: head[9..12].parse().unwrap(),
                    body: serde_json::from_slice(body).unwrap_or(Value::Null),
                    head,
                };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "the connection closed before a whole response: {:?}",
                String::from_utf8_lossy(&buffer)
            ),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "no response within {CEILING:?} ({e}): {:?}",
                String::from_utf8_lossy(&buffer)
            ),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads until the server closes the connection: what it sent, or `None`
/// if it is still open after the ceiling.
fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&received).into_owned());
            }
            Err(_) => return None,
        }
    }
}

/// `method path` as `token` (none when empty): the status and the JSON
/// body.
async fn call(
    client: &Client,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let reply = client.as_user(token).send(method, path, body.clone()).await;
    (reply.status.as_u16(), reply.json)
}

/// [`call`], with the body as text (an SSE stream, read to its end).
async fn call_text(
    client: &Client,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, String) {
    let reply = client.as_user(token).send(method, path, body.clone()).await;
    (reply.status.as_u16(), reply.text)
}

/// `/metrics?format=json`.
async fn metrics(client: &Client) -> Value {
    call(client, "GET", "/metrics?format=json", "", &Value::Null)
        .await
        .1
}

async fn new_thread(client: &Client, token: &str) -> String {
    client
        .as_user(token)
        .create_thread(json!({}))
        .await
        .thread_id
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_unauthenticated_body_is_refused_from_the_head_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), json!({}));
    for (credentials, status, named) in [
        ("", 401, ""),
        ("Authorization: Bearer nobody\r\n", 401, ""),
        // Authenticated, but announcing more than the route takes.
        (
            "Authorization: Bearer user1-token\r\n",
            413,
            "limits.body_kib",
        ),
    ] {
        let mut stream = connect(&server);
        write!(
            stream,
            "POST /threads HTTP/1.1\r\nHost: 127.0.0.1\r\n{credentials}\
             Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
        )
        .unwrap();
        // A sliver of the 50 MB announced: the answer comes without the rest.
        stream.write_all(&vec![b' '; 64 * 1024]).unwrap();
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status, status, "{credentials}: {reply:?}");
        assert!(detail(&reply.body).contains(named), "{reply:?}");
    }
}

#[tokio::test]
async fn the_body_of_a_request_that_fails_authentication_is_never_read() {
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;
    let app = TestServer::new(Some(unhurried_plugin("reference_auth")));
    for (token, status) in [("", 401), ("nobody", 401), ("user1-token", 200)] {
        // A body that counts the bytes the server takes from it.
        let taken = Arc::new(AtomicUsize::new(0));
        let counter = taken.clone();
        let chunks = futures_util::stream::iter(0..64).map(move |_| {
            let chunk = axum::body::Bytes::from(" ".repeat(1024));
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
            Ok::<_, std::io::Error>(chunk)
        });
        let mut request =
            axum::http::Request::post("/threads").header("content-type", "application/json");
        if !token.is_empty() {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = axum::body::Body::from_stream(chunks.chain(futures_util::stream::iter([Ok(
            axum::body::Bytes::from("{}"),
        )])));
        let response = app
            .router()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{token:?}");
        let read = taken.load(Ordering::SeqCst);
        if status == 401 {
            assert_eq!(
                read, 0,
                "{token:?}: the server read {read} bytes of the body"
            );
        } else {
            assert_eq!(read, 64 * 1024, "an authenticated body is read");
        }
    }
}

/// `body` to `method path` as user1, with the length announced or chunked.
fn send_body(server: &ServerProcess, method: &str, path: &str, body: &str, chunked: bool) -> Raw {
    let mut stream = connect(server);
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", body.len())
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer user1-token\r\n\
         Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // A server that refuses early may close before it all arrives.
    let sent = if chunked {
        body.as_bytes()
            .chunks(16 * 1024)
            .try_for_each(|chunk| {
                write!(stream, "{:x}\r\n", chunk.len())?;
                stream.write_all(chunk)?;
                stream.write_all(b"\r\n")
            })
            .and_then(|()| stream.write_all(b"0\r\n\r\n"))
    } else {
        stream.write_all(body.as_bytes())
    };
    let _ = sent;
    read_reply(&mut stream)
}

#[tokio::test]
async fn a_body_past_its_routes_limit_is_413_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(
        dir.path(),
        json!({"body_kib": 64, "store_body_kib": 32, "run_body_kib": 256}),
    );
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let padded = |kib: usize| "x".repeat(kib * 1024);
    let thread_body = json!({"metadata": {"pad": padded(100)}}).to_string();
    let store_body = |kib| {
        json!({"namespace": ["user1"], "key": "k", "value": {"pad": padded(kib)}}).to_string()
    };
    let run_body = |kib| {
        json!({"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": padded(kib)}]}})
            .to_string()
    };
    let runs = format!("/threads/{thread}/runs");
    for chunked in [false, true] {
        for (method, path, body, status, named) in [
            (
                "POST",
                "/threads",
                thread_body.clone(),
                413,
                "limits.body_kib",
            ),
            (
                "PUT",
                "/store/items",
                store_body(48),
                413,
                "limits.store_body_kib",
            ),
            ("PUT", "/store/items", store_body(16), 204, ""),
            // A run carries its input: more than a thread, within its own limit.
            ("POST", runs.as_str(), run_body(128), 200, ""),
            (
                "POST",
                runs.as_str(),
                run_body(300),
                413,
                "limits.run_body_kib",
            ),
        ] {
            let reply = send_body(&server, method, path, &body, chunked);
            assert_eq!(
                reply.status,
                status,
                "{method} {path} ({} KiB, chunked: {chunked}): {reply:?}",
                body.len() / 1024
            );
            if status == 413 {
                assert!(detail(&reply.body).contains(named), "{reply:?}");
                assert!(reply.head.contains("application/json"), "{reply:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), json!({"header_timeout_secs": 1}));
    // Half a head, then nothing; and nothing at all.
    let mut half = connect(&server);
    half.write_all(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut silent = connect(&server);
    for stream in [&mut half, &mut silent] {
        let received = read_until_closed(stream).expect("the server closes the connection");
        assert!(
            received.is_empty() || received.starts_with("HTTP/1.1 408"),
            "{received}"
        );
    }
    // A client that finishes its head in time is served.
    assert_eq!(server.client().get("/ok").await.status, 200);
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), json!({"body_timeout_secs": 1}));
    let mut stream = connect(&server);
    write!(
        stream,
        "POST /threads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer user1-token\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"metadata\":"
    )
    .unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(
        detail(&reply.body).contains("limits.body_timeout_secs"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), json!({"max_connections": 3}));
    // Three keep-alive connections, each served once and held open.
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(&server);
            stream
                .write_all(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            assert_eq!(read_reply(&mut stream).status, 200);
            stream
        })
        .collect();
    let mut extra = connect(&server);
    let _ = extra.write_all(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let reply = read_reply(&mut extra);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(
        detail(&reply.body).contains("limits.max_connections"),
        "{reply:?}"
    );
    assert!(reply.head.contains("retry-after"), "{reply:?}");
    // One leaves: a new client gets its place.
    drop(held.pop());
    eventually("a freed connection slot is reused", async || {
        let mut stream = connect(&server);
        let _ =
            stream.write_all(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        (read_reply(&mut stream).status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn in_flight_returns_to_zero_when_a_client_leaves_mid_request() {
    use tower::ServiceExt;
    let server = TestServer::new(None);
    // `/metrics` counts itself.
    let in_flight = || async {
        let reply = server.client().get("/metrics?format=json").await;
        reply.json["http"]["in_flight"].as_u64().unwrap()
    };
    assert_eq!(in_flight().await, 1);
    // A body that never comes: the request waits for it until its client
    // leaves, and the server drops the request's work.
    let body = axum::body::Body::from_stream(futures_util::stream::pending::<
        Result<axum::body::Bytes, std::io::Error>,
    >());
    let request = axum::http::Request::post("/threads")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let leaving = tokio::spawn(server.router().oneshot(request));
    tokio::time::timeout(CEILING, async {
        while in_flight().await != 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the request is in flight");
    leaving.abort();
    assert!(leaving.await.unwrap_err().is_cancelled());
    assert_eq!(
        in_flight().await,
        1,
        "the abandoned request is no longer counted"
    );
}

/// Opens `GET /threads/{thread}/stream` as `token`: the socket, past the
/// response head, and the head's status.
fn open_thread_stream(server: &ServerProcess, thread: &str, token: &str) -> (TcpStream, u16) {
    let mut stream = connect(server);
    write!(
        stream,
        "GET /threads/{thread}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while find(&head, b"\r\n\r\n").is_none() {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the stream's head");
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    (stream, status)
}

#[tokio::test]
async fn sigterm_ends_thread_streams_and_settles_runs_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with(
        dir.path(),
        json!({"shutdown_grace_secs": 1}),
        &["--workers", "1"],
    );
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    let (mut stream, status) = open_thread_stream(&server, &thread, "user1-token");
    assert_eq!(status, 200);
    // A run that will not finish within the grace period, and one queued
    // behind it that will never start.
    let runs = format!("/threads/{thread}/runs");
    let spin = json!({"assistant_id": "hostile", "input": {"mode": "spin", "n": 1_000_000_000u64}});
    let (_, running) = call(&client, "POST", &runs, "user1-token", &spin).await;
    let other = new_thread(&client, "user1-token").await;
    let (_, delayed) = call(
        &client,
        "POST",
        &format!("/threads/{other}/runs"),
        "user1-token",
        &json!({"assistant_id": "agent", "after_seconds": 3600}),
    )
    .await;
    eventually("the spinning run has started", async || {
        let (_, run) = call(
            &client,
            "GET",
            &format!("{runs}/{}", running["run_id"].as_str().unwrap()),
            "user1-token",
            &Value::Null,
        )
        .await;
        (run["status"] == "running").then_some(())
    })
    .await;

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let streamed = read_until_closed(&mut stream).expect("the thread stream ends");
    assert!(streamed.ends_with("0\r\n\r\n"), "a clean end: {streamed:?}");
    let exit = server
        .wait_for_exit(CEILING)
        .unwrap_or_else(|| panic!("warden is still running:\n{}", server.log()));
    assert!(exit.success(), "{exit:?}\n{}", server.log());

    // After a restart, neither run is left pending or running, and each
    // thread says why its run failed.
    let server = server_with(dir.path(), json!({}), &[]);
    let client = server.client();
    for (thread, run) in [(&thread, &running), (&other, &delayed)] {
        let run_id = run["run_id"].as_str().unwrap();
        let (_, run) = call(
            &client,
            "GET",
            &format!("/threads/{thread}/runs/{run_id}"),
            "user1-token",
            &Value::Null,
        )
        .await;
        assert_eq!(run["status"], "error", "{run}");
        let (_, thread) = call(
            &client,
            "GET",
            &format!("/threads/{thread}"),
            "user1-token",
            &Value::Null,
        )
        .await;
        assert_eq!(thread["error"]["error"], "ServerShutdown", "{thread}");
    }
}

#[tokio::test]
async fn a_client_cannot_grow_the_events_kept_in_memory_past_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(
        dir.path(),
        json!({"run_events_mib": 1, "retained_events_mib": 2}),
    );
    let client = server.client();
    let thread = new_thread(&client, "user1-token").await;
    // Each run streams its 200 KiB state a few times over: 20 of them
    // produce far more than the budget, resumable or not.
    let pad = "x".repeat(200 * 1024);
    let mut last = None;
    for i in 0..20 {
        let (status, text) = call_text(
            &client,
            "POST",
            &format!("/threads/{thread}/runs/stream"),
            "user1-token",
            &json!({"assistant_id": "hostile", "input": {"mode": "ok", "pad": pad},
                        "stream_mode": ["values", "updates"], "stream_resumable": i % 2 == 0}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(text.len() > 400 * 1024, "the run streamed its state");
        last = Some(text);
    }
    let runs = &metrics(&client).await["runs"];
    let retained = runs["retained_event_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retained_event_bytes in /metrics: {runs}"));
    assert!(retained > 0, "{runs}");
    assert!(retained <= 2 << 20, "{retained} bytes retained: {runs}");
    assert!(last.unwrap().contains("event: values"));
}

#[tokio::test]
async fn batches_crons_history_and_streams_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(
        dir.path(),
        json!({"max_batch_runs": 2, "max_crons_per_user": 2, "max_history": 5,
               "history_mib": 1, "max_streams_per_user": 2}),
    );
    let client = server.client();
    let run = json!({"assistant_id": "agent", "input": {"messages": []}});

    let (status, body) = call(
        &client,
        "POST",
        "/runs/batch",
        "user1-token",
        &json!([run, run, run]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("limits.max_batch_runs"), "{body}");
    let (status, body) = call(
        &client,
        "POST",
        "/runs/batch",
        "user1-token",
        &json!([run, run]),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let cron = json!({"assistant_id": "agent", "schedule": "0 0 1 1 *"});
    for _ in 0..2 {
        let (status, body) = call(&client, "POST", "/runs/crons", "user1-token", &cron).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(&client, "POST", "/runs/crons", "user1-token", &cron).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        detail(&body).contains("limits.max_crons_per_user"),
        "{body}"
    );
    // Another user's quota is their own.
    let (status, body) = call(&client, "POST", "/runs/crons", "user2-token", &cron).await;
    assert_eq!(status, 200, "{body}");

    let thread = new_thread(&client, "user1-token").await;
    for (method, path, body) in [
        (
            "GET",
            format!("/threads/{thread}/history?limit=6"),
            Value::Null,
        ),
        (
            "POST",
            format!("/threads/{thread}/history"),
            json!({"limit": 6}),
        ),
    ] {
        let (status, body) = call(&client, method, &path, "user1-token", &body).await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&body).contains("limits.max_history"), "{body}");
    }
    let history = format!("/threads/{thread}/history?limit=5");
    let (status, _) = call(&client, "GET", &history, "user1-token", &Value::Null).await;
    assert_eq!(status, 200);
    // Two states of ~600 KiB (values and writes): more than 1 MiB
    // together, not alone.
    for i in 0..2 {
        let values = json!({"values": {"pad": "x".repeat(300 * 1024), "i": i}});
        let state = format!("/threads/{thread}/state");
        let (status, body) = call(&client, "POST", &state, "user1-token", &values).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(&client, "GET", &history, "user1-token", &Value::Null).await;
    assert_eq!(status, 422, "{}", detail(&body));
    assert!(detail(&body).contains("limits.history_mib"), "{body}");
    let (status, body) = call(
        &client,
        "GET",
        &format!("/threads/{thread}/history?limit=1"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["values"]["i"], 1, "the newest state");

    let mut streams: Vec<TcpStream> = (0..2)
        .map(|_| {
            let (stream, status) = open_thread_stream(&server, &thread, "user1-token");
            assert_eq!(status, 200);
            stream
        })
        .collect();
    let (status, body) = call(
        &client,
        "POST",
        "/runs/wait",
        "user1-token",
        &json!({"assistant_id": "agent", "input": {"messages": []}}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        detail(&body).contains("limits.max_streams_per_user"),
        "{body}"
    );
    let user2_thread = new_thread(&client, "user2-token").await;
    let (_, status) = open_thread_stream(&server, &user2_thread, "user2-token");
    assert_eq!(status, 200, "another user's streams are their own");
    drop(streams.pop());
    eventually("a closed stream frees its place", async || {
        let (status, _) = call(
            &client,
            "POST",
            "/runs/wait",
            "user1-token",
            &json!({"assistant_id": "agent", "input": {"messages": []}}),
        )
        .await;
        (status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn runs_in_flight_are_bounded_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), json!({"max_runs_in_flight_per_user": 2}));
    let client = server.client();
    let delayed = json!({"assistant_id": "agent", "after_seconds": 3600});
    let mut runs = Vec::new();
    for _ in 0..2 {
        let thread = new_thread(&client, "user1-token").await;
        let (status, run) = call(
            &client,
            "POST",
            &format!("/threads/{thread}/runs"),
            "user1-token",
            &delayed,
        )
        .await;
        assert_eq!(status, 200, "{run}");
        runs.push((thread, run["run_id"].as_str().unwrap().to_owned()));
    }
    let (status, body) = call(&client, "POST", "/runs", "user1-token", &delayed).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        detail(&body).contains("limits.max_runs_in_flight_per_user"),
        "{body}"
    );
    let (status, body) = call(&client, "POST", "/runs", "user2-token", &delayed).await;
    assert_eq!(status, 200, "another user's quota is their own: {body}");
    let (thread, run) = &runs[0];
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{thread}/runs/{run}/cancel?wait=1"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    // The place is freed just after the cancel's answer (a refusal creates
    // nothing): the poll ends on the first run accepted.
    eventually("a cancelled run frees its place", async || {
        let (status, body) = call(&client, "POST", "/runs", "user1-token", &delayed).await;
        assert!(status == 200 || status == 429, "{status}: {body}");
        (status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_state_update_runs_graph_code_only_on_a_free_run_worker() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(
        dir.path(),
        json!({"state_update_timeout_ms": 200}),
        &["--workers", "1"],
    );
    let client = server.client();
    // A thread that ran the agent: its state updates go through the
    // graph's reducers.
    let thread = new_thread(&client, "user1-token").await;
    let (status, _) = call(&client, "POST", &format!("/threads/{thread}/runs/wait"), "user1-token", &json!({"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}})).await;
    assert_eq!(status, 200);
    // The only worker spins on another thread.
    let busy = new_thread(&client, "user1-token").await;
    let (_, spinning) = call(
        &client,
        "POST",
        &format!("/threads/{busy}/runs"),
        "user1-token",
        &json!({"assistant_id": "hostile", "input": {"mode": "spin", "n": 1_000_000_000u64}}),
    )
    .await;
    let spinning = spinning["run_id"].as_str().unwrap().to_owned();
    eventually("the spinning run has started", async || {
        let (_, run) = call(
            &client,
            "GET",
            &format!("/threads/{busy}/runs/{spinning}"),
            "user1-token",
            &Value::Null,
        )
        .await;
        (run["status"] == "running").then_some(())
    })
    .await;
    let update = json!({"values": {"messages": [{"role": "user", "content": "more"}]}});
    let state = format!("/threads/{thread}/state");
    let (status, body) = call(&client, "POST", &state, "user1-token", &update).await;
    assert_eq!(status, 429, "{body}");
    assert!(detail(&body).contains("--workers"), "{body}");
    let (status, _) = call(
        &client,
        "POST",
        &format!("/threads/{busy}/runs/{spinning}/cancel?wait=1"),
        "user1-token",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    // The worker is free just after the cancel's answer (a refusal changes
    // nothing): the poll ends on the first update accepted.
    eventually("the worker is free", async || {
        let (status, body) = call(&client, "POST", &state, "user1-token", &update).await;
        assert!(status == 200 || status == 429, "{status}: {body}");
        (status == 200).then_some(())
    })
    .await;
}
