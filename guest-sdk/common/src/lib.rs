//! # warden-common: a Warden component's settings
//!
//! What every Warden component (an auth plugin, a graph) reads from its
//! section of `langgraph.json` through `warden:common/config@0.1.0`:
//! `config` values and `secrets` (read by the host from its environment at
//! start-up; a secret's value is blanked out of the component's logs and
//! errors). `warden-sdk` re-exports this crate as `config`,
//! `warden-graph` as `settings`.
//!
//! ```json
//! "auth": {
//!   "path": "./auth",
//!   "config": {"issuer": "https://idp.example.com", "audience": "warden"},
//!   "secrets": {"JWT_SECRET": "env:JWT_SECRET"}
//! },
//! "graphs": {
//!   "assistant": {
//!     "path": "./assistant",
//!     "config": {"model": "gpt-4o-mini"},
//!     "secrets": {"OPENAI_API_KEY": "env:OPENAI_API_KEY"}
//!   }
//! }
//! ```
//!
//! In native builds (unit tests) there is no host: values come from
//! [`set`] and [`set_secret`], shared by the whole test process.

use std::fmt;

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/common/v0.1.0",
        inline: "package warden:components;
                 world settings { import warden:common/config@0.1.0; }",
        world: "warden:components/settings",
        generate_all,
    });
}

/// A secret's value. `Debug` shows `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The value of `config.<key>` in the component's section, if set.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return bindings::warden::common::config::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return native::read(&native::VALUES, key);
}

/// The secret `secrets.<name>` of the component's section, if declared. Start-up fails when a
/// declared secret is missing, so a declared secret is always here.
pub fn secret(name: &str) -> Option<Secret> {
    #[cfg(target_arch = "wasm32")]
    return bindings::warden::common::config::secret(name).map(Secret);
    #[cfg(not(target_arch = "wasm32"))]
    return native::read(&native::SECRETS, name).map(Secret);
}

/// Native builds only: sets what [`get`] returns for `key`.
#[cfg(not(target_arch = "wasm32"))]
pub fn set(key: &str, value: &str) {
    native::write(&native::VALUES, key, value);
}

/// Native builds only: sets what [`secret`] returns for `name`.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_secret(name: &str, value: &str) {
    native::write(&native::SECRETS, name, value);
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::BTreeMap;
    use std::sync::RwLock;

    pub(super) type Store = RwLock<BTreeMap<String, String>>;
    pub(super) static VALUES: Store = RwLock::new(BTreeMap::new());
    pub(super) static SECRETS: Store = RwLock::new(BTreeMap::new());

    pub(super) fn read(store: &Store, key: &str) -> Option<String> {
        store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(super) fn write(store: &Store, key: &str, value: &str) {
        store
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), value.to_owned());
    }
}
