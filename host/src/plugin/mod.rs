//! The plugin runtime. This module, and only this module, configures and
//! drives wasmtime:
//!
//! - [`Runtime`] owns the engine (pooling allocator, copy-on-write memory
//!   images, epoch interruption and its ticker) and the on-disk cache of
//!   compiled artefacts.
//! - [`AuthPlugin`] is one loaded auth plugin: a compiled component checked
//!   against the contract, pre-linked ([`wasmtime::component::InstancePre`]),
//!   with its registered handlers resolved into a table.
//! - [`Session`] is one fresh, sandboxed instance of a plugin, used for one
//!   request and dropped with it: no state survives between users.
//!
//! Faults (trap, deadline, memory cap, undecodable output) are [`Fault`]s;
//! plugins that cannot be loaded are [`LoadError`]s.

mod auth_plugin;
mod bindings;
mod build;
mod cache;
mod engine;
mod error;
mod sandbox;

pub use auth_plugin::{AuthPlugin, Limits, PluginInfo, Session, Verdict};
pub use build::locate_component;
pub use engine::{DEFAULT_KEEP_RESIDENT, Runtime, RuntimeOptions};
pub use error::{Fault, LoadError};

/// The `warden:auth` contract versions this host speaks.
pub const AUTH_CONTRACT_VERSION: &str = "0.1.0";
