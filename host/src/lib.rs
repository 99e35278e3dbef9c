//! # warden
//!
//! A LangGraph-compatible agent server whose authentication and
//! authorization handlers are sandboxed WebAssembly components.
//!
//! - [`config`]: `langgraph.json`, with Warden's per-plugin settings.
//! - [`plugin`]: the plugin runtime; the only module that touches wasmtime.
//! - [`storage`]: where threads, assistants, crons and store items live
//!   (embedded SQLite by default), scoped by the plugin's filters in SQL.
//! - [`reserved`]: the metadata and config keys only the server sets.
//! - [`runs`]: run execution: the worker pool, per-thread queues, graph
//!   components' steps turned into checkpoints and stream events.
//! - [`scaffold`]: `warden new`, a plugin or graph crate of one's own.
//! - [`schedule`]: cron schedules read in an IANA timezone.
//! - [`timestamp`]: the current time as the API writes it.
//! - [`server`]: the HTTP server: the Agent Server API under auth.
//! - [`telemetry`]: the auth decision log, the Prometheus metrics and
//!   request ids.
//!
//! The domain types handlers exchange (users, resources, actions, filters)
//! are [`warden_types`], which the guest SDK re-exports, so host and plugins
//! agree on them by construction.

pub mod config;
pub mod plugin;
pub mod reserved;
pub mod runs;
pub mod scaffold;
pub mod schedule;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod timestamp;

pub use warden_types as types;
