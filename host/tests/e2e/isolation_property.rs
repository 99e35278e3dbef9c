//! Tenant isolation as a property: random sequences of creates, updates,
//! searches, counts, copies, runs, cancels, deletes and store operations by
//! the reference policy's users (user1, user2 and the reader) against a
//! model of who owns what. No response may reveal another user's resource
//! (its id, unless the caller sent it; the secret marker each resource
//! carries), and no operation may change one: after every attempt on
//! another user's resource, its owner checks it is as the model says.
//!
//! Deterministic: a fixed seed (`PROPTEST_RNG_SEED` overrides it, and
//! `PROPTEST_CASES` the number of cases), no persistence file; a failure
//! is shrunk to a minimal sequence. Runs use the reference echo graph:
//! a run waited for (`/runs/wait`) or a delayed one (`after_seconds`: an
//! hour), which stays pending, so what is in flight is known; the test
//! polls for the effects the server makes in the background (a cancel, a
//! rollback), with generous ceilings.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use serde_json::{Value, json};

use crate::support::{CEILING, Client, Reply, TestServer, component, plugin_with, runtime};
use warden::plugin::{AuthPlugin, GraphComponent, GraphLimits, Limits};

/// The system assistant of the graph `agent`.
const AGENT: &str = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";
const USERS: [&str; 3] = ["user1", "user2", "reader"];
/// The reader may not create threads (no `threads:create`).
const READER: usize = 2;

type Check = Result<(), TestCaseError>;

// --- the server ------------------------------------------------------------

/// The reference policy (a generous deadline: this is about answers, not
/// time) and the reference echo graph, loaded once for all cases.
fn components() -> &'static (Arc<AuthPlugin>, Arc<GraphComponent>) {
    static LOADED: OnceLock<(Arc<AuthPlugin>, Arc<GraphComponent>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let auth = plugin_with(
            "reference_auth",
            Limits {
                timeout: Duration::from_secs(30),
                ..Limits::default()
            },
        );
        let limits = GraphLimits {
            timeout: Duration::from_secs(60),
            memory_bytes: 64 << 20,
        };
        let graph = GraphComponent::load(runtime(), "agent", &component("reference_agent"), limits)
            .expect("the reference graph loads");
        (auth, graph)
    })
}

/// A fresh server (in-memory database) serving the graph `agent`: a
/// client without credentials.
fn server() -> Client {
    let (auth, graph) = components();
    TestServer::builder()
        .auth(auth.clone())
        .graph_component("agent", graph.clone())
        .build()
        .client()
}

/// Sends `method path` as `token`.
async fn send(app: &Client, method: &str, path: &str, token: &str, body: Value) -> Reply {
    app.as_user(token).send(method, path, body).await
}

// --- the operations --------------------------------------------------------

/// One request by user `by`; `Index`es pick among every resource created
/// so far in the case (deleted ones too).
#[derive(Debug, Clone)]
enum Op {
    CreateThread {
        by: usize,
    },
    GetThread {
        by: usize,
        thread: Index,
    },
    PatchThread {
        by: usize,
        thread: Index,
    },
    DeleteThread {
        by: usize,
        thread: Index,
    },
    CopyThread {
        by: usize,
        thread: Index,
    },
    SearchThreads {
        by: usize,
    },
    ThreadState {
        by: usize,
        thread: Index,
    },
    /// A run waited for, or one delayed by an hour (pending throughout).
    Run {
        by: usize,
        thread: Index,
        delayed: bool,
    },
    ListRuns {
        by: usize,
        thread: Index,
    },
    /// Through `thread` (`None`: the run's own), which need not be the
    /// run's: a run is reached only through its own thread.
    GetRun {
        by: usize,
        thread: Option<Index>,
        run: Index,
    },
    CancelRun {
        by: usize,
        thread: Option<Index>,
        run: Index,
    },
    DeleteRun {
        by: usize,
        thread: Option<Index>,
        run: Index,
    },
    CancelRunIds {
        by: usize,
        thread: Option<Index>,
        run: Index,
    },
    CancelPending {
        by: usize,
    },
    /// On a thread, or stateless.
    CreateCron {
        by: usize,
        thread: Option<Index>,
    },
    SearchCrons {
        by: usize,
    },
    PatchCron {
        by: usize,
        cron: Index,
    },
    DeleteCron {
        by: usize,
        cron: Index,
    },
    /// `owner` is the first label of the namespace.
    PutItem {
        by: usize,
        owner: usize,
        key: u8,
    },
    GetItem {
        by: usize,
        owner: usize,
        key: u8,
    },
    DeleteItem {
        by: usize,
        owner: usize,
        key: u8,
    },
    SearchItems {
        by: usize,
        owner: usize,
    },
    ListNamespaces {
        by: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let by = || 0..USERS.len();
    let i = any::<Index>;
    let through = || proptest::option::weighted(0.5, any::<Index>());
    prop_oneof![
        3 => by().prop_map(|by| Op::CreateThread { by }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::GetThread { by, thread }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::PatchThread { by, thread }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::DeleteThread { by, thread }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::CopyThread { by, thread }),
        1 => by().prop_map(|by| Op::SearchThreads { by }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::ThreadState { by, thread }),
        3 => (by(), i(), any::<bool>())
            .prop_map(|(by, thread, delayed)| Op::Run { by, thread, delayed }),
        1 => (by(), i()).prop_map(|(by, thread)| Op::ListRuns { by, thread }),
        2 => (by(), through(), i()).prop_map(|(by, thread, run)| Op::GetRun { by, thread, run }),
        2 => (by(), through(), i()).prop_map(|(by, thread, run)| Op::CancelRun { by, thread, run }),
        2 => (by(), through(), i()).prop_map(|(by, thread, run)| Op::DeleteRun { by, thread, run }),
        1 => (by(), through(), i()).prop_map(|(by, thread, run)| Op::CancelRunIds { by, thread, run }),
        1 => by().prop_map(|by| Op::CancelPending { by }),
        1 => (by(), proptest::option::of(i())).prop_map(|(by, thread)| Op::CreateCron { by, thread }),
        1 => by().prop_map(|by| Op::SearchCrons { by }),
        1 => (by(), i()).prop_map(|(by, cron)| Op::PatchCron { by, cron }),
        1 => (by(), i()).prop_map(|(by, cron)| Op::DeleteCron { by, cron }),
        2 => (by(), by(), 0..3u8).prop_map(|(by, owner, key)| Op::PutItem { by, owner, key }),
        1 => (by(), by(), 0..3u8).prop_map(|(by, owner, key)| Op::GetItem { by, owner, key }),
        1 => (by(), by(), 0..3u8).prop_map(|(by, owner, key)| Op::DeleteItem { by, owner, key }),
        1 => (by(), by()).prop_map(|(by, owner)| Op::SearchItems { by, owner }),
        1 => by().prop_map(|by| Op::ListNamespaces { by }),
    ]
}

// --- the model -------------------------------------------------------------

#[derive(Debug)]
struct Thread {
    id: String,
    owner: usize,
    alive: bool,
    metadata: Value,
    /// The state's values, as the owner last saw them after a change.
    values: Value,
    /// The thread this one is a copy of (of a copy ...), or itself.
    origin: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RunState {
    /// Delayed by an hour: pending until cancelled.
    Pending,
    /// Waited for: `success`.
    Done,
    /// Cancelled by its owner (interrupted).
    Cancelled,
    /// Deleted (or rolled back, or its thread deleted).
    Gone,
}

#[derive(Debug)]
struct Run {
    id: String,
    thread: usize,
    state: RunState,
}

#[derive(Debug)]
struct Cron {
    id: String,
    owner: usize,
    thread: Option<usize>,
    alive: bool,
    metadata: Value,
}

#[derive(Debug)]
struct Item {
    owner: usize,
    key: u8,
    value: Option<Value>,
}

/// Who owns what, and the secrets that must not reach anyone else.
#[derive(Default)]
struct Model {
    threads: Vec<Thread>,
    runs: Vec<Run>,
    crons: Vec<Cron>,
    items: Vec<Item>,
    /// Every marker handed out, with its owner.
    markers: Vec<(String, usize)>,
}

impl Model {
    /// A new secret of `owner`'s, put in what they create.
    fn marker(&mut self, owner: usize) -> String {
        let marker = format!("secret-{}-{}", USERS[owner], self.markers.len());
        self.markers.push((marker.clone(), owner));
        marker
    }

    fn pick<'a, T>(items: &'a [T], index: &Index) -> Option<(usize, &'a T)> {
        (!items.is_empty()).then(|| {
            let i = index.index(items.len());
            (i, &items[i])
        })
    }

    /// Whether `by` may see thread `t` (owns it, and it exists).
    fn sees(&self, by: usize, t: usize) -> bool {
        let thread = &self.threads[t];
        thread.alive && thread.owner == by
    }

    /// The run `run` picks, and the thread `thread` picks (the run's own
    /// when `None`).
    fn run_through(&self, thread: &Option<Index>, run: &Index) -> Option<(usize, usize)> {
        let (r, picked) = Self::pick(&self.runs, run)?;
        let t = match thread {
            None => picked.thread,
            Some(index) => Self::pick(&self.threads, index)?.0,
        };
        Some((r, t))
    }

    fn pending_on(&self, t: usize) -> bool {
        self.runs
            .iter()
            .any(|r| r.thread == t && r.state == RunState::Pending)
    }

    fn item(&mut self, owner: usize, key: u8) -> &mut Item {
        if let Some(i) = self
            .items
            .iter()
            .position(|i| i.owner == owner && i.key == key)
        {
            return &mut self.items[i];
        }
        self.items.push(Item {
            owner,
            key,
            value: None,
        });
        self.items.last_mut().unwrap()
    }

    /// What `by` must never see in a response to `request`: the markers
    /// of others, and the ids of others' resources that `by` did not send.
    fn foreign(&self, by: usize, request: &str) -> Vec<&str> {
        let markers = self
            .markers
            .iter()
            .filter(|(_, owner)| *owner != by)
            .map(|(m, _)| m.as_str());
        let threads = self
            .threads
            .iter()
            .filter(|t| t.owner != by)
            .map(|t| t.id.as_str());
        let runs = self
            .runs
            .iter()
            .filter(|r| self.threads[r.thread].owner != by)
            .map(|r| r.id.as_str());
        let crons = self
            .crons
            .iter()
            .filter(|c| c.owner != by)
            .map(|c| c.id.as_str());
        markers
            .chain(
                threads
                    .chain(runs)
                    .chain(crons)
                    .filter(|id| !request.contains(id)),
            )
            .collect()
    }
}

// --- the test --------------------------------------------------------------

/// One case: a server, a model, and the client that checks every answer.
struct Case {
    app: Client,
    model: Model,
}

fn token(by: usize) -> String {
    format!("{}-token", USERS[by])
}

fn id_of(reply: &Reply, field: &str) -> String {
    reply.json[field].as_str().unwrap_or_default().to_owned()
}

impl Case {
    /// Sends a request as `by` and checks that its answer reveals nothing
    /// of anyone else's.
    async fn send(
        &self,
        by: usize,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<Reply, TestCaseError> {
        let reply = send(&self.app, method, path, &token(by), body.clone()).await;
        let request = format!("{path} {body}");
        for secret in self.model.foreign(by, &request) {
            prop_assert!(
                !reply.text.contains(secret),
                "{} {method} {path} {body} revealed {secret} of another user: {} {}",
                USERS[by],
                reply.status,
                reply.text
            );
        }
        Ok(reply)
    }

    /// [`Case::send`], expecting `status`.
    async fn expect(
        &self,
        by: usize,
        method: &str,
        path: &str,
        body: Value,
        status: StatusCode,
    ) -> Result<Reply, TestCaseError> {
        let reply = self.send(by, method, path, body.clone()).await?;
        prop_assert_eq!(
            reply.status,
            status,
            "{} {} {} {}: {}",
            USERS[by],
            method,
            path,
            body,
            reply.text
        );
        Ok(reply)
    }

    /// Polls `GET path` as `by` until `done` holds (a ceiling of [`CEILING`]).
    async fn poll(
        &self,
        by: usize,
        path: &str,
        done: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, TestCaseError> {
        let deadline = std::time::Instant::now() + CEILING;
        loop {
            let reply = self.send(by, "GET", path, Value::Null).await?;
            if done(&reply) {
                return Ok(reply);
            }
            prop_assert!(
                std::time::Instant::now() < deadline,
                "{path} never settled: {}",
                reply.text
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until thread `t` has nothing in flight, then records its
    /// values as its owner sees them.
    async fn settle_thread(&mut self, t: usize) -> Check {
        let (owner, id) = (
            self.model.threads[t].owner,
            self.model.threads[t].id.clone(),
        );
        if !self.model.pending_on(t) {
            self.poll(owner, &format!("/threads/{id}"), |r| {
                r.json["status"] != "busy"
            })
            .await?;
        }
        let state = self
            .expect(
                owner,
                "GET",
                &format!("/threads/{id}/state"),
                Value::Null,
                StatusCode::OK,
            )
            .await?;
        self.model.threads[t].values = state.json["values"].clone();
        Ok(())
    }

    /// The owner of thread `t` finds it as the model says.
    async fn audit_thread(&self, t: usize) -> Check {
        let thread = &self.model.threads[t];
        let path = format!("/threads/{}", thread.id);
        if !thread.alive {
            self.expect(
                thread.owner,
                "GET",
                &path,
                Value::Null,
                StatusCode::NOT_FOUND,
            )
            .await?;
            return Ok(());
        }
        let got = self
            .expect(thread.owner, "GET", &path, Value::Null, StatusCode::OK)
            .await?;
        prop_assert_eq!(&got.json["metadata"], &thread.metadata, "{}", path);
        let state = self
            .expect(
                thread.owner,
                "GET",
                &format!("{path}/state"),
                Value::Null,
                StatusCode::OK,
            )
            .await?;
        prop_assert_eq!(&state.json["values"], &thread.values, "{}/state", path);
        for r in (0..self.model.runs.len()).filter(|&r| self.model.runs[r].thread == t) {
            self.audit_run(r).await?;
        }
        Ok(())
    }

    /// The owner of run `r` finds it as the model says.
    async fn audit_run(&self, r: usize) -> Check {
        let run = &self.model.runs[r];
        let thread = &self.model.threads[run.thread];
        let path = format!("/threads/{}/runs/{}", thread.id, run.id);
        let expected = match run.state {
            RunState::Gone => None,
            _ if !thread.alive => None,
            RunState::Pending => Some("pending"),
            RunState::Done => Some("success"),
            RunState::Cancelled => Some("interrupted"),
        };
        let got = self.send(thread.owner, "GET", &path, Value::Null).await?;
        match expected {
            None => prop_assert_eq!(got.status, StatusCode::NOT_FOUND, "{}: {}", path, got.text),
            Some(status) => {
                prop_assert_eq!(got.status, StatusCode::OK, "{}: {}", path, got.text);
                prop_assert_eq!(got.json["status"].as_str(), Some(status), "{}", path);
            }
        }
        Ok(())
    }

    async fn audit_cron(&self, c: usize) -> Check {
        let cron = &self.model.crons[c];
        let alive = cron.alive && cron.thread.is_none_or(|t| self.model.threads[t].alive);
        let path = format!("/runs/crons/{}", cron.id);
        if alive {
            let got = self
                .expect(cron.owner, "GET", &path, Value::Null, StatusCode::OK)
                .await?;
            prop_assert_eq!(&got.json["metadata"], &cron.metadata, "{}", path);
        } else {
            self.expect(cron.owner, "GET", &path, Value::Null, StatusCode::NOT_FOUND)
                .await?;
        }
        Ok(())
    }

    async fn audit_item(&self, owner: usize, key: u8) -> Check {
        let value = self
            .model
            .items
            .iter()
            .find(|i| i.owner == owner && i.key == key)
            .and_then(|i| i.value.clone());
        let path = format!("/store/items?namespace={}.notes&key=k{key}", USERS[owner]);
        let got = self
            .expect(owner, "GET", &path, Value::Null, StatusCode::OK)
            .await?;
        prop_assert_eq!(
            &got.json["value"],
            &value.unwrap_or(Value::Null),
            "{}",
            path
        );
        Ok(())
    }

    /// Everything, as its owner sees it.
    async fn audit_all(&self) -> Check {
        for t in 0..self.model.threads.len() {
            self.audit_thread(t).await?;
        }
        for c in 0..self.model.crons.len() {
            self.audit_cron(c).await?;
        }
        for owner in 0..USERS.len() {
            for key in 0..3 {
                self.audit_item(owner, key).await?;
            }
        }
        Ok(())
    }

    async fn apply(&mut self, op: &Op) -> Check {
        match *op {
            Op::CreateThread { by } => {
                let marker = self.model.marker(by);
                let body = json!({"metadata": {"marker": marker, "owner": USERS[1 - by.min(1)]}});
                if by == READER {
                    self.expect(by, "POST", "/threads", body, StatusCode::FORBIDDEN)
                        .await?;
                    return Ok(());
                }
                let reply = self
                    .expect(by, "POST", "/threads", body, StatusCode::OK)
                    .await?;
                let metadata = json!({"marker": marker, "owner": USERS[by]});
                prop_assert_eq!(&reply.json["metadata"], &metadata);
                let origin = self.model.threads.len();
                self.model.threads.push(Thread {
                    id: id_of(&reply, "thread_id"),
                    owner: by,
                    alive: true,
                    metadata,
                    values: Value::Null,
                    origin,
                });
                self.settle_thread(self.model.threads.len() - 1).await?;
            }
            Op::GetThread { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let path = format!("/threads/{}", thread.id);
                if self.model.sees(by, t) {
                    let got = self
                        .expect(by, "GET", &path, Value::Null, StatusCode::OK)
                        .await?;
                    prop_assert_eq!(&got.json["metadata"], &self.model.threads[t].metadata);
                } else {
                    self.expect(by, "GET", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                }
            }
            Op::PatchThread { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let path = format!("/threads/{}", thread.id);
                let marker = self.model.marker(by);
                let body = json!({"metadata": {"note": marker, "owner": "user1"}});
                if self.model.sees(by, t) {
                    let got = self
                        .expect(by, "PATCH", &path, body, StatusCode::OK)
                        .await?;
                    self.model.threads[t].metadata["note"] = json!(marker);
                    prop_assert_eq!(&got.json["metadata"], &self.model.threads[t].metadata);
                } else {
                    self.expect(by, "PATCH", &path, body, StatusCode::NOT_FOUND)
                        .await?;
                    self.audit_thread(t).await?;
                }
            }
            Op::DeleteThread { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let path = format!("/threads/{}", thread.id);
                if self.model.sees(by, t) {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NO_CONTENT)
                        .await?;
                    self.model.threads[t].alive = false;
                    for run in self.model.runs.iter_mut().filter(|r| r.thread == t) {
                        run.state = RunState::Gone;
                    }
                } else {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                }
                self.audit_thread(t).await?;
            }
            Op::CopyThread { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let path = format!("/threads/{}/copy", thread.id);
                if self.model.sees(by, t) {
                    let got = self
                        .expect(by, "POST", &path, Value::Null, StatusCode::OK)
                        .await?;
                    let source = &self.model.threads[t];
                    prop_assert_eq!(&got.json["metadata"], &source.metadata);
                    let copy = Thread {
                        id: id_of(&got, "thread_id"),
                        owner: by,
                        alive: true,
                        metadata: source.metadata.clone(),
                        values: source.values.clone(),
                        origin: source.origin,
                    };
                    self.model.threads.push(copy);
                    self.audit_thread(self.model.threads.len() - 1).await?;
                } else {
                    // Outside the caller's scope reads as missing.
                    self.expect(by, "POST", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                    self.audit_thread(t).await?;
                }
            }
            Op::SearchThreads { by } => {
                let mut mine: Vec<&str> = (0..self.model.threads.len())
                    .filter(|&t| self.model.sees(by, t))
                    .map(|t| self.model.threads[t].id.as_str())
                    .collect();
                mine.sort_unstable();
                let found = self
                    .expect(
                        by,
                        "POST",
                        "/threads/search",
                        json!({"limit": 1000}),
                        StatusCode::OK,
                    )
                    .await?;
                let mut ids: Vec<&str> = found
                    .json
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["thread_id"].as_str())
                    .collect();
                ids.sort_unstable();
                prop_assert_eq!(&ids, &mine, "{} searched threads", USERS[by]);
                let count = self
                    .expect(by, "POST", "/threads/count", json!({}), StatusCode::OK)
                    .await?;
                prop_assert_eq!(
                    count.json,
                    json!(mine.len()),
                    "{} counted threads",
                    USERS[by]
                );
                // Another user's marker finds nothing.
                if let Some(other) = self.model.threads.iter().find(|t| t.owner != by) {
                    let body = json!({"metadata": {"marker": other.metadata["marker"]}});
                    let found = self
                        .expect(by, "POST", "/threads/count", body, StatusCode::OK)
                        .await?;
                    prop_assert_eq!(found.json, json!(0));
                }
            }
            Op::ThreadState { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let id = thread.id.clone();
                let status = if self.model.sees(by, t) {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                self.expect(
                    by,
                    "GET",
                    &format!("/threads/{id}/state"),
                    Value::Null,
                    status,
                )
                .await?;
                self.expect(
                    by,
                    "POST",
                    &format!("/threads/{id}/history"),
                    json!({}),
                    status,
                )
                .await?;
            }
            Op::Run {
                by,
                ref thread,
                delayed,
            } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let id = thread.id.clone();
                let marker = self.model.marker(by);
                let mut body = json!({
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "user", "content": marker}]},
                    "multitask_strategy": "reject",
                });
                let path = if delayed {
                    body["after_seconds"] = json!(3600);
                    format!("/threads/{id}/runs")
                } else {
                    format!("/threads/{id}/runs/wait")
                };
                if !self.model.sees(by, t) {
                    self.expect(by, "POST", &path, body, StatusCode::NOT_FOUND)
                        .await?;
                    return self.audit_thread(t).await;
                }
                // A run records its graph on the thread, even one refused
                // for the thread being busy (as LangGraph does).
                let metadata = &mut self.model.threads[t].metadata;
                metadata["graph_id"] = json!("agent");
                metadata["assistant_id"] = json!(AGENT);
                if self.model.pending_on(t) {
                    self.expect(by, "POST", &path, body, StatusCode::CONFLICT)
                        .await?;
                    return self.audit_thread(t).await;
                }
                let reply = self.expect(by, "POST", &path, body, StatusCode::OK).await?;
                let run_id = if delayed {
                    prop_assert_eq!(reply.json["status"].as_str(), Some("pending"));
                    id_of(&reply, "run_id")
                } else {
                    prop_assert_eq!(&reply.json["seen_user"], &json!(USERS[by]));
                    // The run is the newest of the thread.
                    let runs = self
                        .expect(
                            by,
                            "GET",
                            &format!("/threads/{id}/runs"),
                            Value::Null,
                            StatusCode::OK,
                        )
                        .await?;
                    runs.json[0]["run_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                self.model.runs.push(Run {
                    id: run_id,
                    thread: t,
                    state: if delayed {
                        RunState::Pending
                    } else {
                        RunState::Done
                    },
                });
                self.settle_thread(t).await?;
            }
            Op::ListRuns { by, ref thread } => {
                let Some((t, thread)) = Model::pick(&self.model.threads, thread) else {
                    return Ok(());
                };
                let path = format!("/threads/{}/runs?limit=1000", thread.id);
                if self.model.sees(by, t) {
                    let got = self
                        .expect(by, "GET", &path, Value::Null, StatusCode::OK)
                        .await?;
                    let mut ids: Vec<&str> = got
                        .json
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["run_id"].as_str())
                        .collect();
                    ids.sort_unstable();
                    let mut expected: Vec<&str> = self
                        .model
                        .runs
                        .iter()
                        .filter(|r| r.thread == t && r.state != RunState::Gone)
                        .map(|r| r.id.as_str())
                        .collect();
                    expected.sort_unstable();
                    prop_assert_eq!(ids, expected, "{}", path);
                } else {
                    self.expect(by, "GET", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                }
            }
            Op::GetRun {
                by,
                ref thread,
                ref run,
            } => {
                let Some((r, t)) = self.model.run_through(thread, run) else {
                    return Ok(());
                };
                let (thread, run) = (&self.model.threads[t], &self.model.runs[r]);
                let path = format!("/threads/{}/runs/{}", thread.id, run.id);
                let visible =
                    self.model.sees(by, t) && run.thread == t && run.state != RunState::Gone;
                let status = if visible {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                self.expect(by, "GET", &path, Value::Null, status).await?;
                self.audit_run(r).await?;
            }
            Op::CancelRun {
                by,
                ref thread,
                ref run,
            }
            | Op::CancelRunIds {
                by,
                ref thread,
                ref run,
            } => {
                let Some((r, t)) = self.model.run_through(thread, run) else {
                    return Ok(());
                };
                let (thread, run) = (&self.model.threads[t], &self.model.runs[r]);
                let (path, body, done) = match op {
                    Op::CancelRun { .. } => (
                        format!("/threads/{}/runs/{}/cancel", thread.id, run.id),
                        Value::Null,
                        StatusCode::ACCEPTED,
                    ),
                    _ => (
                        "/runs/cancel".to_owned(),
                        json!({"thread_id": thread.id, "run_ids": [run.id]}),
                        StatusCode::NO_CONTENT,
                    ),
                };
                let allowed =
                    self.model.sees(by, t) && run.thread == t && run.state == RunState::Pending;
                if allowed {
                    self.expect(by, "POST", &path, body, done).await?;
                    self.model.runs[r].state = RunState::Cancelled;
                    self.settle_run(r).await?;
                    self.settle_thread(t).await?;
                } else {
                    self.expect(by, "POST", &path, body, StatusCode::NOT_FOUND)
                        .await?;
                }
                self.audit_run(r).await?;
            }
            Op::DeleteRun {
                by,
                ref thread,
                ref run,
            } => {
                let Some((r, t)) = self.model.run_through(thread, run) else {
                    return Ok(());
                };
                let (thread, run) = (&self.model.threads[t], &self.model.runs[r]);
                let path = format!("/threads/{}/runs/{}", thread.id, run.id);
                let allowed =
                    self.model.sees(by, t) && run.thread == t && run.state != RunState::Gone;
                if allowed {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NO_CONTENT)
                        .await?;
                    self.model.runs[r].state = RunState::Gone;
                    self.settle_run(r).await?;
                    self.settle_thread(t).await?;
                } else {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                }
                self.audit_all_runs().await?;
            }
            Op::CancelPending { by } => {
                let mine: Vec<usize> = (0..self.model.runs.len())
                    .filter(|&r| {
                        let run = &self.model.runs[r];
                        run.state == RunState::Pending && self.model.sees(by, run.thread)
                    })
                    .collect();
                let body = json!({"status": "pending"});
                if mine.is_empty() {
                    self.expect(by, "POST", "/runs/cancel", body, StatusCode::NOT_FOUND)
                        .await?;
                } else {
                    self.expect(by, "POST", "/runs/cancel", body, StatusCode::NO_CONTENT)
                        .await?;
                    for &r in &mine {
                        self.model.runs[r].state = RunState::Cancelled;
                        self.settle_run(r).await?;
                        self.settle_thread(self.model.runs[r].thread).await?;
                    }
                }
                self.audit_all_runs().await?;
            }
            Op::CreateCron { by, ref thread } => {
                let marker = self.model.marker(by);
                let body = json!({"assistant_id": "agent", "schedule": "0 0 1 1 *",
                                  "metadata": {"marker": marker}});
                let (path, t) = match thread {
                    None => ("/runs/crons".to_owned(), None),
                    Some(index) => {
                        let Some((t, thread)) = Model::pick(&self.model.threads, index) else {
                            return Ok(());
                        };
                        (format!("/threads/{}/runs/crons", thread.id), Some(t))
                    }
                };
                if let Some(t) = t.filter(|&t| !self.model.sees(by, t)) {
                    self.expect(by, "POST", &path, body, StatusCode::NOT_FOUND)
                        .await?;
                    return self.audit_thread(t).await;
                }
                let got = self.send(by, "POST", &path, body).await?;
                if by == READER && got.status == StatusCode::FORBIDDEN {
                    return Ok(());
                }
                prop_assert_eq!(
                    got.status,
                    StatusCode::OK,
                    "{} {}: {}",
                    USERS[by],
                    path,
                    got.text
                );
                let metadata = json!({"marker": marker, "owner": USERS[by]});
                prop_assert_eq!(&got.json["metadata"], &metadata);
                self.model.crons.push(Cron {
                    id: id_of(&got, "cron_id"),
                    owner: by,
                    thread: t,
                    alive: true,
                    metadata,
                });
            }
            Op::SearchCrons { by } => {
                let mut mine: Vec<&str> = self
                    .model
                    .crons
                    .iter()
                    .filter(|c| {
                        c.owner == by
                            && c.alive
                            && c.thread.is_none_or(|t| self.model.threads[t].alive)
                    })
                    .map(|c| c.id.as_str())
                    .collect();
                mine.sort_unstable();
                let found = self
                    .expect(
                        by,
                        "POST",
                        "/runs/crons/search",
                        json!({"limit": 1000}),
                        StatusCode::OK,
                    )
                    .await?;
                let mut ids: Vec<&str> = found
                    .json
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["cron_id"].as_str())
                    .collect();
                ids.sort_unstable();
                prop_assert_eq!(&ids, &mine, "{} searched crons", USERS[by]);
                let count = self
                    .expect(by, "POST", "/runs/crons/count", json!({}), StatusCode::OK)
                    .await?;
                prop_assert_eq!(count.json, json!(mine.len()), "{} counted crons", USERS[by]);
            }
            Op::PatchCron { by, ref cron } | Op::DeleteCron { by, ref cron } => {
                let Some((c, cron)) = Model::pick(&self.model.crons, cron) else {
                    return Ok(());
                };
                let path = format!("/runs/crons/{}", cron.id);
                let alive = cron.alive && cron.thread.is_none_or(|t| self.model.threads[t].alive);
                let allowed = alive && cron.owner == by;
                if let Op::PatchCron { .. } = op {
                    let marker = self.model.marker(by);
                    let body = json!({"metadata": {"note": marker}});
                    if allowed {
                        self.expect(by, "PATCH", &path, body, StatusCode::OK)
                            .await?;
                        self.model.crons[c].metadata["note"] = json!(marker);
                    } else {
                        self.expect(by, "PATCH", &path, body, StatusCode::NOT_FOUND)
                            .await?;
                    }
                } else if allowed {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NO_CONTENT)
                        .await?;
                    self.model.crons[c].alive = false;
                } else {
                    self.expect(by, "DELETE", &path, Value::Null, StatusCode::NOT_FOUND)
                        .await?;
                }
                self.audit_cron(c).await?;
            }
            Op::PutItem { by, owner, key } => {
                let marker = self.model.marker(by);
                let body = json!({"namespace": [USERS[owner], "notes"], "key": format!("k{key}"),
                                  "value": {"marker": marker}});
                if owner == by {
                    self.expect(by, "PUT", "/store/items", body, StatusCode::NO_CONTENT)
                        .await?;
                    self.model.item(owner, key).value = Some(json!({"marker": marker}));
                } else {
                    self.expect(by, "PUT", "/store/items", body, StatusCode::FORBIDDEN)
                        .await?;
                }
                self.audit_item(owner, key).await?;
            }
            Op::GetItem { by, owner, key } => {
                let path = format!("/store/items?namespace={}.notes&key=k{key}", USERS[owner]);
                let status = if owner == by {
                    StatusCode::OK
                } else {
                    StatusCode::FORBIDDEN
                };
                self.expect(by, "GET", &path, Value::Null, status).await?;
            }
            Op::DeleteItem { by, owner, key } => {
                let body = json!({"namespace": [USERS[owner], "notes"], "key": format!("k{key}")});
                if owner == by {
                    self.expect(by, "DELETE", "/store/items", body, StatusCode::NO_CONTENT)
                        .await?;
                    self.model.item(owner, key).value = None;
                } else {
                    self.expect(by, "DELETE", "/store/items", body, StatusCode::FORBIDDEN)
                        .await?;
                }
                self.audit_item(owner, key).await?;
            }
            Op::SearchItems { by, owner } => {
                let body = json!({"namespace_prefix": [USERS[owner]], "limit": 100});
                if owner != by {
                    self.expect(
                        by,
                        "POST",
                        "/store/items/search",
                        body,
                        StatusCode::FORBIDDEN,
                    )
                    .await?;
                    return Ok(());
                }
                let found = self
                    .expect(by, "POST", "/store/items/search", body, StatusCode::OK)
                    .await?;
                let mut keys: Vec<&str> = found.json["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["key"].as_str())
                    .collect();
                keys.sort_unstable();
                let expected: Vec<String> = (0..3)
                    .filter(|&k| {
                        self.model
                            .items
                            .iter()
                            .any(|i| i.owner == by && i.key == k && i.value.is_some())
                    })
                    .map(|k| format!("k{k}"))
                    .collect();
                prop_assert_eq!(keys, expected);
            }
            Op::ListNamespaces { by } => {
                let own = json!({"prefix": [USERS[by]]});
                let got = self
                    .expect(by, "POST", "/store/namespaces", own, StatusCode::OK)
                    .await?;
                let has = self
                    .model
                    .items
                    .iter()
                    .any(|i| i.owner == by && i.value.is_some());
                let expected = if has {
                    json!([[USERS[by], "notes"]])
                } else {
                    json!([])
                };
                prop_assert_eq!(&got.json["namespaces"], &expected);
                self.expect(
                    by,
                    "POST",
                    "/store/namespaces",
                    json!({}),
                    StatusCode::FORBIDDEN,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Waits until run `r`'s cancel or rollback has taken effect.
    async fn settle_run(&self, r: usize) -> Check {
        let run = &self.model.runs[r];
        let thread = &self.model.threads[run.thread];
        let path = format!("/threads/{}/runs/{}", thread.id, run.id);
        match run.state {
            RunState::Gone => {
                self.poll(thread.owner, &path, |reply| {
                    reply.status == StatusCode::NOT_FOUND
                })
                .await?;
            }
            _ => {
                self.poll(thread.owner, &path, |reply| {
                    reply.json["status"] != "pending"
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn audit_all_runs(&self) -> Check {
        for r in 0..self.model.runs.len() {
            self.audit_run(r).await?;
        }
        Ok(())
    }
}

/// Deterministic unless `PROPTEST_RNG_SEED` says otherwise; 64 cases of up
/// to 40 operations unless `PROPTEST_CASES` says otherwise (a deeper search:
/// `PROPTEST_CASES=2000 PROPTEST_RNG_SEED=<n>`); a failure shrinks for at
/// most two minutes.
fn config() -> Config {
    let mut config = Config {
        cases: 64,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    if let Ok(cases) = std::env::var("PROPTEST_CASES") {
        config.cases = cases.parse().expect("PROPTEST_CASES is a number");
    }
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(15);
    }
    config.failure_persistence = None;
    config
}

/// Runs `ops` on a fresh server; `Err` names the first broken promise.
fn check(ops: &[Op]) -> Check {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut case = Case {
            app: server(),
            model: Model::default(),
        };
        for op in ops {
            case.apply(op).await?;
        }
        case.audit_all().await
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_user_sees_or_changes_another_users_resources(ops in prop::collection::vec(op(), 1..40)) {
        check(&ops)?;
    }
}

/// The smallest case the property found (issue 15 item 1): user2 deletes
/// user1's pending run through a thread of their own.
#[tokio::test]
async fn a_run_is_deleted_only_through_its_own_thread() {
    let app = server();
    let thread = |token: &'static str| {
        let app = app.clone();
        async move {
            let reply = send(&app, "POST", "/threads", token, json!({})).await;
            id_of(&reply, "thread_id")
        }
    };
    let (theirs, mine) = (thread("user1-token").await, thread("user2-token").await);
    let run = send(
        &app,
        "POST",
        &format!("/threads/{theirs}/runs"),
        "user1-token",
        json!({"assistant_id": "agent", "after_seconds": 3600}),
    )
    .await;
    let run = id_of(&run, "run_id");
    let deleted = send(
        &app,
        "DELETE",
        &format!("/threads/{mine}/runs/{run}"),
        "user2-token",
        Value::Null,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND, "{}", deleted.text);
    let still = send(
        &app,
        "GET",
        &format!("/threads/{theirs}/runs/{run}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(still.json["status"], "pending", "{}", still.text);
}

/// The smallest case the property found (issue 15 item 5): deleting a
/// finished run empties the state of a copy of its thread.
#[tokio::test]
async fn deleting_a_run_keeps_the_copies_of_its_thread() {
    let app = server();
    let created = send(&app, "POST", "/threads", "user1-token", json!({})).await;
    let thread = id_of(&created, "thread_id");
    let input = json!({"messages": [{"role": "user", "content": "hello"}]});
    let body = json!({"assistant_id": "agent", "input": input});
    let done = send(
        &app,
        "POST",
        &format!("/threads/{thread}/runs/wait"),
        "user1-token",
        body,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let runs = send(
        &app,
        "GET",
        &format!("/threads/{thread}/runs"),
        "user1-token",
        Value::Null,
    )
    .await;
    let run = runs.json[0]["run_id"].as_str().unwrap().to_owned();
    let copy = send(
        &app,
        "POST",
        &format!("/threads/{thread}/copy"),
        "user1-token",
        Value::Null,
    )
    .await;
    let copy = id_of(&copy, "thread_id");
    let state = |id: String| {
        let app = app.clone();
        async move {
            send(
                &app,
                "GET",
                &format!("/threads/{id}/state"),
                "user1-token",
                Value::Null,
            )
            .await
            .json["values"]
                .clone()
        }
    };
    let before = state(copy.clone()).await;
    assert_eq!(before["seen_user"], "user1", "{before}");
    let deleted = send(
        &app,
        "DELETE",
        &format!("/threads/{thread}/runs/{run}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(state(copy).await, before);
}
