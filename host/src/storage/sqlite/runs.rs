//! Runs, thread statuses and checkpoints in SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use uuid::Uuid;

use super::filter::{Where, page_sql};
use super::rows::{json, json_text, object, uuid};
use crate::storage::{Checkpoint, Object, Result, Run, RunStatus, ThreadStatus};
use crate::timestamp::now;

const RUN_COLUMNS: &str = "run_id, thread_id, assistant_id, created_at, updated_at, status, \
     metadata, kwargs, multitask_strategy";

fn run_row(row: &Row) -> Result<Run> {
    Ok(Run {
        run_id: uuid(row.get(0)?)?,
        thread_id: uuid(row.get(1)?)?,
        assistant_id: uuid(row.get(2)?)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        status: row.get(5)?,
        metadata: object(row.get(6)?)?,
        kwargs: json(row.get(7)?)?,
        multitask_strategy: row.get(8)?,
    })
}

pub(super) fn insert_run(conn: &mut Connection, r: &Run) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        &format!("INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            r.run_id.to_string(),
            r.thread_id.to_string(),
            r.assistant_id.to_string(),
            r.created_at,
            r.updated_at,
            r.status,
            json_text(&r.metadata),
            json_text(&r.kwargs),
            r.multitask_strategy,
        ],
    )?;
    tx.execute(
        "UPDATE threads SET status = 'busy', updated_at = ?2 WHERE thread_id = ?1",
        params![r.thread_id.to_string(), r.updated_at],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn run(conn: &Connection, thread_id: Uuid, run_id: Uuid) -> Result<Option<Run>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1 AND thread_id = ?2"
    ))?;
    let mut rows = stmt.query(params![run_id.to_string(), thread_id.to_string()])?;
    rows.next()?.map(run_row).transpose()
}

pub(super) fn list_runs(
    conn: &Connection,
    thread_id: Uuid,
    status: Option<RunStatus>,
    limit: u64,
    offset: u64,
) -> Result<Vec<Run>> {
    let mut filter = Where::default();
    filter.push(
        "thread_id = ?",
        [rusqlite::types::Value::Text(thread_id.to_string())],
    );
    if let Some(status) = status {
        filter.push(
            "status = ?",
            [rusqlite::types::Value::Text(status.as_str().into())],
        );
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs{} ORDER BY created_at DESC, run_id DESC{}",
        filter.sql(),
        page_sql(limit, offset)
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(filter.params.iter()))?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(run_row(row)?);
    }
    Ok(runs)
}

pub(super) fn set_run_status(conn: &Connection, run_id: Uuid, status: RunStatus) -> Result<()> {
    conn.prepare_cached("UPDATE runs SET status = ?2, updated_at = ?3 WHERE run_id = ?1")?
        .execute(params![run_id.to_string(), status, now()])?;
    Ok(())
}

pub(super) fn delete_run(conn: &mut Connection, thread_id: Uuid, run_id: Uuid) -> Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "DELETE FROM runs WHERE run_id = ?1 AND thread_id = ?2",
        params![run_id.to_string(), thread_id.to_string()],
    )?;
    if n > 0 {
        // Only this thread's: a copy holds checkpoints of the same run.
        tx.execute(
            "DELETE FROM checkpoints WHERE run_id = ?1 AND thread_id = ?2",
            params![run_id.to_string(), thread_id.to_string()],
        )?;
        // The thread's values are those of its newest remaining checkpoint.
        let values: Option<String> = tx
            .query_row(
                "SELECT state_values FROM checkpoints WHERE thread_id = ?1 \
                 ORDER BY checkpoint_id DESC LIMIT 1",
                [thread_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE threads SET state_values = ?2 WHERE thread_id = ?1",
            params![thread_id.to_string(), values],
        )?;
    }
    tx.commit()?;
    Ok(n > 0)
}

pub(super) fn runs_in_flight(conn: &Connection) -> Result<Vec<Run>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'running') ORDER BY created_at"
    ))?;
    let mut rows = stmt.query([])?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(run_row(row)?);
    }
    Ok(runs)
}

pub(super) fn set_thread_status(
    conn: &Connection,
    thread_id: Uuid,
    status: ThreadStatus,
    error: Option<&Value>,
) -> Result<()> {
    let now = now();
    match error {
        Some(error) => conn
            .prepare_cached(
                "UPDATE threads SET status = ?2, error = ?3, updated_at = ?4 WHERE thread_id = ?1",
            )?
            .execute(params![
                thread_id.to_string(),
                status,
                (!error.is_null()).then(|| json_text(error)),
                now
            ])?,
        None => conn
            .prepare_cached("UPDATE threads SET status = ?2, updated_at = ?3 WHERE thread_id = ?1")?
            .execute(params![thread_id.to_string(), status, now])?,
    };
    Ok(())
}

pub(super) fn prune_checkpoints(conn: &Connection, thread_id: Uuid) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_id < \
         (SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?1)",
        [thread_id.to_string()],
    )?;
    Ok(n as u64)
}

pub(super) fn put_checkpoint(conn: &mut Connection, c: &Checkpoint) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    insert_checkpoint(&tx, c)?;
    tx.prepare_cached(
        "UPDATE threads SET state_values = ?2, interrupts = ?4, state_updated_at = ?3, \
         updated_at = ?3 WHERE thread_id = ?1",
    )?
    .execute(params![
        c.thread_id.to_string(),
        json_text(&c.values),
        c.created_at,
        json_text(&c.thread_interrupts())
    ])?;
    tx.commit()?;
    Ok(())
}

fn insert_checkpoint(conn: &Connection, c: &Checkpoint) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_id, parent_checkpoint_id, \
         run_id, state_values, next, metadata, created_at, interrupts, sends, finished) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        c.thread_id.to_string(),
        c.checkpoint_id,
        c.parent_checkpoint_id,
        c.run_id.map(|id| id.to_string()),
        json_text(&c.values),
        json_text(&c.next),
        json_text(&c.metadata),
        c.created_at,
        json_text(&c.interrupts),
        json_text(&c.sends),
        json_text(&c.finished),
    ])?;
    Ok(())
}

const CHECKPOINT_COLUMNS: &str = "thread_id, checkpoint_id, parent_checkpoint_id, run_id, state_values, next, metadata, created_at, interrupts, sends, finished";

fn checkpoint_row(row: &Row) -> Result<Checkpoint> {
    let run_id: Option<String> = row.get(3)?;
    Ok(Checkpoint {
        thread_id: uuid(row.get(0)?)?,
        checkpoint_id: row.get(1)?,
        parent_checkpoint_id: row.get(2)?,
        run_id: run_id.map(uuid).transpose()?,
        values: json(row.get(4)?)?,
        next: serde_json::from_str(&row.get::<_, String>(5)?)?,
        metadata: object(row.get(6)?)?,
        created_at: row.get(7)?,
        interrupts: serde_json::from_str(&row.get::<_, String>(8)?)?,
        sends: serde_json::from_str(&row.get::<_, String>(9)?)?,
        finished: serde_json::from_str(&row.get::<_, String>(10)?)?,
    })
}

pub(super) fn checkpoints(
    conn: &Connection,
    thread_id: Uuid,
    limit: u64,
    before: Option<&str>,
    metadata: &Object,
) -> Result<Vec<Checkpoint>> {
    let mut filter = Where::default();
    filter.push(
        "thread_id = ?",
        [rusqlite::types::Value::Text(thread_id.to_string())],
    );
    if let Some(before) = before {
        filter.push(
            "checkpoint_id < ?",
            [rusqlite::types::Value::Text(before.into())],
        );
    }
    filter.contains("metadata", metadata)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints{} ORDER BY checkpoint_id DESC{}",
        filter.sql(),
        page_sql(limit, 0)
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(filter.params.iter()))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(checkpoint_row(row)?);
    }
    Ok(found)
}

pub(super) fn checkpoint(
    conn: &Connection,
    thread_id: Uuid,
    checkpoint_id: &str,
) -> Result<Option<Checkpoint>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = ?1 AND checkpoint_id = ?2"
    ))?;
    let mut rows = stmt.query(params![thread_id.to_string(), checkpoint_id])?;
    rows.next()?.map(checkpoint_row).transpose()
}

pub(super) fn copy_state(conn: &mut Connection, from: Uuid, to: Uuid) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO checkpoints (thread_id, checkpoint_id, parent_checkpoint_id, run_id, \
         state_values, next, metadata, created_at, interrupts, sends, finished) \
         SELECT ?2, checkpoint_id, parent_checkpoint_id, run_id, state_values, next, metadata, \
         created_at, interrupts, sends, finished FROM checkpoints WHERE thread_id = ?1",
        params![from.to_string(), to.to_string()],
    )?;
    tx.execute(
        "UPDATE threads SET state_values = (SELECT state_values FROM threads WHERE thread_id = ?1) \
         WHERE thread_id = ?2",
        params![from.to_string(), to.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}
