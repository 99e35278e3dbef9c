//! The store's items in PostgreSQL: a namespace is its labels joined by
//! `.` (labels hold no `.`), the value a JSONB column the plugin's filter
//! reads.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::filter::{Params, Where};
use super::rows::{Listing, delete_where, execute, object, page, row, rows, select_one};
use crate::storage::checks::filterable;
use crate::storage::{Filter, Item, ItemQuery, NamespaceQuery, Object, Result};
use crate::timestamp::now;

const ITEM_COLUMNS: &str = "namespace, key, value, created_at, updated_at";

fn item_row(row: &Row) -> Result<Item> {
    let namespace: String = row.try_get(0)?;
    Ok(Item {
        namespace: namespace.split('.').map(str::to_owned).collect(),
        key: row.try_get(1)?,
        value: object(row.try_get(2)?)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
    })
}

/// The item at `namespace` / `key`, if it lies within `scope` (a filter on
/// its value).
fn item_where(namespace: &[String], key: &str, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    let (ns, key) = (
        filter.params.text(namespace.join(".")),
        filter.params.text(key),
    );
    filter.push(format!("namespace = {ns} AND key = {key}"));
    filter.filter("value", scope)?;
    Ok(filter)
}

/// Whether an item matches `filter`.
async fn exists(c: &impl GenericClient, filter: &Where) -> Result<bool> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM store_items{})", filter.sql());
    Ok(match row(c, &sql, &filter.params).await? {
        Some(r) => r.try_get(0)?,
        None => false,
    })
}

/// Namespaces equal to `prefix` or below it (labels hold no `.`).
fn prefix_where(filter: &mut Where, prefix: &[String]) {
    if prefix.is_empty() {
        return;
    }
    let joined = prefix.join(".");
    let (exact, below) = (
        filter.params.text(joined.clone()),
        filter.params.text(format!("{joined}.")),
    );
    filter.push(format!(
        "(namespace = {exact} OR starts_with(namespace, {below}))"
    ));
}

pub(super) async fn put(
    c: &mut deadpool_postgres::Client,
    namespace: &[String],
    key: &str,
    value: &Object,
    scope: Option<&Filter>,
) -> Result<bool> {
    filterable(value, "value")?;
    let tx = c.transaction().await?;
    let (found, within) = (
        item_where(namespace, key, None)?,
        item_where(namespace, key, scope)?,
    );
    if scope.is_some() {
        // Locks the row it replaces, if any, until the write commits.
        let sql = format!("SELECT 1 FROM store_items{} FOR UPDATE", found.sql());
        let replaces = row(&tx, &sql, &found.params).await?.is_some();
        if replaces && !exists(&tx, &within).await? {
            return Ok(false);
        }
    }
    let mut p = Params::default();
    let sql = format!(
        "INSERT INTO store_items (namespace, key, value, created_at, updated_at) \
         VALUES ({ns}, {key}, {value}, {now}, {now}) ON CONFLICT (namespace, key) \
         DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        ns = p.text(namespace.join(".")),
        key = p.text(key),
        value = p.json(value.clone().into()),
        now = p.text(now()),
    );
    execute(&tx, &sql, &p).await?;
    // The item written must lie within the scope too (dropping the
    // transaction rolls the write back).
    if scope.is_some() && !exists(&tx, &within).await? {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn get(
    c: &impl GenericClient,
    namespace: &[String],
    key: &str,
    scope: Option<&Filter>,
) -> Result<Option<Item>> {
    let filter = item_where(namespace, key, scope)?;
    select_one(c, "store_items", ITEM_COLUMNS, &filter, false, item_row).await
}

pub(super) async fn delete(
    c: &impl GenericClient,
    namespace: &[String],
    key: &str,
    scope: Option<&Filter>,
) -> Result<bool> {
    delete_where(c, "store_items", &item_where(namespace, key, scope)?).await
}

pub(super) async fn search(c: &impl GenericClient, query: &ItemQuery) -> Result<Vec<Item>> {
    let mut filter = Where::default();
    prefix_where(&mut filter, &query.prefix);
    filter.filter("value", query.scope.as_ref())?;
    filter.query("value", &query.filter)?;
    let listing = Listing {
        from: "store_items",
        columns: ITEM_COLUMNS,
        order_by: "updated_at DESC, namespace, key",
        limit: query.limit,
        offset: query.offset,
    };
    Ok(page(c, listing, filter, item_row).await?.items)
}

pub(super) async fn namespaces(
    c: &impl GenericClient,
    query: &NamespaceQuery,
) -> Result<Vec<Vec<String>>> {
    let mut filter = Where::default();
    prefix_where(&mut filter, &query.prefix);
    filter.filter("value", Some(&query.filter))?;
    let sql = format!(
        "SELECT DISTINCT namespace FROM store_items{} ORDER BY namespace",
        filter.sql()
    );
    let found = rows(c, &sql, &filter.params)
        .await?
        .iter()
        .map(|r| {
            let text: String = r.try_get(0)?;
            Ok(text.split('.').map(str::to_owned).collect())
        })
        .collect::<Result<Vec<Vec<String>>>>()?;
    Ok(query.page(found))
}
