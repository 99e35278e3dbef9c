//! Run execution: a run starts the moment it is created, on a bounded pool
//! of workers, one at a time per thread (later runs on a busy thread wait
//! their turn: LangGraph's `enqueue`). Each run executes its graph component
//! in a fresh instance on the blocking pool; what the graph reports becomes
//! checkpoints in storage and events in the run's [`EventLog`], which
//! streaming and joining clients follow.
//!
//! The records (runs, thread statuses, checkpoints) live in storage; what
//! only a live run has (its events, its cancel flag, the full user with its
//! private fields) lives here, in memory, within [`RunLimits`]: so many
//! runs in flight (per user, and their inputs' bytes), so many bytes of
//! events per running run, and a budget for what ended runs keep for late
//! joins and replays. At shutdown ([`Runs::shut_down`]) runs not started
//! end at once and running ones get a grace period; each ends `error`
//! (`ServerShutdown`), so that no run is left pending.
//!
//! On a storage with a shared run queue (PostgreSQL), runs wait in the
//! database instead and execute on whichever server claims them; every
//! other server follows them from there (see `shared.rs`).

mod chunks;
mod create;
mod debug;
mod events;
mod resume;
mod shared;
mod steps;

pub use create::{
    Authorizer, CreateError, Created, Graphs, MultitaskStrategy, RunCreate, Target,
    refuse_in_crons, resolve_assistant,
};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::time::Instant;
use uuid::Uuid;

pub use events::{EventLog, Progress, Retention, StreamEvent, id_key};
pub use shared::{BadSetting, QueueSettings};

use crate::config::LimitsConfig;
use crate::plugin::{
    GraphComponent, GraphEvent, GraphSlot, GraphStore, Outcome, RunFailure, RunStore, recorded_user,
};
use crate::storage::{
    Checkpoint, Durability, NextTask, Object, Run, RunStatus, Storage, StorageError, ThreadStatus,
    wait,
};
use crate::telemetry::metrics::{PluginLabel, RunMetrics, StatusLabel};
use crate::timestamp::now;
use steps::{pending_tasks, ran, step_writes};

/// The stream modes a run can produce.
pub const STREAM_MODES: &[&str] = &[
    "values",
    "messages",
    "messages-tuple",
    "updates",
    "events",
    "debug",
    "tasks",
    "checkpoints",
    "custom",
];

/// Everything a run needs to execute, handed over by the route that
/// created it.
pub struct RunSpec {
    /// The record, as created (status `pending`).
    pub run: Run,
    /// When its thread was created: which thread of that id it runs on
    /// (an id deleted and created again is another thread).
    pub thread_created_at: String,
    /// The graph it runs.
    pub graph: Arc<GraphComponent>,
    /// The run's input.
    pub input: Value,
    /// The full config the graph receives (private user fields included;
    /// the record's `kwargs` has them left out).
    pub config: Value,
    /// The run's context.
    pub context: Value,
    /// The stream modes it produces.
    pub stream_modes: Vec<String>,
    /// Whether its events keep ids for `Last-Event-ID` replays.
    pub resumable: bool,
    /// Whether its thread is deleted once it ends (stateless runs).
    pub delete_thread: bool,
    /// How long after its creation it may start (`after_seconds`).
    pub start_after: Option<Duration>,
}

/// How a cancelled run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAction {
    /// The run becomes `interrupted`; what it wrote stays.
    Interrupt,
    /// The run and what it wrote are deleted.
    Rollback,
}

impl CancelAction {
    /// Parses `interrupt` / `rollback`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "interrupt" => Some(Self::Interrupt),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

/// How a run ended, as `wait` and `join` report it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The final values.
    Success(Value),
    /// The error: `{"error", "message"}`.
    Error(Value),
    /// Cancelled: the thread's values at that point.
    Interrupted(Value),
}

impl RunOutcome {
    /// The body of `wait` / `join`: the values, or `{"__error__": ...}`.
    pub fn body(&self) -> Value {
        match self {
            RunOutcome::Success(values) | RunOutcome::Interrupted(values) => values.clone(),
            RunOutcome::Error(error) => json!({ "__error__": error }),
        }
    }
}

/// A run the server knows in memory: pending, running, or recently ended.
pub struct LiveRun {
    /// The run.
    pub run_id: Uuid,
    /// Its thread.
    pub thread_id: Uuid,
    /// When its thread was created (see [`RunSpec::thread_created_at`]).
    pub thread_created_at: String,
    /// Whether its events carry ids.
    pub resumable: bool,
    /// Not to start before then (`after_seconds`).
    not_before: Option<Instant>,
    /// Its events.
    pub events: EventLog,
    cancel: Arc<AtomicBool>,
    cancel_action: Mutex<Option<CancelAction>>,
    outcome: Mutex<Option<RunOutcome>>,
    spec: Mutex<Option<RunSpec>>,
    /// Its thread was deleted: not kept once it ends.
    forgotten: AtomicBool,
    /// Who created it (`langgraph_auth_user_id`), for the per-user bound.
    owner: String,
    /// The bytes of its input, config and context.
    input_bytes: usize,
    /// Wakes its driver while it waits for its start (cancel, shutdown).
    wake: Notify,
    /// Stopped by the server's shutdown, not by a client.
    shut_down: AtomicBool,
    /// The bytes of its result.
    outcome_bytes: AtomicUsize,
    /// What it holds once ended (events and result), as counted in the
    /// ended runs' budget.
    held: AtomicUsize,
    /// Counted in flight here (submitted here), against the limits.
    counted: bool,
    /// On a shared queue: the queue position of the next event to read,
    /// while this server follows the run (none: it executes it here, or it
    /// ended).
    following: Mutex<Option<i64>>,
    /// On a shared queue: the attempt executing here.
    attempt: AtomicU32,
    /// On a shared queue: writes its events while it executes here.
    persister: Mutex<Option<shared::Persister>>,
    /// On a shared queue: its thread was settled in the transaction that
    /// completed it (nothing left to settle here).
    settled: AtomicBool,
    /// On a shared queue: held by the attempt executing here, so that an
    /// attempt this server claims again (its lease lapsed while it ran)
    /// starts only once the earlier one has stopped.
    turn: tokio::sync::Mutex<()>,
    /// When this server took it on (submitted, or claimed).
    began: Instant,
}

impl LiveRun {
    /// Whether this server follows the run from the shared queue (another
    /// executes it).
    pub(crate) fn is_followed(&self) -> bool {
        self.following
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Waits until the run has ended and returns how.
    pub async fn outcome(&self) -> RunOutcome {
        let mut progress = self.events.subscribe();
        let _ = progress.wait_for(|p| p.done).await;
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(RunOutcome::Success(json!({})))
    }

    /// A run known to nothing else, for tests of what follows one.
    #[cfg(test)]
    pub(crate) fn standalone(resumable: bool) -> Arc<Self> {
        Arc::new(Self::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            resumable,
            EventLog::default(),
        ))
    }

    fn new(run_id: Uuid, thread_id: Uuid, resumable: bool, events: EventLog) -> Self {
        Self {
            run_id,
            thread_id,
            thread_created_at: String::new(),
            resumable,
            not_before: None,
            events,
            cancel: Arc::new(AtomicBool::new(false)),
            cancel_action: Mutex::new(None),
            outcome: Mutex::new(None),
            spec: Mutex::new(None),
            forgotten: AtomicBool::new(false),
            owner: String::new(),
            input_bytes: 0,
            wake: Notify::new(),
            shut_down: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            outcome_bytes: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            counted: false,
            following: Mutex::new(None),
            attempt: AtomicU32::new(1),
            persister: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
            began: Instant::now(),
        }
    }

    /// Asks it to stop with `action`.
    fn request_cancel(&self, action: CancelAction) {
        *self.cancel_action.lock().unwrap_or_else(|e| e.into_inner()) = Some(action);
        self.cancel.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn take_spec(&self) -> Option<RunSpec> {
        self.spec.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// How it ended, if it has.
    pub fn finished(&self) -> Option<RunOutcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Finished runs kept in memory for late joins and replays, at most.
const KEEP_FINISHED: usize = 1024;

/// The error of a run the shutdown did not let start.
const NEVER_STARTED: &str = "The server shut down before the run started; create it again";

/// How long runs stopped at shutdown have to end before the server exits
/// without them (they are marked `error` at the next start).
const SHUTDOWN_STOP: Duration = Duration::from_secs(5);

/// The bounds of the run executor (`langgraph.json`'s `limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLimits {
    /// Runs pending or running, all users together.
    pub max_in_flight: usize,
    /// Runs pending or running per user.
    pub max_in_flight_per_user: usize,
    /// The bytes of the inputs of the runs pending or running.
    pub in_flight_bytes: usize,
    /// The bytes of events one run keeps.
    pub run_events_bytes: usize,
    /// The bytes ended runs keep (events and results), all together.
    pub retained_bytes: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self::from(&LimitsConfig::default())
    }
}

impl From<&LimitsConfig> for RunLimits {
    fn from(c: &LimitsConfig) -> Self {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let mib = |n: u64| usize::try_from(n << 20).unwrap_or(usize::MAX);
        Self {
            max_in_flight: count(c.max_runs_in_flight),
            max_in_flight_per_user: count(c.max_runs_in_flight_per_user),
            in_flight_bytes: mib(c.runs_in_flight_mib),
            run_events_bytes: mib(c.run_events_mib),
            retained_bytes: mib(c.retained_events_mib),
        }
    }
}

/// Why a run was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A bound of [`RunLimits`] is reached: its `limits` key and value.
    #[error("too many runs in flight: `limits.{key}` is {limit}")]
    Busy {
        /// The `limits` key.
        key: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// What the executor holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Runs pending or running.
    pub in_flight: usize,
    /// Ended runs kept for late joins and replays.
    pub retained: usize,
    /// Stream events kept, of all runs.
    pub events: usize,
    /// The bytes those events hold.
    pub bytes: usize,
}

#[derive(Default)]
struct Inner {
    /// Runs not yet ended, by id.
    live: HashMap<Uuid, Arc<LiveRun>>,
    /// Per thread, the runs waiting their turn; a thread is present while
    /// its driver task runs.
    queues: HashMap<Uuid, VecDeque<Arc<LiveRun>>>,
    /// Threads whose driver is executing a run, with that run.
    running: HashMap<Uuid, Uuid>,
    /// Recently ended runs, oldest first.
    finished: VecDeque<Arc<LiveRun>>,
    /// What the recently ended runs hold, in bytes.
    finished_bytes: usize,
    /// Runs in flight (accepted and not yet retired), per owner.
    owners: HashMap<String, usize>,
    /// Runs in flight, all owners.
    in_flight: usize,
    /// The bytes of their inputs.
    input_bytes: usize,
    /// Shutting down: no run is accepted or started.
    closing: bool,
}

/// The run executor.
pub struct Runs {
    storage: Arc<dyn Storage>,
    workers: Arc<Semaphore>,
    inner: Mutex<Inner>,
    /// Every run submitted, as it is: thread streams pick up their runs.
    /// Weak: the channel's backlog must not keep ended runs in memory.
    submitted: broadcast::Sender<Weak<LiveRun>>,
    /// Every thread deleted: its streams end.
    deleted: broadcast::Sender<Uuid>,
    limits: RunLimits,
    /// What the runs' event logs keep, together.
    retention: Arc<Retention>,
    /// Woken whenever a run is retired.
    retired: Notify,
    /// The queue several servers share, when storage has one.
    shared: Option<shared::Shared>,
    /// Runs created, ended and retried here, for `/metrics`.
    metrics: RunMetrics,
    /// The store the runs' nodes reach (the server's, authorized by its
    /// auth plugin), once the server serves it.
    graph_store: OnceLock<Arc<dyn GraphStore>>,
}

/// How many submitted runs a slow thread stream may fall behind before it
/// looks the thread's runs up again.
const SUBMITTED_BACKLOG: usize = 256;

impl Runs {
    /// An executor running at most `workers` runs at once. On a storage
    /// with a shared run queue, runs of `graphs` execute on whichever
    /// server claims them (`queue`); otherwise in process, and runs left
    /// pending or running by a previous process are marked `error`.
    pub async fn new(
        storage: Arc<dyn Storage>,
        workers: usize,
        limits: RunLimits,
        graphs: BTreeMap<String, Arc<GraphSlot>>,
        queue: QueueSettings,
    ) -> Result<Arc<Self>, StorageError> {
        let shared = storage
            .run_queue()
            .map(|q| shared::Shared::new(q, graphs, queue));
        if let Some(shared) = &shared {
            // Hear the other servers before serving anything.
            shared.queue.ready().await?;
        }
        let mut threads = HashSet::new();
        let left = match &shared {
            Some(_) => Vec::new(),
            None => storage.runs_in_flight().await?,
        };
        for run in left {
            storage.set_run_status(run.run_id, RunStatus::Error).await?;
            threads.insert(run.thread_id);
        }
        for thread in threads {
            storage.set_thread_status(
                thread,
                ThreadStatus::Idle,
                Some(&json!({"error": "ServerRestart", "message": "The server restarted while the run was in flight"})),
            ).await?;
        }
        Ok(Arc::new(Self {
            storage,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            inner: Mutex::new(Inner::default()),
            submitted: broadcast::Sender::new(SUBMITTED_BACKLOG),
            deleted: broadcast::Sender::new(SUBMITTED_BACKLOG),
            limits,
            retention: Arc::default(),
            retired: Notify::new(),
            shared,
            metrics: RunMetrics::default(),
            graph_store: OnceLock::new(),
        }))
        .inspect(Runs::start_shared)
    }

    /// Gives the runs' nodes `store`, each call authorized as the run's
    /// user; the first store given stays.
    pub fn serve_store(&self, store: Arc<dyn GraphStore>) {
        let _ = self.graph_store.set(store);
    }

    /// The store of a run, as its user (`langgraph_auth_user` of its
    /// config: no plugin call, no token).
    fn store_of(&self, spec: &RunSpec) -> Option<RunStore> {
        let store = self.graph_store.get()?.clone();
        Some(RunStore {
            store,
            user: recorded_user(&spec.config["configurable"]["langgraph_auth_user"])
                .unwrap_or_default(),
        })
    }

    /// Run workers: how many runs (and state updates) execute at once.
    pub fn workers(&self) -> &Arc<Semaphore> {
        &self.workers
    }

    /// Runs created, ended and retried here.
    pub fn metrics(&self) -> &RunMetrics {
        &self.metrics
    }

    /// Counts one call of `graph`'s `run` (an instantiation and a call):
    /// `allow` when it returned values, `error` when it reported one,
    /// `fault` (and the fault's kind), or `cancelled`.
    fn count_graph_call(&self, graph: &str, result: &Result<Outcome, RunFailure>, took: Duration) {
        let plugins = &self.metrics.plugins;
        let outcome = match result {
            Ok(_) => "allow",
            Err(RunFailure::Error { .. }) => "error",
            Err(RunFailure::Cancelled) => "cancelled",
            Err(RunFailure::Fault(fault)) => {
                plugins.fault(graph, fault.kind());
                "fault"
            }
        };
        plugins.call(graph, "run", outcome, took);
        plugins
            .instantiations
            .get_or_create(&PluginLabel {
                plugin: graph.to_owned(),
            })
            .inc();
    }

    /// Runs waiting to start: here, those accepted and not executing; on a
    /// shared queue, every pending run of every server.
    pub async fn queue_depth(&self) -> Result<usize, StorageError> {
        match self.shared() {
            Some(shared) => Ok(shared
                .queue
                .all_in_flight()
                .await?
                .iter()
                .filter(|run| run.status == RunStatus::Pending)
                .count()),
            None => {
                let inner = self.inner();
                Ok(inner.in_flight.saturating_sub(inner.running.len()))
            }
        }
    }

    /// What the executor holds now.
    pub fn stats(&self) -> RunStats {
        let inner = self.inner();
        RunStats {
            in_flight: inner.in_flight,
            retained: inner.finished.len(),
            events: self.retention.events(),
            bytes: self.retention.bytes(),
        }
    }

    /// Counts a run of `owner` whose inputs hold `bytes` in flight, unless
    /// that passes a bound.
    fn admit(&self, owner: &str, bytes: usize) -> Result<(), SubmitError> {
        let mut inner = self.inner();
        let limits = &self.limits;
        if inner.closing {
            return Err(SubmitError::ShuttingDown);
        }
        let busy = |key, limit| Err(SubmitError::Busy { key, limit });
        if inner.owners.get(owner).copied().unwrap_or(0) >= limits.max_in_flight_per_user {
            return busy("max_runs_in_flight_per_user", limits.max_in_flight_per_user);
        }
        if inner.in_flight >= limits.max_in_flight {
            return busy("max_runs_in_flight", limits.max_in_flight);
        }
        // One run alone may pass the bytes' bound: it is within its body limit.
        if inner.in_flight > 0 && inner.input_bytes + bytes > limits.in_flight_bytes {
            return busy("runs_in_flight_mib", limits.in_flight_bytes >> 20);
        }
        *inner.owners.entry(owner.to_owned()).or_default() += 1;
        inner.in_flight += 1;
        inner.input_bytes += bytes;
        Ok(())
    }

    /// Uncounts what [`Runs::admit`] counted.
    fn release(inner: &mut Inner, owner: &str, bytes: usize) {
        if let Some(n) = inner.owners.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                inner.owners.remove(owner);
            }
        }
        inner.in_flight -= 1;
        inner.input_bytes -= bytes;
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the run (its thread becomes `busy`) and queues it on its
    /// thread; it starts at once when the thread is free.
    pub fn submit(self: &Arc<Self>, spec: RunSpec) -> Result<Arc<LiveRun>, SubmitError> {
        let live = self.accept(spec)?;
        self.metrics.created.inc();
        Ok(live)
    }

    /// [`Runs::submit`], uncounted.
    fn accept(self: &Arc<Self>, spec: RunSpec) -> Result<Arc<LiveRun>, SubmitError> {
        let owner = spec.config["configurable"]["langgraph_auth_user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let input_bytes =
            json_size(&spec.input) + json_size(&spec.config) + json_size(&spec.context);
        self.admit(&owner, input_bytes)?;
        if let Some(shared) = self.shared() {
            return self.enqueue(shared, spec, owner, input_bytes);
        }
        if let Err(e) = wait(self.storage.insert_run(&spec.run)) {
            Self::release(&mut self.inner(), &owner, input_bytes);
            return Err(e.into());
        }
        let events = EventLog::bounded(self.limits.run_events_bytes, self.retention.clone());
        let mut live = LiveRun::new(spec.run.run_id, spec.run.thread_id, spec.resumable, events);
        live.not_before = spec.start_after.map(|delay| Instant::now() + delay);
        live.thread_created_at = spec.thread_created_at.clone();
        live.owner = owner;
        live.input_bytes = input_bytes;
        live.counted = true;
        let live = Arc::new(live);
        live.events.push(
            "metadata",
            &json!({"run_id": spec.run.run_id, "attempt": 1}),
        );
        *live.spec.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
        let thread_id = live.thread_id;
        let mut inner = self.inner();
        inner.live.insert(live.run_id, live.clone());
        let start_driver = !inner.queues.contains_key(&thread_id);
        inner
            .queues
            .entry(thread_id)
            .or_default()
            .push_back(live.clone());
        drop(inner);
        let _ = self.submitted.send(Arc::downgrade(&live));
        if start_driver {
            let runs = Arc::clone(self);
            tokio::spawn(async move { runs.drive(thread_id).await });
        }
        Ok(live)
    }

    /// The live (or recently ended) run, if it is on that thread: a run is
    /// only ever reached through its own thread.
    pub fn get(self: &Arc<Self>, thread_id: Uuid, run_id: Uuid) -> Option<Arc<LiveRun>> {
        if self.shared.is_some() {
            return self.shared_get(thread_id, run_id);
        }
        let inner = self.inner();
        inner
            .live
            .get(&run_id)
            .cloned()
            .or_else(|| {
                inner
                    .finished
                    .iter()
                    .rev()
                    .find(|r| r.run_id == run_id)
                    .cloned()
            })
            .filter(|r| r.thread_id == thread_id)
    }

    /// The runs pending or running on a thread, oldest first.
    pub fn in_flight(self: &Arc<Self>, thread_id: Uuid) -> Vec<Arc<LiveRun>> {
        if let Some(shared) = self.shared() {
            return self.shared_in_flight(shared, thread_id);
        }
        let inner = self.inner();
        inner
            .queues
            .get(&thread_id)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The runs in flight on a thread whose end has not been heard yet: a
    /// run that a client waited for does not keep its thread busy in the
    /// moment before it leaves the queue, so the client may update the
    /// thread or start another run at once.
    pub fn unfinished(self: &Arc<Self>, thread_id: Uuid) -> Vec<Arc<LiveRun>> {
        let mut runs = self.in_flight(thread_id);
        runs.retain(|r| r.finished().is_none());
        runs
    }

    /// Runs as they are submitted, on every thread. Subscribe before
    /// listing a thread's runs, so that none falls between the two.
    pub fn submissions(&self) -> broadcast::Receiver<Weak<LiveRun>> {
        self.submitted.subscribe()
    }

    /// The thread's runs known in memory (in flight or recently ended),
    /// oldest first.
    pub fn on_thread(self: &Arc<Self>, thread_id: Uuid) -> Vec<Arc<LiveRun>> {
        if let Some(shared) = self.shared() {
            // Those in flight on other servers too.
            self.shared_in_flight(shared, thread_id);
        }
        let inner = self.inner();
        let mut runs: Vec<_> = inner
            .finished
            .iter()
            .chain(inner.live.values())
            .filter(|r| r.thread_id == thread_id)
            .cloned()
            .collect();
        runs.sort_by_key(|r| r.run_id);
        runs.dedup_by_key(|r| r.run_id);
        runs
    }

    /// Threads as they are deleted (or lag, when a receiver fell behind).
    pub fn deletions(&self) -> broadcast::Receiver<Uuid> {
        self.deleted.subscribe()
    }

    /// Forgets a deleted thread: its ended runs (and their events) are
    /// dropped, those still in flight are not kept once they end, and its
    /// thread streams end. Its runs in flight are cancelled beforehand by
    /// the caller.
    pub fn forget_thread(&self, thread_id: Uuid) {
        self.forget_thread_here(thread_id);
        if let Some(shared) = self.shared()
            && let Err(e) = wait(shared.queue.thread_deleted(thread_id))
        {
            tracing::warn!(%thread_id, "cannot tell the other servers the thread was deleted: {e}");
        }
    }

    /// [`Runs::forget_thread`] on this server only.
    fn forget_thread_here(&self, thread_id: Uuid) {
        let mut inner = self.inner();
        for live in inner.live.values().filter(|r| r.thread_id == thread_id) {
            live.forgotten.store(true, Ordering::Relaxed);
        }
        let mut freed = 0;
        inner.finished.retain(|r| {
            let keep = r.thread_id != thread_id;
            if !keep {
                freed += r.held.swap(0, Ordering::Relaxed);
            }
            keep
        });
        inner.finished_bytes -= freed;
        drop(inner);
        let _ = self.deleted.send(thread_id);
    }

    /// Every run pending or running.
    pub fn all_in_flight(self: &Arc<Self>) -> Vec<Arc<LiveRun>> {
        if let Some(shared) = self.shared() {
            return self.shared_all_in_flight(shared);
        }
        self.inner().live.values().cloned().collect()
    }

    /// Cancels a run pending or running: false when it is not (it ended,
    /// or never existed).
    pub fn cancel(self: &Arc<Self>, run_id: Uuid, action: CancelAction) -> bool {
        if let Some(shared) = self.shared() {
            let Some(live) = self.known(run_id) else {
                return false;
            };
            if shared.executing().contains_key(&run_id) {
                live.request_cancel(action);
                return true;
            }
            return self.shared_cancel(shared, &live, action);
        }
        let mut inner = self.inner();
        let Some(live) = inner.live.get(&run_id).cloned() else {
            return false;
        };
        *live.cancel_action.lock().unwrap_or_else(|e| e.into_inner()) = Some(action);
        live.cancel.store(true, Ordering::Relaxed);
        live.wake.notify_one();
        // A run still waiting in its queue never starts: it ends now.
        if inner.running.get(&live.thread_id) != Some(&run_id) {
            if let Some(queue) = inner.queues.get_mut(&live.thread_id) {
                queue.retain(|r| r.run_id != run_id);
            }
            drop(inner);
            let spec = live.take_spec();
            if let Some(spec) = spec {
                wait(self.end_cancelled(&live, &spec, action));
                self.retire(&live);
                wait(self.settle_thread(live.thread_id));
            }
        }
        true
    }

    /// Runs a thread's queue, one run after another, until it is empty.
    async fn drive(self: Arc<Self>, thread_id: Uuid) {
        loop {
            let next = {
                let mut inner = self.inner();
                let next = inner
                    .queues
                    .get(&thread_id)
                    .and_then(|q| q.front().cloned());
                match &next {
                    Some(run) => {
                        inner.running.insert(thread_id, run.run_id);
                    }
                    None => {
                        inner.queues.remove(&thread_id);
                        inner.running.remove(&thread_id);
                    }
                }
                next
            };
            let Some(live) = next else { return };
            // A delayed run holds its thread's queue, not a worker; a
            // cancel or the shutdown ends the wait.
            if let Some(at) = live.not_before {
                while !live.cancel.load(Ordering::Relaxed)
                    && !self.inner().closing
                    && Instant::now() < at
                {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = live.wake.notified() => {}
                    }
                }
            }
            // A run the shutdown reached while it waited never starts.
            let closing = self.inner().closing;
            if closing && let Some(spec) = live.take_spec() {
                self.end_by_shutdown(&live, &spec, NEVER_STARTED).await;
            }
            let ended = live
                .spec
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none();
            let executed = if ended {
                Ok(())
            } else {
                let Ok(permit) = self.workers.clone().acquire_owned().await else {
                    return;
                };
                let runs = Arc::clone(&self);
                let run = live.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    runs.execute(&run);
                })
                .await
            };
            if executed.is_err() {
                tracing::error!(run_id = %live.run_id, "the run's worker panicked");
                self.finish(
                    &live,
                    Some(RunStatus::Error),
                    None,
                    RunOutcome::Error(
                        json!({"error": "InternalError", "message": "The run's worker failed"}),
                    ),
                    false,
                )
                .await;
            }
            {
                let mut inner = self.inner();
                if let Some(queue) = inner.queues.get_mut(&thread_id) {
                    queue.retain(|r| r.run_id != live.run_id);
                }
                inner.running.remove(&thread_id);
            }
            self.retire(&live);
            self.settle_thread(thread_id).await;
        }
    }

    /// Executes one run on the calling (blocking) thread.
    fn execute(self: &Arc<Self>, live: &Arc<LiveRun>) {
        let Some(spec) = live.take_spec() else {
            return;
        };
        if self.inner().closing {
            wait(self.end_by_shutdown(live, &spec, NEVER_STARTED));
            return;
        }
        if live.cancel.load(Ordering::Relaxed) {
            let action = live
                .cancel_action
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(CancelAction::Interrupt);
            wait(self.end_cancelled(live, &spec, action));
            return;
        }
        if self.shared.is_none()
            && let Err(e) = wait(self.storage.set_run_status(live.run_id, RunStatus::Running))
        {
            tracing::error!(run_id = %live.run_id, "cannot start the run: {e}");
        }
        let head = wait(
            self.storage
                .checkpoints(live.thread_id, 1, None, &Object::new()),
        )
        .ok()
        .and_then(|c| c.into_iter().next());
        // Time travel: the run starts from a past checkpoint, its steps a
        // new branch of the history from there.
        let from = spec.run.kwargs.get("checkpoint_id").and_then(Value::as_str);
        let past = from.map(|id| {
            wait(self.storage.checkpoint(live.thread_id, id))
                .ok()
                .flatten()
                .ok_or_else(|| RunFailure::Error {
                    error: "ValueError".into(),
                    message: format!("Checkpoint {id} is no longer on the thread"),
                })
        });
        let (latest, before) = match &past {
            Some(Ok(checkpoint)) => (Some(checkpoint.clone()), checkpoint.values.clone()),
            _ => {
                let before = match wait(self.storage.thread(live.thread_id, None)) {
                    Ok(Some(thread)) if thread.values.is_object() => thread.values,
                    _ => json!({}),
                };
                (head.clone(), before)
            }
        };
        let invocation = resume::invocation(&spec, before, latest.as_ref());
        let forks = latest.as_ref().is_some_and(|from| {
            past.is_some() && head.is_none_or(|head| head.checkpoint_id != from.checkpoint_id)
        });
        let mut writer = StepWriter::new(self.storage.clone(), live, &spec, latest);
        writer.fence = self
            .shared()
            .map(|shared| (shared.queue.clone(), shared.replica.clone()));
        if let crate::plugin::Start::Resume { tasks, .. } = &invocation.start {
            writer.resume(forks, tasks);
        }
        let writer = Arc::new(Mutex::new(writer));
        let sink = {
            let writer = writer.clone();
            Box::new(move |event: GraphEvent| {
                writer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .handle(event)
            })
        };
        let started = std::time::Instant::now();
        let result = match past {
            Some(Err(missing)) => Err(missing),
            _ => {
                let store = self.store_of(&spec);
                let result = spec
                    .graph
                    .run_as(&invocation, live.cancel.clone(), sink, store);
                self.count_graph_call(spec.graph.graph_id(), &result, started.elapsed());
                result
            }
        };
        let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(Outcome::Done(values)) => {
                writer.close(&values, true);
                drop(writer);
                wait(self.finish(
                    live,
                    Some(RunStatus::Success),
                    Some(Value::Null),
                    RunOutcome::Success(values),
                    spec.delete_thread,
                ));
            }
            Ok(Outcome::Paused(pause)) => {
                // As LangGraph: the run succeeded; its thread is
                // `interrupted` until a run resumes it.
                let mut values = pause.values.clone();
                let interrupts = writer.pause(pause, &invocation);
                drop(writer);
                if !interrupts.is_empty()
                    && let Value::Object(map) = &mut values
                {
                    map.insert("__interrupt__".into(), resume::shown(&interrupts));
                }
                wait(self.finish(
                    live,
                    Some(RunStatus::Success),
                    Some(Value::Null),
                    RunOutcome::Success(values),
                    spec.delete_thread,
                ));
            }
            Err(RunFailure::Cancelled) => {
                writer.close_partial(&spec);
                drop(writer);
                let action = live
                    .cancel_action
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or(CancelAction::Interrupt);
                wait(self.end_cancelled(live, &spec, action));
            }
            Err(failure) => {
                writer.close_partial(&spec);
                drop(writer);
                let (error, message) = failure.error_and_message();
                let error = json!({"error": error, "message": message});
                live.events.push("error", &error);
                wait(self.finish(
                    live,
                    Some(RunStatus::Error),
                    Some(error.clone()),
                    RunOutcome::Error(error),
                    spec.delete_thread,
                ));
            }
        }
    }

    async fn delete_temporary_thread(&self, thread_id: Uuid) {
        if let Err(e) = self.storage.delete_thread(thread_id, None).await {
            tracing::error!(%thread_id, "cannot delete the run's temporary thread: {e}");
        }
        self.forget_thread(thread_id);
    }

    async fn end_cancelled(
        self: &Arc<Self>,
        live: &Arc<LiveRun>,
        spec: &RunSpec,
        action: CancelAction,
    ) {
        if live.shut_down.load(Ordering::Relaxed) {
            let grace = "The server shut down while the run was in flight; create it again";
            self.end_by_shutdown(live, spec, grace).await;
            return;
        }
        let values = match self.storage.thread(live.thread_id, None).await {
            Ok(Some(thread)) if thread.values.is_object() => thread.values,
            _ => json!({}),
        };
        if action == CancelAction::Rollback
            && let Err(e) = self.storage.delete_run(live.thread_id, live.run_id).await
        {
            tracing::error!(run_id = %live.run_id, "cannot roll the run back: {e}");
        }
        let status = match action {
            CancelAction::Interrupt => Some(RunStatus::Interrupted),
            CancelAction::Rollback => None,
        };
        self.finish(
            live,
            status,
            None,
            RunOutcome::Interrupted(values),
            spec.delete_thread,
        )
        .await;
    }

    /// Records how the run ended and wakes everyone following it. No
    /// `status` (a rolled-back run, deleted) writes nothing. A temporary
    /// thread (`delete_thread`) is gone before anyone hears the run ended.
    async fn finish(
        self: &Arc<Self>,
        live: &LiveRun,
        status: Option<RunStatus>,
        error: Option<Value>,
        outcome: RunOutcome,
        delete_thread: bool,
    ) {
        if let Some(shared) = self.shared() {
            // The status, the thread's error and status, and the log's end
            // at once: whoever hears the run ended reads it ended.
            match self
                .complete_shared(shared, live, status, error.as_ref(), &outcome)
                .await
            {
                shared::Completion::Done { settled } => {
                    live.settled.store(settled, Ordering::Relaxed);
                }
                shared::Completion::Lost { resume_at } => {
                    self.follow_lost(live, resume_at);
                    return;
                }
            }
        } else if let Some(status) = status {
            if let Err(e) = self.storage.set_run_status(live.run_id, status).await {
                tracing::error!(run_id = %live.run_id, "cannot record the run's status: {e}");
            }
            if let Some(error) = &error
                && let Err(e) = self
                    .storage
                    .set_thread_status(live.thread_id, ThreadStatus::Busy, Some(error))
                    .await
            {
                tracing::error!(thread_id = %live.thread_id, "cannot record the thread's error: {e}");
            }
        }
        if delete_thread {
            self.delete_temporary_thread(live.thread_id).await;
        } else if !live.settled.load(Ordering::Relaxed) {
            // Whoever hears the run ended reads its thread settled.
            self.settle_thread_past(live.thread_id, Some(live.run_id))
                .await;
        }
        let bytes = match &outcome {
            RunOutcome::Success(v) | RunOutcome::Error(v) | RunOutcome::Interrupted(v) => {
                json_size(v)
            }
        };
        live.outcome_bytes.store(bytes, Ordering::Relaxed);
        *live.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        live.events.finish();
        if let Some(status) = status {
            let status = status.as_str();
            self.metrics
                .finished
                .get_or_create(&StatusLabel { status })
                .inc();
            self.metrics
                .duration
                .observe(live.began.elapsed().as_secs_f64());
        }
    }

    /// Ends a run the shutdown stopped (or never let start): `error`, with
    /// `message`.
    async fn end_by_shutdown(self: &Arc<Self>, live: &Arc<LiveRun>, spec: &RunSpec, message: &str) {
        let error = json!({"error": "ServerShutdown", "message": message});
        if self.shared.is_some() {
            // Back to the queue, for another server: its log goes on
            // there, without this server's error.
            live.shut_down.store(true, Ordering::Relaxed);
        } else {
            live.events.push("error", &error);
        }
        self.finish(
            live,
            Some(RunStatus::Error),
            Some(error.clone()),
            RunOutcome::Error(error),
            spec.delete_thread,
        )
        .await;
    }

    /// Moves an ended run from the live runs to the recently finished,
    /// within [`KEEP_FINISHED`] and `limits.retained_events_mib`: the
    /// oldest are forgotten first (a late join then reads the thread).
    fn retire(&self, live: &Arc<LiveRun>) {
        let mut inner = self.inner();
        if inner.live.remove(&live.run_id).is_none() {
            return;
        }
        if live.counted {
            Self::release(&mut inner, &live.owner, live.input_bytes);
        }
        if live.forgotten.load(Ordering::Relaxed) {
            // Its followers read on; the events go with the last of them.
            drop(inner);
            self.retired.notify_waiters();
            return;
        }
        // Ended runs without ids that nobody follows any more: their
        // events can never be read again.
        let mut freed = 0;
        for run in &inner.finished {
            if !run.resumable && Arc::strong_count(run) == 1 {
                let bytes = run.events.clear();
                run.held.fetch_sub(bytes, Ordering::Relaxed);
                freed += bytes;
            }
        }
        inner.finished_bytes -= freed;
        let held = live.events.retained().1 + live.outcome_bytes.load(Ordering::Relaxed);
        live.held.store(held, Ordering::Relaxed);
        inner.finished_bytes += held;
        inner.finished.push_back(live.clone());
        while inner.finished.len() > KEEP_FINISHED
            || inner.finished_bytes > self.limits.retained_bytes
        {
            let Some(oldest) = inner.finished.pop_front() else {
                break;
            };
            oldest.events.clear();
            inner.finished_bytes -= oldest.held.swap(0, Ordering::Relaxed);
        }
        drop(inner);
        self.retired.notify_waiters();
    }

    /// Stops the executor: no run is accepted any more; runs not started
    /// end at once, running ones may go on for `grace`, then are stopped;
    /// each ends `error` (`ServerShutdown`). Returns once none is left, or
    /// when the stopped ones did not end in time (they are marked at the
    /// next start).
    pub async fn shut_down(self: &Arc<Self>, grace: Duration) {
        let live: Vec<Arc<LiveRun>> = {
            let mut inner = self.inner();
            inner.closing = true;
            inner.live.values().cloned().collect()
        };
        for run in live {
            run.wake.notify_one();
            let Some(spec) = run.take_spec() else {
                continue; // running
            };
            if let Some(queue) = self.inner().queues.get_mut(&run.thread_id) {
                queue.retain(|r| r.run_id != run.run_id);
            }
            self.end_by_shutdown(&run, &spec, NEVER_STARTED).await;
            self.retire(&run);
            self.settle_thread(run.thread_id).await;
        }
        if self.settled_by(Instant::now() + grace).await {
            return;
        }
        let running: Vec<Arc<LiveRun>> = self.inner().live.values().cloned().collect();
        tracing::warn!(
            runs = running.len(),
            grace_secs = grace.as_secs(),
            "runs still in flight after the shutdown grace period: stopping them"
        );
        for run in running {
            run.shut_down.store(true, Ordering::Relaxed);
            run.cancel.store(true, Ordering::Relaxed);
        }
        if !self.settled_by(Instant::now() + SHUTDOWN_STOP).await {
            tracing::error!("runs did not stop in time: they are marked `error` at the next start");
        }
    }

    /// Waits until no run is in flight, or `deadline`: whether none is.
    async fn settled_by(&self, deadline: Instant) -> bool {
        loop {
            let retired = self.retired.notified();
            tokio::pin!(retired);
            retired.as_mut().enable();
            if self.inner().live.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, retired).await.is_err() {
                return self.inner().live.is_empty();
            }
        }
    }

    /// A thread with nothing in flight is `idle`, `error` when its last
    /// run failed, or `interrupted` when it paused.
    async fn settle_thread(&self, thread_id: Uuid) {
        self.settle_thread_past(thread_id, None).await;
    }

    /// Settles the thread as if `ending`, a run ending now, were gone.
    async fn settle_thread_past(&self, thread_id: Uuid, ending: Option<Uuid>) {
        let busy = match self.shared() {
            Some(shared) => shared
                .queue
                .in_flight_on(thread_id)
                .await
                .map(|runs| !runs.is_empty())
                .unwrap_or(true),
            None => {
                let inner = self.inner();
                inner
                    .queues
                    .get(&thread_id)
                    .is_some_and(|q| q.iter().any(|r| Some(r.run_id) != ending))
            }
        };
        if busy {
            return;
        }
        let status = match self.storage.list_runs(thread_id, None, 1, 0).await {
            Ok(runs) if runs.first().is_some_and(|r| r.status == RunStatus::Error) => {
                ThreadStatus::Error
            }
            // A run that paused succeeded, and left nodes to run.
            Ok(runs) if runs.first().is_some_and(|r| r.status == RunStatus::Success) => {
                let paused = self
                    .storage
                    .checkpoints(thread_id, 1, None, &Object::new())
                    .await
                    .is_ok_and(|c| c.first().is_some_and(|c| !c.next.is_empty()));
                if paused {
                    ThreadStatus::Interrupted
                } else {
                    ThreadStatus::Idle
                }
            }
            _ => ThreadStatus::Idle,
        };
        if let Err(e) = self
            .storage
            .set_thread_status(thread_id, status, None)
            .await
        {
            tracing::error!(%thread_id, "cannot settle the thread's status: {e}");
        }
    }
}

/// The length of `value` as compact JSON, without writing it out.
pub(crate) fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Turns what a running graph reports into checkpoints and stream events.
/// A checkpoint is written when the step after it is known (its `next`), or
/// when the run ends.
struct StepWriter {
    storage: Arc<dyn Storage>,
    /// On a shared queue: the queue and this replica, whose attempt alone
    /// may write the run's checkpoints.
    fence: Option<(Arc<dyn crate::storage::RunQueue>, String)>,
    live: Arc<LiveRun>,
    modes: Vec<String>,
    run_metadata: Object,
    /// The run's `configurable`, which the `checkpoints` chunks show.
    configurable: Value,
    parent: Option<String>,
    step: i64,
    pending: Option<Checkpoint>,
    last_values: Option<Value>,
    seen_messages: HashSet<String>,
    /// The streamed messages so far, for `messages/partial`.
    partials: chunks::Partials,
    /// The thread's latest checkpoint when the run started: the one a
    /// resumed run that pauses again without a step pauses on.
    latest: Option<Checkpoint>,
    /// Which tasks of a resumed run's first step it was given as finished:
    /// their updates were streamed by the run that ran them.
    replayed: Vec<bool>,
}

impl StepWriter {
    fn new(
        storage: Arc<dyn Storage>,
        live: &Arc<LiveRun>,
        spec: &RunSpec,
        latest: Option<Checkpoint>,
    ) -> Self {
        // Steps count on across the thread's runs, as in LangGraph: a new
        // thread's input is step -1.
        let step = latest
            .as_ref()
            .and_then(|c| c.metadata.get("step"))
            .and_then(Value::as_i64)
            .unwrap_or(-2);
        let parent = latest.as_ref().map(|c| c.checkpoint_id.clone());
        let mut run_metadata = spec.run.metadata.clone();
        let configurable = &spec.run.kwargs["config"]["configurable"];
        // `checkpoint_id`: the past checkpoint a time-travelling run
        // started from, as LangGraph records it.
        for key in [
            "run_id",
            "thread_id",
            "graph_id",
            "assistant_id",
            "user_id",
            "checkpoint_id",
        ] {
            if let Some(v) = configurable.get(key) {
                run_metadata.insert(key.into(), v.clone());
            }
        }
        Self {
            storage,
            fence: None,
            live: live.clone(),
            modes: spec.stream_modes.clone(),
            run_metadata,
            configurable: configurable.clone(),
            parent,
            step,
            pending: None,
            // A resumed run that takes no step and changes nothing writes
            // no checkpoint (as LangGraph).
            last_values: latest.as_ref().map(|c| c.values.clone()),
            seen_messages: HashSet::new(),
            partials: chunks::Partials::default(),
            latest,
            replayed: Vec::new(),
        }
    }

    fn wants(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m == mode)
    }

    fn handle(&mut self, event: GraphEvent) {
        match event {
            GraphEvent::Step {
                writes,
                values,
                next,
                sends,
            } => {
                let input = writes.iter().any(|(node, _)| node == "__start__");
                // The checkpoint the step's nodes started from: the last
                // one, or the one a resumed run resumes.
                let from = match self.pending.take() {
                    Some(mut previous) => {
                        // A `0.1.0` graph does not tell what comes next.
                        if previous.next.is_empty() {
                            previous.next = writes.iter().map(|(node, _)| node.clone()).collect();
                        }
                        Some(self.write(previous))
                    }
                    None if !input => self.latest.clone(),
                    None => None,
                };
                // As LangGraph's loop: the tasks start, then each node's
                // update and result, then the state they made.
                let from = from.filter(|_| !input && self.shows_tasks());
                // A task a resumed run was given as finished did not run
                // now: as LangGraph, its update streams again marked
                // `cached`, and its task is not shown starting.
                let replayed = std::mem::take(&mut self.replayed);
                let cached = |i: usize| replayed.get(i) == Some(&true);
                if let Some(from) = &from {
                    for (i, (node, _)) in writes.iter().enumerate().filter(|(i, _)| !cached(*i)) {
                        let task = ran(from, i, node);
                        self.task(from, "task", debug::task_start(from, task, &self.meta()));
                    }
                }
                for (i, (node, update)) in writes.iter().enumerate().filter(|_| !input) {
                    if self.wants("updates") {
                        let chunk = if cached(i) {
                            json!({ node: update, "__metadata__": {"cached": true} })
                        } else {
                            json!({ node: update })
                        };
                        self.live.events.push("updates", &chunk);
                    }
                    if cached(i) {
                        continue;
                    }
                    if let Some(from) = &from {
                        let result = debug::task_result(from, ran(from, i, node), update, &[]);
                        self.task(from, "task_result", result);
                    }
                }
                if self.wants("values") {
                    self.live.events.push("values", &values);
                }
                let source = if input { "input" } else { "loop" };
                self.step += 1;
                let mut checkpoint = self.checkpoint(source, step_writes(writes), &values);
                (checkpoint.next, checkpoint.sends) = pending_tasks(next, sends);
                self.pending = Some(checkpoint);
                self.last_values = Some(values);
            }
            GraphEvent::Custom(data) => {
                if self.wants("custom") {
                    self.live.events.push("custom", &data);
                }
            }
            GraphEvent::Message { message, metadata } => {
                if self.wants("messages-tuple") {
                    self.live
                        .events
                        .push("messages", &json!([message, metadata]));
                }
                if self.wants("messages") {
                    let id = message["id"].as_str().unwrap_or_default().to_owned();
                    if self.seen_messages.insert(id.clone()) {
                        self.live.events.push(
                            "messages/metadata",
                            &json!({ id.clone(): {"metadata": metadata} }),
                        );
                    }
                    // A chunk of a message (a model's tokens): the message
                    // so far; a whole message: itself.
                    if chunks::is_chunk(&message) {
                        let so_far = self.partials.add(&id, &message);
                        self.live.events.push("messages/partial", &json!([so_far]));
                    } else {
                        self.live
                            .events
                            .push("messages/complete", &json!([message]));
                    }
                }
            }
        }
    }

    fn checkpoint(&self, source: &str, writes: Value, values: &Value) -> Checkpoint {
        let mut metadata = self.run_metadata.clone();
        metadata.insert("source".into(), source.into());
        metadata.insert("step".into(), self.step.into());
        metadata.insert("writes".into(), writes);
        metadata.insert("parents".into(), json!({}));
        Checkpoint {
            thread_id: self.live.thread_id,
            checkpoint_id: Uuid::now_v7().to_string(),
            parent_checkpoint_id: None,
            run_id: Some(self.live.run_id),
            values: values.clone(),
            next: Vec::new(),
            metadata,
            created_at: now(),
            interrupts: Vec::new(),
            sends: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Writes `checkpoint` and streams it.
    fn write(&mut self, checkpoint: Checkpoint) -> Checkpoint {
        let checkpoint = self.store(checkpoint);
        self.show(&checkpoint);
        checkpoint
    }

    /// The `checkpoints` and `debug` chunks of `checkpoint`.
    fn show(&self, checkpoint: &Checkpoint) {
        if self.wants("checkpoints") {
            let chunk = debug::checkpoint(&self.configurable, checkpoint);
            self.live.events.push("checkpoints", &chunk);
        }
        if self.wants("debug") {
            let chunk = debug::debug_checkpoint(&self.configurable, checkpoint);
            self.live.events.push("debug", &chunk);
        }
    }

    /// A `tasks` chunk (and its `debug` one, of `kind`) of a task that
    /// started from checkpoint `from`: it belongs to the step after it.
    fn task(&self, from: &Checkpoint, kind: &str, chunk: Value) {
        if self.wants("tasks") {
            self.live.events.push("tasks", &chunk);
        }
        if self.wants("debug") {
            let chunk = debug::debug(debug::step(from) + 1, kind, chunk);
            self.live.events.push("debug", &chunk);
        }
    }

    fn shows_tasks(&self) -> bool {
        self.wants("tasks") || self.wants("debug")
    }

    fn meta(&self) -> Value {
        Value::Object(self.run_metadata.clone())
    }

    /// Writes `checkpoint` after the last one.
    fn store(&mut self, mut checkpoint: Checkpoint) -> Checkpoint {
        checkpoint.parent_checkpoint_id = self.parent.take();
        self.parent = Some(checkpoint.checkpoint_id.clone());
        // The run's end is durable, and a run cut short starts over: its
        // steps need not wait for the disk.
        let written = match &self.fence {
            Some((queue, replica)) => {
                let attempt = self.live.attempt.load(Ordering::Relaxed);
                wait(queue.put_checkpoint((replica, attempt), &checkpoint))
            }
            None => wait(
                self.storage
                    .put_checkpoint(&checkpoint, Durability::Deferred),
            )
            .map(|()| true),
        };
        match written {
            Ok(true) => {}
            Ok(false) => {
                // Another attempt holds the run now: this one stops, and
                // writes nothing over that one's state.
                tracing::warn!(run_id = %self.live.run_id, "the run is no longer this server's: its checkpoint was not written");
                self.live.cancel.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(run_id = %self.live.run_id, "cannot write a checkpoint: {e}");
            }
        }
        checkpoint
    }

    /// The run succeeded with `values`: the last checkpoint has nothing
    /// next; values the graph returned beyond its last step get their own.
    fn close(&mut self, values: &Value, ended: bool) {
        let last = self.pending.take();
        let extra = self.last_values.as_ref() != Some(values);
        if let Some(checkpoint) = last {
            self.write(checkpoint);
        }
        if extra && ended {
            self.step += 1;
            let checkpoint = self.checkpoint("loop", Value::Null, values);
            self.write(checkpoint);
            if self.wants("values") {
                self.live.events.push("values", values);
            }
        }
    }

    /// The run resumes the thread's latest checkpoint, which it streams
    /// again (as LangGraph), or (`forks`) a past one, with `tasks`.
    fn resume(&mut self, forks: bool, tasks: &[crate::plugin::Task]) {
        self.replayed = tasks.iter().map(|t| t.finished.is_some()).collect();
        match &self.latest {
            Some(latest) if !forks => self.show(latest),
            _ => self.fork(),
        }
    }

    /// The run resumes a past checkpoint: a copy of it (`source: fork`)
    /// starts the new branch of the history, as in LangGraph, and is the
    /// checkpoint a pause before any step pauses on.
    fn fork(&mut self) {
        let Some(from) = &self.latest else { return };
        self.step += 1;
        let mut copy = self.checkpoint("fork", Value::Null, &from.values);
        copy.metadata.remove("writes");
        copy.next = from.next.clone();
        copy.sends = from.sends.clone();
        copy.interrupts = from.interrupts.clone();
        copy.parent_checkpoint_id = Some(from.checkpoint_id.clone());
        self.write(copy.clone());
        self.latest = Some(copy);
    }

    /// The run paused: its last checkpoint records its values, what is
    /// left to run (the nodes, and the sent tasks), the `interrupt` calls it
    /// paused on and what the step's finished tasks returned; a run that
    /// paused again before any step (a resume whose node asks once more)
    /// pauses on the checkpoint it resumed, as in LangGraph. Streams the
    /// pause (the finished tasks' updates, then `__interrupt__`) and returns
    /// the interrupts as recorded.
    fn pause(
        &mut self,
        pause: crate::plugin::Pause,
        invocation: &crate::plugin::Invocation,
    ) -> Vec<crate::storage::PendingInterrupt> {
        let values = &pause.values;
        let (mut checkpoint, again) = match (self.pending.take(), self.latest.take()) {
            (Some(checkpoint), _) => (checkpoint, false),
            (None, Some(latest)) => (latest, true),
            (None, None) => {
                self.step += 1;
                (self.checkpoint("loop", Value::Null, values), false)
            }
        };
        checkpoint.values = values.clone();
        (checkpoint.next, checkpoint.sends) = pending_tasks(pause.next, pause.sends);
        checkpoint.interrupts =
            resume::pending(&checkpoint.checkpoint_id, pause.interrupts, invocation);
        // The ones that finished in this run; the others did in an earlier
        // one, which streamed them.
        let fresh: Vec<usize> = (0..pause.finished.len())
            .filter(|&i| !resume::was_finished(&pause.finished[i], invocation))
            .collect();
        checkpoint.finished = pause.finished;
        let recorded = checkpoint.interrupts.clone();
        let checkpoint = if again {
            // Rewritten in place: the same id, parent and step (streamed
            // when the run resumed it).
            self.parent = checkpoint.parent_checkpoint_id.clone();
            self.store(checkpoint)
        } else {
            self.write(checkpoint)
        };
        // The tasks that paused on `interrupt` ran, and returned nothing.
        let mut paused: Vec<NextTask<'_>> = checkpoint
            .tasks()
            .filter(|t| {
                recorded
                    .iter()
                    .any(|i| i.node == t.node && i.send == t.send())
            })
            .collect();
        paused.retain(|_| self.shows_tasks());
        let finished: Vec<(NextTask<'_>, &Value)> = fresh
            .iter()
            .map(|&i| &checkpoint.finished[i])
            .filter_map(|f| {
                let task = checkpoint
                    .tasks()
                    .find(|t| t.node == f.node && t.send() == f.send)?;
                Some((task, &f.result.update))
            })
            .collect();
        if self.shows_tasks() {
            for task in finished.iter().map(|(t, _)| t).chain(&paused) {
                let chunk = debug::task_start(&checkpoint, *task, &self.meta());
                self.task(&checkpoint, "task", chunk);
            }
        }
        for (task, update) in &finished {
            if self.wants("updates") {
                self.live
                    .events
                    .push("updates", &json!({ task.node: update }));
            }
            if self.shows_tasks() {
                let chunk = debug::task_result(&checkpoint, *task, update, &[]);
                self.task(&checkpoint, "task_result", chunk);
            }
        }
        let shown = resume::shown(&recorded);
        if self.wants("updates") {
            self.live
                .events
                .push("updates", &json!({ "__interrupt__": shown }));
        }
        for task in &paused {
            let asked: Vec<_> = recorded
                .iter()
                .filter(|i| i.node == task.node && i.send == task.send())
                .collect();
            let chunk = debug::task_result(&checkpoint, *task, &json!({}), &asked);
            self.task(&checkpoint, "task_result", chunk);
        }
        if !recorded.is_empty() && self.wants("values") {
            let mut values = values.clone();
            if let Value::Object(map) = &mut values {
                map.insert("__interrupt__".into(), shown);
            }
            self.live.events.push("values", &values);
        }
        recorded
    }

    /// The run stopped early: the last checkpoint keeps the node that was
    /// to run next, as far as the graph's edges tell.
    fn close_partial(&mut self, spec: &RunSpec) {
        if let Some(mut checkpoint) = self.pending.take() {
            // A `0.2.0` graph told what comes next; a `0.1.0` one did not.
            if !checkpoint.next.is_empty() {
                self.write(checkpoint);
                return;
            }
            let node = checkpoint
                .metadata
                .get("writes")
                .and_then(|w| w.as_object())
                .and_then(|w| w.keys().next().cloned())
                .unwrap_or_default();
            checkpoint.next = spec
                .graph
                .info()
                .edges
                .iter()
                .filter(|e| e.source == node && e.target != "__end__")
                .map(|e| e.target.clone())
                .collect();
            self.write(checkpoint);
        }
    }
}
