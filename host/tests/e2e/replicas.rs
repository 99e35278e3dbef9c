//! Several `warden serve` replicas on one PostgreSQL database: whatever
//! replica a request lands on, it sees the same records and follows the
//! same runs. A run created on one executes on whichever claims it; it is
//! joined, streamed (and replayed from `Last-Event-ID`) and cancelled from
//! another; a replica killed mid-run has its run retried on another, up to
//! `BG_JOB_MAX_RETRIES`; and a write a replica acknowledged survives its
//! `kill -9`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Event, ServerProcess, TestDatabase, component, eventually};

/// A project with the reference policy and the hostile graph as `slow`.
fn project(dir: &Path) -> PathBuf {
    let config = dir.join("langgraph.json");
    let text = json!({
        "graphs": {"slow": component("hostile_graph").display().to_string()},
        "auth": {"path": component("reference_auth").display().to_string(), "timeout_ms": 30000},
    });
    std::fs::write(&config, text.to_string()).unwrap();
    config
}

/// A replica on `database`, renewing its leases every `heartbeat` seconds
/// and retrying a run at most `retries` times.
fn replica(
    config: &Path,
    database: &TestDatabase,
    heartbeat: &str,
    retries: &str,
) -> ServerProcess {
    static REPLICAS: AtomicUsize = AtomicUsize::new(0);
    let n = REPLICAS.fetch_add(1, Ordering::Relaxed);
    let data = config.with_file_name(format!("replica-{n}"));
    let env = [
        ("DATABASE_URI", Path::new(&database.uri()).to_owned()),
        ("BG_JOB_HEARTBEAT", PathBuf::from(heartbeat)),
        ("BG_JOB_MAX_RETRIES", PathBuf::from(retries)),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    ServerProcess::start_with(&["serve", "--no-watch"], config, &data, &env)
        .expect("a replica starts on PostgreSQL")
}

async fn new_thread(server: &ServerProcess) -> String {
    let reply = server.user("user1-token").post("/threads", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["thread_id"].as_str().unwrap().to_owned()
}

async fn run_status(server: &ServerProcess, thread: &str, run: &str) -> Value {
    let reply = server
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["status"].clone()
}

#[tokio::test]
async fn records_made_on_one_replica_are_read_and_searched_on_another() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let b = replica(&config, &database, "5", "3");
    let thread = new_thread(&a).await;
    let read = b
        .user("user1-token")
        .get(&format!("/threads/{thread}"))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json["metadata"]["owner"], "user1");
    let theirs = b
        .user("user2-token")
        .get(&format!("/threads/{thread}"))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);
    let found = b
        .user("user1-token")
        .post("/threads/search", json!({}))
        .await;
    assert_eq!(
        found.json[0]["thread_id"],
        thread.as_str(),
        "{}",
        found.text
    );
    let none = b
        .user("user2-token")
        .post("/threads/search", json!({}))
        .await;
    assert_eq!(none.json, json!([]), "{}", none.text);
}

#[tokio::test]
async fn a_run_created_on_one_replica_is_joined_and_replayed_on_another() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let b = replica(&config, &database, "5", "3");
    let thread = new_thread(&a).await;
    let created = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "custom"},
                   "stream_mode": ["custom", "values"], "stream_resumable": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let run = created.json["run_id"].as_str().unwrap().to_owned();

    // Joined from B: the final values, whichever replica ran it.
    let joined = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/join"))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    assert_eq!(joined.json["done"], true, "{}", joined.text);
    assert_eq!(run_status(&a, &thread, &run).await, "success");

    // Replayed from B from the start, then from the second custom chunk on.
    let path = format!("/threads/{thread}/runs/{run}/stream");
    let mut stream = b
        .user("user1-token")
        .get(&path)
        .header("Last-Event-ID", "0-0")
        .open()
        .await;
    let events = stream.events_until(|_| false).await;
    let custom: Vec<&Event> = events.iter().filter(|e| e.event == "custom").collect();
    assert_eq!(custom.len(), 3, "{events:?}");
    assert_eq!(custom[2].data, json!({"i": 2}));
    assert_eq!(events[0].event, "metadata", "{events:?}");
    assert_eq!(events[0].data["attempt"], 1);
    let mut resumed = a
        .user("user1-token")
        .get(&path)
        .header("Last-Event-ID", &custom[0].id)
        .open()
        .await;
    let rest = resumed.events_until(|_| false).await;
    let rest: Vec<&Value> = rest
        .iter()
        .filter(|e| e.event == "custom")
        .map(|e| &e.data)
        .collect();
    assert_eq!(rest, [&json!({"i": 1}), &json!({"i": 2})]);
}

#[tokio::test]
async fn a_run_streams_to_another_replica_and_is_cancelled_from_it() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let replicas = [
        replica(&config, &database, "5", "3"),
        replica(&config, &database, "5", "3"),
    ];
    // Rounds alternate: whichever replica claims the run (the one that
    // made it, or the other, even as the first is still recording it), a
    // cancel from the other reaches it.
    for round in 0..12 {
        let (maker, other) = (&replicas[round % 2], &replicas[1 - round % 2]);
        let thread = new_thread(maker).await;
        let created = maker
            .user("user1-token")
            .post(
                &format!("/threads/{thread}/runs"),
                json!({"assistant_id": "slow", "input": {"mode": "spin", "n": 1_000_000_000u64},
                       "stream_mode": ["custom"], "stream_resumable": true}),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.text);
        let run = created.json["run_id"].as_str().unwrap().to_owned();

        // The other streams the run as it runs, from its start: the chunk
        // its graph streamed first (a late joiner without an id sees what
        // follows only).
        let mut stream = other
            .user("user1-token")
            .get(&format!("/threads/{thread}/runs/{run}/stream"))
            .header("Last-Event-ID", "0-0")
            .open()
            .await;
        let seen = stream.events_until(|e| e.event == "custom").await;
        assert_eq!(seen.last().unwrap().data, json!({"progress": "started"}));

        // Another tenant cannot cancel it; its owner can, from either.
        let theirs = other
            .user("user2-token")
            .post(&format!("/threads/{thread}/runs/{run}/cancel"), json!({}))
            .await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);
        let cancelled = other
            .user("user1-token")
            .post(
                &format!("/threads/{thread}/runs/{run}/cancel?wait=1"),
                json!({}),
            )
            .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
        assert_eq!(run_status(maker, &thread, &run).await, "interrupted");
        assert_eq!(run_status(other, &thread, &run).await, "interrupted");
        // The stream ends with the run.
        let (_, ended) = stream.until(|_| false).await;
        assert!(ended);
        eventually("the thread to settle", async || {
            let reply = other
                .user("user1-token")
                .get(&format!("/threads/{thread}"))
                .await;
            (reply.json["status"] == "idle").then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_thread_stream_on_one_replica_follows_runs_created_on_another() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let b = replica(&config, &database, "5", "3");
    let thread = new_thread(&a).await;
    let mut stream = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/stream?stream_mode=custom"))
        .open()
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    // The stream is open (its first bytes may be none): a run made on A.
    let created = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "custom"}, "stream_mode": ["custom"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let run = created.json["run_id"].clone();
    let events = stream
        .events_until(|e| e.data["status"] == "run_done")
        .await;
    let custom: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "custom")
        .map(|e| &e.data)
        .collect();
    assert_eq!(
        custom,
        [&json!({"i": 0}), &json!({"i": 1}), &json!({"i": 2})],
        "{events:?}"
    );
    assert_eq!(
        events.last().unwrap().data,
        json!({"status": "run_done", "run_id": run})
    );
    // The thread deleted through A: the stream on B ends.
    let deleted = a
        .user("user1-token")
        .delete(&format!("/threads/{thread}"))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let (_, ended) = stream.until(|_| false).await;
    assert!(ended, "the stream outlived its thread");
}

#[tokio::test]
async fn runs_on_one_thread_run_one_at_a_time_across_replicas() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let b = replica(&config, &database, "5", "3");
    let thread = new_thread(&a).await;
    let first = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "spin", "n": 1_000_000_000u64}}),
        )
        .await;
    let first = first.json["run_id"].as_str().unwrap().to_owned();
    // A second run from B waits its turn (enqueue); `reject` is refused.
    let rejected = b
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "ok"}, "multitask_strategy": "reject"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::CONFLICT, "{}", rejected.text);
    let second = b
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "ok"}, "multitask_strategy": "enqueue"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let second = second.json["run_id"].as_str().unwrap().to_owned();
    assert_eq!(run_status(&a, &thread, &second).await, "pending");
    // `interrupt` from A stops the first; the second then runs, then the third.
    let third = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs/wait"),
            json!({"assistant_id": "slow", "input": {"mode": "ok"}, "multitask_strategy": "interrupt"}),
        )
        .await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    assert_eq!(third.json["done"], true, "{}", third.text);
    assert_eq!(run_status(&b, &thread, &first).await, "interrupted");
    assert_eq!(run_status(&b, &thread, &second).await, "interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_claimed_while_leases_are_renewed_all_complete() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    // Leases renewed every 50 ms: claims keep landing between a renewal
    // and the executing runs it checks; none may be taken for lost.
    let replicas = Arc::new([
        replica(&config, &database, "0.05", "3"),
        replica(&config, &database, "0.05", "3"),
    ]);
    let mut clients = Vec::new();
    for client in 0..8 {
        let replicas = replicas.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..6 {
                let server = &replicas[(client + i) % 2];
                let thread = new_thread(server).await;
                let done = replicas[(client + i + 1) % 2]
                    .user("user1-token")
                    .post(
                        &format!("/threads/{thread}/runs/wait"),
                        json!({"assistant_id": "slow", "input": {"mode": "ok"}}),
                    )
                    .await;
                assert_eq!(done.json["done"], true, "{}", done.text);
                assert_eq!(run_status_of_thread(server, &thread).await, "success");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
}

async fn run_status_of_thread(server: &ServerProcess, thread: &str) -> Value {
    let reply = server
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs"))
        .await;
    reply.json[0]["status"].clone()
}

#[tokio::test]
async fn a_run_whose_replica_is_killed_is_retried_on_another() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    // A alone first, so that A claims the run. It sleeps long enough that
    // A cannot finish it before B is up and A is killed, however slow the
    // machine (B's start compiles nothing, but takes seconds under load).
    let a = replica(&config, &database, "0.2", "3");
    let thread = new_thread(&a).await;
    let created = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 8},
                   "stream_mode": ["custom"], "stream_resumable": true}),
        )
        .await;
    let run = created.json["run_id"].as_str().unwrap().to_owned();
    eventually("the run to start on A", async || {
        (run_status(&a, &thread, &run).await == "running").then_some(())
    })
    .await;
    let b = replica(&config, &database, "0.2", "3");
    // B follows the run from its start, before A dies.
    let mut stream = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/stream"))
        .header("Last-Event-ID", "0-0")
        .open()
        .await;
    kill_9(a);
    // B claims it once A's lease lapses, and runs it to its end.
    let events = stream.events_until(|_| false).await;
    let attempts: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "metadata")
        .map(|e| &e.data["attempt"])
        .collect();
    assert_eq!(attempts.last(), Some(&&json!(2)), "{events:?}");
    let joined = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/join"))
        .await;
    assert_eq!(joined.json["done"], true, "{}", joined.text);
    assert_eq!(run_status(&b, &thread, &run).await, "success");
}

#[tokio::test]
async fn a_replica_paused_past_its_lease_answers_its_waiters_with_the_run_another_finished() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "0.2", "3");
    let thread = new_thread(&a).await;
    // A client waits on A for a run A executes.
    let waiting = wait_while_it_runs(&a, &thread, 4).await;
    let runs = a
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs"))
        .await;
    let run = runs.json[0]["run_id"].as_str().unwrap().to_owned();
    let b = replica(&config, &database, "0.2", "3");
    let mut stream = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/stream"))
        .header("Last-Event-ID", "0-0")
        .open()
        .await;
    // A stalls (a long pause, a frozen VM) past its lease: B takes the run
    // over and starts it again.
    signal(&a, "-STOP");
    stream
        .events_until(|e| e.event == "metadata" && e.data["attempt"] == 2)
        .await;
    // A wakes up, finds its lease lost and stops its attempt; the client
    // waiting on A gets the run's result from B's attempt, not A's
    // stopped one.
    signal(&a, "-CONT");
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["done"], true, "{}", answer.text);
    let joined = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/join"))
        .await;
    assert_eq!(joined.json, answer.json);
    assert_eq!(run_status(&a, &thread, &run).await, "success");
    // A's stopped attempt wrote nothing over B's: the thread holds the
    // checkpoints of one attempt, as many as the same run leaves alone.
    let history = |server: &ServerProcess, thread: String| {
        let client = server.user("user1-token");
        async move {
            let reply = client
                .post(&format!("/threads/{thread}/history"), json!({"limit": 100}))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.json.as_array().unwrap().len()
        }
    };
    let alone = new_thread(&b).await;
    let done = b
        .user("user1-token")
        .post(
            &format!("/threads/{alone}/runs/wait"),
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 0}}),
        )
        .await;
    assert_eq!(done.json["done"], true, "{}", done.text);
    assert_eq!(history(&b, thread).await, history(&b, alone).await);
}

#[tokio::test]
async fn a_replica_paused_past_its_lease_with_no_other_finishes_its_run() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "0.2", "3");
    let thread = new_thread(&a).await;
    let waiting = wait_while_it_runs(&a, &thread, 2).await;
    // A stalls past its lease; when it wakes, its claim loop may take the
    // run again (a new attempt) while the stalled attempt still executes,
    // or its renewal may keep it: either way the run ends once, and the
    // client waiting on A gets its result.
    signal(&a, "-STOP");
    let db = database.connect().await;
    eventually("A's lease to lapse", async || {
        let row = db
            .query_one(
                "SELECT count(*) FROM runs WHERE lease_until < clock_timestamp()",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0) == 1).then_some(())
    })
    .await;
    signal(&a, "-CONT");
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["done"], true, "{}", answer.text);
    assert_eq!(run_status_of_thread(&a, &thread).await, "success");
    let thread_status = a
        .user("user1-token")
        .get(&format!("/threads/{thread}"))
        .await;
    assert_eq!(
        thread_status.json["status"], "idle",
        "{}",
        thread_status.text
    );
}

/// A client's `runs.wait` on `server` for a run of the slow graph that
/// sleeps `secs`, once the run executes there: the pending answer.
async fn wait_while_it_runs(
    server: &ServerProcess,
    thread: &str,
    secs: u64,
) -> tokio::task::JoinHandle<crate::support::Reply> {
    let waiting = tokio::spawn(
        server
            .user("user1-token")
            .post(
                &format!("/threads/{thread}/runs/wait"),
                json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": secs}}),
            )
            .into_future(),
    );
    eventually("the run to start", async || {
        (run_status_of_thread(server, thread).await == "running").then_some(())
    })
    .await;
    waiting
}

/// Sends `signal` (`-STOP`, `-CONT`) to the replica's process.
fn signal(server: &ServerProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_replica_stopped_for_a_deploy_hands_its_run_to_another() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let thread = new_thread(&a).await;
    // Longer than A's shutdown grace (5 s).
    let created = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 8},
                   "stream_resumable": true}),
        )
        .await;
    let run = created.json["run_id"].as_str().unwrap().to_owned();
    eventually("the run to start on A", async || {
        (run_status(&a, &thread, &run).await == "running").then_some(())
    })
    .await;
    // The deploy stops A first (B's start may take seconds on a loaded
    // machine: A must not finish the run meanwhile).
    signal(&a, "-TERM");
    let b = replica(&config, &database, "5", "3");
    // A stops the run once its grace is over and gives it back; B runs it.
    let joined = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/join"))
        .await;
    assert_eq!(joined.json["done"], true, "{}", joined.text);
    assert_eq!(run_status(&b, &thread, &run).await, "success");
    let mut replay = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/stream"))
        .header("Last-Event-ID", "0-0")
        .open()
        .await;
    let events = replay.events_until(|_| false).await;
    let attempts: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "metadata")
        .map(|e| &e.data["attempt"])
        .collect();
    assert_eq!(attempts, [&json!(1), &json!(2)], "{events:?}");
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
}

#[tokio::test]
async fn a_run_past_its_retries_ends_in_error_instead_of_hanging() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "0.2", "0");
    let thread = new_thread(&a).await;
    let created = a
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": "slow", "input": {"mode": "sleep", "n": 3600}}),
        )
        .await;
    let run = created.json["run_id"].as_str().unwrap().to_owned();
    eventually("the run to start on A", async || {
        (run_status(&a, &thread, &run).await == "running").then_some(())
    })
    .await;
    let b = replica(&config, &database, "0.2", "0");
    kill_9(a);
    let joined = b
        .user("user1-token")
        .get(&format!("/threads/{thread}/runs/{run}/join"))
        .await;
    assert_eq!(
        joined.json["__error__"]["error"], "RunRetriesExhausted",
        "{}",
        joined.text
    );
    assert_eq!(run_status(&b, &thread, &run).await, "error");
}

#[tokio::test]
async fn no_acknowledged_write_is_lost_when_a_replica_is_killed() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let a = replica(&config, &database, "5", "3");
    let b = replica(&config, &database, "5", "3");
    let writer = a.user("user1-token");
    // Writes to A go on while A is killed: each one acknowledged (200) is
    // then read back from B.
    let load = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..10_000 {
            match writer
                .post("/threads", json!({"metadata": {"i": i}}))
                .try_send()
                .await
            {
                Ok(reply) if reply.status == StatusCode::OK => {
                    acknowledged.push(reply.json["thread_id"].as_str().unwrap().to_owned());
                }
                _ => break,
            }
        }
        acknowledged
    });
    eventually("some writes to be acknowledged", async || {
        let count = b
            .user("user1-token")
            .post("/threads/count", json!({}))
            .await;
        (count.json.as_u64().unwrap_or(0) >= 50).then_some(())
    })
    .await;
    kill_9(a);
    let acknowledged = load.await.unwrap();
    assert!(acknowledged.len() >= 50);
    for thread in &acknowledged {
        let read = b
            .user("user1-token")
            .get(&format!("/threads/{thread}"))
            .await;
        assert_eq!(
            read.status,
            StatusCode::OK,
            "{thread} was acknowledged, then lost"
        );
    }
}

#[tokio::test]
async fn a_cron_due_while_three_replicas_run_fires_once_per_due_time() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path());
    let replicas = [
        replica(&config, &database, "5", "3"),
        replica(&config, &database, "5", "3"),
        replica(&config, &database, "5", "3"),
    ];
    let thread = new_thread(&replicas[0]).await;
    let cron = replicas[1]
        .user("user1-token")
        .post(
            &format!("/threads/{thread}/runs/crons"),
            json!({"assistant_id": "slow", "schedule": "0 0 1 1 *", "input": {"mode": "ok"}}),
        )
        .await;
    assert_eq!(cron.status, StatusCode::OK, "{}", cron.text);
    let cron_id = cron.json["cron_id"].as_str().unwrap().to_owned();
    let (db, connection) = tokio_postgres::connect(&database.uri(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let runs = async |server: &ServerProcess| {
        let reply = server
            .user("user1-token")
            .get(&format!("/threads/{thread}/runs"))
            .await;
        reply.json.as_array().map_or(0, Vec::len)
    };
    // Five times, the cron falls due now (its next run moved into the
    // past) while three replicas check their crons every second: each due
    // time makes exactly one run, whoever fires it.
    for round in 1..=5 {
        db.execute(
            "UPDATE crons SET next_run_date = to_char(now() AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') WHERE cron_id = $1::text::uuid",
            &[&cron_id],
        )
        .await
        .unwrap();
        eventually("the due cron to fire", async || {
            (runs(&replicas[round % 3]).await >= round).then_some(())
        })
        .await;
        // Fired: its next run is a year away again.
        eventually("the cron's next run to move on", async || {
            let row = db
                .query_one(
                    "SELECT next_run_date > to_char(now() AT TIME ZONE 'UTC', \
                     'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') FROM crons \
                     WHERE cron_id = $1::text::uuid",
                    &[&cron_id],
                )
                .await
                .unwrap();
            row.get::<_, bool>(0).then_some(())
        })
        .await;
        assert_eq!(runs(&replicas[0]).await, round, "round {round}");
    }
}

/// Kills the replica with SIGKILL: no shutdown, no goodbye.
fn kill_9(server: ServerProcess) {
    let pid = server.pid();
    // SAFETY-free: `kill` from the shell, as an operator would.
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(server);
}
