//! What every resource's queries share: documents as JSON text columns,
//! ids as text, one-row selects and deletes by id within a scope, and
//! pages with their totals.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Row, params_from_iter};
use serde_json::Value;
use uuid::Uuid;

use super::filter::{Where, page_sql};
use crate::storage::{Filter, Object, Order, Page, Result, RunStatus, ThreadStatus};

/// A document as the text its column holds.
pub(super) fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A stored JSON object.
pub(super) fn object(text: String) -> Result<Object> {
    Ok(serde_json::from_str(&text)?)
}

/// A stored JSON document; `NULL` is `null`.
pub(super) fn json(text: Option<String>) -> Result<Value> {
    Ok(match text {
        Some(t) => serde_json::from_str(&t)?,
        None => Value::Null,
    })
}

/// A stored id.
pub(super) fn uuid(text: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
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
pub(super) fn page<T>(
    conn: &Connection,
    listing: Listing,
    filter: &Where,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let Listing {
        from,
        columns,
        order_by,
        limit,
        offset,
    } = listing;
    let sql = format!(
        "SELECT {columns} FROM {from}{} ORDER BY {order_by}{}",
        filter.sql(),
        page_sql(limit, offset)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(filter.params.iter()))?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(map(row)?);
    }
    // A short page that starts inside the results is their end: no count needed.
    let len = items.len() as u64;
    let total = if len < limit && (len > 0 || offset == 0) {
        offset.saturating_add(len)
    } else {
        count(conn, from, filter)?
    };
    Ok(Page { items, total })
}

/// How many rows of `from` match `filter`.
pub(super) fn count(conn: &Connection, from: &str, filter: &Where) -> Result<u64> {
    let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM {from}{}", filter.sql()))?;
    let n: i64 = stmt.query_row(params_from_iter(filter.params.iter()), |r| r.get(0))?;
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
    filter.push(format!("{id_column} = ?"), [Sql::Text(id.to_string())]);
    filter.filter("metadata", scope)?;
    Ok(filter)
}

/// The first row of `table` matching `filter`, mapped with `map`.
pub(super) fn select_one<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    filter: &Where,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    let sql = format!("SELECT {columns} FROM {table}{}", filter.sql());
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(filter.params.iter()))?;
    match rows.next()? {
        Some(row) => Ok(Some(map(row)?)),
        None => Ok(None),
    }
}

/// Deletes the rows of `table` matching `filter`; whether there were any.
pub(super) fn delete_where(conn: &Connection, table: &str, filter: &Where) -> Result<bool> {
    let n = conn.execute(
        &format!("DELETE FROM {table}{}", filter.sql()),
        params_from_iter(filter.params.iter()),
    )?;
    Ok(n > 0)
}

/// Statuses are stored as the API names them.
macro_rules! status_as_text {
    ($($ty:ty),*) => {$(
        impl rusqlite::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}

status_as_text!(RunStatus, ThreadStatus);
