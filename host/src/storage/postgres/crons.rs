//! Crons in PostgreSQL: what they run, when they fire next.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::filter::{Params, Where};
use super::rows::{
    Listing, by_id, delete_where, direction, execute, object, page, row, rows, select_one,
};
use crate::storage::checks::filterable;
use crate::storage::{Cron, CronPatch, CronQuery, Filter, Page, Result};

const CRON_COLUMNS: &str = "cron_id, assistant_id, thread_id, user_id, end_time, schedule, \
     timezone, payload, next_run_date, metadata, on_run_completed, enabled, created_at, updated_at";

fn cron_row(row: &Row) -> Result<Cron> {
    Ok(Cron {
        cron_id: row.try_get(0)?,
        assistant_id: row.try_get(1)?,
        thread_id: row.try_get(2)?,
        user_id: row.try_get(3)?,
        end_time: row.try_get(4)?,
        schedule: row.try_get(5)?,
        timezone: row.try_get(6)?,
        payload: object(row.try_get(7)?)?,
        next_run_date: row.try_get(8)?,
        metadata: object(row.try_get(9)?)?,
        on_run_completed: row.try_get(10)?,
        enabled: row.try_get(11)?,
        created_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
    })
}

pub(super) async fn insert(c: &impl GenericClient, cron: &Cron) -> Result<()> {
    filterable(&cron.metadata, "metadata")?;
    let mut p = Params::default();
    let values = [
        p.bind(cron.cron_id, Type::UUID),
        p.bind(cron.assistant_id, Type::UUID),
        p.bind(cron.thread_id, Type::UUID),
        p.bind(cron.user_id.clone(), Type::TEXT),
        p.bind(cron.end_time.clone(), Type::TEXT),
        p.text(cron.schedule.clone()),
        p.bind(cron.timezone.clone(), Type::TEXT),
        p.json(cron.payload.clone().into()),
        p.bind(cron.next_run_date.clone(), Type::TEXT),
        p.json(cron.metadata.clone().into()),
        p.bind(cron.on_run_completed.clone(), Type::TEXT),
        p.bind(cron.enabled, Type::BOOL),
        p.text(cron.created_at.clone()),
        p.text(cron.updated_at.clone()),
    ]
    .join(", ");
    let sql = format!("INSERT INTO crons ({CRON_COLUMNS}) VALUES ({values})");
    execute(c, &sql, &p).await?;
    Ok(())
}

pub(super) async fn get(
    c: &impl GenericClient,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<Option<Cron>> {
    let filter = by_id(id, "cron_id", scope)?;
    select_one(c, "crons", CRON_COLUMNS, &filter, false, cron_row).await
}

pub(super) async fn update(
    c: &mut deadpool_postgres::Client,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &CronPatch,
) -> Result<Option<Cron>> {
    if let Some(metadata) = &patch.metadata {
        filterable(metadata, "metadata")?;
    }
    let tx = c.transaction().await?;
    let filter = by_id(id, "cron_id", scope)?;
    let Some(mut cron) = select_one(&tx, "crons", CRON_COLUMNS, &filter, true, cron_row).await?
    else {
        return Ok(None);
    };
    patch.apply(&mut cron)?;
    let mut p = Params::default();
    let sql = format!(
        "UPDATE crons SET schedule = {}, next_run_date = {}, end_time = {}, enabled = {}, \
         on_run_completed = {}, payload = {}, metadata = {}, updated_at = {}, timezone = {} \
         WHERE cron_id = {}",
        p.text(cron.schedule.clone()),
        p.bind(cron.next_run_date.clone(), Type::TEXT),
        p.bind(cron.end_time.clone(), Type::TEXT),
        p.bind(cron.enabled, Type::BOOL),
        p.bind(cron.on_run_completed.clone(), Type::TEXT),
        p.json(cron.payload.clone().into()),
        p.json(cron.metadata.clone().into()),
        p.text(cron.updated_at.clone()),
        p.bind(cron.timezone.clone(), Type::TEXT),
        p.bind(id, Type::UUID),
    );
    execute(&tx, &sql, &p).await?;
    tx.commit().await?;
    Ok(Some(cron))
}

pub(super) async fn delete(
    c: &impl GenericClient,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<bool> {
    delete_where(c, "crons", &by_id(id, "cron_id", scope)?).await
}

pub(super) async fn search(
    c: &impl GenericClient,
    query: &CronQuery,
    scope: Option<&Filter>,
    thread_scope: Option<&Filter>,
) -> Result<Page<Cron>> {
    let mut filter = Where::default();
    filter.filter("c.metadata", scope)?;
    filter.contains("c.metadata", &query.metadata)?;
    if thread_scope.is_some() {
        // The thread's conditions share the statement's parameters.
        let mut inner = Where::after(std::mem::take(&mut filter.params));
        inner.push("t.thread_id = c.thread_id");
        inner.filter("t.metadata", thread_scope)?;
        filter.push(format!(
            "(c.thread_id IS NULL OR EXISTS (SELECT 1 FROM threads t{}))",
            inner.sql()
        ));
        filter.params = inner.params;
    }
    if let Some(a) = query.assistant_id {
        let a = filter.params.bind(a, Type::UUID);
        filter.push(format!("c.assistant_id = {a}"));
    }
    if let Some(t) = query.thread_id {
        let t = filter.params.bind(t, Type::UUID);
        filter.push(format!("c.thread_id = {t}"));
    }
    if let Some(e) = query.enabled {
        let e = filter.params.bind(e, Type::BOOL);
        filter.push(format!("c.enabled = {e}"));
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
    let listing = Listing {
        from: "crons c",
        columns: &columns,
        order_by: &order,
        limit: query.limit,
        offset: query.offset,
    };
    page(c, listing, filter, cron_row).await
}

pub(super) async fn count_of(c: &impl GenericClient, user_id: &str) -> Result<u64> {
    let mut p = Params::default();
    let sql = format!(
        "SELECT count(*) FROM crons WHERE user_id = {}",
        p.text(user_id)
    );
    let n: i64 = match row(c, &sql, &p).await? {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    Ok(n as u64)
}

pub(super) async fn due(c: &impl GenericClient, now: &str) -> Result<Vec<Cron>> {
    let mut p = Params::default();
    let now = p.text(now);
    let sql = format!(
        "SELECT {CRON_COLUMNS} FROM crons WHERE enabled AND next_run_date IS NOT NULL \
         AND next_run_date <= {now} AND (end_time IS NULL OR end_time > {now}) \
         ORDER BY next_run_date"
    );
    rows(c, &sql, &p).await?.iter().map(cron_row).collect()
}

pub(super) async fn claim(
    c: &impl GenericClient,
    id: Uuid,
    due: &str,
    next: Option<&str>,
) -> Result<bool> {
    // Under READ COMMITTED a concurrent claim waits for this one's commit,
    // then finds the row no longer due at `due`: it moves nothing.
    let mut p = Params::default();
    let sql = format!(
        "UPDATE crons SET next_run_date = {} WHERE cron_id = {} AND next_run_date = {}",
        p.bind(next.map(str::to_owned), Type::TEXT),
        p.bind(id, Type::UUID),
        p.bind(due.to_owned(), Type::TEXT)
    );
    Ok(execute(c, &sql, &p).await? == 1)
}
