//! The plugin's settings from `langgraph.json`: `auth.config` values and
//! `auth.secrets` (read by the host from its environment at start-up).
//!
//! ```json
//! "auth": {
//!   "path": "./auth",
//!   "config": {"issuer": "https://idp.example.com", "audience": "warden"},
//!   "secrets": {"JWT_SECRET": "env:JWT_SECRET"}
//! }
//! ```
//!
//! In native builds (unit tests) there is no host: values come from
//! [`set`] and [`set_secret`], shared by the whole test process.

use std::fmt;

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

/// The value of `auth.config.<key>`, if set.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::__private::bindings::warden::common::config::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return native::read(&native::VALUES, key);
}

/// The secret `auth.secrets.<name>`, if declared. Start-up fails when a
/// declared secret is missing, so a declared secret is always here.
pub fn secret(name: &str) -> Option<Secret> {
    #[cfg(target_arch = "wasm32")]
    return crate::__private::bindings::warden::common::config::secret(name).map(Secret);
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
