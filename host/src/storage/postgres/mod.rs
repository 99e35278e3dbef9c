//! PostgreSQL, for several replicas sharing one database: a pool of
//! connections of the async driver `tokio-postgres` (`deadpool-postgres`),
//! its schema migrated at start-up ([`schema`]), safely when replicas
//! start at once.
//!
//! Documents (metadata, config, values, payloads) are JSONB; filters
//! become SQL over them with the SQLite backend's meaning ([`filter`]),
//! every value bound, and `jsonb_path_ops` GIN indexes serve the owner
//! filter. Each resource's queries have their module; every statement is
//! prepared once per connection ([`rows`]), and the reads of one record by
//! id share a few pipelined connections ([`pipelined`]).
//! No PostgreSQL type leaves this module: [`PostgresStorage`] is opened
//! from a URI and implements [`Storage`].

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;
use tokio_postgres::NoTls;
use uuid::Uuid;

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
mod pipelined;
mod queue;
mod rows;
use rows::bounded;

use crate::telemetry::metrics::pool_wait_histogram;
mod runs;
mod schema;
mod store;
mod threads;

/// How many migrations this Warden applies (the schema version it needs).
#[cfg(test)]
pub(crate) const MIGRATIONS_APPLIED: usize = schema::MIGRATIONS.len();

/// How many connections a server holds at most.
const POOL_SIZE: usize = 16;

/// How many connections the point reads share ([`pipelined`]), of the
/// pool's [`POOL_SIZE`]: one per two cores, at least one. Fewer pipeline
/// more (one: PostgreSQL's CPU per read fell from 94 to 44 µs under 16
/// clients, two: to 61 µs, four: to 70 µs; on two cores, one connection
/// against two: 17 042–17 641 reads/s against 14 249–15 152, at 71–74 µs
/// of Warden's CPU per read against 82–88) but queue more reads behind a
/// slow one, and one connection's reads take at most one of PostgreSQL's
/// cores.
fn pipelined_connections() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).clamp(1, POOL_SIZE / 4)
}

/// How long an operation waits for a connection, and a connection to be
/// made, before the database counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL backend.
pub struct PostgresStorage {
    pool: Pool,
    /// Connections whose commits do not wait for the disk
    /// (`synchronous_commit = off`): for [`Durability::Deferred`] writes.
    deferred: Pool,
    queue: std::sync::Arc<queue::PgRunQueue>,
    /// Shared connections for point reads.
    pipelined: pipelined::Pipelined,
    /// Waits for a connection, for the metrics.
    waits: Histogram,
}

/// Why a database URI cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not a PostgreSQL URI (`postgres://user@host:port/database`) or
    /// key-value string.
    #[error("not a PostgreSQL database URI (postgres://user@host:port/database): {0}")]
    BadUri(String),
    /// The server could not be reached, refused the connection, or failed
    /// the migrations.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PostgresStorage {
    /// Connects to the database at `uri` (`postgres://…`) and migrates its
    /// schema.
    pub async fn connect(uri: &str) -> std::result::Result<Self, ConnectError> {
        if !is_postgres_uri(uri) {
            return Err(ConnectError::BadUri(format!(
                "{}: the scheme must be postgres:// or postgresql://",
                redacted(uri)
            )));
        }
        let mut config: tokio_postgres::Config = uri
            .parse()
            .map_err(|e: tokio_postgres::Error| ConnectError::BadUri(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("warden");
        }
        let pool = new_pool(config.clone())?;
        let mut deferred_config = config.clone();
        let options = deferred_config.get_options().unwrap_or_default();
        deferred_config.options(format!("{options} -c synchronous_commit=off").trim_start());
        let deferred = new_pool(deferred_config)?;
        let mut client = pool.get().await.map_err(StorageError::from)?;
        schema::migrate(&mut client).await?;
        drop(client);
        let queue = queue::PgRunQueue::new(pool.clone(), deferred.clone(), config);
        Ok(Self {
            pipelined: pipelined::Pipelined::new(pool.clone(), pipelined_connections()),
            pool,
            deferred,
            queue,
            waits: pool_wait_histogram(),
        })
    }

    /// PostgreSQL's plan for a thread search (`EXPLAIN`), one line per
    /// step: shows which index serves a scope.
    pub async fn thread_search_plan(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Vec<String>> {
        threads::search_plan(&self.conn().await?, query, scope).await
    }

    async fn conn(&self) -> Result<deadpool_postgres::Client> {
        let started = std::time::Instant::now();
        let conn = self.pool.get().await;
        self.waits.observe(started.elapsed().as_secs_f64());
        Ok(bounded(conn?))
    }
}

/// A pool of up to [`POOL_SIZE`] connections made with `config`, lazily.
fn new_pool(config: tokio_postgres::Config) -> std::result::Result<Pool, ConnectError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| ConnectError::BadUri(e.to_string()))
}

/// Whether `uri` names a PostgreSQL database (`postgres://`,
/// `postgresql://`).
pub fn is_postgres_uri(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
}

/// `uri` without its password, to name the database in logs and errors.
pub fn redacted(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => uri.to_owned(),
        },
        None => uri.to_owned(),
    }
}

/// A stored value the API cannot read back (a status it does not know).
fn corrupt(error: impl std::error::Error + Send + Sync + 'static, what: &str) -> StorageError {
    StorageError::Backend(format!("{what}: {error}").into())
}

#[async_trait::async_trait]
impl Storage for PostgresStorage {
    fn pool_waits(&self) -> Histogram {
        self.waits.clone()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn works_inline(&self) -> bool {
        false
    }

    fn run_queue(&self) -> Option<std::sync::Arc<dyn super::RunQueue>> {
        Some(self.queue.clone())
    }

    async fn insert_thread(&self, thread: &Thread) -> Result<bool> {
        threads::insert(&self.conn().await?, thread).await
    }

    async fn thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Thread>> {
        self.pipelined
            .read(|client| async move { threads::get(&*client, id, scope).await })
            .await
    }

    async fn update_thread(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
    ) -> Result<Option<Thread>> {
        threads::update(&mut self.conn().await?, id, scope, metadata).await
    }

    async fn delete_thread(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        threads::delete(&self.conn().await?, id, scope).await
    }

    async fn search_threads(
        &self,
        query: &ThreadQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Thread>> {
        threads::search(&self.conn().await?, query, scope).await
    }

    async fn count_threads(&self, query: &ThreadQuery, scope: Option<&Filter>) -> Result<u64> {
        threads::count(&self.conn().await?, query, scope).await
    }

    // --- assistants --------------------------------------------------------

    async fn upsert_system_assistant(&self, assistant: &Assistant) -> Result<SystemAssistant> {
        assistants::upsert_system(&mut self.conn().await?, assistant).await
    }

    async fn is_system_assistant(&self, id: Uuid) -> Result<bool> {
        assistants::is_system(&self.conn().await?, id).await
    }

    async fn insert_assistant(&self, assistant: &Assistant) -> Result<bool> {
        assistants::insert(&mut self.conn().await?, assistant).await
    }

    async fn assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Assistant>> {
        self.pipelined
            .read(|client| async move { assistants::get(&*client, id, scope).await })
            .await
    }

    async fn update_assistant(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &AssistantPatch,
    ) -> Result<Option<Assistant>> {
        assistants::update(&mut self.conn().await?, id, scope, patch).await
    }

    async fn delete_assistant(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        assistants::delete(&mut self.conn().await?, id, scope).await
    }

    async fn assistant_versions(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        metadata: &Object,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AssistantVersion>> {
        assistants::versions(&self.conn().await?, id, scope, metadata, limit, offset).await
    }

    async fn set_latest_assistant_version(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        version: i64,
    ) -> Result<SetLatest> {
        assistants::set_latest(&mut self.conn().await?, id, scope, version).await
    }

    async fn search_assistants(
        &self,
        query: &AssistantQuery,
        scope: Option<&Filter>,
    ) -> Result<Page<Assistant>> {
        assistants::search(&self.conn().await?, query, scope).await
    }

    async fn count_assistants(
        &self,
        query: &AssistantQuery,
        scope: Option<&Filter>,
    ) -> Result<u64> {
        assistants::count(&self.conn().await?, query, scope).await
    }

    // --- crons -------------------------------------------------------------

    async fn insert_cron(&self, cron: &Cron) -> Result<()> {
        crons::insert(&self.conn().await?, cron).await
    }

    async fn cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<Option<Cron>> {
        self.pipelined
            .read(|client| async move { crons::get(&*client, id, scope).await })
            .await
    }

    async fn update_cron(
        &self,
        id: Uuid,
        scope: Option<&Filter>,
        patch: &CronPatch,
    ) -> Result<Option<Cron>> {
        crons::update(&mut self.conn().await?, id, scope, patch).await
    }

    async fn delete_cron(&self, id: Uuid, scope: Option<&Filter>) -> Result<bool> {
        crons::delete(&self.conn().await?, id, scope).await
    }

    async fn search_crons(
        &self,
        query: &CronQuery,
        scope: Option<&Filter>,
        thread_scope: Option<&Filter>,
    ) -> Result<Page<Cron>> {
        crons::search(&self.conn().await?, query, scope, thread_scope).await
    }

    async fn due_crons(&self, now: &str) -> Result<Vec<Cron>> {
        crons::due(&self.conn().await?, now).await
    }

    async fn claim_cron(&self, id: Uuid, due: &str, next: Option<&str>) -> Result<bool> {
        crons::claim(&self.conn().await?, id, due, next).await
    }

    async fn count_crons_of(&self, user_id: &str) -> Result<u64> {
        crons::count_of(&self.conn().await?, user_id).await
    }

    // --- runs and checkpoints ----------------------------------------------

    async fn insert_run(&self, run: &Run) -> Result<()> {
        runs::insert_run(&mut self.conn().await?, run).await
    }

    async fn run(&self, thread_id: Uuid, run_id: Uuid) -> Result<Option<Run>> {
        self.pipelined
            .read(|client| async move { runs::run(&*client, thread_id, run_id).await })
            .await
    }

    async fn list_runs(
        &self,
        thread_id: Uuid,
        status: Option<RunStatus>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Run>> {
        runs::list_runs(&self.conn().await?, thread_id, status, limit, offset).await
    }

    async fn set_run_status(&self, run_id: Uuid, status: RunStatus) -> Result<()> {
        runs::set_run_status(&self.conn().await?, run_id, status).await
    }

    async fn prune_checkpoints(&self, thread_id: Uuid) -> Result<u64> {
        runs::prune_checkpoints(&self.conn().await?, thread_id).await
    }

    async fn delete_run(&self, thread_id: Uuid, run_id: Uuid) -> Result<bool> {
        runs::delete_run(&mut self.conn().await?, thread_id, run_id).await
    }

    async fn runs_in_flight(&self) -> Result<Vec<Run>> {
        runs::runs_in_flight(&self.conn().await?).await
    }

    async fn set_thread_status(
        &self,
        thread_id: Uuid,
        status: ThreadStatus,
        error: Option<&Value>,
    ) -> Result<()> {
        runs::set_thread_status(&self.conn().await?, thread_id, status, error).await
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint, durability: Durability) -> Result<()> {
        let c = match durability {
            Durability::Durable => self.conn().await?,
            Durability::Deferred => bounded(self.deferred.get().await?),
        };
        runs::put_checkpoint(&c, checkpoint, None).await?;
        Ok(())
    }

    async fn checkpoints(
        &self,
        thread_id: Uuid,
        limit: u64,
        before: Option<&str>,
        metadata: &Object,
    ) -> Result<Vec<Checkpoint>> {
        runs::checkpoints(&self.conn().await?, thread_id, limit, before, metadata).await
    }

    async fn checkpoint(&self, thread_id: Uuid, checkpoint_id: &str) -> Result<Option<Checkpoint>> {
        runs::checkpoint(&self.conn().await?, thread_id, checkpoint_id).await
    }

    async fn copy_state(&self, from: Uuid, to: Uuid) -> Result<()> {
        runs::copy_state(&mut self.conn().await?, from, to).await
    }

    // --- store -------------------------------------------------------------

    async fn put_item(
        &self,
        namespace: &[String],
        key: &str,
        value: &Object,
        scope: Option<&Filter>,
    ) -> Result<bool> {
        store::put(&mut self.conn().await?, namespace, key, value, scope).await
    }

    async fn item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<Option<Item>> {
        store::get(&self.conn().await?, namespace, key, scope).await
    }

    async fn delete_item(
        &self,
        namespace: &[String],
        key: &str,
        scope: Option<&Filter>,
    ) -> Result<bool> {
        store::delete(&self.conn().await?, namespace, key, scope).await
    }

    async fn search_items(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        store::search(&self.conn().await?, query).await
    }

    async fn list_namespaces(&self, query: &NamespaceQuery) -> Result<Vec<Vec<String>>> {
        store::namespaces(&self.conn().await?, query).await
    }
}
