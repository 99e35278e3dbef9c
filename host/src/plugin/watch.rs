//! Watching plugin files, and in development their sources, for new
//! versions.
//!
//! The component file of every slot is watched through its directory, so
//! both ways of replacing it are seen: a rename over it (deploy tools) is
//! loaded at once, an in-place write (editors: truncate, then write) once
//! the writer closes the file, or after [`SETTLE`] without further writes
//! when no close is reported. A half-written file is never swapped in:
//! it fails validation and the live version keeps serving.
//!
//! In development ([`Watcher::start`] with `rebuild_sources`), a change
//! under a slot's crate directory (outside `target/` and hidden paths)
//! rebuilds the crate once edits pause for [`DEBOUNCE`], then swaps in the
//! result.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::slot::{Reloadable, Reloaded};

/// How long an in-place write must pause before the file is loaded, when
/// the platform reports no close (a hard link, a writer still holding it).
pub const SETTLE: Duration = Duration::from_millis(150);

/// How long source edits must pause before a rebuild starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Errors setting up the watch.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", path.display())]
pub struct WatchError {
    /// What could not be watched.
    pub path: PathBuf,
    /// Why.
    pub source: notify::Error,
}

/// The running watch. Dropping it stops watching.
pub struct Watcher {
    _notify: RecommendedWatcher,
    stop: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

enum Message {
    Event(notify::Event),
    Stop,
}

/// What is pending for one slot.
#[derive(Default)]
struct Pending {
    reload: Option<Instant>,
    rebuild: Option<Instant>,
}

impl Watcher {
    /// Watches the component file of every slot (and, with
    /// `rebuild_sources`, the crate directory of those built from one).
    pub fn start(
        slots: Vec<Arc<dyn Reloadable>>,
        rebuild_sources: bool,
    ) -> Result<Self, WatchError> {
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let mut notify =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let _ = events.send(Message::Event(event));
                }
                Err(error) => tracing::warn!(%error, "plugin file watch error"),
            })
            .map_err(|source| WatchError {
                path: PathBuf::new(),
                source,
            })?;

        let mut targets = Vec::new();
        for slot in &slots {
            let file = absolute(slot.component());
            let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
            watch(&mut notify, &dir, RecursiveMode::NonRecursive)?;
            let sources = match slot.crate_dir() {
                Some(dir) if rebuild_sources => {
                    let dir = dir.canonicalize().unwrap_or_else(|_| absolute(dir));
                    watch(&mut notify, &dir, RecursiveMode::Recursive)?;
                    Some(dir)
                }
                _ => None,
            };
            tracing::info!(
                plugin = %slot.name(),
                file = %file.display(),
                sources = %sources.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                "watching for new versions"
            );
            targets.push(Target {
                slot: Arc::clone(slot),
                file,
                sources,
            });
        }
        let thread = std::thread::Builder::new()
            .name("warden-watch".into())
            .spawn(move || run(&targets, &rx))
            .expect("spawning the watch thread");
        Ok(Self {
            _notify: notify,
            stop: tx,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Target {
    slot: Arc<dyn Reloadable>,
    file: PathBuf,
    sources: Option<PathBuf>,
}

fn watch(
    notify: &mut RecommendedWatcher,
    dir: &Path,
    mode: RecursiveMode,
) -> Result<(), WatchError> {
    notify.watch(dir, mode).map_err(|source| WatchError {
        path: dir.to_owned(),
        source,
    })
}

/// The watch loop: turns events into pending reloads and rebuilds, runs
/// them when due.
fn run(targets: &[Target], rx: &mpsc::Receiver<Message>) {
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    loop {
        let next = pending
            .values()
            .flat_map(|p| [p.reload, p.rebuild])
            .flatten()
            .min();
        let message = match next {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match message {
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Message::Event(event)) => note(targets, &event, &mut pending),
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        for (i, target) in targets.iter().enumerate() {
            let Some(p) = pending.get_mut(&i) else {
                continue;
            };
            if p.rebuild.is_some_and(|due| due <= now) {
                *p = Pending::default();
                report(target, target.slot.rebuild());
            } else if p.reload.is_some_and(|due| due <= now) {
                p.reload = None;
                report(target, target.slot.reload());
            }
        }
        pending.retain(|_, p| p.reload.is_some() || p.rebuild.is_some());
    }
}

/// Records what `event` asks of each target.
fn note(targets: &[Target], event: &notify::Event, pending: &mut HashMap<usize, Pending>) {
    let now = Instant::now();
    for (i, target) in targets.iter().enumerate() {
        for path in &event.paths {
            if *path == target.file {
                let complete = match event.kind {
                    // Renamed into place, or closed after writing: complete.
                    EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                    | EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    // Created or being written: wait for the close, or a pause.
                    EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => false,
                    _ => continue,
                };
                let reload = &mut pending.entry(i).or_default().reload;
                *reload = match *reload {
                    _ if complete => Some(now),
                    Some(due) if due <= now => Some(due),
                    _ => Some(now + SETTLE),
                };
            } else if target
                .sources
                .as_ref()
                .is_some_and(|dir| is_source(dir, path))
                && matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                )
            {
                pending.entry(i).or_default().rebuild = Some(now + DEBOUNCE);
            }
        }
    }
}

/// A path under the crate directory that is part of its sources: not build
/// output, not hidden (editor swap files, `.git`).
fn is_source(dir: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(dir) else {
        return false;
    };
    relative.components().all(|c| match c {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name != "target" && !name.starts_with('.') && !name.ends_with('~')
        }
        _ => true,
    })
}

fn report(target: &Target, result: Result<Reloaded, super::LoadError>) {
    // Swaps and refusals are logged by the slot.
    if let Ok(Reloaded::Unchanged) = result {
        tracing::debug!(file = %target.file.display(), "plugin file unchanged");
    }
}

/// `path` made absolute, with its directory resolved (symlinks followed):
/// the form notify reports event paths in.
fn absolute(path: &Path) -> PathBuf {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir
        .and_then(|d| d.canonicalize().ok())
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .map(|cwd| cwd.join(dir.unwrap_or(Path::new(""))))
        })
        .unwrap_or_default();
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}
