//! Runs, thread statuses and checkpoints in PostgreSQL.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::filter::{Params, Where};
use super::rows::{execute, json, nullable, object, row, rows};
use crate::storage::{Checkpoint, Object, Result, Run, RunStatus, ThreadStatus};
use crate::timestamp::now;

pub(super) const RUN_COLUMNS: &str = "run_id, thread_id, assistant_id, created_at, updated_at, status, \
     metadata, kwargs, multitask_strategy";

pub(super) fn run_row(row: &Row) -> Result<Run> {
    let status: String = row.try_get(5)?;
    Ok(Run {
        run_id: row.try_get(0)?,
        thread_id: row.try_get(1)?,
        assistant_id: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        status: status
            .parse()
            .map_err(|e| super::corrupt(e, "runs.status"))?,
        metadata: object(row.try_get(6)?)?,
        kwargs: row.try_get(7)?,
        multitask_strategy: row.try_get(8)?,
    })
}

pub(super) async fn insert_run(c: &mut deadpool_postgres::Client, r: &Run) -> Result<()> {
    let tx = c.transaction().await?;
    insert_run_in(&tx, r, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts `r` (its thread becomes `busy`), with what the shared queue keeps
/// beside it when `queued`: its job, and the milliseconds before it may
/// start.
pub(super) async fn insert_run_in(
    c: &impl GenericClient,
    r: &Run,
    queued: Option<(&Value, f64)>,
) -> Result<()> {
    let mut p = Params::default();
    let mut columns = RUN_COLUMNS.to_owned();
    let mut values = vec![
        p.bind(r.run_id, Type::UUID),
        p.bind(r.thread_id, Type::UUID),
        p.bind(r.assistant_id, Type::UUID),
        p.text(r.created_at.clone()),
        p.text(r.updated_at.clone()),
        p.text(r.status.as_str()),
        p.json(r.metadata.clone().into()),
        p.json(r.kwargs.clone()),
        p.text(r.multitask_strategy.clone()),
    ];
    if let Some((job, delay_ms)) = queued {
        columns.push_str(", job, not_before");
        values.push(p.json(job.clone()));
        let delay = p.bind(delay_ms, Type::FLOAT8);
        values.push(format!("now() + {delay} * interval '1 millisecond'"));
    }
    let sql = format!(
        "INSERT INTO runs ({columns}) VALUES ({})",
        values.join(", ")
    );
    execute(c, &sql, &p).await?;
    let sql = format!(
        "UPDATE threads SET status = 'busy', updated_at = {} WHERE thread_id = {}",
        values[4], values[1]
    );
    execute(c, &sql, &p).await?;
    Ok(())
}

pub(super) async fn run(
    c: &impl GenericClient,
    thread_id: Uuid,
    run_id: Uuid,
) -> Result<Option<Run>> {
    let mut p = Params::default();
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE run_id = {} AND thread_id = {}",
        p.bind(run_id, Type::UUID),
        p.bind(thread_id, Type::UUID)
    );
    row(c, &sql, &p).await?.as_ref().map(run_row).transpose()
}

pub(super) async fn list_runs(
    c: &impl GenericClient,
    thread_id: Uuid,
    status: Option<RunStatus>,
    limit: u64,
    offset: u64,
) -> Result<Vec<Run>> {
    let mut filter = Where::default();
    let thread = filter.params.bind(thread_id, Type::UUID);
    filter.push(format!("thread_id = {thread}"));
    if let Some(status) = status {
        let status = filter.params.text(status.as_str());
        filter.push(format!("status = {status}"));
    }
    let conditions = filter.sql();
    let page = filter.page(limit, offset);
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs{conditions} ORDER BY created_at DESC, run_id DESC{page}"
    );
    rows(c, &sql, &filter.params)
        .await?
        .iter()
        .map(run_row)
        .collect()
}

pub(super) async fn set_run_status(
    c: &impl GenericClient,
    run_id: Uuid,
    status: RunStatus,
) -> Result<()> {
    let mut p = Params::default();
    let sql = format!(
        "UPDATE runs SET status = {}, updated_at = {} WHERE run_id = {}",
        p.text(status.as_str()),
        p.text(now()),
        p.bind(run_id, Type::UUID)
    );
    execute(c, &sql, &p).await?;
    Ok(())
}

pub(super) async fn delete_run(
    c: &mut deadpool_postgres::Client,
    thread_id: Uuid,
    run_id: Uuid,
) -> Result<bool> {
    let tx = c.transaction().await?;
    let mut p = Params::default();
    let (run, thread) = (p.bind(run_id, Type::UUID), p.bind(thread_id, Type::UUID));
    let sql = format!("DELETE FROM runs WHERE run_id = {run} AND thread_id = {thread}");
    let deleted = execute(&tx, &sql, &p).await? > 0;
    if deleted {
        undo_writes(&tx, run_id, thread_id).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Undoes what a run wrote on a thread: its checkpoints go (only this
/// thread's: a copy holds checkpoints of the same run), and the thread's
/// values become those of its newest remaining checkpoint.
pub(super) async fn undo_writes(
    c: &impl GenericClient,
    run_id: Uuid,
    thread_id: Uuid,
) -> Result<()> {
    let mut p = Params::default();
    let (run, thread) = (p.bind(run_id, Type::UUID), p.bind(thread_id, Type::UUID));
    let sql = format!("DELETE FROM checkpoints WHERE run_id = {run} AND thread_id = {thread}");
    execute(c, &sql, &p).await?;
    let sql = format!(
        "UPDATE threads SET state_values = (SELECT state_values FROM checkpoints \
         WHERE thread_id = {thread} ORDER BY checkpoint_id DESC LIMIT 1) \
         WHERE thread_id = {thread}"
    );
    execute(c, &sql, &p).await?;
    Ok(())
}

pub(super) async fn runs_in_flight(c: &impl GenericClient) -> Result<Vec<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'running') ORDER BY created_at"
    );
    rows(c, &sql, &Params::default())
        .await?
        .iter()
        .map(run_row)
        .collect()
}

pub(super) async fn set_thread_status(
    c: &impl GenericClient,
    thread_id: Uuid,
    status: ThreadStatus,
    error: Option<&Value>,
) -> Result<()> {
    let mut p = Params::default();
    let (thread, status, now) = (
        p.bind(thread_id, Type::UUID),
        p.text(status.as_str()),
        p.text(now()),
    );
    let sql = match error {
        Some(error) => {
            let error = p.bind(nullable(error), Type::JSONB);
            format!(
                "UPDATE threads SET status = {status}, error = {error}, updated_at = {now} \
                 WHERE thread_id = {thread}"
            )
        }
        None => format!(
            "UPDATE threads SET status = {status}, updated_at = {now} WHERE thread_id = {thread}"
        ),
    };
    execute(c, &sql, &p).await?;
    Ok(())
}

pub(super) async fn prune_checkpoints(c: &impl GenericClient, thread_id: Uuid) -> Result<u64> {
    let mut p = Params::default();
    let thread = p.bind(thread_id, Type::UUID);
    let sql = format!(
        "DELETE FROM checkpoints WHERE thread_id = {thread} AND checkpoint_id < \
         (SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = {thread})"
    );
    execute(c, &sql, &p).await
}

/// Writes `cp` and makes its values and interrupts the thread's; with `holder` (replica,
/// attempt), only while that attempt holds the checkpoint's run. Whether
/// it was written.
pub(super) async fn put_checkpoint(
    c: &impl GenericClient,
    cp: &Checkpoint,
    holder: Option<(&str, u32)>,
) -> Result<bool> {
    let mut p = Params::default();
    let values = [
        p.bind(cp.thread_id, Type::UUID),
        p.text(cp.checkpoint_id.clone()),
        p.bind(cp.parent_checkpoint_id.clone(), Type::TEXT),
        p.bind(cp.run_id, Type::UUID),
        p.json(cp.values.clone()),
        p.json(Value::from(cp.next.clone())),
        p.json(cp.metadata.clone().into()),
        p.text(cp.created_at.clone()),
        p.json(serde_json::to_value(&cp.interrupts)?),
        p.json(Value::from(cp.sends.clone())),
        p.json(serde_json::to_value(&cp.finished)?),
    ];
    // An attempt whose lease lapsed (its server stalled, another took the
    // run over) writes nothing more.
    let fence = match holder {
        Some((replica, attempt)) => format!(
            " WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = {} AND lease_owner = {} \
             AND attempt = {} AND status = 'running')",
            values[3],
            p.text(replica),
            p.bind(i32::try_from(attempt).unwrap_or(i32::MAX), Type::INT4),
        ),
        None => String::new(),
    };
    let thread_interrupts = p.json(cp.thread_interrupts());
    // One statement, one round trip: the checkpoint and the thread's
    // values and interrupts commit together.
    let sql = format!(
        "WITH written AS (INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) SELECT {}{fence} \
         ON CONFLICT (thread_id, checkpoint_id) DO UPDATE SET \
         parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, \
         state_values = excluded.state_values, next = excluded.next, \
         metadata = excluded.metadata, created_at = excluded.created_at, \
         interrupts = excluded.interrupts, sends = excluded.sends, \
         finished = excluded.finished RETURNING 1) \
         UPDATE threads SET state_values = {}, interrupts = {thread_interrupts}, \
         state_updated_at = {created}, updated_at = {created} \
         WHERE thread_id = {} AND EXISTS (SELECT 1 FROM written)",
        values.join(", "),
        values[4],
        values[0],
        created = values[7],
    );
    Ok(execute(c, &sql, &p).await? > 0)
}

const CHECKPOINT_COLUMNS: &str = "thread_id, checkpoint_id, parent_checkpoint_id, run_id, \
     state_values, next, metadata, created_at, interrupts, sends, finished";

fn checkpoint_row(row: &Row) -> Result<Checkpoint> {
    Ok(Checkpoint {
        thread_id: row.try_get(0)?,
        checkpoint_id: row.try_get(1)?,
        parent_checkpoint_id: row.try_get(2)?,
        run_id: row.try_get(3)?,
        values: json(row.try_get(4)?),
        next: serde_json::from_value(row.try_get(5)?)?,
        metadata: object(row.try_get(6)?)?,
        created_at: row.try_get(7)?,
        interrupts: serde_json::from_value(row.try_get(8)?)?,
        sends: serde_json::from_value(row.try_get(9)?)?,
        finished: serde_json::from_value(row.try_get(10)?)?,
    })
}

pub(super) async fn checkpoints(
    c: &impl GenericClient,
    thread_id: Uuid,
    limit: u64,
    before: Option<&str>,
    metadata: &Object,
) -> Result<Vec<Checkpoint>> {
    let mut filter = Where::default();
    let thread = filter.params.bind(thread_id, Type::UUID);
    filter.push(format!("thread_id = {thread}"));
    if let Some(before) = before {
        let before = filter.params.text(before);
        filter.push(format!("checkpoint_id < {before}"));
    }
    filter.contains("metadata", metadata)?;
    let conditions = filter.sql();
    let page = filter.page(limit, 0);
    let sql = format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints{conditions} ORDER BY checkpoint_id DESC{page}"
    );
    rows(c, &sql, &filter.params)
        .await?
        .iter()
        .map(checkpoint_row)
        .collect()
}

pub(super) async fn checkpoint(
    c: &impl GenericClient,
    thread_id: Uuid,
    checkpoint_id: &str,
) -> Result<Option<Checkpoint>> {
    let mut p = Params::default();
    let sql = format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = {} AND checkpoint_id = {}",
        p.bind(thread_id, Type::UUID),
        p.text(checkpoint_id)
    );
    row(c, &sql, &p)
        .await?
        .as_ref()
        .map(checkpoint_row)
        .transpose()
}

pub(super) async fn copy_state(
    c: &mut deadpool_postgres::Client,
    from: Uuid,
    to: Uuid,
) -> Result<()> {
    let tx = c.transaction().await?;
    let mut p = Params::default();
    let (from, to) = (p.bind(from, Type::UUID), p.bind(to, Type::UUID));
    let sql = format!(
        "INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) \
         SELECT {to}, checkpoint_id, parent_checkpoint_id, run_id, state_values, next, metadata, \
         created_at, interrupts, sends, finished FROM checkpoints WHERE thread_id = {from}"
    );
    execute(&tx, &sql, &p).await?;
    let sql = format!(
        "UPDATE threads SET state_values = (SELECT state_values FROM threads \
         WHERE thread_id = {from}) WHERE thread_id = {to}"
    );
    execute(&tx, &sql, &p).await?;
    tx.commit().await?;
    Ok(())
}
