//! The owner-stamping idiom, `value["metadata"][key] = stamp`, with one
//! meaning for the SDK (a handler stamping) and the host (applying the
//! stamps a `warden:auth@0.2.0` handler returned).

use serde_json::{Map, Value};

/// Sets `value["metadata"][key] = stamp`, creating the metadata object when
/// it is missing or not an object; a value that is not an object is left
/// alone (it has no metadata).
pub fn stamp_metadata(value: &mut Value, key: &str, stamp: Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert(key.to_owned(), stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_create_or_overwrite_metadata() {
        let mut v = json!({"thread_id": "t"});
        stamp_metadata(&mut v, "owner", json!("u1"));
        assert_eq!(v, json!({"thread_id": "t", "metadata": {"owner": "u1"}}));
        let mut v = json!({"metadata": {"owner": "spoof", "k": 1}});
        stamp_metadata(&mut v, "owner", json!("u2"));
        assert_eq!(v, json!({"metadata": {"owner": "u2", "k": 1}}));
        let mut v = json!({"metadata": null});
        stamp_metadata(&mut v, "owner", json!("u3"));
        assert_eq!(v["metadata"], json!({"owner": "u3"}));
        let mut v = json!(["not", "an", "object"]);
        stamp_metadata(&mut v, "owner", json!("u4"));
        assert_eq!(v, json!(["not", "an", "object"]));
    }
}
