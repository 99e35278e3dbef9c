//! Chat messages as LangGraph serialises them, and its `add_messages`
//! reducer.
//!
//! Messages are JSON values in the shape LangGraph's API emits
//! (`{"content": ..., "additional_kwargs": {}, "response_metadata": {},
//! "type": "human", "name": null, "id": ..., "example": false}`), so a
//! graph's state reads the same over Warden's API as over LangGraph's.
//!
//! ```
//! use warden_graph::{json, messages};
//!
//! let history = messages::add_messages(&[], &json!([
//!     {"role": "user", "content": "hi"},
//!     messages::ai("hello"),
//! ])).unwrap();
//! assert_eq!(history[0]["type"], "human");
//! assert_eq!(history[1]["type"], "ai");
//! assert!(history[1]["id"].is_string());
//!
//! // A message with a known id replaces it; a `remove` message deletes it.
//! let id = history[0]["id"].as_str().unwrap();
//! let history = messages::add_messages(&history, &messages::remove(id)).unwrap();
//! assert_eq!(messages::text(&history[0]), "hello");
//! ```

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::GraphError;

/// The id of a `remove` message that clears the whole list (LangGraph's
/// `REMOVE_ALL_MESSAGES`).
pub const REMOVE_ALL_MESSAGES: &str = "__remove_all__";

/// The message types a serialised message may carry (`type`).
const TYPES: &[&str] = &["human", "ai", "system", "tool", "function", "chat"];

/// A human message with `content` (a string or a list of content blocks).
pub fn human(content: impl Into<Value>) -> Value {
    serialise("human", content.into(), Map::new())
}

/// An AI message with `content`.
pub fn ai(content: impl Into<Value>) -> Value {
    serialise("ai", content.into(), Map::new())
}

/// A system message with `content`.
pub fn system(content: impl Into<Value>) -> Value {
    serialise("system", content.into(), Map::new())
}

/// A tool message: the result of the tool call `tool_call_id`.
pub fn tool(content: impl Into<Value>, tool_call_id: &str) -> Value {
    let mut fields = Map::new();
    fields.insert("tool_call_id".into(), tool_call_id.into());
    serialise("tool", content.into(), fields)
}

/// A message that deletes message `id` when [`add_messages`] applies it
/// ([`REMOVE_ALL_MESSAGES`] deletes them all).
pub fn remove(id: &str) -> Value {
    let mut fields = Map::new();
    fields.insert("id".into(), id.into());
    serialise("remove", "".into(), fields)
}

/// The text of a message: its `content` when a string, else the
/// concatenated `text` of its content blocks (string blocks count as text).
pub fn text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match b {
                Value::String(s) => s.as_str(),
                b => b.get("text").and_then(Value::as_str).unwrap_or(""),
            })
            .collect(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Whether `value` is a message in LangGraph's serialised form: an object
/// with a message `type` and a `content`.
pub fn is_message(value: &Value) -> bool {
    value.get("content").is_some()
        && value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| TYPES.contains(&t) || t.ends_with("MessageChunk"))
}

/// Converts a message-like value to LangGraph's serialised form, as
/// LangChain's `convert_to_messages` does:
///
/// - a string is a human message;
/// - a pair `[type, content]`;
/// - an object with `role` (or else `type`) and `content`: `user`/`human`,
///   `assistant`/`ai`, `system`/`developer`, `tool` (needs `tool_call_id`),
///   `function` and `remove` (needs `id`). `name`, `id`, `tool_call_id`,
///   `tool_calls` (OpenAI's format is converted), `response_metadata` and
///   the fields of the type's serialised form are kept as fields; other
///   fields go to `additional_kwargs`, as LangChain puts them.
///
/// The id is left as given (`null` when absent): [`add_messages`] assigns
/// missing ones.
pub fn coerce(message: &Value) -> Result<Value, GraphError> {
    match message {
        Value::String(s) => create("human", s.clone().into(), Map::new()),
        Value::Array(pair) if pair.len() == 2 => match &pair[0] {
            Value::String(kind) => create(kind, pair[1].clone(), Map::new()),
            _ => Err(coercion_error(message)),
        },
        Value::Object(object) => {
            let mut fields = object.clone();
            let kind = match fields.shift_remove("role") {
                Some(role) => {
                    fields.shift_remove("type");
                    role
                }
                None => fields
                    .shift_remove("type")
                    .ok_or_else(|| coercion_error(message))?,
            };
            let Value::String(kind) = kind else {
                return Err(coercion_error(message));
            };
            let content = fields
                .shift_remove("content")
                .ok_or_else(|| coercion_error(message))?;
            create(&kind, content, fields)
        }
        _ => Err(GraphError::value_error(format!(
            "Unsupported message type: {message}"
        ))),
    }
}

/// LangGraph's `add_messages`: merges `right` (one message or a list) into
/// `left`.
///
/// Every message is [coerced](coerce) and given a uuid4 id when it has
/// none. A message whose id is already in `left` replaces it in place;
/// a `remove` message deletes its id (an unknown id is an error); a
/// `remove` message with id [`REMOVE_ALL_MESSAGES`] drops everything
/// before it, `left` included.
pub fn add_messages(left: &[Value], right: &Value) -> Result<Vec<Value>, GraphError> {
    let right: &[Value] = match right {
        Value::Array(list) => list,
        one => std::slice::from_ref(one),
    };
    let left = left.iter().map(with_id).collect::<Result<Vec<_>, _>>()?;
    let right = right.iter().map(with_id).collect::<Result<Vec<_>, _>>()?;

    if let Some(last) = right
        .iter()
        .rposition(|m| m["type"] == "remove" && m["id"] == REMOVE_ALL_MESSAGES)
    {
        return Ok(right[last + 1..].to_vec());
    }

    let mut merged = left;
    let mut by_id: HashMap<String, usize> = merged
        .iter()
        .enumerate()
        .map(|(i, m)| (id_of(m), i))
        .collect();
    let mut removed = Vec::new();
    for message in right {
        let id = id_of(&message);
        let is_remove = message["type"] == "remove";
        match by_id.get(&id) {
            Some(_) if is_remove => removed.push(id),
            Some(&i) => {
                removed.retain(|r| *r != id);
                merged[i] = message;
            }
            None if is_remove => {
                return Err(GraphError::value_error(format!(
                    "Attempting to delete a message with an ID that doesn't exist ('{id}')"
                )));
            }
            None => {
                by_id.insert(id, merged.len());
                merged.push(message);
            }
        }
    }
    merged.retain(|m| !removed.contains(&id_of(m)));
    Ok(merged)
}

/// [`add_messages`] as a channel reducer:
/// `.channel("messages", messages::reducer)`. An absent or `null` channel
/// is an empty list.
pub fn reducer(current: Option<&Value>, update: &Value) -> Result<Value, GraphError> {
    let left: &[Value] = match current {
        None | Some(Value::Null) => &[],
        Some(Value::Array(list)) => list,
        Some(one) => std::slice::from_ref(one),
    };
    add_messages(left, update).map(Value::Array)
}

/// A fresh message id: a uuid4 string, as LangGraph assigns.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn with_id(message: &Value) -> Result<Value, GraphError> {
    let mut message = coerce(message)?;
    if message["id"].is_null() {
        message["id"] = new_id().into();
    }
    Ok(message)
}

fn id_of(message: &Value) -> String {
    match &message["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn coercion_error(message: &Value) -> GraphError {
    GraphError::value_error(format!(
        "Message dict must contain 'role' and 'content' keys, got {message}"
    ))
}

/// LangChain's `_create_message_from_message_type`, producing the message's
/// serialised form.
fn create(kind: &str, content: Value, mut fields: Map<String, Value>) -> Result<Value, GraphError> {
    // `content or ""`: LangChain allows no empty content.
    let content = match content {
        Value::Null => "".into(),
        Value::Array(a) if a.is_empty() => "".into(),
        Value::String(s) if s.is_empty() => "".into(),
        other => other,
    };
    // Chunks become whole messages (LangGraph's `message_chunk_to_message`).
    let kind = match kind.strip_suffix("MessageChunk") {
        Some(base) => {
            fields.shift_remove("tool_call_chunks");
            fields.shift_remove("chunk_position");
            match base {
                "AI" => "ai".to_owned(),
                other => other.to_lowercase(),
            }
        }
        None => kind.to_owned(),
    };
    let (kind, own): (&str, &[&str]) = match kind.as_str() {
        "human" | "user" => ("human", &["example"]),
        "ai" | "assistant" => (
            "ai",
            &[
                "example",
                "tool_calls",
                "invalid_tool_calls",
                "usage_metadata",
            ],
        ),
        "system" => ("system", &[]),
        "developer" => {
            let extra = fields
                .entry("additional_kwargs")
                .or_insert_with(|| json!({}));
            if let Value::Object(extra) = extra {
                extra.insert("__openai_role__".into(), "developer".into());
            }
            ("system", &[])
        }
        "tool" => ("tool", &["tool_call_id", "artifact", "status"]),
        "function" => ("function", &[]),
        "remove" => ("remove", &[]),
        other => {
            return Err(GraphError::value_error(format!(
                "Unexpected message type: '{other}'. Use one of 'human', 'user', 'ai', \
                 'assistant', 'function', 'tool', 'system', or 'developer'."
            )));
        }
    };

    // Split the fields: the serialised form's own, and the rest, which
    // LangChain files under `additional_kwargs`.
    let mut kept = Map::new();
    let mut additional = Map::new();
    let mut response_metadata = Map::new();
    for (key, value) in fields {
        match key.as_str() {
            "additional_kwargs" => {
                if let Value::Object(inner) = value {
                    additional.extend(inner);
                }
            }
            "response_metadata" => {
                if let Value::Object(inner) = value {
                    response_metadata = inner;
                }
            }
            "name" | "id" => {
                kept.insert(key, value);
            }
            k if own.contains(&k) => {
                kept.insert(key, value);
            }
            _ => {
                additional.insert(key, value);
            }
        }
    }
    if let Some(Value::Array(calls)) = kept.get_mut("tool_calls") {
        for call in calls {
            *call = tool_call(call.take());
        }
    }

    // A field given as `null` takes its default, as pydantic does.
    let take = |kept: &mut Map<String, Value>, key: &str, default: Value| {
        kept.shift_remove(key)
            .filter(|v| !v.is_null() || default.is_null())
            .unwrap_or(default)
    };
    let tool_call_id = take(&mut kept, "tool_call_id", Value::Null);
    if kind == "tool" && !tool_call_id.is_string() {
        return Err(GraphError::value_error(
            "A tool message needs a `tool_call_id`",
        ));
    }
    if kind == "remove" && kept.get("id").is_none_or(Value::is_null) {
        return Err(GraphError::value_error("A remove message needs an `id`"));
    }

    let mut message = Map::new();
    message.insert("content".into(), content);
    message.insert("additional_kwargs".into(), additional.into());
    message.insert("response_metadata".into(), response_metadata.into());
    message.insert("type".into(), kind.into());
    message.insert("name".into(), take(&mut kept, "name", Value::Null));
    message.insert("id".into(), take(&mut kept, "id", Value::Null));
    match kind {
        "human" => {
            message.insert("example".into(), take(&mut kept, "example", false.into()));
        }
        "ai" => {
            message.insert("example".into(), take(&mut kept, "example", false.into()));
            message.insert(
                "tool_calls".into(),
                take(&mut kept, "tool_calls", json!([])),
            );
            message.insert(
                "invalid_tool_calls".into(),
                take(&mut kept, "invalid_tool_calls", json!([])),
            );
            message.insert(
                "usage_metadata".into(),
                take(&mut kept, "usage_metadata", Value::Null),
            );
        }
        "tool" => {
            message.insert("tool_call_id".into(), tool_call_id);
            message.insert("artifact".into(), take(&mut kept, "artifact", Value::Null));
            message.insert("status".into(), take(&mut kept, "status", "success".into()));
        }
        _ => {}
    }
    Ok(message.into())
}

/// A tool call in LangChain's form; OpenAI's (`{"id", "function": {"name",
/// "arguments"}}`) is converted.
fn tool_call(call: Value) -> Value {
    let Some(function) = call.get("function") else {
        let mut call = call;
        if let Value::Object(fields) = &mut call {
            fields.entry("type").or_insert_with(|| "tool_call".into());
        }
        return call;
    };
    let args = match &function["arguments"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| s.clone().into()),
        other => other.clone(),
    };
    json!({
        "name": function["name"],
        "args": args,
        "id": call["id"],
        "type": "tool_call",
    })
}

fn serialise(kind: &str, content: Value, fields: Map<String, Value>) -> Value {
    create(kind, content, fields).expect("the SDK builds valid messages")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[Value]) -> Vec<&str> {
        list.iter().map(|m| m["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn constructors_produce_langgraph_serialised_form() {
        assert_eq!(
            human("hi"),
            json!({"content": "hi", "additional_kwargs": {}, "response_metadata": {},
                   "type": "human", "name": null, "id": null, "example": false})
        );
        assert_eq!(
            ai("yo"),
            json!({"content": "yo", "additional_kwargs": {}, "response_metadata": {},
                   "type": "ai", "name": null, "id": null, "example": false,
                   "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null})
        );
        assert_eq!(
            system("be brief"),
            json!({"content": "be brief", "additional_kwargs": {}, "response_metadata": {},
                   "type": "system", "name": null, "id": null})
        );
        assert_eq!(
            tool("42", "call-1"),
            json!({"content": "42", "additional_kwargs": {}, "response_metadata": {},
                   "type": "tool", "name": null, "id": null, "tool_call_id": "call-1",
                   "artifact": null, "status": "success"})
        );
        // Key order follows LangGraph's too.
        let keys: Vec<_> = ai("").as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "content",
                "additional_kwargs",
                "response_metadata",
                "type",
                "name",
                "id",
                "example",
                "tool_calls",
                "invalid_tool_calls",
                "usage_metadata"
            ]
        );
    }

    #[test]
    fn coercion_of_roles_types_strings_and_pairs() {
        let cases = [
            (json!({"role": "user", "content": "a"}), "human"),
            (json!({"role": "human", "content": "a"}), "human"),
            (json!({"role": "assistant", "content": "a"}), "ai"),
            (json!({"role": "ai", "content": "a"}), "ai"),
            (json!({"role": "system", "content": "a"}), "system"),
            (
                json!({"role": "tool", "content": "a", "tool_call_id": "c"}),
                "tool",
            ),
            (json!({"type": "human", "content": "a"}), "human"),
            (json!({"type": "ai", "content": "a"}), "ai"),
            (
                json!({"type": "AIMessageChunk", "content": "a", "tool_call_chunks": []}),
                "ai",
            ),
            (json!("a"), "human"),
            (json!(["assistant", "a"]), "ai"),
        ];
        for (input, kind) in cases {
            let message = coerce(&input).unwrap();
            assert_eq!(message["type"], kind, "{input}");
            assert_eq!(message["content"], "a", "{input}");
            assert_eq!(message["additional_kwargs"], json!({}), "{input}");
        }
    }

    #[test]
    fn coercion_is_idempotent_on_the_serialised_form() {
        for message in [
            human("a"),
            ai("b"),
            system("c"),
            tool("d", "call"),
            coerce(&json!({"role": "user", "content": "e", "id": "1", "name": "bob", "x": 1}))
                .unwrap(),
        ] {
            assert_eq!(coerce(&message).unwrap(), message);
        }
    }

    #[test]
    fn coercion_keeps_fields_as_langchain_does() {
        let message = coerce(&json!({
            "role": "user", "content": "hi", "id": "m1", "name": "bob", "example": true,
            "lang": "fr", "additional_kwargs": {"k": 1}, "response_metadata": {"r": 2},
        }))
        .unwrap();
        assert_eq!(
            message,
            json!({"content": "hi", "additional_kwargs": {"lang": "fr", "k": 1},
                   "response_metadata": {"r": 2}, "type": "human", "name": "bob",
                   "id": "m1", "example": true})
        );

        let developer = coerce(&json!({"role": "developer", "content": "rules"})).unwrap();
        assert_eq!(developer["type"], "system");
        assert_eq!(
            developer["additional_kwargs"]["__openai_role__"],
            "developer"
        );

        let ai = coerce(&json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}},
            {"id": "c2", "name": "mul", "args": {}},
        ]}))
        .unwrap();
        assert_eq!(ai["content"], "");
        assert_eq!(
            ai["tool_calls"],
            json!([{"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"},
                   {"id": "c2", "name": "mul", "args": {}, "type": "tool_call"}])
        );
    }

    #[test]
    fn coercion_errors() {
        let missing = coerce(&json!({"content": "x"})).unwrap_err();
        assert_eq!(missing.error, "ValueError");
        assert!(
            missing
                .message
                .starts_with("Message dict must contain 'role' and 'content'")
        );
        assert!(coerce(&json!({"role": "user"})).is_err());
        assert!(coerce(&json!({"role": "tool", "content": "x"})).is_err());
        assert!(coerce(&json!({"type": "remove", "content": ""})).is_err());
        let unknown = coerce(&json!({"role": "critic", "content": "x"})).unwrap_err();
        assert!(
            unknown
                .message
                .starts_with("Unexpected message type: 'critic'")
        );
        assert!(coerce(&json!(3)).is_err());
    }

    #[test]
    fn appends_and_assigns_uuid4_ids() {
        let list = add_messages(&[], &json!("hi")).unwrap();
        let list = add_messages(&list, &json!([{"role": "assistant", "content": "yo"}])).unwrap();
        assert_eq!(list.len(), 2);
        for id in ids(&list) {
            let id = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(id.get_version_num(), 4);
        }
        assert_ne!(list[0]["id"], list[1]["id"]);
        // Messages already in the list without an id get one too.
        let list = add_messages(&[human("old")], &json!([])).unwrap();
        assert!(list[0]["id"].is_string());
    }

    #[test]
    fn replaces_by_id_in_place() {
        let list = add_messages(
            &[],
            &json!([{"role": "user", "content": "a", "id": "1"},
                    {"role": "assistant", "content": "b", "id": "2"}]),
        )
        .unwrap();
        let list =
            add_messages(&list, &json!({"role": "user", "content": "A", "id": "1"})).unwrap();
        assert_eq!(ids(&list), ["1", "2"]);
        assert_eq!(text(&list[0]), "A");
    }

    #[test]
    fn removes_by_id_and_all() {
        let list = add_messages(
            &[],
            &json!([{"role": "user", "content": "a", "id": "1"},
                    {"role": "user", "content": "b", "id": "2"},
                    {"role": "user", "content": "c", "id": "3"}]),
        )
        .unwrap();
        let after = add_messages(&list, &json!([remove("2")])).unwrap();
        assert_eq!(ids(&after), ["1", "3"]);
        // Removed, then written again: kept.
        let again = add_messages(
            &list,
            &json!([remove("2"), {"role": "user", "content": "B", "id": "2"}]),
        )
        .unwrap();
        assert_eq!(ids(&again), ["1", "2", "3"]);

        let unknown =
            add_messages(&list, &json!({"type": "remove", "id": "9", "content": ""})).unwrap_err();
        assert_eq!(
            unknown.message,
            "Attempting to delete a message with an ID that doesn't exist ('9')"
        );

        let cleared = add_messages(&list, &json!([remove(REMOVE_ALL_MESSAGES), "fresh"])).unwrap();
        assert_eq!(cleared.len(), 1);
        assert_eq!(text(&cleared[0]), "fresh");
    }

    #[test]
    fn reducer_on_empty_and_single_values() {
        let value = reducer(None, &json!("hi")).unwrap();
        assert_eq!(value.as_array().unwrap().len(), 1);
        let value = reducer(Some(&Value::Null), &json!(["a", "b"])).unwrap();
        assert_eq!(value.as_array().unwrap().len(), 2);
        let value = reducer(Some(&value), &json!("c")).unwrap();
        assert_eq!(value.as_array().unwrap().len(), 3);
    }

    #[test]
    fn text_of_strings_and_blocks() {
        assert_eq!(text(&human("plain")), "plain");
        let blocks = human(
            json!([{"type": "text", "text": "a"}, {"type": "image_url"}, "b",
                                  {"type": "text", "text": "c"}]),
        );
        assert_eq!(text(&blocks), "abc");
        assert_eq!(text(&json!({})), "");
    }

    #[test]
    fn recognises_serialised_messages() {
        assert!(is_message(&ai("x")));
        assert!(is_message(&json!({"type": "human", "content": "x"})));
        assert!(!is_message(&json!({"role": "user", "content": "x"})));
        assert!(!is_message(&remove("1")));
        assert!(!is_message(&json!({"type": "ai"})));
    }
}
