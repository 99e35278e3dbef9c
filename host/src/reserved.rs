//! The keys the server owns in what clients send: metadata keys naming
//! records, and the `configurable` / `context` keys that carry the caller's
//! identity. Clients cannot set them; the server does.

use serde_json::Value;

use crate::storage::Object;

/// Metadata keys the server owns: silently dropped from client metadata.
pub const RESERVED_METADATA: &[&str] = &["thread_id", "assistant_id", "run_id", "cron_id"];

/// Whether a `configurable` / `context` key is the server's to set
/// (`langgraph_auth_user*`, `langgraph_request_id`, `__dunder__` keys).
fn reserved_config_key(key: &str) -> bool {
    key.starts_with("langgraph_auth_")
        || key == "langgraph_request_id"
        || (key.len() > 4 && key.starts_with("__") && key.ends_with("__"))
}

/// Drops the server's keys from a client's `configurable` or `context`
/// object, silently as LangGraph does, so they cannot be spoofed.
pub fn strip_reserved_config(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.retain(|k, _| !reserved_config_key(k));
    }
}

/// Client metadata without the reserved keys.
pub fn client_metadata(metadata: Option<Object>) -> Object {
    let mut metadata = metadata.unwrap_or_default();
    metadata.retain(|k, _| !RESERVED_METADATA.contains(&k.as_str()));
    metadata
}

/// Drops `user_id` from a client's `configurable` or `context`: the server
/// sets it to the caller's identity (LangGraph lets the client choose it).
pub fn strip_user_id(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("user_id");
    }
}
