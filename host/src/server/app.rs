//! What the routes share: the server's state, built once per process.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::replica::Replica;
use super::{Limits, limits, work_pool};
use crate::config::Config;
use crate::plugin::{GraphSlot, PluginSlot};
use crate::runs::{Graphs, Runs};
use crate::storage::{Assistant, Storage, StorageError, SystemAssistant};
use crate::telemetry::metrics::HttpTotals;
use crate::telemetry::{DecisionLog, Metrics};

/// What the routes share.
pub struct AppState {
    /// The auth plugin's slot (its live version), when `langgraph.json`
    /// names one.
    pub auth: Option<Arc<PluginSlot>>,
    /// Whether `x-auth-scheme: langsmith` is ignored: unless the
    /// configuration turns Studio's bypass on ([`crate::config::AuthConfig::studio_bypass`]).
    pub disable_studio_auth: bool,
    /// Where the records live.
    pub storage: Arc<dyn Storage>,
    /// The graphs of `langgraph.json`, by id, with their system assistant's id.
    pub graphs: BTreeMap<String, Uuid>,
    /// The loaded graph components, by graph id (none when the server was
    /// started without them: runs then fail with a 503).
    pub graph_components: BTreeMap<String, Arc<GraphSlot>>,
    /// The run executor.
    pub runs: Arc<Runs>,
    /// `auth.openapi`: the security schemes `/openapi.json` documents.
    pub auth_openapi: Option<serde_json::Value>,
    /// The Prometheus metrics served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The totals of `/metrics?format=json`.
    pub http: Arc<HttpTotals>,
    /// The auth decision log, when `auth.decision_log` turns it on.
    pub decisions: Option<Arc<DecisionLog>>,
    /// The threads requests' synchronous work (plugin calls, database) runs on.
    pub work: Arc<work_pool::WorkPool>,
    /// `langgraph.json`'s `limits`.
    pub limits: Limits,
    /// The streamed responses open now, by user.
    pub streams: Arc<limits::OpenStreams>,
    /// This server process, as `/info` names it.
    pub replica: Replica,
}

impl AppState {
    /// The served graphs, as run creation needs them.
    pub fn run_graphs(&self) -> Graphs<'_> {
        Graphs {
            assistants: &self.graphs,
            components: &self.graph_components,
        }
    }

    /// The state serving `config` without graph components (runs fail
    /// with a 503): [`AppState::serving`] with none.
    pub async fn new(
        config: &Config,
        auth: Option<Arc<PluginSlot>>,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, StorageError> {
        Self::serving(
            config,
            auth,
            storage,
            BTreeMap::new(),
            DEFAULT_WORKERS,
            crate::runs::QueueSettings::default(),
        )
        .await
    }

    /// The state serving `config` with its graph components loaded, runs
    /// executed by at most `workers` at once. Upserts one system assistant
    /// per graph (id = uuid5 of the graph id, metadata `created_by:
    /// system`; no auth event, as in LangGraph), named as its graph names
    /// itself.
    pub async fn serving(
        config: &Config,
        auth: Option<Arc<PluginSlot>>,
        storage: Arc<dyn Storage>,
        components: BTreeMap<String, Arc<GraphSlot>>,
        workers: usize,
        queue: crate::runs::QueueSettings,
    ) -> Result<Self, StorageError> {
        let mut graphs = BTreeMap::new();
        for (graph_id, graph) in &config.graphs {
            let id = system_assistant_id(graph_id);
            let now = crate::timestamp::now();
            let mut metadata = crate::storage::Object::new();
            metadata.insert("created_by".into(), "system".into());
            let name = components
                .get(graph_id)
                .and_then(|slot| slot.current().info().name.clone())
                .unwrap_or_else(|| graph_id.clone());
            let found = storage
                .upsert_system_assistant(&Assistant {
                    assistant_id: id,
                    graph_id: graph_id.clone(),
                    config: serde_json::json!({}),
                    context: serde_json::json!({}),
                    metadata,
                    name,
                    description: graph.description.clone(),
                    version: 1,
                    created_at: now.clone(),
                    updated_at: now,
                })
                .await?;
            if found == SystemAssistant::Replaced {
                tracing::warn!(
                    assistant_id = %id,
                    graph = %graph_id,
                    "an assistant the server did not create held this graph's system assistant id: replaced"
                );
            }
            graphs.insert(graph_id.clone(), id);
        }
        let auth_openapi = config.auth.as_ref().and_then(|a| a.openapi.as_ref());
        let limits = Limits::from(&config.limits);
        let runs = Runs::new(
            storage.clone(),
            workers,
            limits.runs.clone(),
            components.clone(),
            queue,
        )
        .await?;
        let metrics = Arc::new(Metrics::with(
            runs.metrics().clone(),
            storage.backend(),
            storage.pool_waits(),
        ));
        if auth.is_some() {
            // Every kind at 0 from the start: a dashboard's rate of faults
            // is 0, not "no data", until the first one.
            for kind in crate::plugin::Fault::KINDS {
                metrics.plugin_faults_at_zero("auth", kind);
            }
        }
        Ok(Self {
            limits,
            streams: Arc::default(),
            graph_components: components,
            runs,
            auth_openapi: auth_openapi.cloned(),
            metrics,
            http: Arc::default(),
            decisions: None,
            work: Arc::new(if storage.works_inline() {
                work_pool::WorkPool::for_this_machine()
            } else {
                work_pool::WorkPool::for_computing()
            }),
            disable_studio_auth: !config.auth.as_ref().is_some_and(|a| a.studio_bypass()),
            auth,
            storage,
            graphs,
            replica: Replica::this_process(),
        })
    }
}

/// How many runs execute at once by default (LangGraph's
/// `N_JOBS_PER_WORKER`).
pub const DEFAULT_WORKERS: usize = 10;

/// The namespace of system assistant ids (LangGraph's `NAMESPACE_GRAPH`).
pub const NAMESPACE_GRAPH: Uuid = uuid::uuid!("6ba7b821-9dad-11d1-80b4-00c04fd430c8");

/// The id of a graph's system assistant: uuid5 of the graph id.
pub fn system_assistant_id(graph_id: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE_GRAPH, graph_id.as_bytes())
}
