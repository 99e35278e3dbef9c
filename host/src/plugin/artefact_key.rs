//! The key that authenticates compiled artefacts: each artefact the cache
//! writes carries an HMAC-SHA256 tag made with it, and an artefact whose tag
//! does not verify is never deserialised (see [`super::cache`]).
//!
//! The key lives outside the data directory, in a file only this user can
//! read or write (`$XDG_STATE_HOME/warden/artefact.key`, else
//! `~/.local/state/warden/artefact.key`), created `0600` on first use. A key
//! file that another user owns, or that others can read or write, is refused:
//! the process then uses a key of its own, which lives only as long as it
//! does (its artefacts are recompiled after a restart).

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The length of a key, and of a tag.
pub(crate) const KEY_LEN: usize = 32;

/// Separates these tags from any other use of the key.
const DOMAIN: &[u8] = b"warden compiled artefact v1\0";

/// Where a [`Runtime`](super::Runtime)'s artefact key comes from. It is only
/// read when the runtime has a cache directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ArtefactKeySource {
    /// `$XDG_STATE_HOME/warden/artefact.key`, else
    /// `~/.local/state/warden/artefact.key`; created when absent.
    #[default]
    Default,
    /// This key file; created when absent.
    File(PathBuf),
    /// A key of this process only: what it caches, no other process loads.
    Ephemeral,
}

/// A secret key that tags and verifies compiled artefacts.
#[derive(Clone)]
pub(crate) struct ArtefactKey([u8; KEY_LEN]);

impl fmt::Debug for ArtefactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArtefactKey(..)")
    }
}

impl ArtefactKey {
    /// The key from `source`: on any failure to use a key file, a warning
    /// and a key of this process only. `None` only if the system has no
    /// randomness to offer.
    pub(crate) fn resolve(source: &ArtefactKeySource) -> Option<Self> {
        let path = match source {
            ArtefactKeySource::Default => match Self::default_path() {
                Some(path) => path,
                None => {
                    tracing::warn!(
                        "neither XDG_STATE_HOME nor HOME is an absolute path: compiled \
                         plugins are authenticated with a key of this process only and \
                         recompiled after a restart"
                    );
                    return Self::ephemeral_or_warn();
                }
            },
            ArtefactKeySource::File(path) => path.clone(),
            ArtefactKeySource::Ephemeral => return Self::ephemeral_or_warn(),
        };
        match Self::load_or_create(&path) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "refusing the artefact key file: compiled plugins are authenticated \
                     with a key of this process only and recompiled after a restart"
                );
                Self::ephemeral_or_warn()
            }
        }
    }

    /// `$XDG_STATE_HOME/warden/artefact.key`, else
    /// `$HOME/.local/state/warden/artefact.key`; relative values are ignored,
    /// as the XDG base directory specification asks.
    pub(crate) fn default_path() -> Option<PathBuf> {
        let absolute = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        let state = absolute("XDG_STATE_HOME")
            .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))?;
        Some(state.join("warden/artefact.key"))
    }

    /// A fresh random key, kept in memory only.
    pub(crate) fn ephemeral() -> io::Result<Self> {
        let mut key = [0; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self(key))
    }

    fn ephemeral_or_warn() -> Option<Self> {
        Self::ephemeral()
            .inspect_err(|e| {
                tracing::warn!(error = %e, "no randomness for an artefact key: compiled plugins are not cached");
            })
            .ok()
    }

    /// The key in the file at `path`, created (mode `0600`, in a directory
    /// created `0700`) when absent. A file that is not a regular file (a
    /// symbolic link, say), that another user owns, that grants the group
    /// or others any access, or that does not hold exactly one key is
    /// refused, and left as it is.
    pub(crate) fn load_or_create(path: &Path) -> io::Result<Self> {
        match open_private(path) {
            Ok(file) => Self::read_checked(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(e),
        }
    }

    fn read_checked(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        private_to_us(&meta, 0o077, "read or write it (expected 0600)")?;
        let mut bytes = Vec::with_capacity(KEY_LEN + 1);
        file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes)?;
        let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            io::Error::other(format!(
                "holds {} bytes, not a {KEY_LEN}-byte key",
                bytes.len()
            ))
        })?;
        Ok(Self(key))
    }

    /// Writes a new key to a private temporary file, then links it into
    /// place: a concurrent process either wins the race (its key is read
    /// back) or finds the whole key, never a partial one.
    fn create(path: &Path) -> io::Result<Self> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        let key = Self::ephemeral()?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Unique per call: two runtimes of one process may create it at once.
        static CREATES: AtomicU64 = AtomicU64::new(0);
        let n = CREATES.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.tmp{}-{n}", std::process::id()));
        let written = (|| {
            let mut file = create_private(&tmp)?;
            file.write_all(&key.0)?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(key),
            // Another process (or runtime) created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Self::read_checked(open_private(path)?)
            }
            Err(e) => Err(e),
        }
    }

    /// The tag of `artefact`, the compilation of the component with this
    /// `digest` by an engine with this `engine_hash`.
    pub(crate) fn tag(&self, digest: &str, engine_hash: u64, artefact: &[u8]) -> [u8; KEY_LEN] {
        self.mac(digest, engine_hash, artefact)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is [`ArtefactKey::tag`] of these, compared in constant
    /// time.
    pub(crate) fn verify(
        &self,
        digest: &str,
        engine_hash: u64,
        artefact: &[u8],
        tag: &[u8],
    ) -> bool {
        self.mac(digest, engine_hash, artefact)
            .verify_slice(tag)
            .is_ok()
    }

    fn mac(&self, digest: &str, engine_hash: u64, artefact: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(DOMAIN);
        mac.update(&(digest.len() as u64).to_le_bytes());
        mac.update(digest.as_bytes());
        mac.update(&engine_hash.to_le_bytes());
        mac.update(artefact);
        mac
    }
}

/// Creates `path` for writing, readable by this user only; fails if it
/// exists (a symlink included).
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens `path` for reading without following a symbolic link at its end,
/// nor blocking on a FIFO.
pub(crate) fn open_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// The effective user id of this process.
/// Refuses a file or directory that another user owns, or whose mode grants
/// others any of `forbidden` (`what` says what that would let them do).
pub(crate) fn private_to_us(
    meta: &std::fs::Metadata,
    forbidden: u32,
    what: &str,
) -> io::Result<()> {
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        )));
    }
    if meta.mode() & forbidden != 0 {
        return Err(io::Error::other(format!(
            "mode {:04o} lets others {what}",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

pub(crate) fn current_uid() -> u32 {
    // SAFETY: `geteuid` takes no arguments, touches no memory of ours and
    // cannot fail (POSIX).
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_tag_binds_the_artefact_the_digest_and_the_engine() {
        let key = ArtefactKey::ephemeral().unwrap();
        let tag = key.tag("abc", 7, b"artefact");
        assert!(key.verify("abc", 7, b"artefact", &tag));
        assert!(!key.verify("abd", 7, b"artefact", &tag));
        assert!(!key.verify("abc", 8, b"artefact", &tag));
        assert!(!key.verify("abc", 7, b"artefacT", &tag));
        assert!(!key.verify("abc", 7, b"artefact", &tag[..31]));
        let other = ArtefactKey::ephemeral().unwrap();
        assert!(!other.verify("abc", 7, b"artefact", &tag));
    }

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/warden/artefact.key");
        let key = ArtefactKey::load_or_create(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let again = ArtefactKey::load_or_create(&path).unwrap();
        assert_eq!(key.0, again.0);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_readable_short_or_linked_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artefact.key");
        std::fs::write(&path, [1; KEY_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ArtefactKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("0644"), "{err}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ArtefactKey::load_or_create(&path).is_ok());
        std::fs::write(&path, [1; 5]).unwrap();
        let err = ArtefactKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("5 bytes"), "{err}");

        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(ArtefactKey::load_or_create(&link).is_err());
    }
}
