//! Crons in SQLite: what they run, when they fire next.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Row, params};
use uuid::Uuid;

use super::filter::{Where, filterable};
use super::rows::{
    Listing, by_id, delete_where, direction, json_text, object, page, select_one, uuid,
};
use crate::storage::{Cron, CronPatch, CronQuery, Filter, Page, Result};

const CRON_COLUMNS: &str = "cron_id, assistant_id, thread_id, user_id, end_time, schedule, \
     timezone, payload, next_run_date, metadata, on_run_completed, enabled, created_at, updated_at";

fn cron_row(row: &Row) -> Result<Cron> {
    Ok(Cron {
        cron_id: uuid(row.get(0)?)?,
        assistant_id: uuid(row.get(1)?)?,
        thread_id: row.get::<_, Option<String>>(2)?.map(uuid).transpose()?,
        user_id: row.get(3)?,
        end_time: row.get(4)?,
        schedule: row.get(5)?,
        timezone: row.get(6)?,
        payload: object(row.get(7)?)?,
        next_run_date: row.get(8)?,
        metadata: object(row.get(9)?)?,
        on_run_completed: row.get(10)?,
        enabled: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
    })
}

pub(super) fn insert(conn: &Connection, c: &Cron) -> Result<()> {
    filterable(&c.metadata, "metadata")?;
    conn.execute(
        &format!("INSERT INTO crons ({CRON_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            c.cron_id.to_string(),
            c.assistant_id.to_string(),
            c.thread_id.map(|t| t.to_string()),
            c.user_id,
            c.end_time,
            c.schedule,
            c.timezone,
            json_text(&c.payload),
            c.next_run_date,
            json_text(&c.metadata),
            c.on_run_completed,
            c.enabled,
            c.created_at,
            c.updated_at,
        ],
    )?;
    Ok(())
}

pub(super) fn get(conn: &Connection, id: Uuid, scope: Option<&Filter>) -> Result<Option<Cron>> {
    let filter = by_id(id, "cron_id", scope)?;
    select_one(conn, "crons", CRON_COLUMNS, &filter, cron_row)
}

pub(super) fn update(
    conn: &mut Connection,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &CronPatch,
) -> Result<Option<Cron>> {
    if let Some(metadata) = &patch.metadata {
        filterable(metadata, "metadata")?;
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let filter = by_id(id, "cron_id", scope)?;
    let Some(mut c) = select_one(&tx, "crons", CRON_COLUMNS, &filter, cron_row)? else {
        return Ok(None);
    };
    patch.apply(&mut c)?;
    tx.execute(
        "UPDATE crons SET schedule = ?2, next_run_date = ?3, end_time = ?4, enabled = ?5, \
         on_run_completed = ?6, payload = ?7, metadata = ?8, updated_at = ?9, timezone = ?10 \
         WHERE cron_id = ?1",
        params![
            id.to_string(),
            c.schedule,
            c.next_run_date,
            c.end_time,
            c.enabled,
            c.on_run_completed,
            json_text(&c.payload),
            json_text(&c.metadata),
            c.updated_at,
            c.timezone
        ],
    )?;
    tx.commit()?;
    Ok(Some(c))
}

pub(super) fn delete(conn: &Connection, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
    delete_where(conn, "crons", &by_id(id, "cron_id", scope)?)
}

pub(super) fn search(
    conn: &Connection,
    query: &CronQuery,
    scope: Option<&Filter>,
    thread_scope: Option<&Filter>,
) -> Result<Page<Cron>> {
    let mut filter = Where::default();
    filter.filter("c.metadata", scope)?;
    filter.contains("c.metadata", &query.metadata)?;
    if thread_scope.is_some() {
        let mut inner = Where::default();
        inner.push("t.thread_id = c.thread_id", []);
        inner.filter("t.metadata", thread_scope)?;
        filter.push(
            format!(
                "(c.thread_id IS NULL OR EXISTS (SELECT 1 FROM threads t{}))",
                inner.sql()
            ),
            inner.params,
        );
    }
    if let Some(a) = query.assistant_id {
        filter.push("c.assistant_id = ?", [Sql::Text(a.to_string())]);
    }
    if let Some(t) = query.thread_id {
        filter.push("c.thread_id = ?", [Sql::Text(t.to_string())]);
    }
    if let Some(e) = query.enabled {
        filter.push("c.enabled = ?", [Sql::Integer(e.into())]);
    }
    let order = format!(
        "c.{} {}, c.cron_id {}",
        query.sort_by.unwrap_or("created_at"),
        direction(query.order),
        direction(query.order)
    );
    let columns = CRON_COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    page(
        conn,
        Listing {
            from: "crons c",
            columns: &columns,
            order_by: &order,
            limit: query.limit,
            offset: query.offset,
        },
        &filter,
        cron_row,
    )
}

pub(super) fn count_of(conn: &Connection, user_id: &str) -> Result<u64> {
    let mut stmt = conn.prepare_cached("SELECT COUNT(*) FROM crons WHERE user_id = ?1")?;
    Ok(stmt.query_row([user_id], |row| row.get(0))?)
}

pub(super) fn due(conn: &Connection, now: &str) -> Result<Vec<Cron>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CRON_COLUMNS} FROM crons WHERE enabled = 1 AND next_run_date IS NOT NULL \
         AND next_run_date <= ?1 AND (end_time IS NULL OR end_time > ?1) \
         ORDER BY next_run_date"
    ))?;
    let mut rows = stmt.query([now])?;
    let mut due = Vec::new();
    while let Some(row) = rows.next()? {
        due.push(cron_row(row)?);
    }
    Ok(due)
}

pub(super) fn claim(conn: &Connection, id: Uuid, due: &str, next: Option<&str>) -> Result<bool> {
    let moved = conn.execute(
        "UPDATE crons SET next_run_date = ?3 WHERE cron_id = ?1 AND next_run_date = ?2",
        params![id.to_string(), due, next],
    )?;
    Ok(moved == 1)
}
