//! The store's items in SQLite: a namespace is its labels joined by `.`
//! (labels hold no `.`), the value a JSON text column the plugin's filter
//! reads.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::filter::{Where, filterable};
use super::rows::{Listing, delete_where, json_text, object, page, select_one};
use crate::storage::{Filter, Item, ItemQuery, NamespaceQuery, Object, Result};
use crate::timestamp::now;

const ITEM_COLUMNS: &str = "namespace, key, value, created_at, updated_at";

fn item_row(row: &Row) -> Result<Item> {
    let namespace: String = row.get(0)?;
    Ok(Item {
        namespace: namespace.split('.').map(str::to_owned).collect(),
        key: row.get(1)?,
        value: object(row.get(2)?)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

/// The item at `namespace` / `key`, if it lies within `scope` (a filter on
/// its value).
fn item_where(namespace: &[String], key: &str, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.push(
        "namespace = ? AND key = ?",
        [Sql::Text(namespace.join(".")), Sql::Text(key.to_owned())],
    );
    filter.filter("value", scope)?;
    Ok(filter)
}

/// Whether an item matches `filter`.
fn exists(conn: &Connection, filter: &Where) -> Result<bool> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM store_items{})", filter.sql());
    let found: bool = conn.query_row(&sql, params_from_iter(filter.params.iter()), |r| r.get(0))?;
    Ok(found)
}

/// Namespaces equal to `prefix` or below it (labels hold no `.`).
fn prefix_where(filter: &mut Where, prefix: &[String]) {
    if prefix.is_empty() {
        return;
    }
    let joined = prefix.join(".");
    filter.push(
        "(namespace = ? OR substr(namespace, 1, ?) = ?)",
        [
            Sql::Text(joined.clone()),
            Sql::Integer(joined.chars().count() as i64 + 1),
            Sql::Text(format!("{joined}.")),
        ],
    );
}

pub(super) fn put(
    conn: &mut Connection,
    namespace: &[String],
    key: &str,
    value: &Object,
    scope: Option<&Filter>,
) -> Result<bool> {
    filterable(value, "value")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (found, within) = (
        item_where(namespace, key, None)?,
        item_where(namespace, key, scope)?,
    );
    if scope.is_some() && exists(&tx, &found)? && !exists(&tx, &within)? {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO store_items (namespace, key, value, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (namespace, key) \
         DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![namespace.join("."), key, json_text(value), now()],
    )?;
    // The item written must lie within the scope too (dropping the
    // transaction rolls the write back).
    if scope.is_some() && !exists(&tx, &within)? {
        return Ok(false);
    }
    tx.commit()?;
    Ok(true)
}

pub(super) fn get(
    conn: &Connection,
    namespace: &[String],
    key: &str,
    scope: Option<&Filter>,
) -> Result<Option<Item>> {
    select_one(
        conn,
        "store_items",
        ITEM_COLUMNS,
        &item_where(namespace, key, scope)?,
        item_row,
    )
}

pub(super) fn delete(
    conn: &Connection,
    namespace: &[String],
    key: &str,
    scope: Option<&Filter>,
) -> Result<bool> {
    delete_where(conn, "store_items", &item_where(namespace, key, scope)?)
}

pub(super) fn search(conn: &Connection, query: &ItemQuery) -> Result<Vec<Item>> {
    let mut filter = Where::default();
    prefix_where(&mut filter, &query.prefix);
    filter.filter("value", query.scope.as_ref())?;
    filter.query("value", &query.filter)?;
    let page = page(
        conn,
        Listing {
            from: "store_items",
            columns: ITEM_COLUMNS,
            order_by: "updated_at DESC, namespace, key",
            limit: query.limit,
            offset: query.offset,
        },
        &filter,
        item_row,
    )?;
    Ok(page.items)
}

pub(super) fn namespaces(conn: &Connection, query: &NamespaceQuery) -> Result<Vec<Vec<String>>> {
    let mut filter = Where::default();
    prefix_where(&mut filter, &query.prefix);
    filter.filter("value", Some(&query.filter))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT namespace FROM store_items{} ORDER BY namespace",
        filter.sql()
    ))?;
    let mut rows = stmt.query(params_from_iter(filter.params.iter()))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        found.push(text.split('.').map(str::to_owned).collect());
    }
    Ok(query.page(found))
}
