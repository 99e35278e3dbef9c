//! The shared run queue in PostgreSQL: runs claimed with `FOR UPDATE SKIP
//! LOCKED` under a lease the executing replica renews, their events in
//! `run_events`, and wake-ups by `LISTEN`/`NOTIFY` on four channels:
//! `warden_queue` (a run may be ready; a new one's thread and id), `warden_events`
//! (a run's log grew or ended; the payload is its id), `warden_cancel` (a
//! run was asked to stop) and `warden_threads` (a thread was deleted). Notifications only spare polling: every follower also looks
//! again now and then, so a lost one costs latency, never a hang.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::filter::Params;
use super::rows::{bounded, execute, nullable, row, rows};
use super::runs::{RUN_COLUMNS, insert_run_in, put_checkpoint, run_row, undo_writes};
use crate::storage::queue::{CancelRequest, Claim, Held, QueuedEvent, RunQueue, Wake};
use crate::storage::{Checkpoint, Result, Run, RunStatus, StorageError};
use crate::timestamp::now;

/// How many wake-ups a slow replica task may fall behind before it is told
/// to look again.
const WAKE_BACKLOG: usize = 1024;

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The most events one read returns.
const EVENTS_PAGE: i64 = 1000;

/// The queue, on the storage's pool; its listener holds one more
/// connection, from the first [`RunQueue::wakes`] until the queue is
/// dropped.
pub(super) struct PgRunQueue {
    pool: deadpool_postgres::Pool,
    /// Connections whose commits do not wait for the disk: for a run's
    /// events, made durable by its completion, and lease renewals.
    deferred: deadpool_postgres::Pool,
    config: tokio_postgres::Config,
    wakes: broadcast::Sender<Wake>,
    listener: std::sync::OnceLock<Listener>,
    /// Whether the listener is listening now.
    listening: tokio::sync::watch::Sender<bool>,
}

/// The listening task; stopped when dropped.
struct Listener(tokio::task::AbortHandle);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PgRunQueue {
    pub(super) fn new(
        pool: deadpool_postgres::Pool,
        deferred: deadpool_postgres::Pool,
        config: tokio_postgres::Config,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            deferred,
            config,
            wakes: broadcast::Sender::new(WAKE_BACKLOG),
            listener: std::sync::OnceLock::new(),
            listening: tokio::sync::watch::Sender::new(false),
        })
    }

    async fn conn(&self) -> Result<deadpool_postgres::Client> {
        Ok(bounded(self.pool.get().await?))
    }
}

/// Listens on the queue's channels for as long as it runs, connecting again
/// when the connection is lost (and telling every follower to look again).
async fn listen(
    config: tokio_postgres::Config,
    wakes: broadcast::Sender<Wake>,
    listening: tokio::sync::watch::Sender<bool>,
) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let forward = wakes.clone();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message
                            && let Some(wake) = wake_of(n.channel(), n.payload())
                        {
                            let _ = forward.send(wake);
                        }
                    }
                });
                let subscribed = client
                    .batch_execute(
                        "LISTEN warden_queue; LISTEN warden_events; LISTEN warden_cancel; \
                         LISTEN warden_threads",
                    )
                    .await;
                match subscribed {
                    Ok(()) => {
                        listening.send_replace(true);
                        let _ = wakes.send(Wake::Resync);
                        let _ = driver.await;
                        listening.send_replace(false);
                    }
                    Err(e) => {
                        tracing::warn!("cannot listen for the run queue's notifications: {e}");
                        driver.abort();
                    }
                }
                drop(client);
                tracing::warn!("lost the run queue's notifications: connecting again");
            }
            Err(e) => tracing::warn!("cannot connect to listen for the run queue: {e}"),
        }
        let _ = wakes.send(Wake::Resync);
        tokio::time::sleep(RECONNECT).await;
    }
}

fn wake_of(channel: &str, payload: &str) -> Option<Wake> {
    match channel {
        "warden_queue" => Some(match payload.split_once('/') {
            Some((thread, run)) => {
                let (run, claimed) = match run.strip_suffix("/claimed") {
                    Some(run) => (run, true),
                    None => (run, false),
                };
                Wake::Queued {
                    thread_id: thread.parse().ok()?,
                    run_id: run.parse().ok()?,
                    claimed,
                }
            }
            None => Wake::Queue,
        }),
        "warden_events" => payload.parse().ok().map(Wake::Events),
        "warden_cancel" => payload.parse().ok().map(Wake::Cancel),
        "warden_threads" => payload.parse().ok().map(Wake::ThreadDeleted),
        _ => None,
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Settles the thread of run `run` (a placeholder): `busy` while a run is
/// pending or running on it, else `error` when its last run failed, else
/// `interrupted` when it paused (it succeeded, and its thread's latest
/// checkpoint has nodes to run), else `idle` (what the executor's settling
/// does, in the same transaction as
/// the run's end, so that whoever hears the run ended reads it settled).
fn settle_sql(run: &str, now: &str) -> String {
    format!(
        "UPDATE threads t SET updated_at = {now}, status = CASE \
           WHEN EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = t.thread_id \
             AND o.status IN ('pending', 'running')) THEN 'busy' \
           WHEN (SELECT o.status FROM runs o WHERE o.thread_id = t.thread_id \
             ORDER BY o.created_at DESC, o.run_id DESC LIMIT 1) = 'error' THEN 'error' \
           WHEN (SELECT o.status FROM runs o WHERE o.thread_id = t.thread_id \
             ORDER BY o.created_at DESC, o.run_id DESC LIMIT 1) = 'success' \
             AND (SELECT jsonb_array_length(c.next) FROM checkpoints c \
               WHERE c.thread_id = t.thread_id ORDER BY c.checkpoint_id DESC LIMIT 1) > 0 \
             THEN 'interrupted' \
           ELSE 'idle' END \
         WHERE t.thread_id = (SELECT thread_id FROM runs WHERE run_id = {run})"
    )
}

async fn notify(c: &impl GenericClient, channel: &str, payload: String) -> Result<()> {
    let mut p = Params::default();
    let sql = format!("SELECT pg_notify({}, {})", p.text(channel), p.text(payload));
    rows(c, &sql, &p).await?;
    Ok(())
}

/// Appends events to a run's log while `replica` holds it at `attempt`,
/// and tells the followers: whether it did (a replica whose lease lapsed
/// writes no more). One statement, one round trip.
async fn insert_events(
    c: &impl GenericClient,
    run_id: Uuid,
    (replica, attempt): (&str, u32),
    events: &[QueuedEvent],
) -> Result<bool> {
    let mut p = Params::default();
    let run = p.bind(run_id, Type::UUID);
    let owner = p.text(replica);
    let attempt = p.bind(i32::try_from(attempt).unwrap_or(i32::MAX), Type::INT4);
    let seqs = p.bind(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        Type::INT8_ARRAY,
    );
    let ids = p.bind(
        events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        Type::TEXT_ARRAY,
    );
    let names = p.bind(
        events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        Type::TEXT_ARRAY,
    );
    let data = p.bind(
        events.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        Type::TEXT_ARRAY,
    );
    let sql = format!(
        "WITH holder AS (SELECT 1 FROM runs WHERE run_id = {run} AND lease_owner = {owner} \
           AND attempt = {attempt} AND status = 'running'), \
         written AS (INSERT INTO run_events (run_id, seq, id, event, data) \
           SELECT {run}, s, i, e, d FROM unnest({seqs}, {ids}, {names}, {data}) AS u(s, i, e, d) \
           WHERE EXISTS (SELECT 1 FROM holder) ON CONFLICT DO NOTHING), \
         told AS (SELECT pg_notify('warden_events', {run}::text) FROM holder) \
         SELECT EXISTS (SELECT 1 FROM holder), (SELECT count(*) FROM told)"
    );
    let held: bool = match row(c, &sql, &p).await? {
        Some(r) => r.try_get(0)?,
        None => false,
    };
    Ok(held)
}

/// Closes a run's log with `end`, after every event in it (a run deleted
/// meanwhile gets none).
async fn insert_end(c: &impl GenericClient, run_id: Uuid, end: &QueuedEvent) -> Result<()> {
    let mut p = Params::default();
    let run = p.bind(run_id, Type::UUID);
    // The aggregate yields a row even for no events: the run's existence
    // is checked outside it.
    let sql = format!(
        "INSERT INTO run_events (run_id, seq, id, event, data) \
         SELECT {run}, next.seq, {}, {}, {} \
         FROM (SELECT coalesce(max(seq) + 1, 0) AS seq FROM run_events WHERE run_id = {run}) next \
         WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = {run})",
        p.text(end.id.clone()),
        p.text(end.event.clone()),
        p.text(end.data.clone())
    );
    execute(c, &sql, &p).await?;
    Ok(())
}

impl PgRunQueue {
    /// [`RunQueue::enqueue`] in one transaction: the run, claimed for
    /// `claim_for` when nothing else is in flight on its thread.
    async fn enqueue_in_one(
        &self,
        r: &Run,
        job: &Value,
        delay: Option<Duration>,
        claim_for: Option<(&str, Duration)>,
    ) -> Result<Option<Claim>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        insert_run_in(&tx, r, Some((job, delay.map_or(0.0, millis)))).await?;
        let mut claim = None;
        if let Some((replica, lease)) = claim_for {
            let mut p = Params::default();
            let run = p.bind(r.run_id, Type::UUID);
            let sql = format!(
                "UPDATE runs SET status = 'running', attempt = 1, lease_owner = {}, \
                   lease_until = clock_timestamp() + {} * interval '1 millisecond' \
                 WHERE run_id = {run} AND NOT EXISTS (SELECT 1 FROM runs o \
                   WHERE o.thread_id = {} AND o.run_id <> {run} \
                   AND o.status IN ('pending', 'running'))",
                p.text(replica),
                p.bind(millis(lease), Type::FLOAT8),
                p.bind(r.thread_id, Type::UUID),
            );
            if execute(&tx, &sql, &p).await? == 1 {
                claim = Some(Claim {
                    run: Run {
                        status: RunStatus::Running,
                        ..r.clone()
                    },
                    job: job.clone(),
                    attempt: 1,
                    cancel: None,
                });
            }
        }
        let claimed = if claim.is_some() { "/claimed" } else { "" };
        notify(
            &tx,
            "warden_queue",
            format!("{}/{}{claimed}", r.thread_id, r.run_id),
        )
        .await?;
        tx.commit().await?;
        Ok(claim)
    }
}

#[async_trait::async_trait]
impl RunQueue for PgRunQueue {
    async fn enqueue(
        &self,
        r: &Run,
        job: &Value,
        delay: Option<Duration>,
        claim_for: Option<(&str, Duration)>,
    ) -> Result<Option<Claim>> {
        let claim_for = claim_for.filter(|_| delay.is_none());
        match self.enqueue_in_one(r, job, delay, claim_for).await {
            // Another replica started a run on the thread meanwhile: the
            // run waits its turn.
            Err(StorageError::Conflict(_)) if claim_for.is_some() => {
                self.enqueue_in_one(r, job, delay, None).await
            }
            other => other,
        }
    }

    async fn claim(&self, replica: &str, lease: Duration) -> Result<Option<Claim>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let owner = p.text(replica);
        let lease = p.bind(millis(lease), Type::FLOAT8);
        let updated = p.text(now());
        let returning: Vec<String> = RUN_COLUMNS
            .split(", ")
            .map(|column| format!("runs.{column}"))
            .collect();
        // A running run whose lease lapsed is claimed again; else a pending
        // run starts when its thread runs none and it is the thread's
        // oldest pending one. The unique index on running runs per thread
        // holds whatever concurrent claims see.
        let candidates = [
            "r.status = 'running' AND r.lease_until < now() AND r.job IS NOT NULL \
             ORDER BY r.lease_until",
            "r.status = 'pending' AND r.job IS NOT NULL AND r.cancel IS NULL \
             AND (r.not_before IS NULL OR r.not_before <= now()) \
             AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = r.thread_id \
               AND o.status = 'running') \
             AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = r.thread_id \
               AND o.status = 'pending' AND (o.created_at, o.run_id) < (r.created_at, r.run_id)) \
             ORDER BY r.created_at, r.run_id",
        ];
        for candidate in candidates {
            let sql = format!(
                "WITH next AS (SELECT r.run_id FROM runs r WHERE {candidate} LIMIT 1 \
                   FOR UPDATE OF r SKIP LOCKED) \
                 UPDATE runs SET status = 'running', attempt = runs.attempt + 1, \
                   lease_owner = {owner}, lease_until = clock_timestamp() + {lease} * interval '1 millisecond', \
                   updated_at = {updated} \
                 FROM next WHERE runs.run_id = next.run_id \
                 RETURNING {}, runs.job, runs.attempt, runs.cancel",
                returning.join(", ")
            );
            let found = match row(&c, &sql, &p).await {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                // Another replica started a run on that thread meanwhile.
                Err(StorageError::Conflict(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let n = RUN_COLUMNS.split(", ").count();
            let attempt: i32 = found.try_get(n + 1)?;
            let cancel: Option<String> = found.try_get(n + 2)?;
            return Ok(Some(Claim {
                run: run_row(&found)?,
                job: found.try_get(n)?,
                attempt: u32::try_from(attempt).unwrap_or(1),
                cancel,
            }));
        }
        Ok(None)
    }

    async fn renew(&self, replica: &str, lease: Duration) -> Result<Vec<Held>> {
        // A renewal need not wait for the disk (a lease that lapses early
        // after a crash of the database is claimed again, which the holder
        // learns at its next write), and must not: a slow disk would let
        // short leases lapse while their holder is alive.
        let c = bounded(self.deferred.get().await?);
        let mut p = Params::default();
        let sql = format!(
            "UPDATE runs SET lease_until = clock_timestamp() + {} * interval '1 millisecond' \
             WHERE lease_owner = {} AND status = 'running' RETURNING run_id, cancel",
            p.bind(millis(lease), Type::FLOAT8),
            p.text(replica)
        );
        rows(&c, &sql, &p)
            .await?
            .iter()
            .map(|r| {
                Ok(Held {
                    run_id: r.try_get(0)?,
                    cancel: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn append(
        &self,
        run_id: Uuid,
        holder: (&str, u32),
        events: &[QueuedEvent],
    ) -> Result<bool> {
        let c = bounded(self.deferred.get().await?);
        insert_events(&c, run_id, holder, events).await
    }

    async fn events(&self, run_id: Uuid, from: i64) -> Result<Vec<QueuedEvent>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let sql = format!(
            "SELECT seq, id, event, data FROM run_events WHERE run_id = {} AND seq >= {} \
             ORDER BY seq LIMIT {EVENTS_PAGE}",
            p.bind(run_id, Type::UUID),
            p.bind(from, Type::INT8)
        );
        rows(&c, &sql, &p)
            .await?
            .iter()
            .map(|r| {
                Ok(QueuedEvent {
                    seq: r.try_get(0)?,
                    id: r.try_get(1)?,
                    event: r.try_get(2)?,
                    data: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn complete(
        &self,
        run_id: Uuid,
        replica: &str,
        attempt: u32,
        status: Option<RunStatus>,
        thread_error: Option<&Value>,
        end: &QueuedEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        if let Some(status) = status {
            let mut p = Params::default();
            let sql = format!(
                "UPDATE runs SET status = {}, updated_at = {}, lease_owner = NULL, \
                 lease_until = NULL WHERE run_id = {} AND lease_owner = {} AND attempt = {} \
                 AND status = 'running'",
                p.text(status.as_str()),
                p.text(now()),
                p.bind(run_id, Type::UUID),
                p.text(replica),
                p.bind(i32::try_from(attempt).unwrap_or(i32::MAX), Type::INT4)
            );
            if execute(&tx, &sql, &p).await? == 0 {
                return Ok(false);
            }
            let mut p = Params::default();
            let run = p.bind(run_id, Type::UUID);
            if let Some(error) = thread_error {
                let sql = format!(
                    "UPDATE threads SET error = {} \
                     WHERE thread_id = (SELECT thread_id FROM runs WHERE run_id = {run})",
                    p.bind(nullable(error), Type::JSONB)
                );
                execute(&tx, &sql, &p).await?;
            }
            let sql = settle_sql(&run, &p.text(now()));
            execute(&tx, &sql, &p).await?;
        }
        insert_end(&tx, run_id, end).await?;
        notify(&tx, "warden_events", run_id.to_string()).await?;
        if status.is_some() {
            // The thread's next run may start now: the replicas hear of it
            // only when there is one (a claim looks over the whole queue).
            let mut p = Params::default();
            let sql = format!(
                "SELECT pg_notify('warden_queue', '') FROM runs \
                 WHERE thread_id = (SELECT thread_id FROM runs WHERE run_id = {}) \
                 AND status = 'pending' LIMIT 1",
                p.bind(run_id, Type::UUID)
            );
            rows(&tx, &sql, &p).await?;
        } else {
            // Rolled back, its row gone: whatever waited on its thread.
            notify(&tx, "warden_queue", String::new()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn release(&self, run_id: Uuid, replica: &str) -> Result<()> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let sql = format!(
            "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_until = NULL \
             WHERE run_id = {} AND lease_owner = {} AND status = 'running'",
            p.bind(run_id, Type::UUID),
            p.text(replica)
        );
        execute(&c, &sql, &p).await?;
        notify(&c, "warden_queue", String::new()).await
    }

    async fn cancel(&self, run_id: Uuid, action: &str, end: &QueuedEvent) -> Result<CancelRequest> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        let mut p = Params::default();
        let run = p.bind(run_id, Type::UUID);
        let sql = format!("SELECT status FROM runs WHERE run_id = {run} FOR UPDATE");
        let status: Option<String> = match row(&tx, &sql, &p).await? {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        let action_param = p.text(action);
        let outcome = match status.as_deref() {
            Some("pending") => {
                if action == "rollback" {
                    execute(&tx, &format!("DELETE FROM runs WHERE run_id = {run}"), &p).await?;
                } else {
                    let updated = p.text(now());
                    let sql = format!(
                        "UPDATE runs SET status = 'interrupted', cancel = {action_param}, \
                         updated_at = {updated} WHERE run_id = {run}"
                    );
                    execute(&tx, &sql, &p).await?;
                    execute(&tx, &settle_sql(&run, &updated), &p).await?;
                    insert_end(&tx, run_id, end).await?;
                }
                notify(&tx, "warden_events", run_id.to_string()).await?;
                notify(&tx, "warden_queue", String::new()).await?;
                CancelRequest::Ended
            }
            Some("running") => {
                let sql = format!("UPDATE runs SET cancel = {action_param} WHERE run_id = {run}");
                execute(&tx, &sql, &p).await?;
                notify(&tx, "warden_cancel", run_id.to_string()).await?;
                CancelRequest::Signalled
            }
            _ => CancelRequest::NotInFlight,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn put_checkpoint(&self, holder: (&str, u32), checkpoint: &Checkpoint) -> Result<bool> {
        let c = bounded(self.deferred.get().await?);
        put_checkpoint(&c, checkpoint, Some(holder)).await
    }

    async fn restart(&self, run_id: Uuid, thread_id: Uuid) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        undo_writes(&tx, run_id, thread_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self) -> Result<u64> {
        let c = self.conn().await?;
        // Timestamps are the API's text, whose byte order is time order.
        let sql = "DELETE FROM run_events e WHERE e.created_at < now() - interval '1 minute' \
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = e.run_id \
                     AND (r.status IN ('pending', 'running') OR r.updated_at > \
                       to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', \
                               'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')))";
        execute(&c, sql, &Params::default()).await
    }

    async fn status(&self, run_id: Uuid) -> Result<Option<RunStatus>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let sql = format!(
            "SELECT status FROM runs WHERE run_id = {}",
            p.bind(run_id, Type::UUID)
        );
        match row(&c, &sql, &p).await? {
            Some(r) => {
                let status: String = r.try_get(0)?;
                Ok(Some(
                    status
                        .parse()
                        .map_err(|e| super::corrupt(e, "runs.status"))?,
                ))
            }
            None => Ok(None),
        }
    }

    async fn in_flight_on(&self, thread_id: Uuid) -> Result<Vec<Run>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE thread_id = {} \
             AND status IN ('pending', 'running') ORDER BY created_at, run_id",
            p.bind(thread_id, Type::UUID)
        );
        rows(&c, &sql, &p).await?.iter().map(run_row).collect()
    }

    async fn all_in_flight(&self) -> Result<Vec<Run>> {
        super::runs::runs_in_flight(&self.conn().await?).await
    }

    async fn thread_deleted(&self, thread_id: Uuid) -> Result<()> {
        let c = self.conn().await?;
        notify(&c, "warden_threads", thread_id.to_string()).await
    }

    async fn ready(&self) -> Result<()> {
        let _started = self.wakes();
        let mut listening = self.listening.subscribe();
        let timeout = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(RECONNECT * 10);
        match tokio::time::timeout(timeout, listening.wait_for(|on| *on)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::Unavailable(
                "cannot listen for the run queue's notifications".into(),
            )),
        }
    }

    fn wakes(&self) -> broadcast::Receiver<Wake> {
        let receiver = self.wakes.subscribe();
        self.listener.get_or_init(|| {
            let task = tokio::spawn(listen(
                self.config.clone(),
                self.wakes.clone(),
                self.listening.clone(),
            ));
            Listener(task.abort_handle())
        });
        receiver
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use serde_json::json;
    use uuid::Uuid;

    use crate::storage::conformance::TestDatabase;
    use crate::storage::queue::{CancelRequest, END_EVENT, QueuedEvent};
    use crate::storage::{Run, RunStatus, Storage, Thread};
    use crate::timestamp::now;

    const LEASE: Duration = Duration::from_secs(60);

    fn run_on(thread_id: Uuid) -> Run {
        let at = now();
        Run {
            run_id: Uuid::now_v7(),
            thread_id,
            assistant_id: Uuid::nil(),
            created_at: at.clone(),
            updated_at: at,
            status: RunStatus::Pending,
            metadata: Default::default(),
            kwargs: json!({}),
            multitask_strategy: "enqueue".into(),
        }
    }

    fn event(seq: i64, name: &str) -> QueuedEvent {
        QueuedEvent {
            seq,
            id: format!("1-{seq}"),
            event: name.into(),
            data: "{}".into(),
        }
    }

    async fn thread(storage: &dyn Storage) -> Uuid {
        let thread = Thread::new(Uuid::now_v7(), Default::default());
        storage.insert_thread(&thread).await.unwrap();
        thread.thread_id
    }

    #[tokio::test]
    async fn concurrent_claims_start_one_run_per_thread_oldest_first() {
        let database = TestDatabase::create().await;
        let storage = database.storage().await;
        let queue = storage.run_queue().unwrap();
        let (t1, t2) = (thread(&storage).await, thread(&storage).await);
        let runs = [run_on(t1), run_on(t1), run_on(t2)];
        for run in &runs {
            queue
                .enqueue(run, &json!({"job": 1}), None, None)
                .await
                .unwrap();
        }
        // Eight replicas claim at once: one run per thread starts, the
        // oldest of each.
        let claims = futures_util::future::join_all((0..8).map(|i| {
            let queue = queue.clone();
            async move { queue.claim(&format!("r{i}"), LEASE).await.unwrap() }
        }))
        .await;
        let started: HashSet<Uuid> = claims.iter().flatten().map(|c| c.run.run_id).collect();
        assert_eq!(started, HashSet::from([runs[0].run_id, runs[2].run_id]));
        let claim = claims.iter().flatten().next().unwrap();
        assert_eq!((claim.attempt, &claim.job), (1, &json!({"job": 1})));
        assert!(queue.claim("late", LEASE).await.unwrap().is_none());
        // The first ends: the second starts.
        let holder = claims
            .iter()
            .flatten()
            .find(|c| c.run.run_id == runs[0].run_id)
            .unwrap();
        let owner = claims
            .iter()
            .position(|c| {
                c.as_ref()
                    .is_some_and(|c| c.run.run_id == holder.run.run_id)
            })
            .map(|i| format!("r{i}"))
            .unwrap();
        let end = event(99, END_EVENT);
        assert!(
            !queue
                .complete(
                    runs[0].run_id,
                    "intruder",
                    1,
                    Some(RunStatus::Success),
                    None,
                    &end
                )
                .await
                .unwrap()
        );
        assert!(
            queue
                .complete(
                    runs[0].run_id,
                    &owner,
                    1,
                    Some(RunStatus::Success),
                    None,
                    &end
                )
                .await
                .unwrap()
        );
        let next = queue.claim("r9", LEASE).await.unwrap().unwrap();
        assert_eq!(next.run.run_id, runs[1].run_id);
        // Completing settles the thread: busy while a run is in flight on it.
        let status = async |id| storage.thread(id, None).await.unwrap().unwrap().status;
        assert_eq!(status(t1).await, crate::storage::ThreadStatus::Busy);
        let other = claims
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.run.run_id == runs[2].run_id))
            .map(|i| format!("r{i}"))
            .unwrap();
        // With the thread's error, at once.
        let error = json!({"error": "ValueError", "message": "boom"});
        assert!(
            queue
                .complete(
                    runs[2].run_id,
                    &other,
                    1,
                    Some(RunStatus::Error),
                    Some(&error),
                    &end
                )
                .await
                .unwrap()
        );
        let failed = storage.thread(t2, None).await.unwrap().unwrap();
        assert_eq!(failed.status, crate::storage::ThreadStatus::Error);
        assert_eq!(failed.error, error);
        assert!(
            queue
                .complete(
                    runs[1].run_id,
                    "r9",
                    1,
                    Some(RunStatus::Success),
                    None,
                    &end
                )
                .await
                .unwrap()
        );
        assert_eq!(status(t1).await, crate::storage::ThreadStatus::Idle);
    }

    #[tokio::test]
    async fn a_run_is_claimed_as_it_is_recorded_only_when_its_thread_is_free() {
        let database = TestDatabase::create().await;
        let storage = database.storage().await;
        let queue = storage.run_queue().unwrap();
        let t = thread(&storage).await;
        let claim_for = Some(("a", LEASE));
        // Nothing in flight on the thread: claimed at once, and by no one
        // else.
        let first = run_on(t);
        let claim = queue
            .enqueue(&first, &json!({"job": 1}), None, claim_for)
            .await
            .unwrap()
            .expect("claimed as it was recorded");
        assert_eq!(claim.run.run_id, first.run_id);
        assert_eq!(claim.run.status, RunStatus::Running);
        assert_eq!((claim.attempt, &claim.job), (1, &json!({"job": 1})));
        assert_eq!(
            queue.status(first.run_id).await.unwrap(),
            Some(RunStatus::Running)
        );
        assert!(queue.claim("b", LEASE).await.unwrap().is_none());
        let held = queue.renew("a", LEASE).await.unwrap();
        assert_eq!(
            held.iter().map(|h| h.run_id).collect::<Vec<_>>(),
            [first.run_id]
        );
        // A run in flight on the thread: the next waits, pending.
        let second = run_on(t);
        assert!(
            queue
                .enqueue(&second, &json!({}), None, claim_for)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            queue.status(second.run_id).await.unwrap(),
            Some(RunStatus::Pending)
        );
        // A delayed run is never claimed as it is recorded.
        let other = thread(&storage).await;
        let delayed = run_on(other);
        assert!(
            queue
                .enqueue(
                    &delayed,
                    &json!({}),
                    Some(Duration::from_secs(60)),
                    claim_for
                )
                .await
                .unwrap()
                .is_none()
        );
        // The first completes: the second is next, for whichever replica.
        let end = event(9, END_EVENT);
        assert!(
            queue
                .complete(first.run_id, "a", 1, Some(RunStatus::Success), None, &end)
                .await
                .unwrap()
        );
        let next = queue.claim("b", LEASE).await.unwrap().unwrap();
        assert_eq!(next.run.run_id, second.run_id);
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_claimed_again_and_its_old_holder_writes_no_more() {
        let database = TestDatabase::create().await;
        let storage = database.storage().await;
        let queue = storage.run_queue().unwrap();
        let run = run_on(thread(&storage).await);
        queue.enqueue(&run, &json!({}), None, None).await.unwrap();
        let first = queue
            .claim("a", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        assert!(
            queue
                .append(run.run_id, ("a", 1), &[event(0, "metadata")])
                .await
                .unwrap()
        );
        // `a` stops renewing; its lease lapses and `b` claims the run.
        let second = loop {
            if let Some(claim) = queue.claim("b", LEASE).await.unwrap() {
                break claim;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!((first.attempt, second.attempt), (1, 2));
        assert!(queue.renew("a", LEASE).await.unwrap().is_empty());
        // Nor its checkpoints: the thread's state is the holder's alone.
        let checkpoint = |by: &str| crate::storage::Checkpoint {
            thread_id: run.thread_id,
            checkpoint_id: Uuid::now_v7().to_string(),
            parent_checkpoint_id: None,
            run_id: Some(run.run_id),
            values: json!({"by": by}),
            next: Vec::new(),
            metadata: Default::default(),
            created_at: now(),
            interrupts: Vec::new(),
            sends: Vec::new(),
            finished: Vec::new(),
        };
        assert!(
            !queue
                .put_checkpoint(("a", 1), &checkpoint("a"))
                .await
                .unwrap()
        );
        assert!(
            queue
                .put_checkpoint(("b", 2), &checkpoint("b"))
                .await
                .unwrap()
        );
        assert!(
            !queue
                .put_checkpoint(("a", 1), &checkpoint("a"))
                .await
                .unwrap()
        );
        let thread = storage.thread(run.thread_id, None).await.unwrap().unwrap();
        assert_eq!(thread.values, json!({"by": "b"}));
        let written = storage
            .checkpoints(run.thread_id, 10, None, &Default::default())
            .await
            .unwrap();
        assert_eq!(written.len(), 1, "{written:?}");
        assert!(
            !queue
                .append(run.run_id, ("a", 1), &[event(1, "values")])
                .await
                .unwrap()
        );
        assert!(
            queue
                .append(
                    run.run_id,
                    ("b", 2),
                    &[event(1, "metadata"), event(2, "values")]
                )
                .await
                .unwrap()
        );
        // The end lands after every event, whatever position it was given.
        assert!(
            queue
                .complete(
                    run.run_id,
                    "b",
                    2,
                    Some(RunStatus::Success),
                    None,
                    &event(0, END_EVENT)
                )
                .await
                .unwrap()
        );
        let log: Vec<(i64, String)> = queue
            .events(run.run_id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.event))
            .collect();
        let names: Vec<(i64, &str)> = log.iter().map(|(s, e)| (*s, e.as_str())).collect();
        assert_eq!(
            names,
            [
                (0, "metadata"),
                (1, "metadata"),
                (2, "values"),
                (3, END_EVENT)
            ]
        );
        assert_eq!(
            queue.status(run.run_id).await.unwrap(),
            Some(RunStatus::Success)
        );
    }

    #[tokio::test]
    async fn a_cancelled_pending_run_ends_at_once_and_a_running_one_is_signalled() {
        let database = TestDatabase::create().await;
        let storage = database.storage().await;
        let queue = storage.run_queue().unwrap();
        let thread_id = thread(&storage).await;
        let (running, pending) = (run_on(thread_id), run_on(thread_id));
        queue
            .enqueue(&running, &json!({}), None, None)
            .await
            .unwrap();
        queue
            .enqueue(&pending, &json!({}), None, None)
            .await
            .unwrap();
        queue.claim("a", LEASE).await.unwrap().unwrap();
        let end = event(0, END_EVENT);
        assert_eq!(
            queue
                .cancel(pending.run_id, "interrupt", &end)
                .await
                .unwrap(),
            CancelRequest::Ended
        );
        assert_eq!(
            queue.status(pending.run_id).await.unwrap(),
            Some(RunStatus::Interrupted)
        );
        assert_eq!(
            queue.events(pending.run_id, 0).await.unwrap()[0].event,
            END_EVENT
        );
        assert_eq!(
            queue
                .cancel(running.run_id, "rollback", &end)
                .await
                .unwrap(),
            CancelRequest::Signalled
        );
        let held = queue.renew("a", LEASE).await.unwrap();
        assert_eq!(held[0].cancel.as_deref(), Some("rollback"));
        assert_eq!(
            queue
                .cancel(Uuid::now_v7(), "interrupt", &end)
                .await
                .unwrap(),
            CancelRequest::NotInFlight
        );
        // A run rolled back (deleted) completes without an end nor an error.
        storage.delete_run(thread_id, running.run_id).await.unwrap();
        assert!(
            queue
                .complete(running.run_id, "a", 1, None, None, &end)
                .await
                .unwrap()
        );
        assert!(queue.events(running.run_id, 0).await.unwrap().is_empty());
        // Nothing left to claim: the cancelled pending run never starts.
        assert!(queue.claim("b", LEASE).await.unwrap().is_none());
    }
}
