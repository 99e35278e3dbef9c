//! Assistants and their versions in PostgreSQL; `server_owned` marks the
//! graphs' system assistants.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::filter::{Params, Where};
use super::rows::{
    Listing, by_id, count as count_rows, delete_where, direction, execute, object, page, row,
    select_one,
};
use crate::storage::checks::filterable;
use crate::storage::patch::restore_version;
use crate::storage::{
    Assistant, AssistantPatch, AssistantQuery, AssistantVersion, Filter, Object, Page, Result,
    SetLatest, SystemAssistant,
};

const ASSISTANT_COLUMNS: &str = "assistant_id, graph_id, config, context, metadata, name, \
     description, version, created_at, updated_at";

fn assistant_row(row: &Row) -> Result<Assistant> {
    Ok(Assistant {
        assistant_id: row.try_get(0)?,
        graph_id: row.try_get(1)?,
        config: row.try_get(2)?,
        context: row.try_get(3)?,
        metadata: object(row.try_get(4)?)?,
        name: row.try_get(5)?,
        description: row.try_get(6)?,
        version: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
}

const VERSION_COLUMNS: &str =
    "assistant_id, graph_id, config, context, metadata, name, description, version, created_at";

fn version_row(row: &Row) -> Result<AssistantVersion> {
    Ok(AssistantVersion {
        assistant_id: row.try_get(0)?,
        graph_id: row.try_get(1)?,
        config: row.try_get(2)?,
        context: row.try_get(3)?,
        metadata: object(row.try_get(4)?)?,
        name: row.try_get(5)?,
        description: row.try_get(6)?,
        version: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

/// The assistant's fields as parameters, in [`ASSISTANT_COLUMNS`]' order,
/// but for `created_at` when `with_created` is false.
fn fields(p: &mut Params, a: &Assistant) -> Vec<String> {
    vec![
        p.bind(a.assistant_id, Type::UUID),
        p.text(a.graph_id.clone()),
        p.json(a.config.clone()),
        p.json(a.context.clone()),
        p.json(a.metadata.clone().into()),
        p.text(a.name.clone()),
        p.bind(a.description.clone(), Type::TEXT),
        p.bind(a.version, Type::INT8),
        p.text(a.created_at.clone()),
        p.text(a.updated_at.clone()),
    ]
}

async fn insert_assistant(tx: &impl GenericClient, a: &Assistant) -> Result<bool> {
    let mut p = Params::default();
    let values = fields(&mut p, a).join(", ");
    let sql = format!(
        "INSERT INTO assistants ({ASSISTANT_COLUMNS}) VALUES ({values}) \
         ON CONFLICT (assistant_id) DO NOTHING"
    );
    let inserted = execute(tx, &sql, &p).await? == 1;
    if inserted {
        insert_version(tx, a).await?;
    }
    Ok(inserted)
}

/// Writes every field of `a` over its row.
async fn update_assistant_row(tx: &impl GenericClient, a: &Assistant) -> Result<()> {
    let mut p = Params::default();
    let f = fields(&mut p, a);
    let sql = format!(
        "UPDATE assistants SET graph_id = {}, config = {}, context = {}, metadata = {}, \
         name = {}, description = {}, version = {}, updated_at = {} WHERE assistant_id = {}",
        f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9], f[0]
    );
    execute(tx, &sql, &p).await?;
    Ok(())
}

async fn insert_version(tx: &impl GenericClient, a: &Assistant) -> Result<()> {
    let mut p = Params::default();
    let f = fields(&mut p, a);
    // A version is made when the assistant is updated.
    let sql = format!(
        "INSERT INTO assistant_versions ({VERSION_COLUMNS}) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9]
    );
    execute(tx, &sql, &p).await?;
    Ok(())
}

fn assistant_where(query: &AssistantQuery, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.filter("metadata", scope)?;
    filter.contains("metadata", &query.metadata)?;
    if let Some(g) = &query.graph_id {
        let g = filter.params.text(g.clone());
        filter.push(format!("graph_id = {g}"));
    }
    if let Some(n) = &query.name {
        let n = filter.params.text(n.clone());
        filter.push(format!("strpos(lower(name), lower({n})) > 0"));
    }
    Ok(filter)
}

pub(super) async fn upsert_system(
    c: &mut deadpool_postgres::Client,
    a: &Assistant,
) -> Result<SystemAssistant> {
    let tx = c.transaction().await?;
    let mut p = Params::default();
    let id = p.bind(a.assistant_id, Type::UUID);
    let sql = format!(
        "SELECT server_owned, graph_id, metadata FROM assistants WHERE assistant_id = {id} \
         FOR UPDATE"
    );
    let found = match row(&tx, &sql, &p).await? {
        Some(r) => Some((
            r.try_get::<_, bool>(0)?,
            r.try_get::<_, String>(1)?,
            object(r.try_get(2)?)?,
        )),
        None => None,
    };
    let outcome = SystemAssistant::decide(
        found.as_ref().map(|(owned, g, m)| (*owned, g.as_str(), m)),
        &a.graph_id,
    );
    match outcome {
        SystemAssistant::Created => {
            insert_assistant(&tx, a).await?;
        }
        SystemAssistant::Replaced => {
            execute(
                &tx,
                &format!("DELETE FROM assistants WHERE assistant_id = {id}"),
                &p,
            )
            .await?;
            insert_assistant(&tx, a).await?;
        }
        SystemAssistant::Kept | SystemAssistant::Adopted => {
            let mut q = Params::default();
            let sql = format!(
                "UPDATE assistants SET name = {}, description = {} WHERE assistant_id = {}",
                q.text(a.name.clone()),
                q.bind(a.description.clone(), Type::TEXT),
                q.bind(a.assistant_id, Type::UUID),
            );
            execute(&tx, &sql, &q).await?;
        }
    }
    let sql = format!("UPDATE assistants SET server_owned = true WHERE assistant_id = {id}");
    execute(&tx, &sql, &p).await?;
    tx.commit().await?;
    Ok(outcome)
}

pub(super) async fn is_system(c: &impl GenericClient, id: Uuid) -> Result<bool> {
    let mut p = Params::default();
    let id = p.bind(id, Type::UUID);
    let sql = format!("SELECT server_owned FROM assistants WHERE assistant_id = {id}");
    Ok(match row(c, &sql, &p).await? {
        Some(r) => r.try_get(0)?,
        None => false,
    })
}

pub(super) async fn insert(c: &mut deadpool_postgres::Client, a: &Assistant) -> Result<bool> {
    filterable(&a.metadata, "metadata")?;
    let tx = c.transaction().await?;
    let inserted = insert_assistant(&tx, a).await?;
    tx.commit().await?;
    Ok(inserted)
}

pub(super) async fn get(
    c: &impl GenericClient,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<Option<Assistant>> {
    let filter = by_id(id, "assistant_id", scope)?;
    select_one(
        c,
        "assistants",
        ASSISTANT_COLUMNS,
        &filter,
        false,
        assistant_row,
    )
    .await
}

pub(super) async fn update(
    c: &mut deadpool_postgres::Client,
    id: Uuid,
    scope: Option<&Filter>,
    patch: &AssistantPatch,
) -> Result<Option<Assistant>> {
    if let Some(metadata) = &patch.metadata {
        filterable(metadata, "metadata")?;
    }
    let tx = c.transaction().await?;
    let filter = by_id(id, "assistant_id", scope)?;
    let Some(mut a) = select_one(
        &tx,
        "assistants",
        ASSISTANT_COLUMNS,
        &filter,
        true,
        assistant_row,
    )
    .await?
    else {
        return Ok(None);
    };
    let mut p = Params::default();
    let sql = format!(
        "SELECT coalesce(max(version), 0) FROM assistant_versions WHERE assistant_id = {}",
        p.bind(id, Type::UUID)
    );
    let latest: i64 = match row(&tx, &sql, &p).await? {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    patch.apply(&mut a, latest + 1);
    update_assistant_row(&tx, &a).await?;
    insert_version(&tx, &a).await?;
    tx.commit().await?;
    Ok(Some(a))
}

pub(super) async fn versions(
    c: &impl GenericClient,
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
    Ok(page(c, listing, filter, version_row).await?.items)
}

pub(super) async fn set_latest(
    c: &mut deadpool_postgres::Client,
    id: Uuid,
    scope: Option<&Filter>,
    version: i64,
) -> Result<SetLatest> {
    let tx = c.transaction().await?;
    let filter = by_id(id, "assistant_id", scope)?;
    let Some(mut a) = select_one(
        &tx,
        "assistants",
        ASSISTANT_COLUMNS,
        &filter,
        true,
        assistant_row,
    )
    .await?
    else {
        return Ok(SetLatest::NoAssistant);
    };
    let mut which = Where::default();
    let (id, version) = (
        which.params.bind(id, Type::UUID),
        which.params.bind(version, Type::INT8),
    );
    which.push(format!("assistant_id = {id} AND version = {version}"));
    let Some(v) = select_one(
        &tx,
        "assistant_versions",
        VERSION_COLUMNS,
        &which,
        false,
        version_row,
    )
    .await?
    else {
        return Ok(SetLatest::NoVersion);
    };
    restore_version(&mut a, v);
    update_assistant_row(&tx, &a).await?;
    tx.commit().await?;
    Ok(SetLatest::Done(Box::new(a)))
}

/// Deletes the assistant and, with it, its crons.
pub(super) async fn delete(
    c: &mut deadpool_postgres::Client,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<bool> {
    let tx = c.transaction().await?;
    let deleted = delete_where(&tx, "assistants", &by_id(id, "assistant_id", scope)?).await?;
    if deleted {
        let mut p = Params::default();
        let sql = format!(
            "DELETE FROM crons WHERE assistant_id = {}",
            p.bind(id, Type::UUID)
        );
        execute(&tx, &sql, &p).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn search(
    c: &impl GenericClient,
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
    let listing = Listing {
        from: "assistants",
        columns: ASSISTANT_COLUMNS,
        order_by: &order,
        limit: query.limit,
        offset: query.offset,
    };
    page(c, listing, filter, assistant_row).await
}

pub(super) async fn count(
    c: &impl GenericClient,
    query: &AssistantQuery,
    scope: Option<&Filter>,
) -> Result<u64> {
    count_rows(c, "assistants", &assistant_where(query, scope)?).await
}
