//! Threads in PostgreSQL (their runs, statuses and checkpoints:
//! [`super::runs`]).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::filter::{Params, Where};
use super::rows::{
    Listing, by_id, count as count_rows, delete_where, direction, execute, json, nullable, object,
    page, select_one,
};
use crate::storage::checks::filterable;
use crate::storage::patch::patch_thread;
use crate::storage::{Filter, Object, Page, Result, Thread, ThreadQuery};

pub(super) const THREAD_COLUMNS: &str = "thread_id, created_at, updated_at, state_updated_at, \
     metadata, status, config, state_values, interrupts, error";

pub(super) fn thread_row(row: &Row) -> Result<Thread> {
    let status: String = row.try_get(5)?;
    Ok(Thread {
        thread_id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        updated_at: row.try_get(2)?,
        state_updated_at: row.try_get(3)?,
        metadata: object(row.try_get(4)?)?,
        status: status
            .parse()
            .map_err(|e| super::corrupt(e, "threads.status"))?,
        config: json(row.try_get(6)?),
        values: json(row.try_get(7)?),
        interrupts: json(row.try_get(8)?),
        error: json(row.try_get(9)?),
    })
}

fn thread_where(query: &ThreadQuery, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.filter("metadata", scope)?;
    filter.contains("metadata", &query.metadata)?;
    filter.contains("state_values", &query.values)?;
    if let Some(status) = &query.status {
        let status = filter.params.text(status.as_str());
        filter.push(format!("status = {status}"));
    }
    if let Some(ids) = &query.ids {
        let ids = filter.params.bind(ids.clone(), Type::UUID_ARRAY);
        filter.push(format!("thread_id = ANY ({ids})"));
    }
    Ok(filter)
}

pub(super) async fn insert(c: &impl GenericClient, t: &Thread) -> Result<bool> {
    filterable(&t.metadata, "metadata")?;
    let mut p = Params::default();
    let values = [
        p.bind(t.thread_id, Type::UUID),
        p.text(t.created_at.clone()),
        p.text(t.updated_at.clone()),
        p.text(t.state_updated_at.clone()),
        p.json(t.metadata.clone().into()),
        p.text(t.status.as_str()),
        p.json(t.config.clone()),
        p.bind(nullable(&t.values), Type::JSONB),
        p.json(t.interrupts.clone()),
        p.bind(nullable(&t.error), Type::JSONB),
    ]
    .join(", ");
    let sql = format!(
        "INSERT INTO threads ({THREAD_COLUMNS}) VALUES ({values}) ON CONFLICT (thread_id) DO NOTHING"
    );
    Ok(execute(c, &sql, &p).await? == 1)
}

pub(super) async fn get(
    c: &impl GenericClient,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<Option<Thread>> {
    let filter = by_id(id, "thread_id", scope)?;
    select_one(c, "threads", THREAD_COLUMNS, &filter, false, thread_row).await
}

pub(super) async fn update(
    c: &mut deadpool_postgres::Client,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &Object,
) -> Result<Option<Thread>> {
    filterable(patch, "metadata")?;
    let tx = c.transaction().await?;
    let filter = by_id(id, "thread_id", scope)?;
    let Some(mut thread) =
        select_one(&tx, "threads", THREAD_COLUMNS, &filter, true, thread_row).await?
    else {
        return Ok(None);
    };
    patch_thread(&mut thread, patch);
    let mut p = Params::default();
    let sql = format!(
        "UPDATE threads SET metadata = {}, updated_at = {} WHERE thread_id = {}",
        p.json(thread.metadata.clone().into()),
        p.text(thread.updated_at.clone()),
        p.bind(id, Type::UUID),
    );
    execute(&tx, &sql, &p).await?;
    tx.commit().await?;
    Ok(Some(thread))
}

pub(super) async fn delete(
    c: &impl GenericClient,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<bool> {
    delete_where(c, "threads", &by_id(id, "thread_id", scope)?).await
}

pub(super) async fn search(
    c: &impl GenericClient,
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
    let listing = Listing {
        from: "threads",
        columns: THREAD_COLUMNS,
        order_by: &order,
        limit: query.limit,
        offset: query.offset,
    };
    page(c, listing, filter, thread_row).await
}

pub(super) async fn count(
    c: &impl GenericClient,
    query: &ThreadQuery,
    scope: Option<&Filter>,
) -> Result<u64> {
    count_rows(c, "threads", &thread_where(query, scope)?).await
}

/// PostgreSQL's plan for a thread search (`EXPLAIN`), one line per step.
pub(super) async fn search_plan(
    c: &impl GenericClient,
    query: &ThreadQuery,
    scope: Option<&Filter>,
) -> Result<Vec<String>> {
    let filter = thread_where(query, scope)?;
    let sql = format!(
        "EXPLAIN SELECT thread_id FROM threads{} ORDER BY updated_at DESC LIMIT 10",
        filter.sql()
    );
    let rows = super::rows::rows(c, &sql, &filter.params).await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, String>(0)?))
        .collect()
}
