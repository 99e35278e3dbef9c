//! Server-sent events (`text/event-stream`, the WHATWG HTML standard's
//! format): what streaming model APIs answer with.

use std::collections::VecDeque;

use crate::{Error, StreamingResponse};

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `event:` field; `message` when it has none.
    pub event: String,
    /// Its `data:` lines, joined with line feeds.
    pub data: String,
    /// Its `id:` field, when it has one.
    pub id: Option<String>,
}

/// Splits a byte stream into events. Feed it bytes as they arrive
/// ([`Decoder::push`]); an event is complete at its blank line.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// Whether the last byte seen was a carriage return (a `\r\n` may be
    /// split across two pushes).
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream: the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_ended(&String::from_utf8_lossy(&line)) {
                        events.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    /// The stream ended: an event not yet ended by a blank line is
    /// dropped, as the standard says.
    pub fn finish(&mut self) {
        *self = Self::default();
    }

    fn line_ended(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None; // a comment (a keep-alive)
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// The events of a streamed response, each as soon as it is complete:
/// [`StreamingResponse::events`].
#[derive(Debug)]
pub struct Events {
    response: Option<StreamingResponse>,
    decoder: Decoder,
    ready: VecDeque<Event>,
}

impl Events {
    pub(crate) fn new(response: StreamingResponse) -> Self {
        Self {
            response: Some(response),
            decoder: Decoder::new(),
            ready: VecDeque::new(),
        }
    }
}

impl Iterator for Events {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            let response = self.response.as_mut()?;
            match response.next_chunk() {
                Ok(Some(bytes)) => self.ready.extend(self.decoder.push(&bytes)),
                Ok(None) => {
                    self.decoder.finish();
                    self.response = None;
                    return None;
                }
                Err(e) => {
                    self.response = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_end_at_blank_lines_whatever_the_chunks() {
        let text = "data: {\"a\":1}\n\n: keep-alive\n\nevent: done\r\nid: 7\r\ndata: x\r\ndata:y\r\n\r\ndata: [DONE]\n\n";
        let expected = vec![
            event("message", "{\"a\":1}", None),
            event("done", "x\ny", Some("7")),
            event("message", "[DONE]", Some("7")),
        ];
        // Whole, and split at every byte (a CRLF split between two pushes).
        let mut decoder = Decoder::new();
        assert_eq!(decoder.push(text.as_bytes()), expected);
        let mut decoder = Decoder::new();
        let one_by_one: Vec<Event> = text
            .as_bytes()
            .iter()
            .flat_map(|b| decoder.push(&[*b]))
            .collect();
        assert_eq!(one_by_one, expected);
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_dropped() {
        let response = StreamingResponse::scripted(
            200,
            vec![("Content-Type".into(), "text/event-stream".into())],
            ["data: one\n", "\ndata: tw", "o\n"],
        );
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        let events: Vec<_> = response.events().collect();
        assert_eq!(events, vec![Ok(event("message", "one", None))]);
    }
}
