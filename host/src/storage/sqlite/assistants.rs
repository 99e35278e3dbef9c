//! Assistants and their versions in SQLite; `server_owned` marks the
//! graphs' system assistants.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::filter::{Where, filterable};
use super::rows::{
    Listing, by_id, count as count_rows, delete_where, direction, json, json_text, object, page,
    select_one, uuid,
};
use crate::storage::patch::restore_version;
use crate::storage::{
    Assistant, AssistantPatch, AssistantQuery, AssistantVersion, Filter, Object, Page, Result,
    SetLatest, SystemAssistant,
};

const ASSISTANT_COLUMNS: &str = "assistant_id, graph_id, config, context, metadata, name, \
     description, version, created_at, updated_at";

fn assistant_row(row: &Row) -> Result<Assistant> {
    Ok(Assistant {
        assistant_id: uuid(row.get(0)?)?,
        graph_id: row.get(1)?,
        config: json(row.get(2)?)?,
        context: json(row.get(3)?)?,
        metadata: object(row.get(4)?)?,
        name: row.get(5)?,
        description: row.get(6)?,
        version: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

const VERSION_COLUMNS: &str =
    "assistant_id, graph_id, config, context, metadata, name, description, version, created_at";

fn version_row(row: &Row) -> Result<AssistantVersion> {
    Ok(AssistantVersion {
        assistant_id: uuid(row.get(0)?)?,
        graph_id: row.get(1)?,
        config: json(row.get(2)?)?,
        context: json(row.get(3)?)?,
        metadata: object(row.get(4)?)?,
        name: row.get(5)?,
        description: row.get(6)?,
        version: row.get(7)?,
        created_at: row.get(8)?,
    })
}

fn insert_assistant(tx: &Transaction, a: &Assistant) -> Result<bool> {
    let n = tx.execute(
        &format!("INSERT OR IGNORE INTO assistants ({ASSISTANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            a.assistant_id.to_string(),
            a.graph_id,
            json_text(&a.config),
            json_text(&a.context),
            json_text(&a.metadata),
            a.name,
            a.description,
            a.version,
            a.created_at,
            a.updated_at
        ],
    )?;
    if n == 1 {
        insert_version(tx, a)?;
    }
    Ok(n == 1)
}

/// Writes every field of `a` over its row.
fn update_assistant_row(tx: &Transaction, a: &Assistant) -> Result<()> {
    tx.execute(
        "UPDATE assistants SET graph_id = ?2, config = ?3, context = ?4, metadata = ?5, \
         name = ?6, description = ?7, version = ?8, updated_at = ?9 WHERE assistant_id = ?1",
        params![
            a.assistant_id.to_string(),
            a.graph_id,
            json_text(&a.config),
            json_text(&a.context),
            json_text(&a.metadata),
            a.name,
            a.description,
            a.version,
            a.updated_at
        ],
    )?;
    Ok(())
}

fn insert_version(tx: &Transaction, a: &Assistant) -> Result<()> {
    tx.execute(
        "INSERT INTO assistant_versions (assistant_id, version, graph_id, config, context, \
         metadata, name, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            a.assistant_id.to_string(),
            a.version,
            a.graph_id,
            json_text(&a.config),
            json_text(&a.context),
            json_text(&a.metadata),
            a.name,
            a.description,
            a.updated_at
        ],
    )?;
    Ok(())
}

fn assistant_where(query: &AssistantQuery, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.filter("metadata", scope)?;
    filter.contains("metadata", &query.metadata)?;
    if let Some(g) = &query.graph_id {
        filter.push("graph_id = ?", [Sql::Text(g.clone())]);
    }
    if let Some(n) = &query.name {
        filter.push("instr(lower(name), lower(?)) > 0", [Sql::Text(n.clone())]);
    }
    Ok(filter)
}

pub(super) fn upsert_system(conn: &mut Connection, a: &Assistant) -> Result<SystemAssistant> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let id = a.assistant_id.to_string();
    let existing: Option<(bool, String, String)> = tx
        .query_row(
            "SELECT server_owned, graph_id, metadata FROM assistants WHERE assistant_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let found = match existing {
        Some((owned, graph_id, metadata)) => Some((owned, graph_id, object(metadata)?)),
        None => None,
    };
    let outcome = SystemAssistant::decide(
        found.as_ref().map(|(owned, g, m)| (*owned, g.as_str(), m)),
        &a.graph_id,
    );
    match outcome {
        SystemAssistant::Created => {
            insert_assistant(&tx, a)?;
        }
        SystemAssistant::Replaced => {
            tx.execute("DELETE FROM assistants WHERE assistant_id = ?1", [&id])?;
            insert_assistant(&tx, a)?;
        }
        SystemAssistant::Kept | SystemAssistant::Adopted => {
            tx.execute(
                "UPDATE assistants SET name = ?2, description = ?3 WHERE assistant_id = ?1",
                params![id, a.name, a.description],
            )?;
        }
    }
    tx.execute(
        "UPDATE assistants SET server_owned = 1 WHERE assistant_id = ?1",
        [&id],
    )?;
    tx.commit()?;
    Ok(outcome)
}

pub(super) fn is_system(conn: &Connection, id: Uuid) -> Result<bool> {
    let owned: Option<bool> = conn
        .query_row(
            "SELECT server_owned FROM assistants WHERE assistant_id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owned == Some(true))
}

pub(super) fn insert(conn: &mut Connection, a: &Assistant) -> Result<bool> {
    filterable(&a.metadata, "metadata")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let inserted = insert_assistant(&tx, a)?;
    tx.commit()?;
    Ok(inserted)
}

pub(super) fn get(
    conn: &Connection,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<Option<Assistant>> {
    let filter = by_id(id, "assistant_id", scope)?;
    select_one(
        conn,
        "assistants",
        ASSISTANT_COLUMNS,
        &filter,
        assistant_row,
    )
}

pub(super) fn update(
    conn: &mut Connection,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &AssistantPatch,
) -> Result<Option<Assistant>> {
    if let Some(metadata) = &patch.metadata {
        filterable(metadata, "metadata")?;
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let filter = by_id(id, "assistant_id", scope)?;
    let Some(mut a) = select_one(&tx, "assistants", ASSISTANT_COLUMNS, &filter, assistant_row)?
    else {
        return Ok(None);
    };
    let latest: i64 = tx.query_row(
        "SELECT max(version) FROM assistant_versions WHERE assistant_id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )?;
    patch.apply(&mut a, latest + 1);
    update_assistant_row(&tx, &a)?;
    insert_version(&tx, &a)?;
    tx.commit()?;
    Ok(Some(a))
}

pub(super) fn versions(
    conn: &Connection,
    id: Uuid,
    scope: Option<&Filter>,
    metadata: &Object,
    limit: u64,
    offset: u64,
) -> Result<Vec<AssistantVersion>> {
    let mut filter = by_id(id, "assistant_id", scope)?;
    filter.contains("metadata", metadata)?;
    let listing = Listing {
        from: "assistant_versions",
        columns: VERSION_COLUMNS,
        order_by: "version DESC",
        limit,
        offset,
    };
    Ok(page(conn, listing, &filter, version_row)?.items)
}

pub(super) fn set_latest(
    conn: &mut Connection,
    id: Uuid,
    scope: Option<&Filter>,
    version: i64,
) -> Result<SetLatest> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let filter = by_id(id, "assistant_id", scope)?;
    let Some(mut a) = select_one(&tx, "assistants", ASSISTANT_COLUMNS, &filter, assistant_row)?
    else {
        return Ok(SetLatest::NoAssistant);
    };
    let mut which = Where::default();
    which.push("assistant_id = ?", [Sql::Text(id.to_string())]);
    which.push("version = ?", [Sql::Integer(version)]);
    let Some(v) = select_one(
        &tx,
        "assistant_versions",
        VERSION_COLUMNS,
        &which,
        version_row,
    )?
    else {
        return Ok(SetLatest::NoVersion);
    };
    restore_version(&mut a, v);
    update_assistant_row(&tx, &a)?;
    tx.commit()?;
    Ok(SetLatest::Done(Box::new(a)))
}

/// Deletes the assistant and, with it, its crons.
pub(super) fn delete(conn: &mut Connection, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let deleted = delete_where(&tx, "assistants", &by_id(id, "assistant_id", scope)?)?;
    if deleted {
        tx.execute(
            "DELETE FROM crons WHERE assistant_id = ?1",
            [id.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(deleted)
}

pub(super) fn search(
    conn: &Connection,
    query: &AssistantQuery,
    scope: Option<&Filter>,
) -> Result<Page<Assistant>> {
    let filter = assistant_where(query, scope)?;
    let order = format!(
        "{} {}, assistant_id {}",
        query.sort_by.unwrap_or("created_at"),
        direction(query.order),
        direction(query.order)
    );
    page(
        conn,
        Listing {
            from: "assistants",
            columns: ASSISTANT_COLUMNS,
            order_by: &order,
            limit: query.limit,
            offset: query.offset,
        },
        &filter,
        assistant_row,
    )
}

pub(super) fn count(
    conn: &Connection,
    query: &AssistantQuery,
    scope: Option<&Filter>,
) -> Result<u64> {
    count_rows(conn, "assistants", &assistant_where(query, scope)?)
}
