//! What a handler changed in an event's value, in the shape
//! `warden:auth@0.2.0` sends it: nothing, the metadata keys it stamped, or
//! the whole value. The plugin computes it with [`Change::between`]; the
//! host applies it with [`Change::apply`], so both sides agree by
//! construction.

use serde_json::{Map, Value};

/// What a handler changed in an event's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Nothing.
    None,
    /// `value.metadata[key] = stamp` for each pair, the metadata object
    /// created when missing: the owner-stamping idiom.
    Stamps(Vec<(String, Value)>),
    /// The whole modified value.
    Value(Value),
}

impl Change {
    /// The change from `original` to `modified`: [`Change::None`] when they
    /// are equal; [`Change::Stamps`] when the only differences are top-level
    /// keys of `metadata` added or changed (the metadata object created when
    /// `original` had none); [`Change::Value`] otherwise (a metadata key
    /// removed, a change outside `metadata`, a value that is not an object).
    pub fn between(original: &Value, modified: Value) -> Self {
        if *original == modified {
            return Change::None;
        }
        match stamps(original, &modified) {
            Some(stamps) => Change::Stamps(stamps),
            None => Change::Value(modified),
        }
    }

    /// Applies the change to `value`, the event's original value. Stamps
    /// follow [`stamp_metadata`](crate::stamp_metadata): a `metadata` that
    /// is not an object is replaced, so a stamp is never lost.
    pub fn apply(self, value: &mut Value) {
        match self {
            Change::None => {}
            Change::Value(modified) => *value = modified,
            Change::Stamps(stamps) => {
                for (key, stamp) in stamps {
                    crate::stamp_metadata(value, &key, stamp);
                }
            }
        }
    }
}

/// The stamps that turn `original` into `modified`, if stamps can: both
/// objects, equal outside `metadata`, the original metadata absent or an
/// object whose every key the modified one keeps, and at least one stamp.
fn stamps(original: &Value, modified: &Value) -> Option<Vec<(String, Value)>> {
    let (original, modified) = (original.as_object()?, modified.as_object()?);
    let outside =
        |object: &Map<String, Value>| object.len() - usize::from(object.contains_key("metadata"));
    let same_outside = outside(original) == outside(modified)
        && original
            .iter()
            .filter(|(k, _)| *k != "metadata")
            .all(|(k, v)| modified.get(k) == Some(v));
    if !same_outside {
        return None;
    }
    let empty = Map::new();
    let before = match original.get("metadata") {
        None => &empty,
        Some(metadata) => metadata.as_object()?,
    };
    let after = modified.get("metadata")?.as_object()?;
    if before.keys().any(|k| !after.contains_key(k)) {
        return None;
    }
    let stamps: Vec<(String, Value)> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!stamps.is_empty()).then_some(stamps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The change, after checking that applying it to `original` gives `modified`.
    fn change(original: Value, modified: Value) -> Change {
        let change = Change::between(&original, modified.clone());
        let mut applied = original;
        change.clone().apply(&mut applied);
        assert_eq!(applied, modified, "{change:?}");
        change
    }

    fn stamps(pairs: &[(&str, Value)]) -> Change {
        Change::Stamps(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn an_unchanged_value_is_no_change() {
        let value = json!({"thread_id": "t", "metadata": {"owner": "u1"}});
        assert_eq!(change(value.clone(), value), Change::None);
        assert_eq!(change(json!(null), json!(null)), Change::None);
    }

    #[test]
    fn added_or_changed_metadata_keys_are_stamps() {
        assert_eq!(
            change(
                json!({"thread_id": "t", "metadata": {"owner": "spoof", "k": 1}}),
                json!({"thread_id": "t", "metadata": {"owner": "u1", "k": 1}}),
            ),
            stamps(&[("owner", json!("u1"))])
        );
        assert_eq!(
            change(
                json!({"metadata": {"k": 1}}),
                json!({"metadata": {"k": 1, "owner": "u1", "team": ["a"]}}),
            ),
            stamps(&[("owner", json!("u1")), ("team", json!(["a"]))])
        );
    }

    #[test]
    fn a_created_metadata_object_is_stamps() {
        assert_eq!(
            change(
                json!({"thread_id": "t"}),
                json!({"thread_id": "t", "metadata": {"owner": "u1"}}),
            ),
            stamps(&[("owner", json!("u1"))])
        );
    }

    #[test]
    fn a_removed_metadata_key_is_the_whole_value() {
        let modified = json!({"metadata": {"owner": "u1"}});
        assert_eq!(
            change(
                json!({"metadata": {"owner": "u0", "k": 1}}),
                modified.clone()
            ),
            Change::Value(modified)
        );
    }

    #[test]
    fn a_change_outside_metadata_is_the_whole_value() {
        for (original, modified) in [
            (
                json!({"namespace": ["a"], "metadata": {}}),
                json!({"namespace": ["u1", "a"], "metadata": {"owner": "u1"}}),
            ),
            (json!({"metadata": {}}), json!({"metadata": {}, "extra": 1})),
            (
                json!({"metadata": {}, "gone": 1}),
                json!({"metadata": {"owner": "u1"}}),
            ),
            (json!({"k": 1}), json!({"k": 1, "metadata": {}})),
            (json!({"metadata": {"k": 1}}), json!({})),
            (
                json!({"metadata": null}),
                json!({"metadata": {"owner": "u1"}}),
            ),
            (
                json!({"metadata": "x"}),
                json!({"metadata": {"owner": "u1"}}),
            ),
            (json!({"metadata": {}}), json!({"metadata": "x"})),
        ] {
            assert_eq!(
                change(original.clone(), modified.clone()),
                Change::Value(modified),
                "{original} -> ..."
            );
        }
    }

    #[test]
    fn a_value_that_is_not_an_object_is_the_whole_value() {
        for (original, modified) in [
            (json!(null), json!({"metadata": {"owner": "u1"}})),
            (json!([1]), json!([1, 2])),
            (json!({"metadata": {}}), json!("text")),
        ] {
            assert_eq!(change(original, modified.clone()), Change::Value(modified));
        }
    }
}
