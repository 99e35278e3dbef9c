//! The embedded default: one SQLite file under `--data-dir`, in WAL mode,
//! behind a connection pool, with its schema migrated at open
//! ([`schema`]).
//!
//! Documents (metadata, config, values, payloads) are JSON text columns;
//! filters become SQL over them ([`filter`]), and expression indexes on
//! `json_extract(metadata, '$.owner')` serve the common owner filter. Each
//! resource's queries have their module; [`SqliteStorage`] hands each
//! operation a pooled connection.

use std::path::Path;

use prometheus_client::metrics::histogram::Histogram;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use serde_json::Value;
use uuid::Uuid;

use crate::telemetry::metrics::pool_wait_histogram;

use super::{
    Assistant, AssistantPatch, AssistantQuery, AssistantVersion, Checkpoint, Cron, CronPatch,
    CronQuery, Durability, Filter, Item, ItemQuery, NamespaceQuery, Object, Page, Result, Run,
    RunStatus, SetLatest, Storage, StorageError, SystemAssistant, Thread, ThreadQuery,
    ThreadStatus,
};

mod assistants;
mod crons;
mod error;
mod filter;
mod rows;
mod runs;
mod schema;
mod store;
mod threads;

/// The SQLite backend.
pub struct SqliteStorage {
    pool: Pool<SqliteConnectionManager>,
    /// Waits for a connection, for the metrics.
    waits: Histogram,
}

impl SqliteStorage {
    /// Opens (creating and migrating) `warden.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            let at = format!("{}: {e}", data_dir.display());
            StorageError::Backend(std::io::Error::new(e.kind(), at).into())
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
        schema::migrate(&mut conn)?;
        Ok(Self {
            pool,
            waits: pool_wait_histogram(),
        })
    }

    /// SQLite's plan for a thread search (`EXPLAIN QUERY PLAN`), one line
    /// per step: shows which index serves a scope.
    pub fn thread_search_plan(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Vec<String>> {
        threads::search_plan(&*self.conn()?, query, scope)
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        let started = std::time::Instant::now();
        let conn = self.pool.get();
        self.waits.observe(started.elapsed().as_secs_f64());
        Ok(conn?)
    }
}

#[async_trait::async_trait]
impl Storage for SqliteStorage {
    fn pool_waits(&self) -> Histogram {
        self.waits.clone()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_thread(&self, thread: &Thread) -> Result<bool> {
        threads::insert(&*self.conn()?, thread)
    }

    async fn thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Thread>> {
        threads::get(&*self.conn()?, id, scope)
    }

    async fn update_thread(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
    ) -> Result<Option<Thread>> {
        threads::update(&mut *self.conn()?, id, scope, metadata)
    }

    async fn delete_thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        threads::delete(&*self.conn()?, id, scope)
    }

    async fn search_threads(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Thread>> {
        threads::search(&*self.conn()?, query, scope)
    }

    async fn count_threads(&self, query: &ThreadQuery, scope: Option<&Filter>) -> Result<u64> {
        threads::count(&*self.conn()?, query, scope)
    }

    // --- assistants --------------------------------------------------------

    async fn upsert_system_assistant(&self, assistant: &Assistant) -> Result<SystemAssistant> {
        assistants::upsert_system(&mut *self.conn()?, assistant)
    }

    async fn is_system_assistant(&self, id: Uuid) -> Result<bool> {
        assistants::is_system(&*self.conn()?, id)
    }

    async fn insert_assistant(&self, assistant: &Assistant) -> Result<bool> {
        assistants::insert(&mut *self.conn()?, assistant)
    }

    async fn assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Assistant>> {
        assistants::get(&*self.conn()?, id, scope)
    }

    async fn update_assistant(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &AssistantPatch,
    ) -> Result<Option<Assistant>> {
        assistants::update(&mut *self.conn()?, id, scope, patch)
    }

    async fn delete_assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        assistants::delete(&mut *self.conn()?, id, scope)
    }

    async fn assistant_versions(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AssistantVersion>> {
        assistants::versions(&*self.conn()?, id, scope, metadata, limit, offset)
    }

    async fn set_latest_assistant_version(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        version: i64,
    ) -> Result<SetLatest> {
        assistants::set_latest(&mut *self.conn()?, id, scope, version)
    }

    async fn search_assistants(
        &self,
        query: &AssistantQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Assistant>> {
        assistants::search(&*self.conn()?, query, scope)
    }

    async fn count_assistants(
        &self,
        query: &AssistantQuery,
        scope: Option<&Filter>,
    ) -> Result<u64> {
        assistants::count(&*self.conn()?, query, scope)
    }

    // --- crons -------------------------------------------------------------

    async fn insert_cron(&self, cron: &Cron) -> Result<()> {
        crons::insert(&*self.conn()?, cron)
    }

    async fn cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Cron>> {
        crons::get(&*self.conn()?, id, scope)
    }

    async fn update_cron(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &CronPatch,
    ) -> Result<Option<Cron>> {
        crons::update(&mut *self.conn()?, id, scope, patch)
    }

    async fn delete_cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        crons::delete(&*self.conn()?, id, scope)
    }

    async fn search_crons(
        &self,
        query: &CronQuery,
        scope: Option<&Filter>,
        thread_scope: Option<&Filter>,
    ) -> Result<Page<Cron>> {
        crons::search(&*self.conn()?, query, scope, thread_scope)
    }

    async fn due_crons(&self, now: &str) -> Result<Vec<Cron>> {
        crons::due(&*self.conn()?, now)
    }

    async fn claim_cron(&self, id: Uuid, due: &str, next: Option<&str>) -> Result<bool> {
        crons::claim(&*self.conn()?, id, due, next)
    }

    async fn count_crons_of(&self, user_id: &str) -> Result<u64> {
        crons::count_of(&*self.conn()?, user_id)
    }

    // --- runs and checkpoints ----------------------------------------------

    async fn insert_run(&self, run: &Run) -> Result<()> {
        runs::insert_run(&mut *self.conn()?, run)
    }

    async fn run(&self, thread_id: Uuid, run_id: Uuid) -> Result<Option<Run>> {
        runs::run(&*self.conn()?, thread_id, run_id)
    }

    async fn list_runs(
        &self,
        thread_id: Uuid,
        status: Option<RunStatus>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Run>> {
        runs::list_runs(&*self.conn()?, thread_id, status, limit, offset)
    }

    async fn set_run_status(&self, run_id: Uuid, status: RunStatus) -> Result<()> {
        runs::set_run_status(&*self.conn()?, run_id, status)
    }

    async fn prune_checkpoints(&self, thread_id: Uuid) -> Result<u64> {
        runs::prune_checkpoints(&*self.conn()?, thread_id)
    }

    async fn delete_run(&self, thread_id: Uuid, run_id: Uuid) -> Result<bool> {
        runs::delete_run(&mut *self.conn()?, thread_id, run_id)
    }

    async fn runs_in_flight(&self) -> Result<Vec<Run>> {
        runs::runs_in_flight(&*self.conn()?)
    }

    async fn set_thread_status(
        &self,
        thread_id: Uuid,
        status: ThreadStatus,
        error: Option<&Value>,
    ) -> Result<()> {
        runs::set_thread_status(&*self.conn()?, thread_id, status, error)
    }

    /// Durability makes no difference here: every commit is in the WAL
    /// when it returns, which the server's crash does not lose
    /// (`synchronous = NORMAL`).
    async fn put_checkpoint(&self, checkpoint: &Checkpoint, _: Durability) -> Result<()> {
        runs::put_checkpoint(&mut *self.conn()?, checkpoint)
    }

    async fn checkpoints(
        &self,
        thread_id: Uuid,
        limit: u64,
        before: Option<&str>,
        metadata: &Object,
    ) -> Result<Vec<Checkpoint>> {
        runs::checkpoints(&*self.conn()?, thread_id, limit, before, metadata)
    }

    async fn checkpoint(&self, thread_id: Uuid, checkpoint_id: &str) -> Result<Option<Checkpoint>> {
        runs::checkpoint(&*self.conn()?, thread_id, checkpoint_id)
    }

    async fn copy_state(&self, from: Uuid, to: Uuid) -> Result<()> {
        runs::copy_state(&mut *self.conn()?, from, to)
    }

    // --- store -------------------------------------------------------------

    async fn put_item(
        &self,
        namespace: &[String],
        key: &str,
        value: &Object,
        scope: Option<&Filter>,
    ) -> Result<bool> {
        store::put(&mut *self.conn()?, namespace, key, value, scope)
    }

    async fn item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<Option<Item>> {
        store::get(&*self.conn()?, namespace, key, scope)
    }

    async fn delete_item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<bool> {
        store::delete(&*self.conn()?, namespace, key, scope)
    }

    async fn search_items(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        store::search(&*self.conn()?, query)
    }

    async fn list_namespaces(&self, query: &NamespaceQuery) -> Result<Vec<Vec<String>>> {
        store::namespaces(&*self.conn()?, query)
    }
}
