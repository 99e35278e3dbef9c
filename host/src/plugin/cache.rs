//! The on-disk cache of compiled components, keyed by the component's digest
//! and the engine's settings: a restart, or a second load of the same
//! plugin, skips compilation.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled artefacts in a directory.
#[derive(Clone)]
pub(crate) struct ArtefactCache {
    dir: PathBuf,
    engine_hash: u64,
}

impl ArtefactCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Self {
            dir,
            engine_hash: hasher.finish(),
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{:016x}.cwasm", self.engine_hash))
    }

    /// The cached compilation of the component with this digest, if any.
    ///
    /// The artefact is read into memory rather than mapped: a file
    /// truncated under a live mapping would crash the server (SIGBUS).
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the file was written by `store` below from
        // `Component::serialize` of this engine configuration (its name
        // carries the engine hash), in a directory owned by this server;
        // wasmtime still checks the header and the engine compatibility.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached artefact");
                None
            }
        }
    }

    /// Stores a compilation; failures only cost a recompilation later.
    pub(crate) fn store(&self, digest: &str, component: &Component) {
        let result = (|| -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            std::fs::create_dir_all(&self.dir)?;
            let path = self.path(digest);
            // Unique per writer: a process may store the same digest twice at once.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache a compiled plugin");
        }
    }
}
