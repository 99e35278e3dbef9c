//! Runs on a queue that several servers share (a storage with a
//! [`RunQueue`]): a run created on any replica waits in the database until
//! a replica with a free worker claims it; that replica renews its lease
//! every heartbeat, writes the run's events to the queue as the graph
//! produces them, and completes the run (status and the log's end, at
//! once). Every other replica follows the run from the queue: a
//! [`LiveRun`] there is a follower, fed with the events as they are
//! written, so `join`, `wait`, `stream` and `Last-Event-ID` replays work
//! wherever the request lands. A cancellation reaches the executing
//! replica through the queue. When a replica dies, its leases lapse and
//! another replica claims its runs again, up to the most attempts allowed;
//! a retry starts over from the thread's state before the run.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, broadcast, watch};
use uuid::Uuid;

use super::{CancelAction, EventLog, LiveRun, RunOutcome, RunSpec, Runs, json_size};
use crate::plugin::GraphSlot;
use crate::storage::queue::{CancelRequest, Claim, END_EVENT, QueuedEvent, RunQueue, Wake};
use crate::storage::{Run, RunStatus, StorageError, wait};

/// How often a follower, and the claiming loop, look at the queue without
/// being woken (a lost notification costs at most this).
const POLL: Duration = Duration::from_secs(1);

/// How often a replica sweeps the events of deleted runs.
const SWEEP: Duration = Duration::from_secs(60);

/// How the shared queue retries and leases runs (LangGraph's
/// `BG_JOB_HEARTBEAT` and `BG_JOB_MAX_RETRIES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How often a replica renews the leases of the runs it executes; a
    /// lease lapses after three heartbeats without renewal.
    pub heartbeat: Duration,
    /// How many times a run whose replica died is started again before
    /// it ends `error`.
    pub max_retries: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(5),
            max_retries: 3,
        }
    }
}

/// A setting in the environment that is not a number.
#[derive(Debug, thiserror::Error)]
#[error("{name} must be {what}, not {value:?}")]
pub struct BadSetting {
    name: &'static str,
    what: &'static str,
    value: String,
}

impl QueueSettings {
    /// The settings from `BG_JOB_HEARTBEAT` (seconds, may be fractional)
    /// and `BG_JOB_MAX_RETRIES`, defaults for those unset.
    pub fn from_env() -> Result<Self, BadSetting> {
        let mut settings = Self::default();
        if let Ok(value) = std::env::var("BG_JOB_HEARTBEAT") {
            settings.heartbeat = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.05 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or(BadSetting {
                    name: "BG_JOB_HEARTBEAT",
                    what: "a number of seconds between 0.05 and 3600",
                    value,
                })?;
        }
        if let Ok(value) = std::env::var("BG_JOB_MAX_RETRIES") {
            settings.max_retries = value.trim().parse().map_err(|_| BadSetting {
                name: "BG_JOB_MAX_RETRIES",
                what: "a whole number",
                value,
            })?;
        }
        Ok(settings)
    }

    fn lease(&self) -> Duration {
        self.heartbeat * 3
    }
}

/// What executing a run needs beyond its record, as the queue keeps it.
#[derive(Serialize, Deserialize)]
struct Job {
    graph_id: String,
    input: Value,
    config: Value,
    context: Value,
    stream_modes: Vec<String>,
    resumable: bool,
    delete_thread: bool,
    thread_created_at: String,
}

/// How a run ended, as its log's end keeps it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ended {
    Success(Value),
    Error(Value),
    Interrupted(Value),
}

impl From<&RunOutcome> for Ended {
    fn from(outcome: &RunOutcome) -> Self {
        match outcome {
            RunOutcome::Success(v) => Ended::Success(v.clone()),
            RunOutcome::Error(v) => Ended::Error(v.clone()),
            RunOutcome::Interrupted(v) => Ended::Interrupted(v.clone()),
        }
    }
}

impl From<Ended> for RunOutcome {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Success(v) => RunOutcome::Success(v),
            Ended::Error(v) => RunOutcome::Error(v),
            Ended::Interrupted(v) => RunOutcome::Interrupted(v),
        }
    }
}

/// The executor's part in a shared queue.
pub(super) struct Shared {
    pub(super) queue: Arc<dyn RunQueue>,
    /// This replica, as its leases name it.
    pub(super) replica: String,
    graphs: BTreeMap<String, Arc<GraphSlot>>,
    settings: QueueSettings,
    /// The runs executing here, with their attempt.
    executing: Mutex<HashMap<Uuid, u32>>,
    /// Woken when a worker is free again.
    freed: Notify,
}

impl Shared {
    pub(super) fn new(
        queue: Arc<dyn RunQueue>,
        graphs: BTreeMap<String, Arc<GraphSlot>>,
        settings: QueueSettings,
    ) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "warden".into());
        let replica = format!(
            "{host}/{}/{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            queue,
            replica,
            graphs,
            settings,
            executing: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        }
    }

    pub(super) fn executing(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, u32>> {
        self.executing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes a running run's events to the queue as its log grows, until
/// closed.
pub(super) struct Persister {
    close: watch::Sender<bool>,
    task: tokio::task::JoinHandle<i64>,
}

impl Persister {
    /// Starts writing `live`'s events from log position `from` on, the
    /// first at queue position `seq`.
    fn start(
        queue: Arc<dyn RunQueue>,
        holder: (String, u32),
        live: Arc<LiveRun>,
        from: usize,
        seq: i64,
    ) -> Self {
        let (close, mut closed) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut progress = live.events.subscribe();
            let (mut position, mut seq) = (from, seq);
            loop {
                let closing = *closed.borrow_and_update();
                progress.borrow_and_update();
                let (events, end) = live.events.read(position);
                if !events.is_empty() {
                    let first = seq;
                    let batch: Vec<QueuedEvent> = events
                        .into_iter()
                        .map(|e| {
                            seq += 1;
                            QueuedEvent {
                                seq: seq - 1,
                                id: e.id,
                                event: e.event,
                                data: e.data,
                            }
                        })
                        .collect();
                    match live_append(&*queue, live.run_id, (&holder.0, holder.1), &batch).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Another server claimed it (this one's lease
                            // lapsed), or it was deleted: this one stops.
                            tracing::warn!(run_id = %live.run_id, "the run is no longer this server's: stopping it here");
                            live.cancel.store(true, Ordering::Relaxed);
                            // The queue's log goes on from the first event
                            // it refused, written by whoever holds the run.
                            return first;
                        }
                        Err(e) => {
                            tracing::error!(run_id = %live.run_id, "cannot write the run's events: {e}");
                        }
                    }
                }
                position = end;
                if closing {
                    return seq;
                }
                tokio::select! {
                    _ = progress.changed() => {}
                    _ = closed.changed() => {}
                }
            }
        });
        Self { close, task }
    }

    /// Writes what is left and stops: the next queue position (after a
    /// refused write, the position refused).
    async fn close(self) -> Option<i64> {
        let _ = self.close.send(true);
        self.task.await.ok()
    }
}

/// Appends, retrying a database out of reach a few times.
async fn live_append(
    queue: &dyn RunQueue,
    run_id: Uuid,
    holder: (&str, u32),
    batch: &[QueuedEvent],
) -> Result<bool, StorageError> {
    let mut tries = 0;
    loop {
        match queue.append(run_id, holder, batch).await {
            Err(StorageError::Unavailable(_)) if tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100 << tries)).await;
            }
            other => return other,
        }
    }
}

impl Runs {
    pub(super) fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// Starts claiming and renewing: the replica's part in the queue.
    pub(super) fn start_shared(self: &Arc<Self>) {
        if self.shared.is_none() {
            return;
        }
        let runs = Arc::clone(self);
        tokio::spawn(async move { runs.claim_loop().await });
        let runs = Arc::clone(self);
        tokio::spawn(async move { runs.renew_loop().await });
        let runs = Arc::clone(self);
        tokio::spawn(async move { runs.announce_loop().await });
    }

    /// Tells this server's thread streams of the runs created on other
    /// servers (while any thread stream is open here), and of the threads
    /// deleted there.
    async fn announce_loop(self: Arc<Self>) {
        let Some(shared) = self.shared() else { return };
        let mut wakes = shared.queue.wakes();
        loop {
            let (thread_id, run_id) = match wakes.recv().await {
                Ok(Wake::Queued {
                    thread_id, run_id, ..
                }) => (thread_id, run_id),
                Ok(Wake::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Announcements may have been missed: every run in
                    // flight, once more (streams skip those they follow).
                    if self.submitted.receiver_count() > 0
                        && let Ok(runs) = shared.queue.all_in_flight().await
                    {
                        for run in runs {
                            let live = self.follow_stored(&run).await;
                            let _ = self.submitted.send(Arc::downgrade(&live));
                        }
                    }
                    continue;
                }
                Ok(Wake::ThreadDeleted(thread_id)) => {
                    self.forget_thread_here(thread_id);
                    continue;
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if self.inner().closing {
                return;
            }
            if self.submitted.receiver_count() == 0 {
                continue;
            }
            // Known here already (claimed here first) or not, thread
            // streams pick it up once.
            if let Some(live) = self.known(run_id) {
                let _ = self.submitted.send(Arc::downgrade(&live));
                continue;
            }
            match self.storage.run(thread_id, run_id).await {
                Ok(Some(run)) => {
                    let live = self.follow_stored(&run).await;
                    let _ = self.submitted.send(Arc::downgrade(&live));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%run_id, "cannot read a run created elsewhere: {e}"),
            }
        }
    }

    /// Records the run on the queue and follows it from there.
    pub(super) fn enqueue(
        self: &Arc<Self>,
        shared: &Shared,
        spec: RunSpec,
        owner: String,
        input_bytes: usize,
    ) -> Result<Arc<LiveRun>, super::SubmitError> {
        let job = Job {
            graph_id: spec.config["configurable"]["graph_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            input: spec.input,
            config: spec.config,
            context: spec.context,
            stream_modes: spec.stream_modes,
            resumable: spec.resumable,
            delete_thread: spec.delete_thread,
            thread_created_at: spec.thread_created_at.clone(),
        };
        let job = serde_json::to_value(&job).unwrap_or(Value::Null);
        let mut live = self.follower(spec.run.run_id, spec.run.thread_id, spec.resumable);
        live.thread_created_at = spec.thread_created_at;
        live.owner = owner;
        live.input_bytes = input_bytes;
        live.counted = true;
        let live = Arc::new(live);
        // Known here before any server can claim it: the one this server
        // claims, cancels and follows is this one.
        self.inner().live.insert(live.run_id, live.clone());
        // With a worker free here, the run is claimed as it is recorded
        // (one transaction, no wake-up to wait for) when it may start now.
        let permit = match spec.start_after {
            None if !self.inner().closing => self.workers.clone().try_acquire_owned().ok(),
            _ => None,
        };
        let claim_for = permit
            .as_ref()
            .map(|_| (shared.replica.as_str(), shared.settings.lease()));
        let claim = match wait(
            shared
                .queue
                .enqueue(&spec.run, &job, spec.start_after, claim_for),
        ) {
            Ok(claim) => claim,
            Err(e) => {
                let mut inner = self.inner();
                inner.live.remove(&live.run_id);
                Self::release(&mut inner, &live.owner, live.input_bytes);
                return Err(e.into());
            }
        };
        let _ = self.submitted.send(Arc::downgrade(&live));
        match (claim, permit) {
            (Some(claim), Some(permit)) => {
                shared.executing().insert(claim.run.run_id, claim.attempt);
                let runs = Arc::clone(self);
                tokio::spawn(async move { runs.start_claimed(claim, permit).await });
            }
            _ => self.follow(live.clone()),
        }
        Ok(live)
    }

    fn follower(&self, run_id: Uuid, thread_id: Uuid, resumable: bool) -> LiveRun {
        let events = EventLog::bounded(self.limits.run_events_bytes, self.retention.clone());
        let live = LiveRun::new(run_id, thread_id, resumable, events);
        *live.following.lock().unwrap_or_else(|e| e.into_inner()) = Some(0);
        live
    }

    /// The run `run_id` of `thread_id` as this replica knows it: live here,
    /// or followed from the queue (loaded now), or none.
    pub(super) fn shared_get(
        self: &Arc<Self>,
        thread_id: Uuid,
        run_id: Uuid,
    ) -> Option<Arc<LiveRun>> {
        let run = wait(self.storage.run(thread_id, run_id)).ok().flatten()?;
        Some(self.follow_record(&run))
    }

    /// Follows a run known from storage (or returns the one already here),
    /// from synchronous code.
    pub(super) fn follow_record(self: &Arc<Self>, run: &Run) -> Arc<LiveRun> {
        wait(self.follow_stored(run))
    }

    /// Follows a run known from storage (or returns the one already here).
    pub(super) async fn follow_stored(self: &Arc<Self>, run: &Run) -> Arc<LiveRun> {
        if let Some(live) = self.known(run.run_id) {
            return live;
        }
        let resumable = run.kwargs["resumable"].as_bool().unwrap_or(false);
        let mut live = self.follower(run.run_id, run.thread_id, resumable);
        // A run's thread is the one of that id now: deleting a thread
        // deletes its runs.
        if let Ok(Some(thread)) = self.storage.thread(run.thread_id, None).await {
            live.thread_created_at = thread.created_at;
        }
        let live = Arc::new(live);
        {
            let mut inner = self.inner();
            if let Some(known) = inner.live.get(&run.run_id) {
                return known.clone();
            }
            inner.live.insert(live.run_id, live.clone());
        }
        // Load what is there now, so that a replay sees it at once.
        self.pull(&live).await;
        if !live.events.is_done() {
            self.follow(live.clone());
        }
        live
    }

    pub(super) fn known(&self, run_id: Uuid) -> Option<Arc<LiveRun>> {
        let inner = self.inner();
        inner
            .live
            .get(&run_id)
            .or_else(|| inner.finished.iter().rev().find(|r| r.run_id == run_id))
            .cloned()
    }

    /// Reads the run's new events from the queue into its log (while it
    /// is followed): the next position, after them. The log's end ends
    /// the run here.
    async fn pull(self: &Arc<Self>, live: &Arc<LiveRun>) -> Option<i64> {
        let shared = self.shared()?;
        loop {
            let from = (*live.following.lock().unwrap_or_else(|e| e.into_inner()))?;
            let events = match shared.queue.events(live.run_id, from).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(run_id = %live.run_id, "cannot read the run's events: {e}");
                    return Some(from);
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else {
                return Some(from);
            };
            let mut end = None;
            {
                let mut following = live.following.lock().unwrap_or_else(|e| e.into_inner());
                if *following != Some(from) {
                    return *following; // taken over, or pulled by another
                }
                for event in events {
                    if event.event == END_EVENT {
                        end = serde_json::from_str::<Ended>(&event.data).ok();
                        break;
                    }
                    live.events.push_received(event.id, event.event, event.data);
                }
                *following = Some(last + 1);
            }
            if let Some(ended) = end {
                self.end_followed(live, ended.into());
                return None;
            }
        }
    }

    /// Ends a followed run here as `outcome`.
    fn end_followed(&self, live: &Arc<LiveRun>, outcome: RunOutcome) {
        *live.following.lock().unwrap_or_else(|e| e.into_inner()) = None;
        live.outcome_bytes
            .store(outcome_size(&outcome), Ordering::Relaxed);
        *live.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        live.events.finish();
        self.retire(live);
    }

    /// Follows the run from the queue until it ends, it is taken over by
    /// this replica, or the server shuts down.
    fn follow(self: &Arc<Self>, live: Arc<LiveRun>) {
        let Some(shared) = self.shared() else { return };
        let mut wakes = shared.queue.wakes();
        let runs = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if live
                    .following
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_none()
                {
                    return;
                }
                if runs.inner().closing {
                    let error = json!({"error": "ServerShutdown",
                        "message": "This server is shutting down; follow the run on another"});
                    live.events.push("error", &error);
                    runs.end_followed(&live, RunOutcome::Error(error));
                    return;
                }
                let before = live.events.len();
                if runs.pull(&live).await.is_none() {
                    return;
                }
                if live.events.len() > before {
                    continue;
                }
                // Nothing new: wait for this run's wake-up, or look again
                // after a while.
                let deadline = tokio::time::Instant::now() + POLL;
                let woken = loop {
                    tokio::select! {
                        wake = wakes.recv() => match wake {
                            Ok(Wake::Events(id)) if id == live.run_id => break true,
                            Ok(Wake::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break false,
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        () = tokio::time::sleep_until(deadline) => break false,
                    }
                };
                if woken {
                    let before = live.events.len();
                    if runs.pull(&live).await.is_none() {
                        return;
                    }
                    if live.events.len() > before {
                        continue;
                    }
                }
                // Nothing new (woken for nothing, or a while passed): the
                // run may have been deleted (rolled back, its thread
                // deleted), which ends no log.
                if let Ok(None) = shared_status(&runs, live.run_id).await
                    && runs.pull(&live).await.is_some()
                {
                    let values = match runs.storage.thread(live.thread_id, None).await {
                        Ok(Some(t)) if t.values.is_object() => t.values,
                        _ => json!({}),
                    };
                    runs.end_followed(&live, RunOutcome::Interrupted(values));
                    return;
                }
            }
        });
    }

    /// The runs pending or running on a thread, in the queue.
    pub(super) fn shared_in_flight(
        self: &Arc<Self>,
        shared: &Shared,
        thread_id: Uuid,
    ) -> Vec<Arc<LiveRun>> {
        match wait(shared.queue.in_flight_on(thread_id)) {
            Ok(runs) => runs.iter().map(|r| self.follow_record(r)).collect(),
            Err(e) => {
                tracing::error!(%thread_id, "cannot list the thread's runs in flight: {e}");
                Vec::new()
            }
        }
    }

    /// Every run pending or running, in the queue.
    pub(super) fn shared_all_in_flight(self: &Arc<Self>, shared: &Shared) -> Vec<Arc<LiveRun>> {
        match wait(shared.queue.all_in_flight()) {
            Ok(runs) => runs.iter().map(|r| self.follow_record(r)).collect(),
            Err(e) => {
                tracing::error!("cannot list the runs in flight: {e}");
                Vec::new()
            }
        }
    }

    /// Cancels a run through the queue: false when it is not in flight.
    pub(super) fn shared_cancel(
        self: &Arc<Self>,
        shared: &Shared,
        live: &Arc<LiveRun>,
        action: CancelAction,
    ) -> bool {
        let values = match wait(self.storage.thread(live.thread_id, None)) {
            Ok(Some(t)) if t.values.is_object() => t.values,
            _ => json!({}),
        };
        let end = end_event(live, &RunOutcome::Interrupted(values));
        let name = match action {
            CancelAction::Interrupt => "interrupt",
            CancelAction::Rollback => "rollback",
        };
        match wait(shared.queue.cancel(live.run_id, name, &end)) {
            Ok(CancelRequest::NotInFlight) => false,
            Ok(CancelRequest::Ended) => {
                wait(self.settle_thread(live.thread_id));
                true
            }
            Ok(CancelRequest::Signalled) => true,
            Err(e) => {
                tracing::error!(run_id = %live.run_id, "cannot cancel the run: {e}");
                false
            }
        }
    }

    /// Claims runs while a worker is free; woken by the queue, a freed
    /// worker, or [`POLL`].
    async fn claim_loop(self: Arc<Self>) {
        let Some(shared) = self.shared() else { return };
        let mut wakes = shared.queue.wakes();
        let mut swept = tokio::time::Instant::now();
        loop {
            if self.inner().closing {
                return;
            }
            loop {
                let Ok(permit) = self.workers.clone().try_acquire_owned() else {
                    break;
                };
                match shared
                    .queue
                    .claim(&shared.replica, shared.settings.lease())
                    .await
                {
                    Ok(Some(claim)) => {
                        shared.executing().insert(claim.run.run_id, claim.attempt);
                        let runs = Arc::clone(&self);
                        tokio::spawn(async move { runs.start_claimed(claim, permit).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("cannot claim a run: {e}");
                        break;
                    }
                }
            }
            let deadline = tokio::time::Instant::now() + POLL;
            loop {
                tokio::select! {
                    wake = wakes.recv() => match wake {
                        Ok(Wake::Queue | Wake::Queued { claimed: false, .. } | Wake::Resync)
                        | Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Ok(Wake::Cancel(id)) => {
                            if shared.executing().contains_key(&id) {
                                self.renew_once(shared).await;
                            }
                        }
                        Ok(Wake::Queued { claimed: true, .. } | Wake::Events(_) | Wake::ThreadDeleted(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = shared.freed.notified() => break,
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            if swept.elapsed() > SWEEP {
                swept = tokio::time::Instant::now();
                if let Err(e) = shared.queue.sweep().await {
                    tracing::warn!("cannot sweep the events of deleted runs: {e}");
                }
            }
        }
    }

    /// Renews this replica's leases every heartbeat.
    async fn renew_loop(self: Arc<Self>) {
        let Some(shared) = self.shared() else { return };
        loop {
            tokio::time::sleep(shared.settings.heartbeat).await;
            if self.inner().closing && shared.executing().is_empty() {
                return;
            }
            self.renew_once(shared).await;
        }
    }

    /// Renews the leases; applies the cancellations asked of the runs
    /// executing here, and stops those whose lease was lost.
    async fn renew_once(&self, shared: &Shared) {
        // The runs executing here before the renewal: one claimed while it
        // runs is not in its answer, and is not lost. One of these missing
        // from the answer is no longer held by this server (its lease
        // lapsed and another claimed it, it was deleted, or it completed).
        let executing: Vec<Uuid> = shared.executing().keys().copied().collect();
        let held = match shared
            .queue
            .renew(&shared.replica, shared.settings.lease())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("cannot renew the leases of the runs executing here: {e}");
                return;
            }
        };
        tracing::trace!(?held, ?executing, "renewed the leases");
        for run_id in executing {
            let Some(live) = self.inner().live.get(&run_id).cloned() else {
                continue;
            };
            match held.iter().find(|h| h.run_id == run_id) {
                Some(h) => {
                    if let Some(action) = h.cancel.as_deref().and_then(CancelAction::parse) {
                        tracing::debug!(%run_id, ?action, "cancelling the run, as asked");
                        live.request_cancel(action);
                    }
                }
                // Completing (its events closed) or completed: released,
                // not lost.
                None if live
                    .persister
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_none() => {}
                None => {
                    tracing::warn!(%run_id, "lost the run's lease: another server runs it now");
                    live.cancel.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Starts a claimed run here.
    async fn start_claimed(self: Arc<Self>, claim: Claim, permit: OwnedSemaphorePermit) {
        let Some(shared) = self.shared() else { return };
        let run_id = claim.run.run_id;
        let thread_id = claim.run.thread_id;
        if claim.attempt > 1 {
            self.metrics().retries.inc();
        }
        let job: Option<Job> = serde_json::from_value(claim.job.clone()).ok();
        let graph = job
            .as_ref()
            .and_then(|j| shared.graphs.get(&j.graph_id))
            .map(|slot| slot.current());
        let live = self.follow_stored(&claim.run).await;
        // An earlier attempt still executing here (this server's lease
        // lapsed, then it claimed the run again) stops first: it finds its
        // lease lost and follows the run, which this attempt takes over.
        let _turn = match live.turn.try_lock() {
            Ok(turn) => turn,
            Err(_) => {
                let turn = live.turn.lock().await;
                live.cancel.store(false, Ordering::Relaxed);
                *live.cancel_action.lock().unwrap_or_else(|e| e.into_inner()) = None;
                turn
            }
        };
        // Take the run over from following: read what earlier attempts
        // wrote, then stop following.
        let next_seq = {
            let _ = self.pull(&live).await;
            let mut following = live.following.lock().unwrap_or_else(|e| e.into_inner());
            following.take().unwrap_or(0)
        };
        live.attempt.store(claim.attempt, Ordering::Relaxed);
        let persister = Persister::start(
            shared.queue.clone(),
            (shared.replica.clone(), claim.attempt),
            live.clone(),
            live.events.len(),
            next_seq,
        );
        *live.persister.lock().unwrap_or_else(|e| e.into_inner()) = Some(persister);
        live.events.push(
            "metadata",
            &json!({"run_id": run_id, "attempt": claim.attempt}),
        );
        let failure = match (&job, &graph) {
            _ if claim.attempt > shared.settings.max_retries + 1 => Some(json!({
                "error": "RunRetriesExhausted",
                "message": format!(
                    "The run's server stopped {} times while it ran (BG_JOB_MAX_RETRIES is {})",
                    claim.attempt - 1, shared.settings.max_retries
                ),
            })),
            (None, _) => Some(json!({"error": "InternalError",
                "message": "The run's job cannot be read"})),
            (Some(job), None) => Some(json!({"error": "GraphNotLoaded",
                "message": format!("This server does not serve the graph '{}'", job.graph_id)})),
            _ => None,
        };
        if let Some(error) = failure {
            live.events.push("error", &error);
            self.finish(
                &live,
                Some(RunStatus::Error),
                Some(error.clone()),
                RunOutcome::Error(error),
                false,
            )
            .await;
        } else if let (Some(job), Some(graph)) = (job, graph) {
            if claim.attempt > 1
                && let Err(e) = shared.queue.restart(run_id, thread_id).await
            {
                tracing::error!(%run_id, "cannot undo the run's earlier attempt: {e}");
            }
            let spec = RunSpec {
                run: claim.run.clone(),
                thread_created_at: job.thread_created_at,
                graph,
                input: job.input,
                config: job.config,
                context: job.context,
                stream_modes: job.stream_modes,
                resumable: job.resumable,
                delete_thread: job.delete_thread,
                start_after: None,
            };
            if let Some(action) = claim.cancel.as_deref().and_then(CancelAction::parse) {
                live.request_cancel(action);
            }
            *live.spec.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
            let runs = Arc::clone(&self);
            let run = live.clone();
            let executed = tokio::task::spawn_blocking(move || runs.execute(&run)).await;
            if executed.is_err() {
                tracing::error!(%run_id, "the run's worker panicked");
                let error = json!({"error": "InternalError", "message": "The run's worker failed"});
                self.finish(
                    &live,
                    Some(RunStatus::Error),
                    None,
                    RunOutcome::Error(error),
                    false,
                )
                .await;
            }
        }
        drop(permit);
        {
            let mut executing = shared.executing();
            // Not a later attempt's, claimed here while this one stopped.
            if executing.get(&run_id) == Some(&claim.attempt) {
                executing.remove(&run_id);
            }
        }
        shared.freed.notify_one();
        if live.is_followed() {
            // Lost to another server: followed until that one ends it.
            return;
        }
        self.retire(&live);
        if !live.settled.load(Ordering::Relaxed) {
            self.settle_thread(thread_id).await;
        }
    }

    /// Completes a run executing here on the queue: its events written,
    /// then its status, its thread's error and status, and the log's end
    /// at once. A run stopped by this server's shutdown goes back to the
    /// queue instead.
    pub(super) async fn complete_shared(
        &self,
        shared: &Shared,
        live: &LiveRun,
        status: Option<RunStatus>,
        thread_error: Option<&Value>,
        outcome: &RunOutcome,
    ) -> Completion {
        let persister = live
            .persister
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let next_seq = match persister {
            Some(p) => p.close().await.unwrap_or(i64::MAX / 2),
            None => return Completion::Done { settled: false },
        };
        // Completing is guarded by the lease in the database: a run whose
        // lease was lost completes nothing there (and a run rolled back,
        // deleted, still wakes its followers).
        if live.shut_down.load(Ordering::Relaxed) {
            if let Err(e) = shared.queue.release(live.run_id, &shared.replica).await {
                tracing::error!(run_id = %live.run_id, "cannot give the run back to the queue: {e}");
            }
            return Completion::Done { settled: false };
        }
        let mut end = end_event(live, outcome);
        end.seq = next_seq;
        let attempt = live.attempt.load(Ordering::Relaxed);
        let thread_error = status.and(thread_error);
        match shared
            .queue
            .complete(
                live.run_id,
                &shared.replica,
                attempt,
                status,
                thread_error,
                &end,
            )
            .await
        {
            Ok(true) => Completion::Done {
                settled: status.is_some(),
            },
            Ok(false) => {
                tracing::warn!(run_id = %live.run_id, "the run's lease was lost before it completed: following it on the server that holds it");
                Completion::Lost {
                    resume_at: next_seq,
                }
            }
            Err(e) => {
                tracing::error!(run_id = %live.run_id, "cannot complete the run: {e}");
                Completion::Done { settled: false }
            }
        }
    }

    /// Follows, from queue position `resume_at`, a run this server executed
    /// until another took it over (this server's lease lapsed: a pause, a
    /// partition): whoever waits on it here gets the run's end from the
    /// server that finishes it, not this server's stopped attempt.
    pub(super) fn follow_lost(self: &Arc<Self>, live: &LiveRun, resume_at: i64) {
        *live.following.lock().unwrap_or_else(|e| e.into_inner()) = Some(resume_at);
        if let Some(live) = self.known(live.run_id) {
            self.follow(live);
        }
    }
}

/// How completing a run executing here went.
pub(super) enum Completion {
    /// Recorded (or handed back to the queue at shutdown); whether its
    /// thread was settled with it.
    Done { settled: bool },
    /// Another server holds the run now: its log goes on in the queue from
    /// position `resume_at`.
    Lost { resume_at: i64 },
}

/// The event that closes `live`'s log with `outcome`.
fn end_event(live: &LiveRun, outcome: &RunOutcome) -> QueuedEvent {
    QueuedEvent {
        seq: i64::MAX / 2,
        id: live.events.id_after_last(),
        event: END_EVENT.into(),
        data: serde_json::to_string(&Ended::from(outcome)).unwrap_or_default(),
    }
}

fn outcome_size(outcome: &RunOutcome) -> usize {
    match outcome {
        RunOutcome::Success(v) | RunOutcome::Error(v) | RunOutcome::Interrupted(v) => json_size(v),
    }
}

async fn shared_status(runs: &Runs, run_id: Uuid) -> Result<Option<RunStatus>, StorageError> {
    match runs.shared() {
        Some(shared) => shared.queue.status(run_id).await,
        None => Ok(None),
    }
}
