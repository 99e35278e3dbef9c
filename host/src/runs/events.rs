//! The events of one run, kept in order as the graph produces them, for
//! every client streaming or joining it; and their SSE framing.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

/// One event of a run's stream: `event: <name>` / `data: <json>`.
#[derive(Debug, Clone)]
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
}

/// How far a run's log has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// How many events it holds.
    pub len: usize,
    /// Whether the run has left pending/running: no event will follow.
    pub done: bool,
}

/// The ordered events of one run. Writers append; readers follow it from
/// any position and are woken as it grows.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<Vec<StreamEvent>>,
    progress: watch::Sender<Progress>,
    last_ms: Mutex<(u128, u64)>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            progress: watch::Sender::new(Progress::default()),
            last_ms: Mutex::new((0, 0)),
        }
    }
}

impl EventLog {
    /// Appends an event named `event` with `data`.
    pub fn push(&self, event: &str, data: &Value) {
        let id = self.next_id();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(StreamEvent {
            id,
            event: event.to_owned(),
            data: data.to_string(),
        });
        let len = events.len();
        drop(events);
        self.progress.send_modify(|p| p.len = len);
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

    /// How many events it holds now.
    pub fn len(&self) -> usize {
        self.progress.borrow().len
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events from index `from` on.
    pub fn since(&self, from: usize) -> Vec<StreamEvent> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// The index just after the event with id `last_id` (`0-0` or an
    /// unknown id before every event: replay all).
    pub fn position_after(&self, last_id: &str) -> usize {
        let last = id_key(last_id);
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().take_while(|e| id_key(&e.id) <= last).count()
    }

    /// An id just after every event of the log (`<ms>-<seq + 1>` of the
    /// last one): for a marker that follows the run's events.
    pub fn id_after_last(&self) -> String {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let (ms, seq) = events.last().map_or((0, 0), |e| id_key(&e.id));
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
        let events = log.since(0);
        assert_eq!(events.len(), 5);
        assert!(events.windows(2).all(|w| {
            let k = |id: &str| {
                let (a, b) = id.split_once('-').unwrap();
                (a.parse::<u128>().unwrap(), b.parse::<u64>().unwrap())
            };
            k(&w[0].id) < k(&w[1].id)
        }));
        assert_eq!(log.position_after("0-0"), 0);
        assert_eq!(log.position_after(&events[2].id), 3);
        assert_eq!(log.since(3)[0].data, r#"{"i":3}"#);
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
