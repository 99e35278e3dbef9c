//! The server's store from a node (LangGraph's `BaseStore`): items in
//! namespaces, kept across threads and runs.
//!
//! Inside Warden every call is authorized as the run's user by the auth
//! plugin's `store` handlers, exactly as the same call over the HTTP API
//! would be: a handler may refuse it (status 403), rewrite its namespace or
//! scope it. Natively (unit tests) the store is an in-memory one, shared by
//! the test process, that authorizes everything.
//!
//! ```
//! use warden_graph::prelude::*;
//! use warden_graph::store;
//!
//! fn remember(state: &State, config: &RunConfig) -> Result<Update, GraphError> {
//!     let user = config.user_id().unwrap_or("anonymous").to_owned();
//!     let note = state["note"].as_str().unwrap_or_default();
//!     store::put(&[&user, "notes"], "last", &json!({"text": note}))?;
//!     let notes = store::search(&[&user, "notes"], &Value::Null, 10, 0)?;
//!     Ok(json!({"notes": notes.len()}))
//! }
//! # let config = RunConfig::new(json!({"configurable": {"langgraph_auth_user_id": "alice"}}), Value::Null);
//! # let mut state = State::new();
//! # state.insert("note".into(), json!("hi"));
//! # assert_eq!(remember(&state, &config).unwrap()["notes"], 1);
//! # assert_eq!(store::get(&["alice", "notes"], "last").unwrap().unwrap().value["text"], "hi");
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::GraphError;

/// An item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its namespace.
    pub namespace: Vec<String>,
    /// Its key within the namespace.
    pub key: String,
    /// Its value.
    pub value: Map<String, Value>,
    /// When it was first written (RFC 3339).
    pub created_at: String,
    /// When it was last written (RFC 3339).
    pub updated_at: String,
}

/// Why a store call failed: what the HTTP API would have answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// The status: 403 when the auth plugin refused, 422 for a bad
    /// namespace or value.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the store answered {}: {}", self.status, self.detail)
    }
}

impl std::error::Error for StoreError {}

/// A node's `?` on a store call fails the run with `PermissionError` (a
/// refusal), `ValueError` (bad input) or `StoreError`.
impl From<StoreError> for GraphError {
    fn from(e: StoreError) -> Self {
        let kind = match e.status {
            401 | 403 => "PermissionError",
            400 | 422 => "ValueError",
            _ => "StoreError",
        };
        GraphError::new(kind, e.to_string())
    }
}

fn owned(namespace: &[&str]) -> Vec<String> {
    namespace.iter().map(|l| (*l).to_owned()).collect()
}

/// The item at `key` in `namespace`, if any (and within the caller's
/// scope).
pub fn get(namespace: &[&str], key: &str) -> Result<Option<Item>, StoreError> {
    backend::get(owned(namespace), key)
}

/// Writes `value` (a JSON object) at `key` in `namespace`.
pub fn put(namespace: &[&str], key: &str, value: &Value) -> Result<(), StoreError> {
    if !value.is_object() {
        return Err(StoreError {
            status: 422,
            detail: "value: must be an object".into(),
        });
    }
    backend::put(owned(namespace), key, value)
}

/// Deletes the item at `key` in `namespace`, if any.
pub fn delete(namespace: &[&str], key: &str) -> Result<(), StoreError> {
    backend::delete(owned(namespace), key)
}

/// The items under `prefix` whose values match `filter`: an object of
/// `{key: value}` (or `{key: {"$eq": value}}`, `{key: {"$contains":
/// value}}`), or `Value::Null` for all; `limit` of them from `offset`.
pub fn search(
    prefix: &[&str],
    filter: &Value,
    limit: u32,
    offset: u32,
) -> Result<Vec<Item>, StoreError> {
    backend::search(owned(prefix), filter, limit, offset)
}

/// The namespaces under `prefix` that hold items; `limit` of them from
/// `offset`.
pub fn list_namespaces(
    prefix: &[&str],
    limit: u32,
    offset: u32,
) -> Result<Vec<Vec<String>>, StoreError> {
    backend::list_namespaces(owned(prefix), limit, offset)
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use serde_json::Value;

    use super::{Item, StoreError};
    use crate::__private::bindings::warden::graph::store as wit;

    fn error(e: wit::StoreError) -> StoreError {
        StoreError {
            status: e.status,
            detail: e.detail,
        }
    }

    fn item(i: wit::Item) -> Result<Item, StoreError> {
        let value = match serde_json::from_str(&i.value) {
            Ok(Value::Object(value)) => value,
            _ => {
                return Err(StoreError {
                    status: 500,
                    detail: "the host sent an item whose value is not an object".into(),
                });
            }
        };
        Ok(Item {
            namespace: i.namespace,
            key: i.key,
            value,
            created_at: i.created_at,
            updated_at: i.updated_at,
        })
    }

    pub(super) fn get(namespace: Vec<String>, key: &str) -> Result<Option<Item>, StoreError> {
        wit::get(&namespace, key)
            .map_err(error)?
            .map(item)
            .transpose()
    }

    pub(super) fn put(namespace: Vec<String>, key: &str, value: &Value) -> Result<(), StoreError> {
        wit::put(&namespace, key, &value.to_string()).map_err(error)
    }

    pub(super) fn delete(namespace: Vec<String>, key: &str) -> Result<(), StoreError> {
        wit::delete(&namespace, key).map_err(error)
    }

    pub(super) fn search(
        prefix: Vec<String>,
        filter: &Value,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Item>, StoreError> {
        wit::search(&prefix, &filter.to_string(), limit, offset)
            .map_err(error)?
            .into_iter()
            .map(item)
            .collect()
    }

    pub(super) fn list_namespaces(
        prefix: Vec<String>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        wit::list_namespaces(&prefix, limit, offset).map_err(error)
    }
}

/// Natively: one in-memory store for the test process, no authorization.
#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use serde_json::Value;

    use super::{Item, StoreError};

    type Items = BTreeMap<(Vec<String>, String), Item>;
    static ITEMS: Mutex<Items> = Mutex::new(BTreeMap::new());

    fn items() -> std::sync::MutexGuard<'static, Items> {
        ITEMS.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(namespace: Vec<String>, key: &str) -> Result<Option<Item>, StoreError> {
        Ok(items().get(&(namespace, key.to_owned())).cloned())
    }

    pub(super) fn put(namespace: Vec<String>, key: &str, value: &Value) -> Result<(), StoreError> {
        let value = value.as_object().cloned().unwrap_or_default();
        let mut items = items();
        let created_at = items.get(&(namespace.clone(), key.to_owned())).map_or_else(
            || "1970-01-01T00:00:00+00:00".to_owned(),
            |i| i.created_at.clone(),
        );
        let item = Item {
            namespace: namespace.clone(),
            key: key.to_owned(),
            value,
            updated_at: created_at.clone(),
            created_at,
        };
        items.insert((namespace, key.to_owned()), item);
        Ok(())
    }

    pub(super) fn delete(namespace: Vec<String>, key: &str) -> Result<(), StoreError> {
        items().remove(&(namespace, key.to_owned()));
        Ok(())
    }

    /// Whether `value` matches `filter` (`$eq`, `$contains` or a plain
    /// value per key).
    fn matches(value: &serde_json::Map<String, Value>, filter: &Value) -> bool {
        let Some(filter) = filter.as_object() else {
            return true;
        };
        filter.iter().all(|(key, wanted)| {
            let found = value.get(key);
            match wanted.as_object().and_then(|o| o.iter().next()) {
                Some((op, operand)) if op == "$contains" => match found {
                    Some(Value::Array(items)) => items.contains(operand),
                    Some(Value::String(s)) => operand.as_str().is_some_and(|o| s.contains(o)),
                    _ => false,
                },
                Some((op, operand)) if op == "$eq" => found == Some(operand),
                _ => found == Some(wanted),
            }
        })
    }

    pub(super) fn search(
        prefix: Vec<String>,
        filter: &Value,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Item>, StoreError> {
        Ok(items()
            .values()
            .filter(|i| i.namespace.starts_with(&prefix) && matches(&i.value, filter))
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    pub(super) fn list_namespaces(
        prefix: Vec<String>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let mut namespaces: Vec<Vec<String>> = items()
            .keys()
            .map(|(namespace, _)| namespace.clone())
            .filter(|namespace| namespace.starts_with(&prefix))
            .collect();
        namespaces.dedup();
        Ok(namespaces
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect())
    }
}
