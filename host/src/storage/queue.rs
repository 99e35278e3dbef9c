//! The run queue that several replicas share: runs waiting in the database
//! until a replica claims one (with a lease it renews), the events of each
//! run kept where every replica can follow them, cancellations asked of the
//! replica executing a run, and wake-ups that spare the replicas polling.
//!
//! A backend that several servers can share implements [`RunQueue`] and
//! hands it out from [`super::Storage::run_queue`]; an embedded one does
//! not, and its server runs its runs in process.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{Checkpoint, Result, Run, RunStatus};

/// A run a replica claimed: it executes it until it completes it, or its
/// lease lapses and another replica claims it again.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The run's record (status `running`).
    pub run: Run,
    /// What executing it needs, as [`RunQueue::enqueue`] recorded it.
    pub job: Value,
    /// Which attempt this is: 1 for the first claim, one more for each
    /// claim after a lapsed lease.
    pub attempt: u32,
    /// A cancellation asked of it (`interrupt` / `rollback`) before this
    /// claim: its replica stopped before it could.
    pub cancel: Option<String>,
}

/// One event of a run's stream as the queue keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Its position in the run's log: increasing, not always contiguous.
    pub seq: i64,
    /// Its SSE id.
    pub id: String,
    /// Its name.
    pub event: String,
    /// Its data, as compact JSON.
    pub data: String,
}

/// The event that closes a run's log: its data is how the run ended.
pub const END_EVENT: &str = "__end__";

/// What a cancellation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// No such run pending or running.
    NotInFlight,
    /// The run had not started: it ended now (its log is closed).
    Ended,
    /// The run is running: the replica executing it was told.
    Signalled,
}

/// What a replica hears from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A run may be ready to claim.
    Queue,
    /// A run was created: it may be ready to claim.
    Queued {
        /// Its thread.
        thread_id: Uuid,
        /// The run.
        run_id: Uuid,
        /// Claimed as it was created (by the replica that created it):
        /// nothing new to claim.
        claimed: bool,
    },
    /// A run's log grew or it ended.
    Events(Uuid),
    /// A run was asked to stop.
    Cancel(Uuid),
    /// A thread was deleted: its streams end.
    ThreadDeleted(Uuid),
    /// Wake-ups may have been missed (the listening connection was lost):
    /// look again.
    Resync,
}

/// A lease a replica holds, as [`RunQueue::renew`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The run.
    pub run_id: Uuid,
    /// The cancellation asked of it (`interrupt` / `rollback`), if any.
    pub cancel: Option<String>,
}

/// The shared run queue.
#[async_trait::async_trait]
pub trait RunQueue: Send + Sync {
    /// Records `run` (pending; its thread becomes `busy`) with `job`, not
    /// to start before `delay` has passed, and wakes the replicas. With
    /// `claim_for` (a replica with a free worker, and its lease), the run
    /// is claimed for it in the same transaction when it may start at
    /// once (no delay, nothing else in flight on its thread): the claim.
    async fn enqueue(
        &self,
        run: &Run,
        job: &Value,
        delay: Option<Duration>,
        claim_for: Option<(&str, Duration)>,
    ) -> Result<Option<Claim>>;

    /// Claims for `replica`, for `lease`, the next run any replica may
    /// start: the oldest pending run of a thread running none, or a
    /// running run whose lease lapsed.
    async fn claim(&self, replica: &str, lease: Duration) -> Result<Option<Claim>>;

    /// Extends every lease `replica` holds by `lease`: the runs it still
    /// holds, with any cancellation asked of them.
    async fn renew(&self, replica: &str, lease: Duration) -> Result<Vec<Held>>;

    /// Appends events to a run's log and wakes its followers, while
    /// `holder` (replica, attempt) holds the run: whether it still does
    /// (a replica whose lease lapsed writes nothing more). The events are
    /// written with [`Durability::Deferred`](super::Durability): the run's
    /// completion makes them durable.
    async fn append(
        &self,
        run_id: Uuid,
        holder: (&str, u32),
        events: &[QueuedEvent],
    ) -> Result<bool>;

    /// The run's events from position `from` on, in order.
    async fn events(&self, run_id: Uuid, from: i64) -> Result<Vec<QueuedEvent>>;

    /// Ends the run that `replica` holds at `attempt`: sets its `status`
    /// (none: the run was rolled back, deleted), closes its log with `end`
    /// (after every event in it, whatever `end.seq`), gives up the lease
    /// and settles its thread (`busy` while another run is in flight on
    /// it, else `error` after a failed run, else `idle`), with
    /// `thread_error` as the thread's error when given (`null` clears it),
    /// at once. False when the lease was lost.
    async fn complete(
        &self,
        run_id: Uuid,
        replica: &str,
        attempt: u32,
        status: Option<RunStatus>,
        thread_error: Option<&Value>,
        end: &QueuedEvent,
    ) -> Result<bool>;

    /// Gives a run `replica` holds back to the queue, pending, for another
    /// replica to start again (this server is shutting down).
    async fn release(&self, run_id: Uuid, replica: &str) -> Result<()>;

    /// Asks a pending or running run to stop with `action` (`interrupt` /
    /// `rollback`): a pending one ends now, closed with `end`, interrupted
    /// (or deleted, for a rollback); a running one is signalled.
    async fn cancel(&self, run_id: Uuid, action: &str, end: &QueuedEvent) -> Result<CancelRequest>;

    /// Writes a checkpoint of a run the attempt `holder` (replica, attempt)
    /// executes, as [`super::Storage::put_checkpoint`] does (not waiting
    /// for the disk), only while that attempt holds the run: false, and
    /// nothing written, once another attempt has taken it over.
    async fn put_checkpoint(&self, holder: (&str, u32), checkpoint: &Checkpoint) -> Result<bool>;

    /// Undoes what an earlier attempt of a run wrote (its checkpoints; the
    /// thread's values become those before it), for a retry to start over.
    async fn restart(&self, run_id: Uuid, thread_id: Uuid) -> Result<()>;

    /// Deletes the events of runs deleted a while ago, or ended more than
    /// an hour ago: how many.
    async fn sweep(&self) -> Result<u64>;

    /// Whether a run still exists, with its status.
    async fn status(&self, run_id: Uuid) -> Result<Option<RunStatus>>;

    /// The runs pending or running on a thread, oldest first.
    async fn in_flight_on(&self, thread_id: Uuid) -> Result<Vec<Run>>;

    /// The runs pending or running on every thread, oldest first.
    async fn all_in_flight(&self) -> Result<Vec<Run>>;

    /// Tells every replica a thread was deleted.
    async fn thread_deleted(&self, thread_id: Uuid) -> Result<()>;

    /// Waits until this replica hears the others' wake-ups (at start-up).
    async fn ready(&self) -> Result<()>;

    /// Wake-ups from every replica, this one's own included.
    fn wakes(&self) -> broadcast::Receiver<Wake>;
}
