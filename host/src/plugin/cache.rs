//! The on-disk cache of compiled components, keyed by the component's digest
//! and the engine's settings: a restart, or a second load of the same
//! plugin, skips compilation.
//!
//! A compiled artefact is native code that runs outside the sandbox, so it
//! is only loaded if this server wrote it: each file is the HMAC-SHA256 tag
//! of its artefact (made with the [`ArtefactKey`], which is kept outside the
//! data directory, over the artefact, the component's digest and the engine)
//! followed by the artefact. An artefact whose tag does not verify (changed,
//! copied from elsewhere, another component's under this name, written with
//! another key) is never deserialised: the component is compiled again and
//! the file replaced. A directory that another user owns or can write is not
//! used at all.

use std::fs::DirBuilder;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::artefact_key::{
    ArtefactKey, KEY_LEN, create_private, current_uid, open_private, private_to_us,
};

/// Compiled artefacts in a directory.
#[derive(Clone)]
pub(crate) struct ArtefactCache {
    dir: PathBuf,
    engine_hash: u64,
    key: ArtefactKey,
}

impl ArtefactCache {
    /// The cache in `dir`, created (mode `0700`) if absent; `None`, with a
    /// warning, if the directory is not this user's alone to write.
    pub(crate) fn new(dir: PathBuf, engine: &Engine, key: ArtefactKey) -> Option<Self> {
        if let Err(e) = prepare_dir(&dir) {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "not using the compiled-plugin cache: plugins are compiled at every load"
            );
            return None;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Some(Self {
            dir,
            engine_hash: hasher.finish(),
            key,
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{:016x}.cwasm", self.engine_hash))
    }

    /// The cached compilation of the component with this digest, if any and
    /// if its tag verifies.
    ///
    /// The artefact is read into memory rather than mapped: a file
    /// truncated under a live mapping would crash the server (SIGBUS), and
    /// the bytes deserialised must be the bytes whose tag was checked.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = match read_own_file(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "refusing a cached artefact; recompiling");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        let verified = bytes.len() >= KEY_LEN && {
            let (tag, artefact) = bytes.split_at(KEY_LEN);
            self.key.verify(digest, self.engine_hash, artefact, tag)
        };
        if !verified {
            tracing::warn!(
                path = %path.display(),
                "a cached artefact's tag does not match (changed, copied from elsewhere, \
                 another component's or another key's): not loading it; recompiling"
            );
            let _ = std::fs::remove_file(&path);
            return None;
        }
        // SAFETY: `Component::deserialize` trusts its input to be an
        // artefact wasmtime produced: it maps it as native code. The tag
        // just verified is an HMAC, under a key that only this user can
        // read, of these very bytes (held in memory since), of this
        // component's digest and of this engine's settings: only `store`
        // below makes such tags, from `Component::serialize` of this
        // component by an engine configured as this one. So these are the
        // bytes wasmtime serialised for this component, not a file someone
        // else wrote or one compiled from another component. wasmtime still
        // checks the header and the engine compatibility.
        match unsafe { Component::deserialize(engine, &bytes[KEY_LEN..]) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached artefact; recompiling");
                None
            }
        }
    }

    /// Stores a compilation, tagged; failures only cost a recompilation
    /// later.
    pub(crate) fn store(&self, digest: &str, component: &Component) {
        let result = (|| -> io::Result<()> {
            let artefact = component.serialize().map_err(io::Error::other)?;
            let tag = self.key.tag(digest, self.engine_hash, &artefact);
            prepare_dir(&self.dir)?;
            let path = self.path(digest);
            // Unique per writer: a process may store the same digest twice at once.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
            let written = (|| {
                let mut file = create_private(&tmp)?;
                file.write_all(&tag)?;
                file.write_all(&artefact)
            })();
            let renamed = written.and_then(|()| std::fs::rename(&tmp, &path));
            if renamed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            renamed
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache a compiled plugin");
        }
    }
}

/// Creates `dir` (mode `0700`; its parents as usual) if absent, and checks
/// that it is a directory this user owns and only this user can write.
fn prepare_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    private_to_us(&meta, 0o022, "write it")
}

/// The contents of `path`, if it is a regular file (not a link to one)
/// that this user owns.
fn read_own_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_private(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.uid() != current_uid() {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by this user",
            meta.uid()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
