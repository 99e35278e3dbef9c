//! Helpers on the event value a handler receives.

use serde::Serialize;
use serde_json::Value;

/// A serializable value as JSON.
///
/// # Panics
/// When the value cannot be represented as JSON (a map with non-string keys).
pub(crate) fn to_json(value: impl Serialize) -> Value {
    serde_json::to_value(value).expect("the value is representable as JSON")
}

/// Helpers for the event value (`value` in a Python handler).
pub trait ValueExt {
    /// Sets `value["metadata"][key]`, creating the metadata object when it is
    /// missing or not an object: the `value["metadata"]["owner"] = identity`
    /// idiom. The stamp persists on the created or updated resource, and
    /// overwrites whatever the client sent under that key.
    fn stamp_metadata(&mut self, key: &str, stamp: impl Serialize);

    /// The store namespace of a `store` event, e.g. `["user1", "docs"]`;
    /// empty when there is none.
    fn namespace(&self) -> Vec<&str>;
}

impl ValueExt for Value {
    fn stamp_metadata(&mut self, key: &str, stamp: impl Serialize) {
        warden_types::stamp_metadata(self, key, to_json(stamp));
    }

    fn namespace(&self) -> Vec<&str> {
        self.get("namespace")
            .and_then(Value::as_array)
            .map(|labels| labels.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_creates_or_overwrites_metadata() {
        let mut v = json!({"thread_id": "t"});
        v.stamp_metadata("owner", "u1");
        assert_eq!(v, json!({"thread_id": "t", "metadata": {"owner": "u1"}}));
        let mut v = json!({"metadata": {"owner": "spoof", "k": 1}});
        v.stamp_metadata("owner", "u2");
        assert_eq!(v, json!({"metadata": {"owner": "u2", "k": 1}}));
        let mut v = json!({"metadata": null});
        v.stamp_metadata("owner", "u3");
        assert_eq!(v["metadata"], json!({"owner": "u3"}));
    }

    #[test]
    fn namespace_reads_labels() {
        assert_eq!(json!({"namespace": ["a", "b"]}).namespace(), ["a", "b"]);
        assert!(json!({"namespace": null}).namespace().is_empty());
    }
}
