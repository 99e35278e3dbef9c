//! The plugin runtime. This module, and only this module, configures and
//! drives wasmtime:
//!
//! - [`Runtime`] owns the engine (pooling allocator, copy-on-write memory
//!   images, epoch interruption and its ticker) and the on-disk cache of
//!   compiled artefacts.
//! - [`AuthPlugin`] is one loaded auth plugin: a compiled component checked
//!   against the contract version it was built for (any of
//!   [`AUTH_CONTRACT_VERSIONS`], each spoken by its own module),
//!   pre-linked ([`wasmtime::component::InstancePre`]), with its registered
//!   handlers resolved into a table.
//! - [`Session`] is one fresh, sandboxed instance of a plugin, used for one
//!   request and dropped with it: no state survives between users.
//! - [`PluginSlot`] holds the live version of a plugin and swaps in new
//!   ones while the server serves; [`Watcher`] finds them on disk (and
//!   polls for them where no change event comes: [`POLL`]).
//! - What a plugin is granted beyond computing comes from its
//!   [`PluginSettings`]: `config` values and `secrets` (`config` import),
//!   native signature checks (`crypto`), a store kept between calls
//!   (`cache`), the wall clock, and outbound HTTP to `allowed_hosts` only.
//!   `auth.cache` results live in the [`AuthPlugin`], so a new plugin
//!   starts with none.
//! - [`waits`] bounds every WASI call a guest can wait in by the call's
//!   deadline (and a run's cancellation); a thread's [`WaitObserver`] hears
//!   of those waits.
//!
//! Faults (trap, deadline, memory cap, undecodable output) are [`Fault`]s;
//! plugins that cannot be loaded are [`LoadError`]s.

mod allowlist;
mod artefact_key;
mod auth_cache;
mod auth_contract;
mod auth_plugin;
mod build;
mod busy;
mod cache;
mod component;
mod crypto;
mod engine;
mod error;
mod graph;
mod outbound;
mod plugin_cache;
mod poll;
mod redact;
#[cfg(test)]
mod released_wit;
mod sandbox;
mod settings;
mod slot;
mod waits;
mod watch;

pub use allowlist::HostPattern;
pub use artefact_key::ArtefactKeySource;
pub use auth_cache::evictions as auth_cache_evictions;
pub use auth_plugin::{AuthPlugin, Authenticated, CacheLookup, Session, Verdict};
pub use build::locate_component;
pub use busy::{BUSY_BUDGET, BUSY_PAUSE};
pub use component::PluginInfo;
pub use engine::{DEFAULT_KEEP_RESIDENT, MAX_MEMORY_MIB, Runtime, RuntimeOptions};
pub use error::{Fault, LoadError};
pub use graph::{
    Edge, EventSink, GRAPH_CONTRACT_IN_DEVELOPMENT, GRAPH_CONTRACT_VERSION,
    GRAPH_CONTRACT_VERSIONS, GraphComponent, GraphEvent, GraphInfo, GraphStore, Interrupt,
    Invocation, Outcome, Pause, RunFailure, RunStore, Start, StoreError, Task, recorded_user,
};
pub use poll::POLL;
pub use settings::{
    AuthCacheSettings, DEFAULT_GRAPH_HTTP_MAX_RESPONSE_KIB, DEFAULT_GRAPH_HTTP_TIMEOUT_MS,
    DEFAULT_HTTP_MAX_RESPONSE_KIB, DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS,
    GraphLimits, GraphSettings, HttpLimits, Limits, PluginSettings, SecretSource,
};
pub use slot::{GraphSlot, PluginSlot, ReloadError, Reloadable, Reloaded, SlotStatus, Swappable};
pub(crate) use waits::observed_wait;
#[cfg(test)]
pub(crate) use waits::{WaitLimit, report_ran_long};
pub use waits::{WaitObserver, observe_waits_on_this_thread};
pub use watch::{DEBOUNCE, SETTLE, WatchError, Watcher};

pub use auth_contract::SUPPORTED as AUTH_CONTRACT_VERSIONS;
