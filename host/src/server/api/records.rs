//! The records as the API answers with them and `/openapi.json`
//! documents them. Storage's records are plain data; each converts here,
//! field for field, into the type the routes serialize, so the schema and
//! the wire are one type.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::storage::{self, Object};

/// A thread (`Thread` in the Agent Server API).
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(value_type = Object)]
    pub metadata: Object,
    /// `idle`, `busy`, `interrupted` or `error`.
    pub status: String,
    /// Its config.
    pub config: Value,
    /// Its state values (`null` before any run).
    pub values: Value,
    /// Pending interrupts, by task.
    pub interrupts: Value,
    /// The last run's error, if any.
    pub error: Value,
}

/// An assistant: a graph with its configuration.
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(value_type = Object)]
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
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(value_type = Object)]
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
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(value_type = Object)]
    pub payload: Object,
    /// When it fires next.
    pub next_run_date: Option<String>,
    /// Its metadata.
    #[schema(value_type = Object)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    /// Its namespace labels.
    pub namespace: Vec<String>,
    /// Its key within the namespace.
    pub key: String,
    /// Its value (a JSON object).
    #[schema(value_type = Object)]
    pub value: Object,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last update time.
    pub updated_at: String,
}

/// A run: one execution of an assistant's graph on a thread.
#[derive(Debug, Serialize, ToSchema)]
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
    /// `pending`, `running`, `success`, `error`, `timeout` or `interrupted`.
    pub status: String,
    /// Its metadata: the assistant's, the thread's, the config's and the
    /// request's, merged, with the plugin's stamps.
    #[schema(value_type = Object)]
    pub metadata: Object,
    /// What it was created with: input, config (the server's
    /// `configurable` keys included, private user fields left out), stream
    /// modes, ...
    pub kwargs: Value,
    /// `enqueue`, `reject`, `interrupt` or `rollback`.
    pub multitask_strategy: String,
}

impl From<storage::Thread> for Thread {
    fn from(record: storage::Thread) -> Self {
        Self {
            thread_id: record.thread_id,
            created_at: record.created_at,
            updated_at: record.updated_at,
            state_updated_at: record.state_updated_at,
            metadata: record.metadata,
            status: record.status.to_string(),
            config: record.config,
            values: record.values,
            interrupts: record.interrupts,
            error: record.error,
        }
    }
}

impl From<storage::Assistant> for Assistant {
    fn from(record: storage::Assistant) -> Self {
        Self {
            assistant_id: record.assistant_id,
            graph_id: record.graph_id,
            config: record.config,
            context: record.context,
            metadata: record.metadata,
            name: record.name,
            description: record.description,
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<storage::AssistantVersion> for AssistantVersion {
    fn from(record: storage::AssistantVersion) -> Self {
        Self {
            assistant_id: record.assistant_id,
            graph_id: record.graph_id,
            config: record.config,
            context: record.context,
            metadata: record.metadata,
            name: record.name,
            description: record.description,
            version: record.version,
            created_at: record.created_at,
        }
    }
}

impl From<storage::Cron> for Cron {
    fn from(record: storage::Cron) -> Self {
        Self {
            cron_id: record.cron_id,
            assistant_id: record.assistant_id,
            thread_id: record.thread_id,
            user_id: record.user_id,
            end_time: record.end_time,
            schedule: record.schedule,
            timezone: record.timezone,
            payload: record.payload,
            next_run_date: record.next_run_date,
            metadata: record.metadata,
            on_run_completed: record.on_run_completed,
            enabled: record.enabled,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<storage::Item> for Item {
    fn from(record: storage::Item) -> Self {
        Self {
            namespace: record.namespace,
            key: record.key,
            value: record.value,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<storage::Run> for Run {
    fn from(record: storage::Run) -> Self {
        Self {
            run_id: record.run_id,
            thread_id: record.thread_id,
            assistant_id: record.assistant_id,
            created_at: record.created_at,
            updated_at: record.updated_at,
            status: record.status.to_string(),
            metadata: record.metadata,
            kwargs: record.kwargs,
            multitask_strategy: record.multitask_strategy,
        }
    }
}
