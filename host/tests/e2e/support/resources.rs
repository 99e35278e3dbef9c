//! Typed calls of the Agent Server API, as a user's program makes them:
//! each sends one request, expects it to succeed and returns the resource.
//! A test of a refusal sends the request itself and asserts the [`Reply`].

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Client, HttpRequest, Reply, eventually};

/// A thread.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Thread {
    pub thread_id: String,
    pub status: String,
    pub metadata: Value,
    #[serde(default)]
    pub values: Value,
    #[serde(default)]
    pub error: Value,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An assistant (or one of its versions).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Assistant {
    pub assistant_id: String,
    pub graph_id: String,
    pub name: String,
    pub version: i64,
    pub metadata: Value,
    pub config: Value,
    pub context: Value,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub thread_id: String,
    pub status: String,
    pub metadata: Value,
    #[serde(default)]
    pub kwargs: Value,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A cron.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cron {
    pub cron_id: String,
    pub assistant_id: String,
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    pub schedule: String,
    pub timezone: Option<String>,
    pub next_run_date: Option<String>,
    pub enabled: bool,
    pub metadata: Value,
    pub payload: Value,
    pub on_run_completed: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A store item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Item {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Value,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Sends `request`, expects `status` and reads the body as a `T`.
async fn expect<T: DeserializeOwned>(request: HttpRequest, status: u16) -> T {
    let what = request.describe();
    let reply = request.await;
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    parse(&what, &reply)
}

fn parse<T: DeserializeOwned>(what: &str, reply: &Reply) -> T {
    serde_json::from_value(reply.json.clone())
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", reply.text))
}

impl Client {
    // --- threads ---

    /// `POST /threads`.
    pub async fn create_thread(&self, body: Value) -> Thread {
        expect(self.post("/threads", body), 200).await
    }

    /// `GET /threads/{id}`.
    pub async fn thread(&self, id: &str) -> Thread {
        expect(self.get(&format!("/threads/{id}")), 200).await
    }

    /// `GET /threads/{id}/state`: the thread's state (`ThreadState`).
    pub async fn state(&self, id: &str) -> Value {
        expect(self.get(&format!("/threads/{id}/state")), 200).await
    }

    /// Polls the thread until its status is `wanted` (a thread settles
    /// just after its last run ends): the thread then.
    pub async fn until_thread_is(&self, id: &str, wanted: &str) -> Thread {
        eventually(&format!("thread {id} is {wanted}"), async || {
            let thread = self.thread(id).await;
            (thread.status == wanted).then_some(thread)
        })
        .await
    }

    /// `POST /threads/search`.
    pub async fn search_threads(&self, body: Value) -> Vec<Thread> {
        expect(self.post("/threads/search", body), 200).await
    }

    /// `POST /threads/count`.
    pub async fn count_threads(&self, body: Value) -> u64 {
        expect(self.post("/threads/count", body), 200).await
    }

    /// `POST /threads/{id}/copy`.
    pub async fn copy_thread(&self, id: &str) -> Thread {
        expect(self.post(&format!("/threads/{id}/copy"), Value::Null), 200).await
    }

    /// `DELETE /threads/{id}`.
    pub async fn delete_thread(&self, id: &str) {
        let reply = self.delete(&format!("/threads/{id}")).await;
        assert_eq!(reply.status, 204, "DELETE /threads/{id}: {}", reply.text);
    }

    // --- assistants ---

    /// `POST /assistants`.
    pub async fn create_assistant(&self, body: Value) -> Assistant {
        expect(self.post("/assistants", body), 200).await
    }

    /// `GET /assistants/{id}`.
    pub async fn assistant(&self, id: &str) -> Assistant {
        expect(self.get(&format!("/assistants/{id}")), 200).await
    }

    /// `PATCH /assistants/{id}`.
    pub async fn update_assistant(&self, id: &str, body: Value) -> Assistant {
        expect(self.patch(&format!("/assistants/{id}"), body), 200).await
    }

    // --- runs ---

    /// `POST /threads/{thread}/runs`: the run, created.
    pub async fn create_run(&self, thread: &str, body: Value) -> Run {
        expect(self.post(&format!("/threads/{thread}/runs"), body), 200).await
    }

    /// `POST /threads/{thread}/runs/wait`: the thread's values at the end.
    pub async fn wait_run(&self, thread: &str, body: Value) -> Value {
        expect(
            self.post(&format!("/threads/{thread}/runs/wait"), body),
            200,
        )
        .await
    }

    /// `GET /threads/{thread}/runs/{run}`.
    pub async fn run(&self, thread: &str, run: &str) -> Run {
        expect(self.get(&format!("/threads/{thread}/runs/{run}")), 200).await
    }

    /// `GET /threads/{thread}/runs`, the newest first.
    pub async fn runs(&self, thread: &str) -> Vec<Run> {
        expect(self.get(&format!("/threads/{thread}/runs")), 200).await
    }

    /// `GET /threads/{thread}/runs/{run}/join`: the thread's values once
    /// the run ends.
    pub async fn join(&self, thread: &str, run: &str) -> Value {
        expect(self.get(&format!("/threads/{thread}/runs/{run}/join")), 200).await
    }

    /// `POST /threads/{thread}/runs/{run}/cancel?wait=1`: returns once the
    /// run has stopped.
    pub async fn cancel(&self, thread: &str, run: &str) {
        let path = format!("/threads/{thread}/runs/{run}/cancel?wait=1");
        let reply = self.post(&path, Value::Null).await;
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.text);
    }

    /// Polls the run until its status is `wanted`: the run then.
    pub async fn until_run_is(&self, thread: &str, run: &str, wanted: &str) -> Run {
        eventually(&format!("run {run} is {wanted}"), async || {
            let run = self.run(thread, run).await;
            (run.status == wanted).then_some(run)
        })
        .await
    }

    /// A run on `thread` of `assistant` that waits an hour before it
    /// starts: in flight, and never started.
    pub async fn pending_run(&self, thread: &str, assistant: &str) -> Run {
        let run = self
            .create_run(
                thread,
                json!({"assistant_id": assistant, "after_seconds": 3600}),
            )
            .await;
        assert_eq!(run.status, "pending", "{run:?}");
        run
    }

    // --- crons ---

    /// `POST /runs/crons`.
    pub async fn create_cron(&self, body: Value) -> Cron {
        expect(self.post("/runs/crons", body), 200).await
    }

    /// `POST /threads/{thread}/runs/crons`.
    pub async fn create_thread_cron(&self, thread: &str, body: Value) -> Cron {
        expect(
            self.post(&format!("/threads/{thread}/runs/crons"), body),
            200,
        )
        .await
    }

    /// `GET /runs/crons/{id}`.
    pub async fn cron(&self, id: &str) -> Cron {
        expect(self.get(&format!("/runs/crons/{id}")), 200).await
    }

    /// `PATCH /runs/crons/{id}`.
    pub async fn update_cron(&self, id: &str, body: Value) -> Cron {
        expect(self.patch(&format!("/runs/crons/{id}"), body), 200).await
    }

    /// `POST /runs/crons/count`.
    pub async fn count_crons(&self, body: Value) -> u64 {
        expect(self.post("/runs/crons/count", body), 200).await
    }

    // --- the store ---

    /// `PUT /store/items`.
    pub async fn put_item(&self, namespace: &[&str], key: &str, value: Value) {
        let body = json!({"namespace": namespace, "key": key, "value": value});
        let reply = self.put("/store/items", body).await;
        assert_eq!(reply.status, 204, "PUT {namespace:?} {key}: {}", reply.text);
    }

    /// `GET /store/items`: the item, or `None` when there is none to see.
    pub async fn item(&self, namespace: &[&str], key: &str) -> Option<Item> {
        let path = format!("/store/items?namespace={}&key={key}", namespace.join("."));
        expect(self.get(&path), 200).await
    }
}
