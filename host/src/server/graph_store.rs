//! The store as a run's nodes reach it (`warden:graph/store`): the same
//! operations as `/store/...`, each authorized by the live auth plugin's
//! `store` handlers as the run's user ([`Caller::acting_as`]), with the
//! same scoping, namespace checks and errors. LangGraph skips the handlers
//! for graph code; Warden does not.

use std::sync::{Arc, Weak};

use serde_json::{Map, Value};

use super::api::store::{self, Namespaces, Search};
use super::routes::STORE;
use super::{ApiError, AppState, Caller};
use crate::plugin::{GraphStore, StoreError};
use crate::storage::Item;
use crate::types::User;

/// The server's store for its runs. Holds the server weakly: the server
/// holds its runs, which hold this.
pub struct ServerStore {
    state: Weak<AppState>,
}

impl ServerStore {
    /// The store of `state`, for its runs.
    pub fn new(state: &Arc<AppState>) -> Self {
        Self {
            state: Arc::downgrade(state),
        }
    }

    /// Runs `operation` as `user`.
    fn acting_as<T>(
        &self,
        user: &User,
        operation: impl FnOnce(&AppState, &mut Caller) -> Result<T, ApiError>,
    ) -> Result<T, StoreError> {
        let state = self.state.upgrade().ok_or_else(|| StoreError {
            status: 503,
            detail: "The server is shutting down".into(),
        })?;
        let mut caller = Caller::acting_as(&state, user.clone(), STORE, "graph store");
        operation(&state, &mut caller).map_err(|e| StoreError {
            status: e.status.as_u16(),
            detail: e.detail,
        })
    }
}

impl GraphStore for ServerStore {
    fn get(
        &self,
        user: &User,
        namespace: Vec<String>,
        key: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.acting_as(user, |state, caller| {
            store::get_item(state, caller, namespace, key, None)
        })
    }

    fn put(
        &self,
        user: &User,
        namespace: Vec<String>,
        key: &str,
        value: Value,
    ) -> Result<(), StoreError> {
        self.acting_as(user, |state, caller| {
            store::put_item(state, caller, namespace, key, value, (None, None))
        })
    }

    fn delete(&self, user: &User, namespace: Vec<String>, key: &str) -> Result<(), StoreError> {
        self.acting_as(user, |state, caller| {
            store::delete_item(state, caller, namespace, key)
        })
    }

    fn search(
        &self,
        user: &User,
        prefix: Vec<String>,
        filter: Option<Map<String, Value>>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Item>, StoreError> {
        let search = Search {
            namespace_prefix: prefix,
            filter,
            limit: Some(limit),
            offset: Some(offset),
            query: None,
            refresh_ttl: None,
        };
        self.acting_as(user, |state, caller| {
            store::search_items(state, caller, search)
        })
    }

    fn list_namespaces(
        &self,
        user: &User,
        prefix: Vec<String>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let list = Namespaces {
            prefix: Some(prefix),
            suffix: Vec::new(),
            max_depth: None,
            limit: Some(limit),
            offset: Some(offset),
        };
        self.acting_as(user, |state, caller| {
            store::list_namespaces(state, caller, list)
        })
    }
}
