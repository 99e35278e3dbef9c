//! # warden
//!
//! A LangGraph-compatible agent server whose authentication and
//! authorization handlers are sandboxed WebAssembly components.
//!
//! - [`config`]: `langgraph.json`, with Warden's per-plugin settings.
//! - [`plugin`]: the plugin runtime; the only module that touches wasmtime.
//! - [`server`]: the HTTP server.
//!
//! The domain types handlers exchange (users, resources, actions, filters)
//! are the guest SDK's own ([`warden_sdk`]), so host and plugins agree on
//! them by construction.

pub mod config;
pub mod plugin;
pub mod server;

pub use warden_sdk as types;
