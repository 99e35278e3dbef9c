//! Threads in SQLite (their runs, statuses and checkpoints: [`super::runs`]).

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Row, params, params_from_iter};
use uuid::Uuid;

use super::filter::{Where, filterable};
use super::rows::{
    Listing, by_id, count as count_rows, delete_where, direction, json, json_text, object, page,
    select_one, uuid,
};
use crate::storage::patch::patch_thread;
use crate::storage::{Filter, Object, Page, Result, Thread, ThreadQuery};

const THREAD_COLUMNS: &str = "thread_id, created_at, updated_at, state_updated_at, metadata, \
     status, config, state_values, interrupts, error";

fn thread_row(row: &Row) -> Result<Thread> {
    Ok(Thread {
        thread_id: uuid(row.get(0)?)?,
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        state_updated_at: row.get(3)?,
        metadata: object(row.get(4)?)?,
        status: row.get(5)?,
        config: json(row.get(6)?)?,
        values: json(row.get(7)?)?,
        interrupts: json(row.get(8)?)?,
        error: json(row.get(9)?)?,
    })
}

fn thread_where(query: &ThreadQuery, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.filter("metadata", scope)?;
    filter.contains("metadata", &query.metadata)?;
    filter.contains("state_values", &query.values)?;
    if let Some(status) = &query.status {
        filter.push("status = ?", [Sql::Text(status.as_str().into())]);
    }
    if let Some(ids) = &query.ids {
        // One parameter, however many ids (SQLite takes at most 32766).
        filter.push(
            "thread_id IN (SELECT value FROM json_each(?))",
            [Sql::Text(json_text(ids))],
        );
    }
    Ok(filter)
}

pub(super) fn insert(conn: &Connection, t: &Thread) -> Result<bool> {
    filterable(&t.metadata, "metadata")?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO threads (thread_id, created_at, updated_at, state_updated_at, \
         metadata, status, config, state_values, interrupts, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            t.thread_id.to_string(),
            t.created_at,
            t.updated_at,
            t.state_updated_at,
            json_text(&t.metadata),
            t.status,
            json_text(&t.config),
            (!t.values.is_null()).then(|| json_text(&t.values)),
            json_text(&t.interrupts),
            (!t.error.is_null()).then(|| json_text(&t.error)),
        ],
    )?;
    Ok(n == 1)
}

pub(super) fn get(conn: &Connection, id: Uuid, scope: Option<&Filter>) -> Result<Option<Thread>> {
    let filter = by_id(id, "thread_id", scope)?;
    select_one(conn, "threads", THREAD_COLUMNS, &filter, thread_row)
}

pub(super) fn update(
    conn: &mut Connection,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &Object,
) -> Result<Option<Thread>> {
    filterable(patch, "metadata")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let filter = by_id(id, "thread_id", scope)?;
    let Some(mut thread) = select_one(&tx, "threads", THREAD_COLUMNS, &filter, thread_row)? else {
        return Ok(None);
    };
    patch_thread(&mut thread, patch);
    tx.execute(
        "UPDATE threads SET metadata = ?2, updated_at = ?3 WHERE thread_id = ?1",
        params![
            id.to_string(),
            json_text(&thread.metadata),
            thread.updated_at
        ],
    )?;
    tx.commit()?;
    Ok(Some(thread))
}

pub(super) fn delete(conn: &Connection, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
    delete_where(conn, "threads", &by_id(id, "thread_id", scope)?)
}

pub(super) fn search(
    conn: &Connection,
    query: &ThreadQuery,
    scope: Option<&Filter>,
) -> Result<Page<Thread>> {
    let filter = thread_where(query, scope)?;
    let order = format!(
        "{} {}, thread_id {}",
        query.sort_by.unwrap_or("updated_at"),
        direction(query.order),
        direction(query.order)
    );
    page(
        conn,
        Listing {
            from: "threads",
            columns: THREAD_COLUMNS,
            order_by: &order,
            limit: query.limit,
            offset: query.offset,
        },
        &filter,
        thread_row,
    )
}

pub(super) fn count(conn: &Connection, query: &ThreadQuery, scope: Option<&Filter>) -> Result<u64> {
    count_rows(conn, "threads", &thread_where(query, scope)?)
}

/// SQLite's plan for a thread search, one line per step.
pub(super) fn search_plan(
    conn: &Connection,
    query: &ThreadQuery,
    scope: Option<&Filter>,
) -> Result<Vec<String>> {
    let filter = thread_where(query, scope)?;
    let mut stmt = conn.prepare(&format!(
        "EXPLAIN QUERY PLAN SELECT thread_id FROM threads{} ORDER BY updated_at DESC LIMIT 10",
        filter.sql()
    ))?;
    let rows = stmt.query_map(params_from_iter(filter.params.iter()), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
