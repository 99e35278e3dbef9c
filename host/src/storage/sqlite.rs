//! The embedded default: one SQLite file under `--data-dir`, in WAL mode,
//! behind a connection pool, with its schema migrated at open.
//!
//! Documents (metadata, config, values, payloads) are JSON text columns;
//! filters become SQL over them ([`super::sql_filter`]), and expression
//! indexes on `json_extract(metadata, '$.owner')` serve the common owner
//! filter.

use std::path::Path;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::Value;
use uuid::Uuid;

use super::sql_filter::{Where, filterable, page_sql};
use super::{
    Assistant, AssistantPatch, AssistantQuery, AssistantVersion, Cron, CronPatch, CronQuery,
    Filter, Item, ItemQuery, NamespaceQuery, Object, Order, Page, Result, SetLatest, Storage,
    SystemAssistant, Thread, ThreadQuery,
};
use super::{Checkpoint, Run};
use crate::timestamp::now;

/// The schema, one migration per entry; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state_updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    state_values TEXT,
    interrupts TEXT NOT NULL,
    error TEXT
);
CREATE INDEX threads_owner ON threads (json_extract(metadata, '$.owner'), updated_at);
CREATE INDEX threads_updated_at ON threads (updated_at);

CREATE TABLE assistants (
    assistant_id TEXT PRIMARY KEY,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX assistants_owner ON assistants (json_extract(metadata, '$.owner'));
CREATE TABLE assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE crons (
    cron_id TEXT PRIMARY KEY,
    assistant_id TEXT NOT NULL,
    thread_id TEXT REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id TEXT,
    end_time TEXT,
    schedule TEXT NOT NULL,
    timezone TEXT,
    payload TEXT NOT NULL,
    next_run_date TEXT,
    metadata TEXT NOT NULL,
    on_run_completed TEXT,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX crons_owner ON crons (json_extract(metadata, '$.owner'));
CREATE INDEX crons_thread ON crons (thread_id);

CREATE TABLE store_items (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"#,
    r#"
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL
);
CREATE INDEX runs_thread ON runs (thread_id, created_at);
CREATE INDEX runs_in_flight ON runs (status) WHERE status IN ('pending', 'running');

CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id TEXT,
    state_values TEXT NOT NULL,
    next TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE INDEX checkpoints_run ON checkpoints (run_id);
"#,
    // Which assistants the server created (a graph's system assistant):
    // a marker no client can write, unlike `metadata.created_by`.
    r#"
ALTER TABLE assistants ADD COLUMN server_owned INTEGER NOT NULL DEFAULT 0;
"#,
];

mod runs;

/// The SQLite backend.
pub struct SqliteStorage {
    pool: Pool<SqliteConnectionManager>,
}

impl SqliteStorage {
    /// Opens (creating and migrating) `warden.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            super::StorageError::Database(rusqlite::Error::InvalidPath(
                format!("{}: {e}", data_dir.display()).into(),
            ))
        })?;
        Self::with_manager(SqliteConnectionManager::file(data_dir.join("warden.db")), 8)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Self> {
        // One connection: every in-memory connection is its own database.
        Self::with_manager(SqliteConnectionManager::memory(), 1)
    }

    fn with_manager(manager: SqliteConnectionManager, size: u32) -> Result<Self> {
        let manager = manager.with_init(|c| {
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )
        });
        let pool = Pool::builder().max_size(size).build(manager)?;
        let mut conn = pool.get()?;
        migrate(&mut conn)?;
        Ok(Self { pool })
    }

    /// SQLite's plan for a thread search (`EXPLAIN QUERY PLAN`), one line
    /// per step: shows which index serves a scope.
    pub fn thread_search_plan(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Vec<String>> {
        let filter = thread_where(query, scope)?;
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT thread_id FROM threads{} ORDER BY updated_at DESC LIMIT 10",
            filter.sql()
        ))?;
        let rows = stmt.query_map(params_from_iter(filter.params.iter()), |r| {
            r.get::<_, String>(3)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }
}

fn migrate(conn: &mut rusqlite::Connection) -> Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn object(text: String) -> Result<Object> {
    Ok(serde_json::from_str(&text)?)
}

fn json(text: Option<String>) -> Result<Value> {
    Ok(match text {
        Some(t) => serde_json::from_str(&t)?,
        None => Value::Null,
    })
}

fn uuid(text: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// What a search selects: table, columns, order and page.
struct Listing<'a> {
    from: &'a str,
    columns: &'a str,
    order_by: &'a str,
    limit: u64,
    offset: u64,
}

/// Runs the listing's query under `filter`, plus the count of all
/// matches, mapping rows with `map`.
fn page<T>(
    conn: &rusqlite::Connection,
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

fn count(conn: &rusqlite::Connection, from: &str, filter: &Where) -> Result<u64> {
    let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM {from}{}", filter.sql()))?;
    let n: i64 = stmt.query_row(params_from_iter(filter.params.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

fn direction(order: Order) -> &'static str {
    match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    }
}

// --- threads ---------------------------------------------------------------

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

fn by_id(id: Uuid, id_column: &str, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.push(format!("{id_column} = ?"), [Sql::Text(id.to_string())]);
    filter.filter("metadata", scope)?;
    Ok(filter)
}

fn select_one<T>(
    conn: &rusqlite::Connection,
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

fn delete_where(conn: &rusqlite::Connection, table: &str, filter: &Where) -> Result<bool> {
    let n = conn.execute(
        &format!("DELETE FROM {table}{}", filter.sql()),
        params_from_iter(filter.params.iter()),
    )?;
    Ok(n > 0)
}

fn thread_where(query: &ThreadQuery, scope: Option<&Filter>) -> Result<Where> {
    let mut filter = Where::default();
    filter.filter("metadata", scope)?;
    filter.contains("metadata", &query.metadata)?;
    filter.contains("state_values", &query.values)?;
    if let Some(status) = &query.status {
        filter.push("status = ?", [Sql::Text(status.clone())]);
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

/// Shallow merge, as LangGraph's `{**old, **patch}`.
fn merge(into: &mut Object, patch: &Object) {
    for (k, v) in patch {
        into.insert(k.clone(), v.clone());
    }
}

impl Storage for SqliteStorage {
    fn insert_thread(&self, t: &Thread) -> Result<bool> {
        filterable(&t.metadata, "metadata")?;
        let n = self.conn()?.execute(
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

    fn thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Thread>> {
        let filter = by_id(id, "thread_id", scope)?;
        select_one(
            &*self.conn()?,
            "threads",
            THREAD_COLUMNS,
            &filter,
            thread_row,
        )
    }

    fn update_thread(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &Object,
    ) -> Result<Option<Thread>> {
        filterable(patch, "metadata")?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let filter = by_id(id, "thread_id", scope)?;
        let Some(mut thread) = select_one(&tx, "threads", THREAD_COLUMNS, &filter, thread_row)?
        else {
            return Ok(None);
        };
        merge(&mut thread.metadata, patch);
        thread.updated_at = now();
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

    fn delete_thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        delete_where(&*self.conn()?, "threads", &by_id(id, "thread_id", scope)?)
    }

    fn search_threads(&self, query: &ThreadQuery, scope: Option<&Filter>) -> Result<Page<Thread>> {
        let filter = thread_where(query, scope)?;
        let order = format!(
            "{} {}, thread_id {}",
            query.sort_by.unwrap_or("updated_at"),
            direction(query.order),
            direction(query.order)
        );
        page(
            &*self.conn()?,
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

    fn count_threads(&self, query: &ThreadQuery, scope: Option<&Filter>) -> Result<u64> {
        count(&*self.conn()?, "threads", &thread_where(query, scope)?)
    }

    // --- assistants --------------------------------------------------------

    fn upsert_system_assistant(&self, a: &Assistant) -> Result<SystemAssistant> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id = a.assistant_id.to_string();
        let existing: Option<(bool, String, String)> = tx
            .query_row(
                "SELECT server_owned, graph_id, metadata FROM assistants WHERE assistant_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let outcome = match existing {
            None => SystemAssistant::Created,
            Some((true, _, _)) => SystemAssistant::Kept,
            Some((false, graph_id, metadata)) => {
                // Written before the marker existed, when only the server
                // could have made a row of this graph claiming to be the
                // system's.
                let claims_system =
                    object(metadata)?.get("created_by") == Some(&Value::from("system"));
                if graph_id == a.graph_id && claims_system {
                    SystemAssistant::Adopted
                } else {
                    SystemAssistant::Replaced
                }
            }
        };
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

    fn is_system_assistant(&self, id: Uuid) -> Result<bool> {
        let owned: Option<bool> = self
            .conn()?
            .query_row(
                "SELECT server_owned FROM assistants WHERE assistant_id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(owned == Some(true))
    }

    fn insert_assistant(&self, a: &Assistant) -> Result<bool> {
        filterable(&a.metadata, "metadata")?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = insert_assistant(&tx, a)?;
        tx.commit()?;
        Ok(inserted)
    }

    fn assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Assistant>> {
        let filter = by_id(id, "assistant_id", scope)?;
        select_one(
            &*self.conn()?,
            "assistants",
            ASSISTANT_COLUMNS,
            &filter,
            assistant_row,
        )
    }

    fn update_assistant(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &AssistantPatch,
    ) -> Result<Option<Assistant>> {
        if let Some(metadata) = &patch.metadata {
            filterable(metadata, "metadata")?;
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let filter = by_id(id, "assistant_id", scope)?;
        let Some(mut a) = select_one(&tx, "assistants", ASSISTANT_COLUMNS, &filter, assistant_row)?
        else {
            return Ok(None);
        };
        if let Some(g) = &patch.graph_id {
            a.graph_id = g.clone();
        }
        if let Some(c) = &patch.config {
            a.config = c.clone();
        }
        if let Some(c) = &patch.context {
            a.context = c.clone();
        }
        if let Some(m) = &patch.metadata {
            merge(&mut a.metadata, m);
        }
        if let Some(n) = &patch.name {
            a.name = n.clone();
        }
        if let Some(d) = &patch.description {
            a.description = Some(d.clone());
        }
        let latest: i64 = tx.query_row(
            "SELECT max(version) FROM assistant_versions WHERE assistant_id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )?;
        a.version = latest + 1;
        a.updated_at = now();
        update_assistant_row(&tx, &a)?;
        insert_version(&tx, &a)?;
        tx.commit()?;
        Ok(Some(a))
    }

    fn assistant_versions(
        &self,
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
        Ok(page(&*self.conn()?, listing, &filter, version_row)?.items)
    }

    fn set_latest_assistant_version(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        version: i64,
    ) -> Result<SetLatest> {
        let mut conn = self.conn()?;
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
        a.graph_id = v.graph_id;
        a.config = v.config;
        a.context = v.context;
        a.metadata = v.metadata;
        a.name = v.name;
        a.description = v.description;
        a.version = v.version;
        a.updated_at = now();
        update_assistant_row(&tx, &a)?;
        tx.commit()?;
        Ok(SetLatest::Done(Box::new(a)))
    }

    fn delete_assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        let mut conn = self.conn()?;
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

    fn search_assistants(
        &self,
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
            &*self.conn()?,
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

    fn count_assistants(&self, query: &AssistantQuery, scope: Option<&Filter>) -> Result<u64> {
        count(
            &*self.conn()?,
            "assistants",
            &assistant_where(query, scope)?,
        )
    }

    // --- crons -------------------------------------------------------------

    fn insert_cron(&self, c: &Cron) -> Result<()> {
        filterable(&c.metadata, "metadata")?;
        self.conn()?.execute(
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

    fn cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Cron>> {
        let filter = by_id(id, "cron_id", scope)?;
        select_one(&*self.conn()?, "crons", CRON_COLUMNS, &filter, cron_row)
    }

    fn update_cron(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &CronPatch,
    ) -> Result<Option<Cron>> {
        if let Some(metadata) = &patch.metadata {
            filterable(metadata, "metadata")?;
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let filter = by_id(id, "cron_id", scope)?;
        let Some(mut c) = select_one(&tx, "crons", CRON_COLUMNS, &filter, cron_row)? else {
            return Ok(None);
        };
        if let Some(schedule) = &patch.schedule {
            c.schedule = schedule.clone();
        }
        if let Some(timezone) = &patch.timezone {
            c.timezone = Some(timezone.clone());
        }
        if patch.schedule.is_some() || patch.timezone.is_some() {
            c.next_run_date = Some(crate::schedule::next_run(
                &c.schedule,
                c.timezone.as_deref(),
            )?);
        }
        if let Some(end) = &patch.end_time {
            c.end_time = end.clone();
        }
        if let Some(enabled) = patch.enabled {
            c.enabled = enabled;
        }
        if let Some(o) = &patch.on_run_completed {
            c.on_run_completed = Some(o.clone());
        }
        if let Some(p) = &patch.payload {
            merge(&mut c.payload, p);
        }
        if let Some(m) = &patch.metadata {
            merge(&mut c.metadata, m);
        }
        c.updated_at = now();
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

    fn delete_cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        delete_where(&*self.conn()?, "crons", &by_id(id, "cron_id", scope)?)
    }

    fn search_crons(
        &self,
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
            &*self.conn()?,
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

    fn count_crons_of(&self, user_id: &str) -> Result<u64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT COUNT(*) FROM crons WHERE user_id = ?1")?;
        Ok(stmt.query_row([user_id], |row| row.get(0))?)
    }

    fn due_crons(&self, now: &str) -> Result<Vec<Cron>> {
        let conn = self.conn()?;
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

    fn set_cron_next_run(&self, id: Uuid, next: Option<&str>) -> Result<()> {
        self.conn()?.execute(
            "UPDATE crons SET next_run_date = ?2 WHERE cron_id = ?1",
            params![id.to_string(), next],
        )?;
        Ok(())
    }

    // --- runs and checkpoints -------------------------------------------------

    fn insert_run(&self, run: &Run) -> Result<()> {
        runs::insert_run(&mut *self.conn()?, run)
    }

    fn run(&self, thread_id: Uuid, run_id: Uuid) -> Result<Option<Run>> {
        runs::run(&*self.conn()?, thread_id, run_id)
    }

    fn list_runs(
        &self,
        thread_id: Uuid,
        status: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Run>> {
        runs::list_runs(&*self.conn()?, thread_id, status, limit, offset)
    }

    fn set_run_status(&self, run_id: Uuid, status: &str) -> Result<()> {
        runs::set_run_status(&*self.conn()?, run_id, status)
    }

    fn prune_checkpoints(&self, thread_id: Uuid) -> Result<u64> {
        let n = self.conn()?.execute(
            "DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_id < \
             (SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?1)",
            [thread_id.to_string()],
        )?;
        Ok(n as u64)
    }

    fn delete_run(&self, thread_id: Uuid, run_id: Uuid) -> Result<bool> {
        runs::delete_run(&mut *self.conn()?, thread_id, run_id)
    }

    fn runs_in_flight(&self) -> Result<Vec<Run>> {
        runs::runs_in_flight(&*self.conn()?)
    }

    fn set_thread_status(
        &self,
        thread_id: Uuid,
        status: &str,
        error: Option<&Value>,
    ) -> Result<()> {
        runs::set_thread_status(&*self.conn()?, thread_id, status, error)
    }

    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        runs::put_checkpoint(&mut *self.conn()?, checkpoint)
    }

    fn checkpoints(
        &self,
        thread_id: Uuid,
        limit: u64,
        before: Option<&str>,
        metadata: &Object,
    ) -> Result<Vec<Checkpoint>> {
        runs::checkpoints(&*self.conn()?, thread_id, limit, before, metadata)
    }

    fn checkpoint(&self, thread_id: Uuid, checkpoint_id: &str) -> Result<Option<Checkpoint>> {
        runs::checkpoint(&*self.conn()?, thread_id, checkpoint_id)
    }

    fn copy_state(&self, from: Uuid, to: Uuid) -> Result<()> {
        runs::copy_state(&mut *self.conn()?, from, to)
    }

    // --- store -------------------------------------------------------------

    fn put_item(
        &self,
        namespace: &[String],
        key: &str,
        value: &Object,
        scope: Option<&Filter>,
    ) -> Result<bool> {
        filterable(value, "value")?;
        let mut conn = self.conn()?;
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

    fn item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<Option<Item>> {
        select_one(
            &*self.conn()?,
            "store_items",
            ITEM_COLUMNS,
            &item_where(namespace, key, scope)?,
            item_row,
        )
    }

    fn delete_item(&self, namespace: &[String], key: &str, scope: Option<&Filter>) -> Result<bool> {
        delete_where(
            &*self.conn()?,
            "store_items",
            &item_where(namespace, key, scope)?,
        )
    }

    fn search_items(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        let mut filter = Where::default();
        prefix_where(&mut filter, &query.prefix);
        filter.filter("value", query.scope.as_ref())?;
        filter.query("value", &query.filter)?;
        let page = page(
            &*self.conn()?,
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

    fn list_namespaces(&self, query: &NamespaceQuery) -> Result<Vec<Vec<String>>> {
        let mut filter = Where::default();
        prefix_where(&mut filter, &query.prefix);
        filter.filter("value", Some(&query.filter))?;
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT DISTINCT namespace FROM store_items{} ORDER BY namespace",
            filter.sql()
        ))?;
        let mut rows = stmt.query(params_from_iter(filter.params.iter()))?;
        let mut out: Vec<Vec<String>> = Vec::new();
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            let mut ns: Vec<String> = text.split('.').map(str::to_owned).collect();
            if !ns.ends_with(&query.suffix) {
                continue;
            }
            if let Some(depth) = query.max_depth {
                ns.truncate(depth);
            }
            if out.last() != Some(&ns) && !out.contains(&ns) {
                out.push(ns);
            }
        }
        Ok(out
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .collect())
    }
}

// --- assistant helpers -----------------------------------------------------

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

// --- cron helpers ----------------------------------------------------------

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

// --- store helpers ---------------------------------------------------------

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
fn exists(conn: &rusqlite::Connection, filter: &Where) -> Result<bool> {
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
