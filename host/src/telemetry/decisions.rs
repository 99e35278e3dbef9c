//! The auth decision log: one JSON line per authentication and per
//! authorization decision, written by a thread of its own from a bounded
//! buffer, so a request only hands its record over.
//!
//! What a record holds is in [`Decision`]. What it never holds: a
//! credential (the `authorization`, `cookie` and API-key headers cannot be
//! named for logging) nor one of the plugin's secrets (what the plugin
//! returns is blanked of them before it is recorded). Header values and user
//! fields appear only when the configuration names them. Allowed decisions
//! are sampled per request (all of a request's records, or none); denials
//! and faults are always written.

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use warden_types::{Event, On};

/// Headers that carry credentials: never written, whatever the
/// configuration names.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// What to do with a record when the buffer is full (the writer is behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Drop the record and count it (`warden_decision_log_dropped_total`):
    /// requests never wait for the log.
    Drop,
    /// Wait for room (counted in `warden_decision_log_blocked_total`):
    /// no record is lost, and a slow disk slows requests.
    Block,
}

/// How the decision log is set up (`auth.decision_log`).
#[derive(Debug, Clone)]
pub struct DecisionLogSettings {
    /// The file records are appended to, if any.
    pub file: Option<PathBuf>,
    /// Whether records go to standard output too.
    pub stdout: bool,
    /// How many records may wait for the writer.
    pub buffer: usize,
    /// What a full buffer does.
    pub when_full: WhenFull,
    /// The share of requests whose allowed decisions are written (0–1).
    pub sample_allowed: f64,
    /// Request headers whose values are written (lower case).
    pub headers: Vec<String>,
    /// User fields written besides the identity (`permissions`,
    /// `display_name`, or a field of the user's extra fields).
    pub user_fields: Vec<String>,
}

/// The decision log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DecisionLogError {
    /// The file could not be opened for appending.
    #[error("cannot open the decision log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the decision log's writer: {0}")]
    Thread(io::Error),
}

/// Which call a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `authenticate` (or its `auth.cache` result).
    Authenticate,
    /// An authorization event's handler.
    Authorize,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed, unfiltered (authenticated, for `authenticate`).
    Allow,
    /// Refused: `status` and `detail` say how.
    Deny,
    /// Allowed within `filter`.
    Filter,
    /// The plugin faulted (`fault` says how): the request failed closed.
    Fault,
}

impl Outcome {
    /// The outcome's name, as in the log and the metrics' labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Filter => "filter",
            Outcome::Fault => "fault",
        }
    }

    /// Whether its record is written whatever the sample rate.
    pub fn is_always_written(self) -> bool {
        matches!(self, Outcome::Deny | Outcome::Fault)
    }
}

/// Whether `authenticate` ran or `auth.cache` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// `auth.cache` held the user: no plugin call.
    Hit,
    /// `auth.cache` is on and `authenticate` ran.
    Miss,
}

/// The plugin version that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginVersion {
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// The contract it was built for (`warden:auth@0.2.0`).
    pub contract: String,
}

/// One decision, as a line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// When it was decided (RFC 3339, microseconds; written by the writer
    /// thread).
    #[serde(serialize_with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The request's id (`x-request-id`).
    #[serde(serialize_with = "text")]
    pub request_id: Arc<str>,
    /// The request's method.
    pub method: &'static str,
    /// The route template (`/threads/{thread_id}`), or the path when no
    /// route matched.
    #[serde(serialize_with = "text")]
    pub route: Arc<str>,
    /// Which call.
    pub kind: Kind,
    /// The user's identity; absent when authentication failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The authorization event (`threads.create`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "event")]
    pub event: Option<Event>,
    /// The handler that ran (`threads.create`, `threads.*`, `*.create`,
    /// `*`), or `null`: no handler covers the event and the plugin was not
    /// called.
    #[serde(serialize_with = "handler")]
    pub handler: Option<Handler>,
    /// What was decided.
    pub outcome: Outcome,
    /// The filter, for [`Outcome::Filter`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// The answer's status, for [`Outcome::Deny`] and [`Outcome::Fault`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The answer's detail, for [`Outcome::Deny`] and [`Outcome::Fault`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The keys of the event's value the handler set or changed
    /// (`metadata.owner`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stamped: Vec<String>,
    /// How long the plugin call took, in microseconds (0 without a call).
    pub latency_us: u64,
    /// The plugin version that decided; absent when no plugin ran
    /// (Studio's bypass).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "shared")]
    pub plugin: Option<Arc<PluginVersion>>,
    /// For `authenticate` with `auth.cache` on: whether the cache answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
    /// For [`Outcome::Fault`]: its kind (`timeout`, `memory limit`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// The request headers the configuration names, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "shared")]
    pub headers: Option<Arc<Map<String, Value>>>,
    /// The user fields the configuration names, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Map<String, Value>>,
}

/// Who decided: a handler of the plugin, or Studio's bypass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The plugin's handler for these events.
    On(On),
    /// Studio's bypass let the request in without `authenticate`.
    StudioBypass,
}

/// A handler's key as written in a plugin: `threads.create`, `threads.*`,
/// `*.create`, `*`.
pub fn handler_name(handler: On) -> String {
    match handler {
        On::Event(r, a) => format!("{r}.{a}"),
        On::Resource(r) => format!("{r}.*"),
        On::Action(a) => format!("*.{a}"),
        On::All => "*".to_owned(),
    }
}

fn rfc3339<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::timestamp::format(*time))
}

// Without serde's `rc` feature (which would rebuild every crate that uses
// serde): shared values serialize as what they share.
fn text<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

fn shared<T: Serialize, S: Serializer>(value: &Option<Arc<T>>, s: S) -> Result<S::Ok, S::Error> {
    value.as_deref().serialize(s)
}

fn event<S: Serializer>(event: &Option<Event>, s: S) -> Result<S::Ok, S::Error> {
    match event {
        Some(event) => s.collect_str(event),
        None => s.serialize_none(),
    }
}

fn handler<S: Serializer>(handler: &Option<Handler>, s: S) -> Result<S::Ok, S::Error> {
    match handler {
        Some(Handler::On(on)) => s.serialize_str(&handler_name(*on)),
        Some(Handler::StudioBypass) => s.serialize_str("studio bypass"),
        None => s.serialize_none(),
    }
}

/// The decision log's counters, shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct LogCounters {
    /// Records handed to the writer.
    pub records: Counter,
    /// Records dropped because the buffer was full.
    pub dropped: Counter,
    /// Records that waited for room in the buffer.
    pub blocked: Counter,
}

/// The decision log: [`DecisionLog::record`] hands a record to the writer
/// thread; dropping the log writes what is buffered and stops the thread.
pub struct DecisionLog {
    /// The version of the last record's plugin, shared by the records of
    /// that version.
    version: ArcSwapOption<PluginVersion>,
    buffer: Arc<Buffer>,
    writer: Option<JoinHandle<()>>,
    settings: DecisionLogSettings,
    counters: LogCounters,
}

/// How often the writer takes what the buffer holds. A request never wakes
/// it (a wake-up per record costs a thread switch, more than the record),
/// except to make room once the buffer is half full.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The records waiting for the writer.
struct Buffer {
    state: Mutex<Pending>,
    /// Wakes the writer early: the buffer is half full, or the log closes.
    fill: Condvar,
    /// Wakes requests waiting for room (`when_full: block`).
    room: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Pending {
    records: Vec<Decision>,
    closed: bool,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// Opens the log's file (appending) and starts its writer.
    pub fn open(settings: DecisionLogSettings) -> Result<Self, DecisionLogError> {
        let mut sinks: Vec<Box<dyn Write + Send>> = Vec::new();
        if let Some(path) = &settings.file {
            sinks.push(Box::new(append(path)?));
        }
        if settings.stdout {
            sinks.push(Box::new(io::stdout()));
        }
        Self::with_sinks(settings, sinks)
    }

    /// A log writing to `sinks` (each record to each).
    pub fn with_sinks(
        settings: DecisionLogSettings,
        sinks: Vec<Box<dyn Write + Send>>,
    ) -> Result<Self, DecisionLogError> {
        let buffer = Arc::new(Buffer {
            state: Mutex::default(),
            fill: Condvar::new(),
            room: Condvar::new(),
            capacity: settings.buffer.max(1),
        });
        let taken = buffer.clone();
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_records(&taken, sinks))
            .map_err(DecisionLogError::Thread)?;
        Ok(Self {
            version: ArcSwapOption::empty(),
            buffer,
            writer: Some(writer),
            settings,
            counters: LogCounters::default(),
        })
    }

    /// The plugin version `digest` (`contract`), shared with the records
    /// of the same version before.
    pub fn version(&self, digest: &str, contract: &str) -> Arc<PluginVersion> {
        if let Some(last) = self.version.load_full()
            && last.digest == digest
        {
            return last;
        }
        let version = Arc::new(PluginVersion {
            digest: digest.to_owned(),
            contract: format!("warden:auth@{contract}"),
        });
        self.version.store(Some(version.clone()));
        version
    }

    /// The log's counters.
    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &DecisionLogSettings {
        &self.settings
    }

    /// Whether the allowed decisions of the request `request_id` are
    /// written: the same answer for all of its records.
    pub fn samples(&self, request_id: &str) -> bool {
        let rate = self.settings.sample_allowed;
        if rate >= 1.0 {
            return true;
        }
        if rate <= 0.0 {
            return false;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        request_id.hash(&mut hasher);
        (hasher.finish() as f64 / u64::MAX as f64) < rate
    }

    /// Hands `decision` to the writer, unless it is an allowed decision of
    /// a request outside the sample (`sampled`).
    pub fn record(&self, decision: Decision, sampled: bool) {
        if !(sampled || decision.outcome.is_always_written()) {
            return;
        }
        let buffer = &self.buffer;
        let mut pending = buffer.lock();
        if pending.records.len() >= buffer.capacity {
            match self.settings.when_full {
                WhenFull::Drop => {
                    self.counters.dropped.inc();
                    return;
                }
                WhenFull::Block => {
                    self.counters.blocked.inc();
                    buffer.fill.notify_one();
                    pending = buffer
                        .room
                        .wait_while(pending, |p| p.records.len() >= buffer.capacity && !p.closed)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        if pending.closed {
            self.counters.dropped.inc();
            return;
        }
        pending.records.push(decision);
        self.counters.records.inc();
        if pending.records.len() == buffer.capacity.div_ceil(2) {
            buffer.fill.notify_one();
        }
    }

    /// The request headers of `headers` the configuration names, credentials
    /// never; `None` when none is present.
    pub fn headers<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<Arc<Map<String, Value>>> {
        if self.settings.headers.is_empty() {
            return None;
        }
        let picked: Map<String, Value> = headers
            .into_iter()
            .filter(|(name, _)| {
                !is_credential(name) && self.settings.headers.iter().any(|h| h == name)
            })
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect();
        (!picked.is_empty()).then(|| Arc::new(picked))
    }

    /// The user fields the configuration names, from the user as JSON;
    /// `None` when none is present.
    pub fn user_fields(
        &self,
        user: impl FnOnce() -> Map<String, Value>,
    ) -> Option<Map<String, Value>> {
        if self.settings.user_fields.is_empty() {
            return None;
        }
        let user = user();
        let picked: Map<String, Value> = self
            .settings
            .user_fields
            .iter()
            .filter_map(|field| Some((field.clone(), user.get(field)?.clone())))
            .collect();
        (!picked.is_empty()).then_some(picked)
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        // The writer writes what is left, then ends.
        self.buffer.lock().closed = true;
        self.buffer.fill.notify_one();
        self.buffer.room.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Whether `name` (lower case) is a header that carries credentials.
pub fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS.contains(&name)
}

fn append(path: &Path) -> Result<File, DecisionLogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| DecisionLogError::Open {
            path: path.to_owned(),
            source,
        })
}

/// The most bytes of records written at once.
const BATCH_BYTES: usize = 64 * 1024;

/// The writer thread: every [`FLUSH_INTERVAL`] (or sooner, when the
/// buffer is half full) it takes the records waiting, serializes each to a
/// line and writes them in batches of at most [`BATCH_BYTES`], each batch
/// in one `write` per sink: with the file opened for appending, servers
/// that share a file never interleave inside a line.
fn write_records(buffer: &Buffer, mut sinks: Vec<Box<dyn Write + Send>>) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut taken = Vec::new();
    loop {
        let closed = {
            let mut pending = buffer.lock();
            if pending.records.is_empty() && !pending.closed {
                pending = buffer
                    .fill
                    .wait_timeout(pending, FLUSH_INTERVAL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut taken, &mut pending.records);
            pending.closed
        };
        buffer.room.notify_all();
        for decision in taken.drain(..) {
            if serde_json::to_writer(&mut batch, &decision).is_ok() {
                batch.push(b'\n');
            }
            if batch.len() >= BATCH_BYTES {
                write_batch(&mut sinks, &mut batch);
            }
        }
        write_batch(&mut sinks, &mut batch);
        if closed && buffer.lock().records.is_empty() {
            return;
        }
    }
}

fn write_batch(sinks: &mut [Box<dyn Write + Send>], batch: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    for sink in sinks.iter_mut() {
        if let Err(e) = sink.write_all(batch).and_then(|()| sink.flush()) {
            tracing::error!("cannot write the decision log: {e}");
        }
    }
    batch.clear();
}

/// The keys of `after` that differ from `before`: top-level keys, and
/// `metadata.<key>` inside their `metadata` objects.
pub fn changed_keys(before: &Value, after: &Value) -> Vec<String> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return if before == after {
            Vec::new()
        } else {
            vec![String::new()]
        };
    };
    let mut changed = Vec::new();
    for (key, value) in after {
        let old = before.get(key);
        if old == Some(value) {
            continue;
        }
        match (
            key.as_str(),
            old.and_then(Value::as_object),
            value.as_object(),
        ) {
            ("metadata", old, Some(new)) => {
                let empty = Map::new();
                let old = old.unwrap_or(&empty);
                changed.extend(
                    new.iter()
                        .filter(|(k, v)| old.get(*k) != Some(*v))
                        .map(|(k, _)| format!("metadata.{k}")),
                );
            }
            _ => changed.push(key.clone()),
        }
    }
    changed.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
    changed
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Condvar, Mutex};

    use serde_json::json;
    use warden_types::{Action, Resource};

    use super::*;

    fn settings(buffer: usize, when_full: WhenFull) -> DecisionLogSettings {
        DecisionLogSettings {
            file: None,
            stdout: false,
            buffer,
            when_full,
            sample_allowed: 1.0,
            headers: vec!["x-tenant".into(), "authorization".into()],
            user_fields: vec!["permissions".into()],
        }
    }

    fn decision(outcome: Outcome) -> Decision {
        Decision {
            time: Utc::now(),
            request_id: "r1".into(),
            method: "GET",
            route: "/threads/{thread_id}".into(),
            kind: Kind::Authorize,
            identity: Some("user1".into()),
            event: Event::new(Resource::Threads, Action::Read),
            handler: Some(Handler::On(On::Resource(Resource::Threads))),
            outcome,
            filter: None,
            status: None,
            detail: None,
            stamped: Vec::new(),
            latency_us: 3,
            plugin: None,
            cache: None,
            fault: None,
            headers: None,
            user: None,
        }
    }

    /// A sink whose writes wait until the test opens its gate, and keep
    /// what they wrote.
    #[derive(Clone, Default)]
    struct Gated {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Gated {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }

        fn lines(&self) -> Vec<Value> {
            let written = self.written.lock().unwrap();
            String::from_utf8_lossy(&written)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, opened) = &*self.open;
            let _open = opened
                .wait_while(open.lock().unwrap(), |open| !*open)
                .unwrap();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Hands records to `log` until one is not taken at once: the writer
    /// is stuck on the gate and the buffer is full.
    fn fill(log: &DecisionLog) -> u64 {
        let mut handed = 0;
        while log.counters().dropped.get() == 0 {
            log.record(decision(Outcome::Deny), true);
            handed += 1;
            assert!(handed < 1000, "the buffer never filled");
        }
        handed
    }

    #[test]
    fn a_full_buffer_drops_and_counts_when_set_to_drop() {
        let sink = Gated::default();
        let log =
            DecisionLog::with_sinks(settings(4, WhenFull::Drop), vec![Box::new(sink.clone())])
                .unwrap();
        let handed = fill(&log);
        let (records, dropped) = (log.counters().records.get(), log.counters().dropped.get());
        assert_eq!(records + dropped, handed);
        // The buffer's four, and what the writer took before it stuck.
        assert!(records >= 4, "{records} records taken");
        sink.open();
        drop(log);
        assert_eq!(sink.lines().len() as u64, records);
    }

    #[test]
    fn a_full_buffer_waits_and_loses_nothing_when_set_to_block() {
        let sink = Gated::default();
        let log = Arc::new(
            DecisionLog::with_sinks(settings(2, WhenFull::Block), vec![Box::new(sink.clone())])
                .unwrap(),
        );
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    log.record(decision(Outcome::Deny), true);
                }
            })
        };
        // The thread handing records over waits for room: it is counted.
        let mut polls = 0;
        while log.counters().blocked.get() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            polls += 1;
            assert!(polls < 60_000, "never blocked");
        }
        sink.open();
        writer.join().unwrap();
        let log = Arc::into_inner(log).unwrap();
        assert_eq!(log.counters().dropped.get(), 0);
        assert_eq!(log.counters().records.get(), 10);
        drop(log);
        assert_eq!(sink.lines().len(), 10);
    }

    #[test]
    fn allowed_decisions_are_sampled_per_request_and_denials_and_faults_always_kept() {
        let sink = Gated::default();
        sink.open();
        let mut none = settings(8, WhenFull::Block);
        none.sample_allowed = 0.0;
        let log = DecisionLog::with_sinks(none, vec![Box::new(sink.clone())]).unwrap();
        assert!(!log.samples("r1"));
        for outcome in [
            Outcome::Allow,
            Outcome::Filter,
            Outcome::Deny,
            Outcome::Fault,
        ] {
            log.record(decision(outcome), log.samples("r1"));
        }
        drop(log);
        let outcomes: Vec<Value> = sink.lines().iter().map(|l| l["outcome"].clone()).collect();
        assert_eq!(outcomes, [json!("deny"), json!("fault")]);

        let mut half = settings(8, WhenFull::Block);
        half.sample_allowed = 0.5;
        let log = DecisionLog::with_sinks(half, Vec::new()).unwrap();
        let sampled = (0..10_000)
            .filter(|i| log.samples(&format!("request-{i}")))
            .count();
        assert!((4_000..6_000).contains(&sampled), "{sampled} of 10 000");
        assert_eq!(log.samples("request-7"), log.samples("request-7"));
    }

    #[test]
    fn only_named_headers_and_user_fields_are_kept_and_credentials_never() {
        let log = DecisionLog::with_sinks(settings(1, WhenFull::Drop), Vec::new()).unwrap();
        let headers = log.headers([
            ("x-tenant", "acme"),
            ("authorization", "Bearer user1-token"),
            ("x-other", "no"),
        ]);
        assert_eq!(headers.as_deref(), json!({"x-tenant": "acme"}).as_object());
        let user = json!({"identity": "u", "permissions": ["read"], "email": "u@x"});
        assert_eq!(
            log.user_fields(|| user.as_object().cloned().unwrap()),
            json!({"permissions": ["read"]}).as_object().cloned()
        );
        assert_eq!(log.headers([("x-other", "no")]), None);
    }

    #[test]
    fn changed_keys_name_stamped_metadata_and_changed_fields() {
        let before = json!({"metadata": {"a": 1, "owner": "spoof"}, "thread_id": "t"});
        let after = json!({"metadata": {"a": 1, "owner": "user1", "org": "x"}, "thread_id": "t"});
        assert_eq!(
            changed_keys(&before, &after),
            ["metadata.owner", "metadata.org"]
        );
        let before = json!({"value": {"x": 1}, "namespace": ["a"]});
        let after = json!({"value": {"x": 2}});
        assert_eq!(changed_keys(&before, &after), ["value", "namespace"]);
        assert!(changed_keys(&before, &before).is_empty());
    }
}
