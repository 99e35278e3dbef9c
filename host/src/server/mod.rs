//! The HTTP server: the public system routes, and everything else behind
//! authentication, which runs **before routing** as in LangGraph (an unknown
//! path with bad credentials is 401, with good ones 404). Every protected
//! route is an entry of one table ([`routes::endpoints`]) that names the
//! authorization events it fires.

mod assistants;
mod auth;
mod cron_scheduler;
mod crons;
mod error;
mod extract;
mod graphs;
pub mod limits;
mod metrics;
mod openapi;
mod records;
pub mod routes;
mod run_access;
pub mod runs;
pub mod serving;
mod state;
mod store;
mod streaming;
mod system;
mod threads;
pub mod work_pool;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method};
use axum::middleware;
use axum::routing::MethodRouter;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use uuid::Uuid;

pub use auth::{Authorized, Caller, Event, Events, Pending, as_caller};
pub use cron_scheduler::CronScheduler;
pub use error::ApiError;
pub use limits::Limits;
pub use openapi::document as openapi_document;
pub use serving::serve;

use crate::config::Config;
use crate::plugin::{GraphSlot, PluginSlot};
use crate::runs::{Graphs, Runs};
use crate::storage::{Assistant, Storage, StorageError, SystemAssistant};

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
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: serde_json::Value,
    /// Request counters served at `/metrics`.
    pub metrics: metrics::Metrics,
    /// The threads requests' synchronous work (plugin calls, database) runs on.
    pub work: Arc<work_pool::WorkPool>,
    /// `langgraph.json`'s `limits`.
    pub limits: Limits,
    /// The streamed responses open now, by user.
    pub streams: Arc<limits::OpenStreams>,
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
    pub fn new(
        config: &Config,
        auth: Option<Arc<PluginSlot>>,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, StorageError> {
        Self::serving(config, auth, storage, BTreeMap::new(), DEFAULT_WORKERS)
    }

    /// The state serving `config` with its graph components loaded, runs
    /// executed by at most `workers` at once. Upserts one system assistant
    /// per graph (id = uuid5 of the graph id, metadata `created_by:
    /// system`; no auth event, as in LangGraph), named as its graph names
    /// itself.
    pub fn serving(
        config: &Config,
        auth: Option<Arc<PluginSlot>>,
        storage: Arc<dyn Storage>,
        components: BTreeMap<String, Arc<GraphSlot>>,
        workers: usize,
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
            let found = storage.upsert_system_assistant(&Assistant {
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
            })?;
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
        let runs = Runs::new(storage.clone(), workers, limits.runs.clone())?;
        Ok(Self {
            limits,
            streams: Arc::default(),
            graph_components: components,
            runs,
            openapi: openapi::document(auth_openapi),
            metrics: metrics::Metrics::default(),
            work: Arc::new(work_pool::WorkPool::for_this_machine()),
            disable_studio_auth: !config.auth.as_ref().is_some_and(|a| a.studio_bypass()),
            auth,
            storage,
            graphs,
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

/// The application's router.
pub fn router(state: Arc<AppState>) -> Router {
    // One method router per path, whose unknown methods are a 405 answered
    // after authentication (credentials come before routing).
    let mut paths: BTreeMap<&'static str, (MethodRouter<Arc<AppState>>, Vec<String>)> =
        BTreeMap::new();
    for endpoint in routes::endpoints() {
        let (methods, allow) = paths.entry(endpoint.path).or_default();
        *methods = std::mem::take(methods).merge(endpoint.handler);
        allow.push(endpoint.method.to_string());
    }
    let protected = paths
        .into_iter()
        .fold(Router::new(), |router, (path, (methods, allow))| {
            let allow = allow.join(", ");
            router.route(
                path,
                methods
                    .fallback(move |pending: Pending| system::method_not_allowed(pending, allow)),
            )
        })
        .fallback(system::not_found)
        // A body is read only once its sender is authenticated, within its
        // route's limit (`limits`); the public routes read none.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::head_first,
        ));
    system::router()
        .merge(protected)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .layer(cors())
        .with_state(state)
}

/// LangGraph's default CORS: any origin, method and header; the pagination
/// and location headers exposed; preflights answered before auth.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-pagination-total"),
            HeaderName::from_static("x-pagination-next"),
            HeaderName::from_static("content-location"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
