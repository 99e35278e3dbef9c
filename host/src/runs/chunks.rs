//! The `messages` stream mode's partial messages: a graph streams a
//! model's answer as `AIMessageChunk`s (the `messages-tuple` mode passes
//! them on as they are); the `messages` mode sends, after each one, the
//! answer so far as a whole `ai` message (`messages/partial`), the chunks
//! added up as LangChain's `AIMessageChunk.__add__` does and turned into a
//! message as `message_chunk_to_message` does (langgraph-api 0.16.7's
//! `stream.py`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Whether `message` is a chunk of one (`AIMessageChunk`, ...).
pub(crate) fn is_chunk(message: &Value) -> bool {
    message["type"]
        .as_str()
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunk"))
}

/// The chunks of each streamed message so far, added up, by message id.
#[derive(Debug, Default)]
pub(crate) struct Partials {
    sums: HashMap<String, Value>,
}

impl Partials {
    /// Adds `chunk` to the message `id`'s sum: the message so far, as a
    /// whole message.
    pub(crate) fn add(&mut self, id: &str, chunk: &Value) -> Value {
        let sum = match self.sums.remove(id) {
            Some(mut sum) => {
                add_chunk(&mut sum, chunk);
                sum
            }
            None => chunk.clone(),
        };
        let message = to_message(&sum);
        self.sums.insert(id.to_owned(), sum);
        message
    }
}

/// `sum += chunk`, as `AIMessageChunk.__add__`: contents concatenated,
/// metadata merged, tool-call chunks merged by index, usage summed.
fn add_chunk(sum: &mut Value, chunk: &Value) {
    match (&mut sum["content"], &chunk["content"]) {
        (Value::String(a), Value::String(b)) => a.push_str(b),
        (Value::Array(a), Value::Array(b)) => a.extend(b.iter().cloned()),
        (a, b) if !b.is_null() && b != "" => *a = b.clone(),
        _ => {}
    }
    for key in ["additional_kwargs", "response_metadata"] {
        if let (Some(into), Some(from)) = (sum[key].as_object_mut(), chunk[key].as_object()) {
            merge_dicts(into, from);
        } else if sum[key].is_null() {
            sum[key] = chunk[key].clone();
        }
    }
    if let Some(from) = chunk["tool_call_chunks"].as_array() {
        if !sum["tool_call_chunks"].is_array() {
            sum["tool_call_chunks"] = json!([]);
        }
        let into = sum["tool_call_chunks"].as_array_mut().expect("an array");
        for piece in from {
            let index = &piece["index"];
            match into
                .iter_mut()
                .find(|c| !index.is_null() && &c["index"] == index)
            {
                Some(call) => {
                    for key in ["name", "args", "id"] {
                        if let Some(more) = piece[key].as_str() {
                            let text = format!("{}{more}", call[key].as_str().unwrap_or(""));
                            call[key] = text.into();
                        }
                    }
                }
                None => into.push(piece.clone()),
            }
        }
    }
    match (&mut sum["usage_metadata"], &chunk["usage_metadata"]) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match (a.get(key).and_then(Value::as_i64), value.as_i64()) {
                    (Some(x), Some(y)) => {
                        a.insert(key.clone(), (x + y).into());
                    }
                    _ => {
                        a.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        (a @ Value::Null, b) => *a = b.clone(),
        _ => {}
    }
}

/// LangChain's `merge_dicts`: strings concatenated, objects merged, other
/// values kept when already set.
fn merge_dicts(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (None | Some(Value::Null), _) => {
                into.insert(key.clone(), value.clone());
            }
            (Some(Value::String(a)), Value::String(b)) => a.push_str(b),
            (Some(Value::Object(a)), Value::Object(b)) => merge_dicts(a, b),
            (Some(Value::Array(a)), Value::Array(b)) => a.extend(b.iter().cloned()),
            _ => {}
        }
    }
}

/// The whole message a sum of chunks makes (`message_chunk_to_message`):
/// type `ai` for an `AIMessageChunk`, its tool calls parsed from the
/// merged tool-call chunks (those whose arguments are not a JSON object
/// become `invalid_tool_calls`).
fn to_message(sum: &Value) -> Value {
    let kind = sum["type"].as_str().unwrap_or("ai");
    let kind = kind
        .strip_suffix("MessageChunk")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| kind.to_owned());
    let mut message = Map::new();
    for key in ["content", "additional_kwargs", "response_metadata"] {
        message.insert(key.into(), sum[key].clone());
    }
    message.insert("type".into(), kind.clone().into());
    for key in ["name", "id"] {
        message.insert(key.into(), sum[key].clone());
    }
    message.insert(
        "example".into(),
        sum["example"].as_bool().unwrap_or(false).into(),
    );
    if kind == "ai" {
        let (mut calls, mut invalid) = (Vec::new(), Vec::new());
        for chunk in sum["tool_call_chunks"].as_array().into_iter().flatten() {
            let args = chunk["args"].as_str().unwrap_or("");
            let parsed = if args.is_empty() {
                Some(json!({}))
            } else {
                parse_partial_json(args)
            };
            match parsed {
                Some(args @ Value::Object(_)) => calls.push(json!({
                    "name": chunk["name"], "args": args, "id": chunk["id"], "type": "tool_call",
                })),
                _ => invalid.push(json!({
                    "name": chunk["name"], "args": chunk["args"], "id": chunk["id"],
                    "error": null, "type": "invalid_tool_call",
                })),
            }
        }
        if sum["tool_call_chunks"].as_array().is_none_or(Vec::is_empty) {
            calls = sum["tool_calls"].as_array().cloned().unwrap_or_default();
        }
        message.insert("tool_calls".into(), calls.into());
        message.insert("invalid_tool_calls".into(), invalid.into());
        message.insert("usage_metadata".into(), sum["usage_metadata"].clone());
    }
    Value::Object(message)
}

/// JSON that may be cut short, as LangChain's `parse_partial_json` reads
/// a tool call's arguments while they stream: open strings, arrays and
/// objects are closed, and what still does not parse is cut back until it
/// does (`{"to": "bo` reads as `{"to": "bo"}`, `{"to": ` as `{}`).
fn parse_partial_json(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    // Cutting back tries one prefix per character: the host does this at
    // every chunk, so arguments longer than this (which a model, or a
    // graph, could make never parse) are not read before they are whole.
    const MAX: usize = 4 * 1024;
    if text.len() > MAX {
        return None;
    }
    let mut end = text.len();
    while end > 0 {
        if let Ok(value) = serde_json::from_str(&close(&text[..end])) {
            return Some(value);
        }
        end -= 1;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    None
}

/// `text` with its open string, arrays and objects closed.
fn close(text: &str) -> String {
    let (mut open, mut in_string, mut escaped) = (Vec::new(), false, false);
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => open.push('}'),
            '[' => open.push(']'),
            '}' | ']' => {
                open.pop();
            }
            _ => {}
        }
    }
    let mut closed = text.to_owned();
    if in_string {
        if escaped {
            closed.pop();
        }
        closed.push('"');
    }
    closed.extend(open.iter().rev());
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str, tool_call_chunks: Value, response_metadata: Value) -> Value {
        json!({
            "content": content, "additional_kwargs": {}, "response_metadata": response_metadata,
            "type": "AIMessageChunk", "name": null, "id": "run--1", "example": false,
            "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null,
            "tool_call_chunks": tool_call_chunks,
        })
    }

    #[test]
    fn partial_messages_add_up_the_chunks_into_an_ai_message() {
        let mut partials = Partials::default();
        assert!(is_chunk(&chunk("", json!([]), json!({}))));
        assert!(!is_chunk(&json!({"type": "ai"})));
        let first = partials.add("run--1", &chunk("Hel", json!([]), json!({})));
        assert_eq!(first["type"], "ai");
        assert_eq!(first["content"], "Hel");
        assert!(first.get("tool_call_chunks").is_none());
        let second = partials.add("run--1", &chunk("lo", json!([]), json!({})));
        assert_eq!(second["content"], "Hello");
        let last = partials.add(
            "run--1",
            &chunk(
                "",
                json!([]),
                json!({"finish_reason": "stop", "model_name": "m"}),
            ),
        );
        assert_eq!(
            last,
            json!({
                "content": "Hello", "additional_kwargs": {},
                "response_metadata": {"finish_reason": "stop", "model_name": "m"},
                "type": "ai", "name": null, "id": "run--1", "example": false,
                "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null,
            })
        );
    }

    #[test]
    fn tool_call_fragments_merge_by_index_into_tool_calls() {
        let mut partials = Partials::default();
        let piece = |name: Value, args: &str, id: Value| json!([{"name": name, "args": args, "id": id, "index": 0, "type": "tool_call_chunk"}]);
        partials.add(
            "run--1",
            &chunk(
                "",
                piece("send".into(), "{\"to\": ", "call_1".into()),
                json!({}),
            ),
        );
        let partial = partials.add(
            "run--1",
            &chunk("", piece(Value::Null, "\"bob\"}", Value::Null), json!({})),
        );
        assert_eq!(
            partial["tool_calls"],
            json!([{"name": "send", "args": {"to": "bob"}, "id": "call_1", "type": "tool_call"}])
        );
        assert_eq!(partial["invalid_tool_calls"], json!([]));

        // Arguments cut short read as far as they go, as LangChain's
        // `parse_partial_json`; ones that never make an object are invalid.
        for (args, read) in [
            ("{\"to\": ", json!({})),
            ("{\"to\": \"bo", json!({"to": "bo"})),
            ("{\"to\": [\"a\", {\"b\": tr", json!({"to": ["a", {}]})),
            ("{\"q\": \"a\\\"", json!({"q": "a\""})),
        ] {
            let mut partials = Partials::default();
            let partial = partials.add(
                "run--2",
                &chunk("", piece("send".into(), args, "c".into()), json!({})),
            );
            assert_eq!(partial["tool_calls"][0]["args"], read, "{args}");
        }
        let mut partials = Partials::default();
        let partial = partials.add(
            "run--3",
            &chunk("", piece("send".into(), "[1, 2", "c".into()), json!({})),
        );
        assert_eq!(partial["tool_calls"], json!([]));
        assert_eq!(partial["invalid_tool_calls"][0]["args"], "[1, 2");
        // Long arguments are read once whole, not while they stream.
        let long = format!("{{\"text\": \"{}", "x".repeat(5000));
        let mut partials = Partials::default();
        let cut = partials.add(
            "run--4",
            &chunk("", piece("send".into(), &long, "c".into()), json!({})),
        );
        assert_eq!(cut["invalid_tool_calls"][0]["name"], "send");
        let end = chunk("", piece(Value::Null, "\"}", Value::Null), json!({}));
        let whole = partials.add("run--4", &end);
        assert_eq!(
            whole["tool_calls"][0]["args"]["text"]
                .as_str()
                .map(str::len),
            Some(5000)
        );
    }
}
