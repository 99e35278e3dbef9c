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
//! rebuilds the crate once that file's edits pause for [`DEBOUNCE`], then
//! swaps in the result.
//!
//! Where no event comes (network filesystems, a Kubernetes volume's
//! symlink swap), the component files are also polled every
//! [`POLL`](super::poll::POLL) (see [`super::poll`]).
//!
//! The waiting is `notify-debouncer-full`'s: one debouncer settles the
//! component files, another the sources. Renames and closes, which need no
//! wait, come straight from a plain `notify` watcher (the settled event
//! that follows them finds the file unchanged). One thread polls, and runs
//! the reloads and rebuilds, one at a time.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify_debouncer_full::notify::{
    self, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _,
};
use notify_debouncer_full::{DebounceEventResult, RecommendedCache};

use super::poll::{Fingerprint, POLL, Polled};
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

type Debouncer = notify_debouncer_full::Debouncer<RecommendedWatcher, RecommendedCache>;

/// The running watch. Dropping it stops watching.
pub struct Watcher {
    stop: Sender<Message>,
    thread: Option<JoinHandle<()>>,
    _complete: RecommendedWatcher,
    _settled: Debouncer,
    _sources: Option<Debouncer>,
}

/// Where a batch of events comes from, and so what it may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Renames and closes after writing, as they happen: a file complete.
    Complete,
    /// Component-file events once the file has been quiet for [`SETTLE`].
    Settled,
    /// Crate-source events once each file has been quiet for [`DEBOUNCE`].
    Sources,
}

enum Message {
    Events(Source, Vec<Event>),
    Stop,
}

/// What one batch of messages asks of a slot; a rebuild reloads too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Reload,
    Rebuild,
}

impl Watcher {
    /// Watches, and polls, the component file of every slot (and, with
    /// `rebuild_sources`, watches the crate directory of those built from
    /// one).
    pub fn start(
        slots: Vec<Arc<dyn Reloadable>>,
        rebuild_sources: bool,
    ) -> Result<Self, WatchError> {
        let (tx, rx) = mpsc::channel();
        let mut complete = complete_watcher(&tx)?;
        let mut settled = debouncer(Source::Settled, SETTLE, &tx)?;
        let mut sources = None;

        let mut targets = Vec::new();
        for slot in &slots {
            let file = absolute(slot.component());
            let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
            complete
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError {
                    path: dir.clone(),
                    source,
                })?;
            watch(&mut settled, &dir, RecursiveMode::NonRecursive)?;
            let crate_sources = match slot.source_dir() {
                Some(dir) if rebuild_sources => {
                    let dir = dir.canonicalize().unwrap_or_else(|_| absolute(&dir));
                    let debouncer = match &mut sources {
                        Some(debouncer) => debouncer,
                        None => sources.insert(debouncer(Source::Sources, DEBOUNCE, &tx)?),
                    };
                    watch(debouncer, &dir, RecursiveMode::Recursive)?;
                    Some(dir)
                }
                _ => None,
            };
            tracing::info!(
                plugin = %slot.name(),
                file = %file.display(),
                sources = %crate_sources.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                "watching for new versions"
            );
            targets.push(Target {
                slot: Arc::clone(slot),
                polled: Polled::new(Fingerprint::of(&file)),
                file,
                sources: crate_sources,
            });
        }
        let thread = std::thread::Builder::new()
            .name("warden-watch".into())
            .spawn(move || run(&mut targets, &rx))
            .expect("spawning the watch thread");
        Ok(Self {
            stop: tx,
            thread: Some(thread),
            _complete: complete,
            _settled: settled,
            _sources: sources,
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
    polled: Polled,
}

/// A plain watcher that passes on, as they happen, the events that mark a
/// file complete: renamed into place, or closed after writing.
fn complete_watcher(tx: &Sender<Message>) -> Result<RecommendedWatcher, WatchError> {
    let tx = tx.clone();
    notify::recommended_watcher(move |event: notify::Result<Event>| match event {
        Ok(event) if is_complete(&event.kind) => {
            let _ = tx.send(Message::Events(Source::Complete, vec![event]));
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "plugin file watch error"),
    })
    .map_err(|source| WatchError {
        path: PathBuf::new(),
        source,
    })
}

/// A debouncer that passes on its events, tagged `source`, once each file
/// has been quiet for `timeout`.
fn debouncer(
    source: Source,
    timeout: Duration,
    tx: &Sender<Message>,
) -> Result<Debouncer, WatchError> {
    let tx = tx.clone();
    notify_debouncer_full::new_debouncer(timeout, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let events = events.into_iter().map(|e| e.event).collect();
                let _ = tx.send(Message::Events(source, events));
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(%error, "plugin file watch error");
                }
            }
        }
    })
    .map_err(|source| WatchError {
        path: PathBuf::new(),
        source,
    })
}

fn watch(debouncer: &mut Debouncer, dir: &Path, mode: RecursiveMode) -> Result<(), WatchError> {
    debouncer.watch(dir, mode).map_err(|source| WatchError {
        path: dir.to_owned(),
        source,
    })
}

/// The watch loop: takes every batch queued and, every [`POLL`], polls
/// the files; then runs what they ask of each target (a rebuild rather
/// than a reload when both are asked), until stopped.
fn run(targets: &mut [Target], rx: &Receiver<Message>) {
    let mut next_poll = Instant::now() + POLL;
    loop {
        let mut asked: HashMap<usize, Action> = HashMap::new();
        let mut ask = |i: usize, action: Action| {
            let slot = asked.entry(i).or_insert(action);
            *slot = (*slot).max(action);
        };
        let first = match rx.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
            Ok(first) => Some(first),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        for message in first.into_iter().chain(rx.try_iter()) {
            let Message::Events(source, events) = message else {
                return;
            };
            for (i, target) in targets.iter().enumerate() {
                let sources = target.sources.as_deref();
                if let Some(action) = asks(&target.file, sources, source, &events) {
                    ask(i, action);
                }
            }
        }
        if Instant::now() >= next_poll {
            for (i, target) in targets.iter_mut().enumerate() {
                if target.polled.poll(Fingerprint::of(&target.file)) {
                    tracing::debug!(file = %target.file.display(), "plugin file changed (polled)");
                    ask(i, Action::Reload);
                }
            }
            next_poll = Instant::now() + POLL;
        }
        for (i, action) in asked {
            let target = &mut targets[i];
            let before = Fingerprint::of(&target.file);
            let result = match action {
                Action::Reload => target.slot.reload(),
                Action::Rebuild => target.slot.rebuild(),
            };
            target.polled.loaded(before);
            report(target, result);
        }
    }
}

/// What `events` from `source` ask of a target watching `file` (and, in
/// development, the crate sources in `sources`), if anything.
fn asks(file: &Path, sources: Option<&Path>, source: Source, events: &[Event]) -> Option<Action> {
    let at_file = |e: &Event| e.paths.last().is_some_and(|path| path == file);
    let hit = match source {
        Source::Complete => events.iter().any(|e| is_complete(&e.kind) && at_file(e)),
        Source::Settled => events.iter().any(|e| is_write(&e.kind) && at_file(e)),
        Source::Sources => sources.is_some_and(|dir| events.iter().any(|e| edits(dir, e))),
    };
    hit.then_some(match source {
        Source::Sources => Action::Rebuild,
        Source::Complete | Source::Settled => Action::Reload,
    })
}

/// Renamed into place (a rename's paths are `[from, to]`: only the last is
/// new content), or closed after writing: the file is complete.
fn is_complete(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Any event that puts new content at a path: created (a hard link),
/// written, renamed into place, closed after writing. Opening and reading
/// (the host's own reload does) are not.
fn is_write(kind: &EventKind) -> bool {
    is_complete(kind)
        || matches!(
            kind,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        )
}

/// Whether `event` edits a source file of the crate in `dir` (reads, such
/// as cargo's during a rebuild, do not).
fn edits(dir: &Path, event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    ) && event.paths.iter().any(|path| is_source(dir, path))
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
            !matches!(&*name, "target" | "node_modules" | "__pycache__")
                && !name.starts_with('.')
                && !name.ends_with('~')
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

#[cfg(test)]
mod tests {
    use notify_debouncer_full::notify::event::{CreateKind, DataChange};

    use super::*;

    const FILE: &str = "/p/auth.wasm";
    const CREATED: EventKind = EventKind::Create(CreateKind::File);
    const RENAMED: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
    const WRITTEN: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    const CLOSED: EventKind = EventKind::Access(AccessKind::Close(AccessMode::Write));
    const OPENED: EventKind = EventKind::Access(AccessKind::Open(AccessMode::Any));

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(p.into()))
    }

    fn file_asks(source: Source, kind: EventKind, paths: &[&str]) -> Option<Action> {
        asks(Path::new(FILE), None, source, &[event(kind, paths)])
    }

    #[test]
    fn renames_and_closes_reload_at_once_other_writes_once_settled() {
        let over = &["/p/.auth.wasm.new", FILE];
        for (kind, paths) in [(RENAMED, &over[..]), (CLOSED, &[FILE])] {
            assert_eq!(
                file_asks(Source::Complete, kind, paths),
                Some(Action::Reload)
            );
            assert_eq!(
                file_asks(Source::Settled, kind, paths),
                Some(Action::Reload)
            );
        }
        for kind in [CREATED, WRITTEN] {
            assert_eq!(file_asks(Source::Complete, kind, &[FILE]), None, "{kind:?}");
            assert_eq!(
                file_asks(Source::Settled, kind, &[FILE]),
                Some(Action::Reload)
            );
        }
    }

    #[test]
    fn reads_renames_away_and_other_files_reload_nothing() {
        for source in [Source::Complete, Source::Settled] {
            assert_eq!(
                file_asks(source, OPENED, &[FILE]),
                None,
                "the host's own read"
            );
            let away = &[FILE, "/p/old.wasm"];
            assert_eq!(file_asks(source, RENAMED, away), None);
            assert_eq!(file_asks(source, CLOSED, &["/p/other.wasm"]), None);
        }
    }

    #[test]
    fn source_edits_rebuild_but_reads_and_build_output_do_not() {
        let rebuilds = |kind, path| {
            let events = [event(kind, &[path])];
            asks(
                Path::new(FILE),
                Some(Path::new("/c")),
                Source::Sources,
                &events,
            )
        };
        assert_eq!(rebuilds(WRITTEN, "/c/src/lib.rs"), Some(Action::Rebuild));
        assert_eq!(rebuilds(OPENED, "/c/src/lib.rs"), None, "cargo reading");
        assert_eq!(rebuilds(WRITTEN, "/c/target/debug/x"), None);
        assert_eq!(rebuilds(WRITTEN, "/c/src/.lib.rs.swp"), None);
        assert_eq!(rebuilds(WRITTEN, "/elsewhere/lib.rs"), None);
    }
}
