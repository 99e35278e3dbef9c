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
//! - [`PluginSlot`] holds the live version of a plugin and swaps in new
//!   ones while the server serves; [`Watcher`] finds them on disk.
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
mod slot;
mod watch;

pub use auth_plugin::{AuthPlugin, Limits, PluginInfo, Session, Verdict};
pub use build::locate_component;
pub use engine::{DEFAULT_KEEP_RESIDENT, Runtime, RuntimeOptions};
pub use error::{Fault, LoadError};
pub use slot::{PluginSlot, ReloadError, Reloaded, SlotStatus};
pub use watch::{DEBOUNCE, SETTLE, WatchError, Watcher};

/// The `warden:auth` contract versions this host speaks.
pub const AUTH_CONTRACT_VERSION: &str = "0.1.0";
