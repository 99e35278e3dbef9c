//! Polling plugin files, for what change events miss: network filesystems
//! (NFS, SMB, most FUSE mounts) deliver none, and a Kubernetes ConfigMap or
//! Secret volume replaces its files by swapping a symlink to their
//! directory, which a watch on the file's own directory does not see.
//!
//! Every [`POLL`], the watch thread takes each component file's
//! [`Fingerprint`] (one `stat`, following symlinks; the file is not read).
//! A fingerprint that differs from the one the live version was loaded at,
//! and stayed the same since the previous poll, asks for a reload: a file
//! is loaded only once it has stopped changing, so one written in place is
//! not read half written. A rename seen by polling alone is thus live
//! within two polls; with events it is loaded at once, and the poll that
//! follows finds nothing new. A missing file asks nothing (the live version
//! keeps serving).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// How often the component files are polled: one `stat` per file, so
/// cheap even on a network filesystem (whose attribute cache may add its
/// own delay: NFS's `acregmax`, 60 s by default).
pub const POLL: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it: the file
/// (device, inode: a rename over it brings another), its size, and when it
/// was last written and changed (the change time cannot be set back, so a
/// rewrite in place that keeps the size and the modification time shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    /// The fingerprint of the file at `path` (symlinks followed), or `None`
    /// when it cannot be read.
    pub(super) fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// One file as polling saw it.
#[derive(Debug, Clone)]
pub(super) struct Polled {
    /// When it was last loaded (or a reload of it was refused).
    loaded: Option<Fingerprint>,
    /// At the previous poll.
    seen: Option<Fingerprint>,
}

impl Polled {
    /// A file whose live version was loaded at `now`.
    pub(super) fn new(now: Option<Fingerprint>) -> Self {
        Self {
            loaded: now,
            seen: now,
        }
    }

    /// Whether a poll finding `now` asks for a reload: a file that changed
    /// since it was loaded and not since the previous poll.
    pub(super) fn poll(&mut self, now: Option<Fingerprint>) -> bool {
        let settled = now == self.seen;
        self.seen = now;
        now.is_some() && settled && now != self.loaded
    }

    /// Records a reload (done or refused) of the file as it was at
    /// `before`, taken just before reading it: a later change still shows.
    pub(super) fn loaded(&mut self, before: Option<Fingerprint>) {
        self.loaded = before;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ino: u64) -> Option<Fingerprint> {
        Some(Fingerprint {
            dev: 1,
            ino,
            len: 100,
            mtime: (0, 0),
            ctime: (0, 0),
        })
    }

    #[test]
    fn a_change_is_reloaded_once_it_holds_for_a_poll() {
        let mut polled = Polled::new(version(1));
        assert!(!polled.poll(version(1)), "unchanged");
        assert!(!polled.poll(version(2)), "just changed: may be mid-write");
        assert!(!polled.poll(version(3)), "still changing");
        assert!(polled.poll(version(3)), "settled");
        polled.loaded(version(3));
        assert!(!polled.poll(version(3)), "loaded already");
    }

    #[test]
    fn a_reload_by_events_leaves_the_poll_nothing_to_do() {
        let mut polled = Polled::new(version(1));
        polled.loaded(version(2));
        assert!(!polled.poll(version(2)));
        assert!(!polled.poll(version(2)));
    }

    #[test]
    fn a_missing_file_asks_nothing() {
        let mut polled = Polled::new(version(1));
        assert!(!polled.poll(None));
        assert!(!polled.poll(None));
        assert!(!polled.poll(version(1)), "back as it was");
        assert!(!polled.poll(version(1)));
    }

    #[test]
    fn fingerprints_tell_a_rename_over_apart_and_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.wasm");
        std::fs::write(&file, b"one").unwrap();
        let first = Fingerprint::of(&file);
        assert!(first.is_some());
        assert_eq!(Fingerprint::of(&file), first);
        let aside = dir.path().join(".auth.wasm.new");
        std::fs::write(&aside, b"two").unwrap();
        std::fs::rename(&aside, &file).unwrap();
        assert_ne!(Fingerprint::of(&file), first, "same size, another inode");
        let link = dir.path().join("link.wasm");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(Fingerprint::of(&link), Fingerprint::of(&file));
        assert_eq!(Fingerprint::of(&dir.path().join("missing")), None);
    }
}
