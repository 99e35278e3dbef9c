//! The events of one run, kept in order as the graph produces them, for
//! every client streaming or joining it; and their SSE framing.
//!
//! A log keeps at most its cap in bytes: past it, the oldest events go, and
//! a reader that had not read them is told so by an `error` event
//! (`EventsDropped`) in their place. Every log adds what it keeps to one
//! [`Retention`] count, the executor's measure of the memory that events
//! hold.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

/// One event of a run's stream: `event: <name>` / `data: <json>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// Its id (`<ms>-<seq>`, Redis-stream style), sent for resumable runs.
    pub id: String,
    /// The event name: the stream mode (`values`, `updates`, ...), or
    /// `metadata` / `error`.
    pub event: String,
    /// The data, as compact JSON.
    pub data: String,
}

impl StreamEvent {
    /// The event as SSE: `event:`, `data:` and, when `with_id`, `id:`.
    pub fn to_sse(&self, with_id: bool) -> Bytes {
        let mut text = format!("event: {}\r\ndata: {}\r\n", self.event, self.data);
        if with_id {
            text.push_str("id: ");
            text.push_str(&self.id);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Bytes::from(text)
    }

    /// The memory it holds, roughly.
    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.id.len() + self.event.len() + self.data.len()
    }
}

/// How far a run's log has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// How many events it has logged (kept or dropped since).
    pub len: usize,
    /// Whether the run has left pending/running: no event will follow.
    pub done: bool,
}

/// What all the logs of an executor keep, together.
#[derive(Debug, Default)]
pub struct Retention {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

impl Retention {
    /// Events kept.
    pub fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// Bytes those events hold.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self, events: usize, bytes: usize) {
        self.events.fetch_add(events, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn remove(&self, events: usize, bytes: usize) {
        self.events.fetch_sub(events, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The events a log keeps.
#[derive(Debug, Default)]
struct Kept {
    events: VecDeque<StreamEvent>,
    /// How many were dropped from the front: the index of `events[0]`.
    dropped: usize,
    /// The id of the last one dropped.
    last_dropped: Option<(u128, u64)>,
    /// The id of the last one logged.
    last: Option<(u128, u64)>,
    bytes: usize,
}

impl Kept {
    fn drop_front(&mut self) -> Option<StreamEvent> {
        let event = self.events.pop_front()?;
        self.dropped += 1;
        self.last_dropped = Some(id_key(&event.id));
        self.bytes -= event.size();
        Some(event)
    }
}

/// The ordered events of one run. Writers append; readers follow it from
/// any position and are woken as it grows.
#[derive(Debug)]
pub struct EventLog {
    kept: Mutex<Kept>,
    progress: watch::Sender<Progress>,
    last_ms: Mutex<(u128, u64)>,
    /// The most bytes kept.
    cap: usize,
    retention: Arc<Retention>,
}

impl Default for EventLog {
    /// A log without a cap, counted on its own.
    fn default() -> Self {
        Self::bounded(usize::MAX, Arc::default())
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let kept = self.kept.get_mut().unwrap_or_else(|e| e.into_inner());
        self.retention.remove(kept.events.len(), kept.bytes);
    }
}

impl EventLog {
    /// A log keeping at most `cap` bytes, counted in `retention`.
    pub fn bounded(cap: usize, retention: Arc<Retention>) -> Self {
        Self {
            kept: Mutex::new(Kept::default()),
            progress: watch::Sender::new(Progress::default()),
            last_ms: Mutex::new((0, 0)),
            cap,
            retention,
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event named `event` with `data`; the oldest go while the
    /// log is past its cap (the newest always stays).
    pub fn push(&self, event: &str, data: &Value) {
        let id = self.next_id();
        let event = StreamEvent {
            id,
            event: event.to_owned(),
            data: data.to_string(),
        };
        self.append(event);
    }

    fn append(&self, event: StreamEvent) {
        let (size, key) = (event.size(), id_key(&event.id));
        let mut kept = self.kept();
        kept.events.push_back(event);
        kept.bytes += size;
        kept.last = Some(key);
        self.retention.add(1, size);
        while kept.bytes > self.cap && kept.events.len() > 1 {
            if let Some(gone) = kept.drop_front() {
                self.retention.remove(1, gone.size());
            }
        }
        let len = kept.dropped + kept.events.len();
        drop(kept);
        self.progress.send_modify(|p| p.len = len);
    }

    /// Appends an event another server logged, with its id.
    pub fn push_received(&self, id: String, event: String, data: String) {
        let event = StreamEvent { id, event, data };
        let key = id_key(&event.id);
        {
            let mut last = self.last_ms.lock().unwrap_or_else(|e| e.into_inner());
            *last = (*last).max(key);
        }
        self.append(event);
    }

    /// Drops every event kept, returning the bytes freed; readers that had
    /// not read them are told.
    pub fn clear(&self) -> usize {
        let mut kept = self.kept();
        let (events, bytes) = (kept.events.len(), kept.bytes);
        while kept.drop_front().is_some() {}
        self.retention.remove(events, bytes);
        bytes
    }

    /// The events and bytes it keeps now.
    pub fn retained(&self) -> (usize, usize) {
        let kept = self.kept();
        (kept.events.len(), kept.bytes)
    }

    /// Marks the log complete: readers end once they have read it all.
    pub fn finish(&self) {
        self.progress.send_modify(|p| p.done = true);
    }

    /// Whether the run has finished.
    pub fn is_done(&self) -> bool {
        self.progress.borrow().done
    }

    /// Follows the log's progress.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// How many events it has logged.
    pub fn len(&self) -> usize {
        self.progress.borrow().len
    }

    /// Whether it has logged no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events from position `from` on, and the position after them.
    /// When some of them were dropped, an `error` event `EventsDropped`
    /// stands first in their place.
    pub fn read(&self, from: usize) -> (Vec<StreamEvent>, usize) {
        let kept = self.kept();
        let end = kept.dropped + kept.events.len();
        let mut events = Vec::new();
        if from < kept.dropped {
            let (ms, seq) = kept.last_dropped.unwrap_or_default();
            let data = json!({
                "error": "EventsDropped",
                "message": format!(
                    "{} events of this run were dropped before this client read them: \
                     the server keeps a bounded amount of each run's events \
                     (`limits.run_events_mib`, `limits.retained_events_mib`)",
                    kept.dropped - from
                ),
            });
            events.push(StreamEvent {
                id: format!("{ms}-{seq}"),
                event: "error".into(),
                data: data.to_string(),
            });
        }
        let skip = from.saturating_sub(kept.dropped);
        events.extend(kept.events.iter().skip(skip).cloned());
        (events, end.max(from))
    }

    /// The position just after the event with id `last_id` (`0-0` or an
    /// unknown id before every event: replay all; an id older than the
    /// dropped events: replay from the first, which reports them).
    pub fn position_after(&self, last_id: &str) -> usize {
        let last = id_key(last_id);
        let kept = self.kept();
        if kept.last_dropped.is_some_and(|dropped| last < dropped) {
            return 0;
        }
        kept.dropped
            + kept
                .events
                .iter()
                .take_while(|e| id_key(&e.id) <= last)
                .count()
    }

    /// An id just after every event of the log (`<ms>-<seq + 1>` of the
    /// last one): for a marker that follows the run's events.
    pub fn id_after_last(&self) -> String {
        let (ms, seq) = self.kept().last.unwrap_or((0, 0));
        format!("{ms}-{}", seq + 1)
    }

    fn next_id(&self) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut last = self.last_ms.lock().unwrap_or_else(|e| e.into_inner());
        *last = if ms > last.0 {
            (ms, 0)
        } else {
            (last.0, last.1 + 1)
        };
        format!("{}-{}", last.0, last.1)
    }
}

/// An event id (`<ms>-<seq>`, or `<ms>`) as a sortable key; anything
/// unparsable sorts first.
pub fn id_key(id: &str) -> (u128, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_increase_and_resume_after_an_id() {
        let log = EventLog::default();
        for i in 0..5 {
            log.push("values", &json!({ "i": i }));
        }
        let (events, next) = log.read(0);
        assert_eq!((events.len(), next), (5, 5));
        assert!(events.windows(2).all(|w| {
            let k = |id: &str| {
                let (a, b) = id.split_once('-').unwrap();
                (a.parse::<u128>().unwrap(), b.parse::<u64>().unwrap())
            };
            k(&w[0].id) < k(&w[1].id)
        }));
        assert_eq!(log.position_after("0-0"), 0);
        assert_eq!(log.position_after(&events[2].id), 3);
        assert_eq!(log.read(3).0[0].data, r#"{"i":3}"#);
    }

    #[test]
    fn a_log_past_its_cap_drops_its_oldest_events_and_tells_a_reader_who_missed_them() {
        let retention = Arc::new(Retention::default());
        let big = "x".repeat(1000);
        let log = EventLog::bounded(3500, retention.clone());
        for i in 0..10 {
            log.push("values", &json!({ "i": i, "pad": big }));
        }
        let (events, bytes) = log.retained();
        assert_eq!(events, 3, "three events of ~1.1 KB fit in 3500 bytes");
        assert!(bytes <= 3500);
        assert_eq!((retention.events(), retention.bytes()), (events, bytes));
        assert_eq!(log.len(), 10, "positions count every event logged");

        // A reader at 0 missed seven events: told, then given the rest.
        let (read, next) = log.read(0);
        assert_eq!(next, 10);
        assert_eq!(read[0].event, "error");
        assert!(read[0].data.contains("EventsDropped"), "{}", read[0].data);
        assert!(read[0].data.contains("7 events"), "{}", read[0].data);
        assert_eq!(read.len(), 4);
        assert!(read[1].data.contains(r#""i":7"#));
        // A reader that kept up is not.
        let (read, _) = log.read(8);
        assert_eq!(read.len(), 2);
        assert!(read[0].data.contains(r#""i":8"#));
        // Resuming after a dropped id replays from the report.
        let first = log.read(7).0[0].id.clone();
        assert_eq!(log.position_after("1-0"), 0);
        assert_eq!(log.position_after(&first), 8);

        assert_eq!(log.clear(), bytes);
        assert_eq!((retention.events(), retention.bytes()), (0, 0));
        assert_eq!(log.read(10), (Vec::new(), 10));
        let log2 = EventLog::bounded(usize::MAX, retention.clone());
        log2.push("values", &json!({}));
        assert_eq!(retention.events(), 1);
        drop(log2);
        assert_eq!(
            (retention.events(), retention.bytes()),
            (0, 0),
            "a dropped log is uncounted"
        );
    }

    #[test]
    fn sse_framing_puts_the_id_after_the_data() {
        let event = StreamEvent {
            id: "1-0".into(),
            event: "values".into(),
            data: "{}".into(),
        };
        assert_eq!(
            event.to_sse(true),
            Bytes::from("event: values\r\ndata: {}\r\nid: 1-0\r\n\r\n")
        );
        assert_eq!(
            event.to_sse(false),
            Bytes::from("event: values\r\ndata: {}\r\n\r\n")
        );
    }
}
