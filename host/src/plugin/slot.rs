//! Hot swap: a [`PluginSlot`] holds the live version of a plugin (the auth
//! plugin, or a graph: anything [`Swappable`]) and replaces it atomically
//! while the server serves.
//!
//! A new version is read, compiled and validated off the request path (a
//! component, for a contract this host speaks, whose handler registry call
//! succeeds), and only then swapped in. A request takes the live version
//! once, when it starts, and keeps it to the end: requests in flight finish
//! on the old version, later ones use the new one. A version that fails is
//! refused, the old one keeps serving, and the slot remembers why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::auth_plugin::AuthPlugin;
use super::build::{PluginSource, locate_component};
use super::component::{PluginInfo, digest};
use super::engine::Runtime;
use super::error::LoadError;
use super::graph::GraphComponent;

/// A loaded component a slot can hold: it knows what it is, and loads
/// another version of itself with the same settings.
pub trait Swappable: Send + Sync + 'static {
    /// Name, file, digest and contract of this version.
    fn info(&self) -> &PluginInfo;
    /// Another version, from `bytes` read from `path`, validated like a
    /// first load.
    fn with_component(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Self>, LoadError>;
    /// Whether this version is an auth plugin that authorizes nothing (see
    /// [`AuthPlugin::authorizes_nothing`]).
    fn authorizes_nothing(&self) -> bool {
        false
    }
}

impl Swappable for AuthPlugin {
    fn info(&self) -> &PluginInfo {
        AuthPlugin::info(self)
    }

    fn with_component(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Self>, LoadError> {
        AuthPlugin::with_component(self, runtime, path, bytes)
    }

    fn authorizes_nothing(&self) -> bool {
        AuthPlugin::authorizes_nothing(self)
    }
}

impl Swappable for GraphComponent {
    fn info(&self) -> &PluginInfo {
        GraphComponent::plugin_info(self)
    }

    fn with_component(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Self>, LoadError> {
        GraphComponent::from_bytes(
            runtime,
            self.graph_id(),
            path,
            bytes,
            self.settings().clone(),
        )
    }
}

/// A graph's slot.
pub type GraphSlot = PluginSlot<GraphComponent>;

/// What the file watcher and SIGHUP drive, whatever the slot holds.
pub trait Reloadable: Send + Sync {
    /// The plugin's name (`auth`, or the graph id).
    fn name(&self) -> String;
    /// The component file watched for new versions.
    fn component(&self) -> &Path;
    /// See [`PluginSlot::source_dir`].
    fn source_dir(&self) -> Option<PathBuf>;
    /// See [`PluginSlot::reload`].
    fn reload(&self) -> Result<Reloaded, LoadError>;
    /// See [`PluginSlot::rebuild`].
    fn rebuild(&self) -> Result<Reloaded, LoadError>;
}

impl<P: Swappable> Reloadable for PluginSlot<P> {
    fn name(&self) -> String {
        self.current().info().name.clone()
    }
    fn component(&self) -> &Path {
        PluginSlot::component(self)
    }
    fn source_dir(&self) -> Option<PathBuf> {
        PluginSlot::source_dir(self)
    }
    fn reload(&self) -> Result<Reloaded, LoadError> {
        PluginSlot::reload(self)
    }
    fn rebuild(&self) -> Result<Reloaded, LoadError> {
        PluginSlot::rebuild(self)
    }
}

/// The live version of one plugin, replaceable while requests use it.
pub struct PluginSlot<P: Swappable = AuthPlugin> {
    runtime: Arc<Runtime>,
    /// What the configuration names: a component or a plugin crate directory.
    source: PathBuf,
    /// The component file the live version was read from (for a crate
    /// directory, its build output).
    component: PathBuf,
    live: ArcSwap<P>,
    history: Mutex<History>,
    /// Serialises reloads (file watcher, SIGHUP, rebuilds).
    reloading: Mutex<()>,
}

#[derive(Debug, Clone)]
struct History {
    loaded_at: String,
    previous: Option<String>,
    swaps: u64,
    refused: u64,
    last_error: Option<ReloadError>,
}

/// A reload that was refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadError {
    /// When it was refused (RFC 3339).
    pub at: String,
    /// Why.
    pub error: String,
}

/// What a slot shows in `/info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotStatus {
    /// The live version.
    #[serde(flatten)]
    pub info: PluginInfo,
    /// What the configuration names (a component or a crate directory).
    pub source: PathBuf,
    /// When the live version was swapped in (or loaded at start-up).
    pub loaded_at: String,
    /// The digest of the version the live one replaced (none before the
    /// first swap).
    pub previous_digest: Option<String>,
    /// How many times a new version was swapped in since start-up.
    pub swap_count: u64,
    /// How many reloads were refused since start-up.
    pub refused_count: u64,
    /// The last reload that was refused, unless a later one succeeded.
    pub last_reload_error: Option<ReloadError>,
    /// Whether the live version is an auth plugin with no authorization
    /// handler: every event allowed unfiltered.
    pub authorizes_nothing: bool,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new version is live.
    Swapped {
        /// Digest of the version replaced.
        from: String,
        /// Digest of the version now live.
        to: String,
    },
    /// The file holds the live version already: nothing changed.
    Unchanged,
}

impl<P: Swappable> PluginSlot<P> {
    /// A slot whose live version is `plugin`, loaded from `source` (its
    /// component file, or the crate directory it was built from).
    pub fn new(runtime: Arc<Runtime>, source: &Path, plugin: Arc<P>) -> Self {
        Self {
            runtime,
            source: source.to_owned(),
            component: plugin.info().path.clone(),
            live: ArcSwap::new(plugin),
            history: Mutex::new(History {
                loaded_at: now(),
                previous: None,
                swaps: 0,
                refused: 0,
                last_error: None,
            }),
            reloading: Mutex::new(()),
        }
    }

    /// The live version. A request takes it once and keeps it to the end.
    pub fn current(&self) -> Arc<P> {
        self.live.load_full()
    }

    /// The component file watched for new versions.
    pub fn component(&self) -> &Path {
        &self.component
    }

    /// The directory of the plugin's sources (a crate, a Python policy,
    /// an npm package), when the configuration names sources.
    pub fn source_dir(&self) -> Option<PathBuf> {
        PluginSource::of(&self.source)
            .ok()?
            .sources()
            .map(Path::to_owned)
    }

    /// The live version, when it was loaded, swaps so far and the last
    /// refused reload.
    pub fn status(&self) -> SlotStatus {
        // Read together: a swap changes both under the history's lock.
        let (history, live) = {
            let history = lock(&self.history);
            (history.clone(), self.current())
        };
        SlotStatus {
            info: live.info().clone(),
            source: self.source.clone(),
            loaded_at: history.loaded_at,
            previous_digest: history.previous,
            swap_count: history.swaps,
            refused_count: history.refused,
            last_reload_error: history.last_error,
            authorizes_nothing: live.authorizes_nothing(),
        }
    }

    /// Loads the component file again and swaps it in if it holds a new,
    /// valid version. A refused version leaves the live one serving.
    pub fn reload(&self) -> Result<Reloaded, LoadError> {
        let _one_at_a_time = lock(&self.reloading);
        self.record(self.swap_in(&self.component))
    }

    /// Builds the plugin's sources again (the build tool's output on
    /// standard error), then reloads its output. Without sources,
    /// [`Self::reload`].
    pub fn rebuild(&self) -> Result<Reloaded, LoadError> {
        let _one_at_a_time = lock(&self.reloading);
        let started = Instant::now();
        let built = locate_component(&self.source);
        if built.is_ok() && self.source_dir().is_some() {
            tracing::info!(
                dir = %self.source.display(),
                seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
                "plugin built"
            );
        }
        self.record(built.and_then(|wasm| self.swap_in(&wasm)))
    }

    fn swap_in(&self, wasm: &Path) -> Result<Reloaded, LoadError> {
        let started = Instant::now();
        let bytes = std::fs::read(wasm).map_err(|source| LoadError::Read {
            path: wasm.to_owned(),
            source,
        })?;
        let old = self.current();
        let new_digest = digest(&bytes);
        if new_digest == old.info().digest {
            return Ok(Reloaded::Unchanged);
        }
        let new = old.with_component(&self.runtime, wasm, &bytes)?;
        let authorizes_nothing = new.authorizes_nothing();
        let from = old.info().digest.clone();
        {
            // The version and its history change together, so that `/info`
            // never shows the new digest with the old swap count.
            let mut history = lock(&self.history);
            self.live.store(new);
            history.loaded_at = now();
            history.previous = Some(from.clone());
            history.swaps += 1;
            history.last_error = None;
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if authorizes_nothing {
            tracing::warn!(
                plugin = %old.info().name,
                from = %&from[..12],
                to = %&new_digest[..12],
                elapsed_ms = format_args!("{elapsed_ms:.1}"),
                "plugin swapped: new requests use the new version, which authorizes nothing \
                 (no authorization handler: every event is allowed unfiltered)"
            );
        } else {
            tracing::info!(
                plugin = %old.info().name,
                from = %&from[..12],
                to = %&new_digest[..12],
                elapsed_ms = format_args!("{elapsed_ms:.1}"),
                "plugin swapped: new requests use the new version"
            );
        }
        Ok(Reloaded::Swapped {
            from,
            to: new_digest,
        })
    }

    fn record(&self, result: Result<Reloaded, LoadError>) -> Result<Reloaded, LoadError> {
        let mut history = lock(&self.history);
        match &result {
            // A swap updated the history as it happened.
            Ok(Reloaded::Swapped { .. }) => {}
            Ok(Reloaded::Unchanged) => history.last_error = None,
            Err(error) => {
                tracing::error!(
                    plugin = %self.current().info().name,
                    %error,
                    "plugin reload refused: the loaded version keeps serving"
                );
                history.refused += 1;
                history.last_error = Some(ReloadError {
                    at: now(),
                    error: error.to_string(),
                });
            }
        }
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
