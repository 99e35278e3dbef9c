//! Values a plugin keeps between calls, in the host.
//!
//! Every request runs in a fresh instance, so nothing in guest memory
//! survives a call: what must (an issuer's JWKS, a discovery document) goes
//! here. The store belongs to the loaded plugin (a new version starts
//! empty), is bounded (keys up to 512 bytes, values up to 1 MiB, 4 MiB in
//! all; expired values, then the least recently used, make room), and is
//! shared by every request of every user: keep public data only.
//!
//! In native builds (unit tests) the store is a map in the test process.

use std::time::Duration;

/// A value the host would not keep: the key or the value is too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the key or the value is too large for the plugin cache")
    }
}

impl std::error::Error for TooLarge {}

/// The value under `key`, unless absent or expired.
pub fn get(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return crate::__private::bindings::warden::auth::cache::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return native::get(key);
}

/// Stores `value` under `key` for `ttl` (rounded up to whole seconds, at
/// least one), replacing any value.
pub fn set(key: &str, value: &[u8], ttl: Duration) -> Result<(), TooLarge> {
    let seconds = u32::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
        .unwrap_or(u32::MAX)
        .max(1);
    #[cfg(target_arch = "wasm32")]
    return crate::__private::bindings::warden::auth::cache::set(key, value, seconds)
        .map_err(|_| TooLarge);
    #[cfg(not(target_arch = "wasm32"))]
    return native::set(key, value, seconds);
}

/// Removes the value under `key`, if any.
pub fn delete(key: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::__private::bindings::warden::auth::cache::delete(key);
    #[cfg(not(target_arch = "wasm32"))]
    native::delete(key);
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::TooLarge;

    type Store = Mutex<Option<HashMap<String, (Vec<u8>, Instant)>>>;
    static STORE: Store = Mutex::new(None);

    pub(super) fn get(key: &str) -> Option<Vec<u8>> {
        let store = STORE.lock().unwrap_or_else(|e| e.into_inner());
        store
            .as_ref()?
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    pub(super) fn set(key: &str, value: &[u8], seconds: u32) -> Result<(), TooLarge> {
        if key.len() > 512 || value.len() > 1 << 20 {
            return Err(TooLarge);
        }
        let expires = Instant::now() + Duration::from_secs(seconds.into());
        let mut store = STORE.lock().unwrap_or_else(|e| e.into_inner());
        store
            .get_or_insert_with(HashMap::new)
            .insert(key.to_owned(), (value.to_vec(), expires));
        Ok(())
    }

    pub(super) fn delete(key: &str) {
        let mut store = STORE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = store.as_mut() {
            map.remove(key);
        }
    }
}
