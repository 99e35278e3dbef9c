//! The storage seam: the records the API serves and the operations the
//! routes need, each taking the authorization scope (the plugin's filter)
//! so that a backend applies it **in its query**. SQLite ([`sqlite`]) is
//! the embedded default, PostgreSQL ([`postgres`]) the one several
//! replicas share; another backend implements [`Storage`] and nothing
//! above it changes.
//!
//! What every backend shares lives here, free of any database: the records
//! (`records.rs`), what an update means (`patch.rs`: merges, versions, a
//! cron's next run) and the error a backend maps its own into
//! ([`StorageError`]).

mod checks;
#[cfg(test)]
mod conformance;
mod error;
mod patch;
pub mod postgres;
pub mod queue;
mod records;
pub mod sqlite;
mod status;

use std::task::{Context, Poll, Waker};

use serde_json::{Map, Value};
use uuid::Uuid;

pub use error::{BackendError, StorageError};
pub use patch::{AssistantPatch, CronPatch, SystemAssistant};
pub use postgres::{ConnectError, PostgresStorage, redacted};
pub use queue::RunQueue;
pub use records::{
    Assistant, AssistantVersion, Checkpoint, Cron, FinishedTask, Item, NextTask, PendingInterrupt,
    Run, SentTask, TaskResult, Thread,
};
pub use sqlite::SqliteStorage;
pub use status::{RunStatus, ThreadStatus, UnknownStatus};
pub use warden_types::Filter;

/// Waits for a storage operation in synchronous code: a request's job on
/// the work pool, a run's worker on the blocking pool, a run cancelled as
/// its stream is dropped. Async code awaits the operation instead.
///
/// An embedded backend's operation is done when first polled (SQLite
/// works inline): then this costs no more than a direct call. One that
/// waits on the network is driven by the server's runtime, whose context
/// the thread must have entered (the work pool's and the blocking pool's
/// have); on a runtime worker (a `Drop` in async code), the worker's other
/// tasks move to another thread while it waits (`block_in_place`).
pub fn wait<F: Future>(operation: F) -> F::Output {
    // A request's storage work, in its trace (exported only with an OTLP
    // endpoint; otherwise the span is off and costs a load), and in the
    // time its thread waited ([`take_waited`]).
    let _span = tracing::debug_span!("storage").entered();
    let started = std::time::Instant::now();
    let done = wait_untimed(operation);
    WAITED.with(|waited| waited.set(waited.get() + started.elapsed()));
    done
}

fn wait_untimed<F: Future>(operation: F) -> F::Output {
    let mut operation = std::pin::pin!(operation);
    let mut cx = Context::from_waker(Waker::noop());
    if let Poll::Ready(done) = operation.as_mut().poll(&mut cx) {
        return done;
    }
    let runtime = tokio::runtime::Handle::current();
    // The work pool gives this thread's slot to another job meanwhile.
    let _waiting = crate::plugin::observed_wait();
    tokio::task::block_in_place(|| runtime.block_on(operation))
}

thread_local! {
    /// The time this thread spent in [`wait`] since [`take_waited`].
    static WAITED: std::cell::Cell<std::time::Duration> = const {
        std::cell::Cell::new(std::time::Duration::ZERO)
    };
}

/// The time the calling thread spent in [`wait`] since the last call: a
/// request's storage work, for the metrics.
pub fn take_waited() -> std::time::Duration {
    WAITED.with(|waited| waited.take())
}

/// JSON object: metadata, config, values.
pub type Object = Map<String, Value>;

/// Shorthand for storage results.
pub type Result<T> = std::result::Result<T, StorageError>;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending (the API's default).
    #[default]
    Desc,
}

/// One page of a search, with the total the pagination headers report.
#[derive(Debug)]
pub struct Page<T> {
    /// The records of this page.
    pub items: Vec<T>,
    /// How many records match in all.
    pub total: u64,
}

/// `POST /threads/search` and `/threads/count`.
#[derive(Debug, Default)]
pub struct ThreadQuery {
    /// Metadata containment (each key equal).
    pub metadata: Object,
    /// Values containment (each key equal).
    pub values: Object,
    /// Only these ids.
    pub ids: Option<Vec<Uuid>>,
    /// Only this status.
    pub status: Option<ThreadStatus>,
    /// Sort column (validated by the route).
    pub sort_by: Option<&'static str>,
    /// Sort direction.
    pub order: Order,
    /// Page size.
    pub limit: u64,
    /// Page start.
    pub offset: u64,
}

/// `POST /assistants/search` and `/assistants/count`.
#[derive(Debug, Default)]
pub struct AssistantQuery {
    /// Metadata containment.
    pub metadata: Object,
    /// Only this graph.
    pub graph_id: Option<String>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Sort column (validated by the route).
    pub sort_by: Option<&'static str>,
    /// Sort direction.
    pub order: Order,
    /// Page size.
    pub limit: u64,
    /// Page start.
    pub offset: u64,
}

/// `POST /runs/crons/search` and `/count`.
#[derive(Debug, Default)]
pub struct CronQuery {
    /// Only this assistant.
    pub assistant_id: Option<Uuid>,
    /// Only this thread.
    pub thread_id: Option<Uuid>,
    /// Only enabled (or disabled) crons.
    pub enabled: Option<bool>,
    /// Metadata containment.
    pub metadata: Object,
    /// Sort column (validated by the route).
    pub sort_by: Option<&'static str>,
    /// Sort direction.
    pub order: Order,
    /// Page size.
    pub limit: u64,
    /// Page start.
    pub offset: u64,
}

/// What [`Storage::set_latest_assistant_version`] found.
#[derive(Debug)]
pub enum SetLatest {
    /// No such assistant within the scope.
    NoAssistant,
    /// The assistant has no such version.
    NoVersion,
    /// The assistant, now at that version.
    Done(Box<Assistant>),
}

/// `POST /store/items/search`.
#[derive(Debug, Default)]
pub struct ItemQuery {
    /// Namespace prefix.
    pub prefix: Vec<String>,
    /// The client's filter on the item values.
    pub filter: Filter,
    /// The auth plugin's filter on the item values, AND-ed.
    pub scope: Option<Filter>,
    /// Page size.
    pub limit: u64,
    /// Page start.
    pub offset: u64,
}

/// `POST /store/namespaces`.
#[derive(Debug, Default)]
pub struct NamespaceQuery {
    /// Namespaces starting with these labels.
    pub prefix: Vec<String>,
    /// Namespaces ending with these labels.
    pub suffix: Vec<String>,
    /// Truncate namespaces to this many labels (then deduplicate).
    pub max_depth: Option<usize>,
    /// Only namespaces holding an item whose value matches (the plugin's
    /// filter; empty: every namespace).
    pub filter: Filter,
    /// Page size.
    pub limit: u64,
    /// Page start.
    pub offset: u64,
}

impl NamespaceQuery {
    /// The page the query answers, from the namespaces (in order) of the
    /// items its prefix and filter select: those ending with its suffix,
    /// truncated to its depth, each once.
    pub fn page(&self, namespaces: impl IntoIterator<Item = Vec<String>>) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for mut ns in namespaces {
            if !ns.ends_with(&self.suffix) {
                continue;
            }
            if let Some(depth) = self.max_depth {
                ns.truncate(depth);
            }
            if out.last() != Some(&ns) && !out.contains(&ns) {
                out.push(ns);
            }
        }
        out.into_iter()
            .skip(self.offset as usize)
            .take(self.limit as usize)
            .collect()
    }
}

/// When a write must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk when the call returns: what a client is told is done.
    Durable,
    /// Visible to every reader when the call returns, on disk with the next
    /// durable write to the database at the latest; a crash of the
    /// database itself (not of a server) before then may lose it. For what
    /// a run writes while it runs (checkpoints, events): its completion is
    /// durable, and a run cut short by a crash starts over from the state
    /// before it. (LangGraph's checkpointer writes asynchronously too.)
    Deferred,
}

/// Where the API's records live. Every read, update and delete takes the
/// plugin's `scope`; a record outside it behaves as if it did not exist.
///
/// An update reads the record, applies the shared rule of `patch.rs`
/// ([`AssistantPatch::apply`], [`CronPatch::apply`], ...) and writes the
/// result back, all in one transaction: a backend stores, it does not
/// decide what an update means.
///
/// Every operation is `async`: a network database must not hold a tokio
/// worker while it waits. The trait is used as `Arc<dyn Storage>`, which
/// `async fn` in a trait cannot be yet, so `async_trait` boxes each
/// future; an embedded backend may do its (short) work inline.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The backend's name, as `/info` shows it (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Whether operations do their work inline, when first polled (an
    /// embedded database): then a route runs them on its work-pool thread.
    /// Otherwise they wait on the network, and a route awaits them on the
    /// runtime rather than hold a thread of the work pool.
    fn works_inline(&self) -> bool {
        true
    }

    /// The waits for a connection from the backend's pool so far, as the
    /// metrics export them.
    fn pool_waits(&self) -> prometheus_client::metrics::histogram::Histogram {
        crate::telemetry::metrics::pool_wait_histogram()
    }

    /// The run queue several servers share, when this backend has one:
    /// then runs execute on whichever server claims them.
    fn run_queue(&self) -> Option<std::sync::Arc<dyn RunQueue>> {
        None
    }

    /// Inserts a thread; false when the id is taken.
    async fn insert_thread(&self, thread: &Thread) -> Result<bool>;
    /// The thread, if it exists within `scope`.
    async fn thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Thread>>;
    /// Merges `metadata` into the thread's (shallowly, `patch::patch_thread`),
    /// if it exists within `scope`.
    async fn update_thread(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
    ) -> Result<Option<Thread>>;
    /// Deletes the thread (and its crons), if it exists within `scope`.
    async fn delete_thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool>;
    /// Threads matching `query` within `scope`.
    async fn search_threads(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Thread>>;
    /// How many threads match `query` within `scope`.
    async fn count_threads(&self, query: &ThreadQuery, scope: Option<&Filter>) -> Result<u64>;

    /// Inserts or refreshes a graph's system assistant (no auth: start-up)
    /// and marks it the server's. A row at its id the server did not create
    /// is replaced; one it did keeps what authorized users made of it (only
    /// the name and description are refreshed): [`SystemAssistant::decide`].
    async fn upsert_system_assistant(&self, assistant: &Assistant) -> Result<SystemAssistant>;
    /// Whether the assistant is one the server created (a system assistant).
    async fn is_system_assistant(&self, id: Uuid) -> Result<bool>;
    /// Inserts an assistant (version 1); false when the id is taken.
    async fn insert_assistant(&self, assistant: &Assistant) -> Result<bool>;
    /// The assistant, if it exists within `scope`.
    async fn assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Assistant>>;
    /// Applies `patch` as a new version (the one after the latest it has
    /// had), if the assistant exists within `scope`.
    async fn update_assistant(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &AssistantPatch,
    ) -> Result<Option<Assistant>>;
    /// Deletes the assistant (and its crons), if it exists within `scope`.
    async fn delete_assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool>;
    /// The assistant's versions whose metadata contains `metadata` and lies
    /// within `scope`, newest first (none when the assistant is missing).
    async fn assistant_versions(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AssistantVersion>>;
    /// Makes `version` the assistant's current one: its graph, config,
    /// context, metadata, name and description become that version's
    /// (`patch::restore_version`).
    async fn set_latest_assistant_version(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        version: i64,
    ) -> Result<SetLatest>;
    /// Assistants matching `query` within `scope`.
    async fn search_assistants(
        &self,
        query: &AssistantQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Assistant>>;
    /// How many assistants match `query` within `scope`.
    async fn count_assistants(&self, query: &AssistantQuery, scope: Option<&Filter>)
    -> Result<u64>;

    /// Inserts a cron.
    async fn insert_cron(&self, cron: &Cron) -> Result<()>;
    /// The cron, if it exists within `scope`.
    async fn cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Cron>>;
    /// Applies `patch` (which may move the next run), if the cron exists
    /// within `scope`.
    async fn update_cron(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &CronPatch,
    ) -> Result<Option<Cron>>;
    /// Deletes the cron, if it exists within `scope`.
    async fn delete_cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool>;
    /// Crons matching `query` within `scope` (on the cron's metadata) and
    /// `thread_scope` (on its thread's metadata; crons without a thread pass).
    async fn search_crons(
        &self,
        query: &CronQuery,
        scope: Option<&Filter>,
        thread_scope: Option<&Filter>,
    ) -> Result<Page<Cron>>;

    /// The enabled crons due at `now` (RFC 3339), whose end time, if any,
    /// has not passed.
    async fn due_crons(&self, now: &str) -> Result<Vec<Cron>>;
    /// Claims the firing of a cron due at `due` (its `next_run_date` as
    /// read): moves it to `next` (`None`: never again) only if it is still
    /// due at `due`. True for the one caller that moved it, so a cron due
    /// on several servers sharing a database fires once.
    async fn claim_cron(&self, id: Uuid, due: &str, next: Option<&str>) -> Result<bool>;
    /// How many crons `user_id` created (`limits.max_crons_per_user`).
    async fn count_crons_of(&self, user_id: &str) -> Result<u64>;

    /// Inserts a run, and marks its thread `busy`.
    async fn insert_run(&self, run: &Run) -> Result<()>;
    /// The run, if it is on that thread.
    async fn run(&self, thread_id: Uuid, run_id: Uuid) -> Result<Option<Run>>;
    /// The thread's runs, newest first, optionally of one status.
    async fn list_runs(
        &self,
        thread_id: Uuid,
        status: Option<RunStatus>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Run>>;
    /// Sets a run's status.
    async fn set_run_status(&self, run_id: Uuid, status: RunStatus) -> Result<()>;
    /// Deletes every checkpoint of the thread but the latest; returns how
    /// many went.
    async fn prune_checkpoints(&self, thread_id: Uuid) -> Result<u64>;
    /// Deletes a run (and the checkpoints it wrote on that thread, not those
    /// a copy of the thread holds); false when it is not on that thread.
    async fn delete_run(&self, thread_id: Uuid, run_id: Uuid) -> Result<bool>;
    /// The runs pending or running, anywhere (left over from a previous
    /// process when called at start-up).
    async fn runs_in_flight(&self) -> Result<Vec<Run>>;
    /// Sets a thread's status and, when given, its error (`Value::Null`
    /// clears it).
    async fn set_thread_status(
        &self,
        thread_id: Uuid,
        status: ThreadStatus,
        error: Option<&Value>,
    ) -> Result<()>;
    /// Records a checkpoint and makes its values and interrupts the
    /// thread's, on disk as `durability` asks.
    async fn put_checkpoint(&self, checkpoint: &Checkpoint, durability: Durability) -> Result<()>;
    /// The thread's checkpoints, newest first: at most `limit`, older than
    /// `before` when given, whose metadata contains `metadata`.
    async fn checkpoints(
        &self,
        thread_id: Uuid,
        limit: u64,
        before: Option<&str>,
        metadata: &Object,
    ) -> Result<Vec<Checkpoint>>;
    /// One checkpoint of the thread.
    async fn checkpoint(&self, thread_id: Uuid, checkpoint_id: &str) -> Result<Option<Checkpoint>>;
    /// Copies a thread's checkpoints and values onto another thread.
    async fn copy_state(&self, from: Uuid, to: Uuid) -> Result<()>;

    /// Writes an item (insert or replace), atomically, if the item it
    /// replaces and the item written both lie within `scope` (a filter on
    /// the value); false, and nothing written, when either does not.
    async fn put_item(
        &self,
        namespace: &[String],
        key: &str,
        value: &Object,
        scope: Option<&Filter>,
    ) -> Result<bool>;
    /// The item, if it exists within `scope`.
    async fn item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<Option<Item>>;
    /// Deletes the item, if it exists within `scope`; false when it does not.
    async fn delete_item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<bool>;
    /// Items under a namespace prefix matching a filter on their values.
    async fn search_items(&self, query: &ItemQuery) -> Result<Vec<Item>>;
    /// The namespaces holding items that match the query's filter.
    async fn list_namespaces(&self, query: &NamespaceQuery) -> Result<Vec<Vec<String>>>;
}
