//! The HTTP server: the public system routes, and everything else behind
//! authentication, which runs **before routing** as in LangGraph (an unknown
//! path with bad credentials is 401, with good ones 404). Every protected
//! route is an entry of one table ([`routes::endpoints`]) that names the
//! authorization events it fires.
//!
//! - the API: `api` (the handlers, one module per resource);
//! - the auth pipeline: `auth` ([`Pending`], [`Caller`], authentication
//!   from the head), `audit` (each decision to the decision log and the
//!   metrics) and the route table ([`routes`]);
//! - the server around them: `app` (the shared state), `router`,
//!   [`serving`] (the connection loop), [`limits`], `streaming` (SSE),
//!   [`work_pool`], `metrics`, `openapi`, `error`, the `cron_scheduler`,
//!   and `replica` (which process `/info` is from).

mod api;
mod app;
mod audit;
mod auth;
mod cron_scheduler;
mod error;
mod graph_store;
pub mod limits;
mod metrics;
mod openapi;
mod replica;
mod router;
pub mod routes;
pub mod serving;
mod streaming;
pub mod work_pool;

pub use app::{AppState, DEFAULT_WORKERS, NAMESPACE_GRAPH, system_assistant_id};
pub use audit::handler_name;
pub use auth::{Authorized, Caller, Event, Events, Pending, as_caller, as_caller_then};
pub use cron_scheduler::CronScheduler;
pub use error::ApiError;
pub use limits::Limits;
pub use openapi::document as openapi_document;
pub use replica::Replica;
pub use router::router;
pub use serving::serve;
