//! What every resource's queries share: running a statement with its
//! bound parameters, documents as JSONB, one-row selects and deletes by id
//! within a scope, and pages with their totals.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::filter::{Params, Where};
use crate::storage::{Filter, Object, Order, Page, Result};

/// The rows `sql` selects. Statements are prepared once per connection
/// (PostgreSQL parses and plans them once) and kept in its cache, which
/// [`bounded`] keeps small.
pub(super) async fn rows(c: &impl GenericClient, sql: &str, params: &Params) -> Result<Vec<Row>> {
    let statement = c.prepare_typed_cached(sql, &params.types()).await?;
    Ok(c.query(&statement, &params.values()).await?)
}

/// The first row `sql` selects, if any.
pub(super) async fn row(c: &impl GenericClient, sql: &str, params: &Params) -> Result<Option<Row>> {
    Ok(rows(c, sql, params).await?.into_iter().next())
}

/// How many rows `sql` changed.
pub(super) async fn execute(c: &impl GenericClient, sql: &str, params: &Params) -> Result<u64> {
    let statement = c.prepare_typed_cached(sql, &params.types()).await?;
    Ok(c.execute(&statement, &params.values()).await?)
}

/// The most statements a connection keeps prepared: past it, its cache is
/// emptied when the connection is next taken from the pool (statements
/// vary with the shape of a client's filter).
const STATEMENTS_KEPT: usize = 256;

/// `client`, its statement cache within [`STATEMENTS_KEPT`].
pub(super) fn bounded(client: deadpool_postgres::Client) -> deadpool_postgres::Client {
    trim_statements(&client);
    client
}

/// Empties `client`'s statement cache when it holds more than
/// [`STATEMENTS_KEPT`] (a statement in use stays valid until dropped).
pub(super) fn trim_statements(client: &deadpool_postgres::Client) {
    if client.statement_cache.size() > STATEMENTS_KEPT {
        client.statement_cache.clear();
    }
}

/// A stored JSON object.
pub(super) fn object(value: Value) -> Result<Object> {
    Ok(serde_json::from_value(value)?)
}

/// A stored JSON document; `NULL` is `null`.
pub(super) fn json(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

/// A document to store; `null` is `NULL` (a thread's values, its error).
pub(super) fn nullable(value: &Value) -> Option<Value> {
    (!value.is_null()).then(|| value.clone())
}

/// What a search selects: table, columns, order and page.
pub(super) struct Listing<'a> {
    pub(super) from: &'a str,
    pub(super) columns: &'a str,
    pub(super) order_by: &'a str,
    pub(super) limit: u64,
    pub(super) offset: u64,
}

/// Runs the listing's query under `filter`, plus the count of all
/// matches, mapping rows with `map`.
pub(super) async fn page<T>(
    c: &impl GenericClient,
    listing: Listing<'_>,
    mut filter: Where,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let Listing {
        from,
        columns,
        order_by,
        limit,
        offset,
    } = listing;
    let conditions = filter.sql();
    let page = filter.page(limit, offset);
    let sql = format!("SELECT {columns} FROM {from}{conditions} ORDER BY {order_by}{page}");
    let items = rows(c, &sql, &filter.params)
        .await?
        .iter()
        .map(map)
        .collect::<Result<Vec<T>>>()?;
    // A short page that starts inside the results is their end: no count needed.
    let len = items.len() as u64;
    let total = if len < limit && (len > 0 || offset == 0) {
        offset.saturating_add(len)
    } else {
        let sql = format!("SELECT count(*) FROM {from}{conditions}");
        let n: i64 = row(c, &sql, &filter.params)
            .await?
            .map_or(Ok(0), |r| r.try_get(0))?;
        n as u64
    };
    Ok(Page { items, total })
}

/// How many rows of `from` match `filter`.
pub(super) async fn count(c: &impl GenericClient, from: &str, filter: &Where) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM {from}{}", filter.sql());
    let n: i64 = row(c, &sql, &filter.params)
        .await?
        .map_or(Ok(0), |r| r.try_get(0))?;
    Ok(n as u64)
}

/// `ASC` or `DESC`.
pub(super) fn direction(order: Order) -> &'static str {
    match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    }
}

/// The row whose `id_column` is `id`, if its metadata lies within `scope`.
pub(super) fn by_id(id: Uuid, id_column: &str, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    let id = filter.params.bind(id, Type::UUID);
    filter.push(format!("{id_column} = {id}"));
    filter.filter("metadata", scope)?;
    Ok(filter)
}

/// The first row of `table` matching `filter`, mapped with `map`; `lock`
/// locks it for the transaction (`FOR UPDATE`).
pub(super) async fn select_one<T>(
    c: &impl GenericClient,
    table: &str,
    columns: &str,
    filter: &Where,
    lock: bool,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {columns} FROM {table}{}{lock}", filter.sql());
    row(c, &sql, &filter.params)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

/// Deletes the rows of `table` matching `filter`; whether there were any.
pub(super) async fn delete_where(
    c: &impl GenericClient,
    table: &str,
    filter: &Where,
) -> Result<bool> {
    let sql = format!("DELETE FROM {table}{}", filter.sql());
    Ok(execute(c, &sql, &filter.params).await? > 0)
}
