//! The records a backend stores and returns: plain data, with the fields
//! the API serves (the HTTP layer owns their wire shape and schema).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Object;
use super::status::{RunStatus, ThreadStatus};

/// A thread (`Thread` in the Agent Server API).
#[derive(Debug, Clone)]
pub struct Thread {
    /// Its id (UUIDv7 when the server made it).
    pub thread_id: Uuid,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
    /// RFC 3339 time of the last state change.
    pub state_updated_at: String,
    /// Its metadata (the plugin's stamps included).
    pub metadata: Object,
    /// Between runs, or with one in flight.
    pub status: ThreadStatus,
    /// Its config.
    pub config: Value,
    /// Its state values (`null` before any run).
    pub values: Value,
    /// Pending interrupts, by task.
    pub interrupts: Value,
    /// The last run's error, if any.
    pub error: Value,
}

impl Thread {
    /// A thread made now (status `idle`, no values).
    pub fn new(thread_id: Uuid, metadata: Object) -> Self {
        let now = crate::timestamp::now();
        Self {
            thread_id,
            created_at: now.clone(),
            updated_at: now.clone(),
            state_updated_at: now,
            metadata,
            status: ThreadStatus::Idle,
            config: serde_json::json!({}),
            values: Value::Null,
            interrupts: serde_json::json!({}),
            error: Value::Null,
        }
    }
}

/// An assistant: a graph with its configuration.
#[derive(Debug, Clone)]
pub struct Assistant {
    /// Its id (UUIDv4; UUIDv5 of the graph id for system assistants).
    pub assistant_id: Uuid,
    /// The graph it runs.
    pub graph_id: String,
    /// Its config.
    pub config: Value,
    /// Its context (mirrors `config.configurable`).
    pub context: Value,
    /// Its metadata.
    pub metadata: Object,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its version, from 1.
    pub version: i64,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
}

/// One version of an assistant: what its creation or a `PATCH` left.
#[derive(Debug, Clone)]
pub struct AssistantVersion {
    /// The assistant's id.
    pub assistant_id: Uuid,
    /// The graph it runs.
    pub graph_id: String,
    /// Its config.
    pub config: Value,
    /// Its context (mirrors `config.configurable`).
    pub context: Value,
    /// Its metadata.
    pub metadata: Object,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The version number, from 1.
    pub version: i64,
    /// RFC 3339 time the version was made.
    pub created_at: String,
}

/// A cron: a run on a schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    /// Its id (UUIDv7).
    pub cron_id: Uuid,
    /// The assistant it runs.
    pub assistant_id: Uuid,
    /// The thread it runs on, if any.
    pub thread_id: Option<Uuid>,
    /// Who created it (the caller's identity).
    pub user_id: Option<String>,
    /// When it stops firing.
    pub end_time: Option<String>,
    /// The 5-field cron schedule.
    pub schedule: String,
    /// Its IANA time zone, if given.
    pub timezone: Option<String>,
    /// The run it creates.
    pub payload: Object,
    /// When it fires next.
    pub next_run_date: Option<String>,
    /// Its metadata.
    pub metadata: Object,
    /// `delete` or `keep` (`null` for thread crons).
    pub on_run_completed: Option<String>,
    /// Whether it fires.
    pub enabled: bool,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
}

/// A store item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its namespace labels.
    pub namespace: Vec<String>,
    /// Its key within the namespace.
    pub key: String,
    /// Its value (a JSON object).
    pub value: Object,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
}

/// A run: one execution of an assistant's graph on a thread.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its id (UUIDv7).
    pub run_id: Uuid,
    /// The thread it runs on (a temporary one for stateless runs).
    pub thread_id: Uuid,
    /// The assistant it runs.
    pub assistant_id: Uuid,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Its metadata: the assistant's, the thread's, the config's and the
    /// request's, merged, with the plugin's stamps.
    pub metadata: Object,
    /// What it was created with: input, config (the server's
    /// `configurable` keys included, private user fields left out), stream
    /// modes, ...
    pub kwargs: Value,
    /// `enqueue`, `reject`, `interrupt` or `rollback`.
    pub multitask_strategy: String,
}

/// A checkpoint: the state of a thread after one step of a run (or a
/// `POST /threads/{id}/state`).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The thread.
    pub thread_id: Uuid,
    /// Its id (UUIDv7 text: ordered by creation).
    pub checkpoint_id: String,
    /// The checkpoint before it on the thread, if any.
    pub parent_checkpoint_id: Option<String>,
    /// The run that wrote it, if any.
    pub run_id: Option<Uuid>,
    /// The state values.
    pub values: Value,
    /// The nodes of the tasks to run next (empty when the run ended): first
    /// those a `Send` made, then those the edges lead to.
    pub next: Vec<String>,
    /// The states of the tasks a `Send` made: the task of `next[i]` runs on
    /// `sends[i]` (a JSON object), for each `i` below `sends.len()`.
    pub sends: Vec<Value>,
    /// LangGraph's checkpoint metadata: `source`, `step`, `writes`,
    /// `parents`, and the run's metadata.
    pub metadata: Object,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The interrupt calls the run paused on (empty unless it paused inside a node).
    pub interrupts: Vec<PendingInterrupt>,
    /// The tasks of the paused step that finished before it paused: they
    /// do not run again when the run resumes.
    pub finished: Vec<FinishedTask>,
}

/// A task that runs a node on its own state (LangGraph's `Send(node,
/// arg)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentTask {
    /// The node.
    pub node: String,
    /// The state it runs on: a JSON object.
    pub arg: Value,
}

/// What a task returned: its update, and where a `Command` in it sent the
/// run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Its update: a JSON object, or `null`.
    pub update: Value,
    /// The nodes its `Command(goto=...)` named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goto: Vec<String>,
    /// The tasks its `Command` sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<SentTask>,
}

/// A task of a paused step that finished before the step paused: it does
/// not run again when the run resumes (LangGraph's pending writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedTask {
    /// The node.
    pub node: String,
    /// For a task a `Send` made, its index in the checkpoint's `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<usize>,
    /// What it returned.
    pub result: TaskResult,
}

/// An `interrupt(value)` call that paused a run inside a node; a run with `command.resume` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingInterrupt {
    /// The node that called it (one of the checkpoint's `next`).
    pub node: String,
    /// For a task a `Send` made, its index in the checkpoint's `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<usize>,
    /// Its id, which clients resume it by.
    pub id: String,
    /// The value the node passed to `interrupt`.
    pub value: Value,
    /// The answers earlier resumes gave the node's earlier `interrupt` calls, in call order.
    #[serde(default)]
    pub answers: Vec<Value>,
}

/// A task a checkpoint has left to run: one of its `next`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextTask<'a> {
    /// The node it runs.
    pub node: &'a str,
    /// For a task a `Send` made: its index in `next`, and the state it
    /// runs on.
    pub sent: Option<(usize, &'a Value)>,
}

impl NextTask<'_> {
    /// Its index in `next`, for a task a `Send` made.
    pub fn send(&self) -> Option<usize> {
        self.sent.map(|(i, _)| i)
    }

    /// LangGraph's `path` of the task: `["__pregel_push", i, false]` for a
    /// task a `Send` made, `["__pregel_pull", node]` otherwise.
    pub fn path(&self) -> Value {
        match self.send() {
            Some(i) => serde_json::json!(["__pregel_push", i, false]),
            None => serde_json::json!(["__pregel_pull", self.node]),
        }
    }
}

impl Checkpoint {
    /// The tasks left to run, in order: those a `Send` made, then the
    /// others.
    pub fn tasks(&self) -> impl Iterator<Item = NextTask<'_>> {
        self.next.iter().enumerate().map(|(i, node)| NextTask {
            node,
            sent: self.sends.get(i).map(|arg| (i, arg)),
        })
    }

    /// The id of the task that runs `node` from this checkpoint (`send`:
    /// the index of a task a `Send` made): the same for the state's
    /// `tasks` and the thread's `interrupts`.
    pub fn task_id(&self, node: &str, send: Option<usize>) -> Uuid {
        let name = match send {
            None => format!("{}:{node}", self.checkpoint_id),
            Some(i) => format!("{}:{node}:push:{i}", self.checkpoint_id),
        };
        Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
    }

    /// The nodes of the tasks still to run, as LangGraph's `next` shows
    /// them: `next` without the tasks that finished before the step paused.
    pub fn nodes_to_run(&self) -> Vec<&str> {
        self.tasks()
            .filter(|t| self.finished_of(t).is_none())
            .map(|t| t.node)
            .collect()
    }

    /// What `task` returned before the step paused, if it finished.
    pub fn finished_of(&self, task: &NextTask<'_>) -> Option<&TaskResult> {
        self.finished
            .iter()
            .find(|f| f.node == task.node && f.send == task.send())
            .map(|f| &f.result)
    }

    /// The `interrupt` calls a task paused on here, as the API shows them
    /// under the task: `[{"id", "value"}]`.
    pub fn interrupts_of(&self, task: &NextTask<'_>) -> Vec<Value> {
        self.interrupts
            .iter()
            .filter(|i| i.node == task.node && i.send == task.send())
            .map(|i| serde_json::json!({"id": i.id, "value": i.value}))
            .collect()
    }

    /// The thread's `interrupts` while this is its latest checkpoint:
    /// `{task id: [{"id", "value"}]}`, as LangGraph shows them.
    pub fn thread_interrupts(&self) -> Value {
        let mut by_task = serde_json::Map::new();
        for interrupt in &self.interrupts {
            let shown = serde_json::json!({"id": interrupt.id, "value": interrupt.value});
            let task = by_task
                .entry(self.task_id(&interrupt.node, interrupt.send).to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = task {
                list.push(shown);
            }
        }
        Value::Object(by_task)
    }
}
