//! The store behind `warden:auth/cache`: small values a plugin keeps
//! between calls (instances are fresh per request, so guest memory never
//! outlives one). One store per loaded plugin, dropped with it: a new
//! version of the plugin starts empty. Bounded in key size, value size and
//! total bytes; when full, the values closest to expiry go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest key accepted, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 512;
/// The largest value accepted, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most bytes (keys and values) one plugin keeps.
pub(crate) const MAX_TOTAL_BYTES: usize = 4 << 20;

/// A value too large to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key or the value is too large for the plugin cache")]
pub(crate) struct TooLarge;

/// One plugin's store.
#[derive(Debug, Default)]
pub(crate) struct PluginCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (Vec<u8>, Instant)>,
    bytes: usize,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some((value, _)) = self.map.remove(key) {
            self.bytes -= key.len() + value.len();
        }
    }
}

impl PluginCache {
    /// The value under `key`, unless absent or expired.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.map.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` under `key` for `ttl` (at least a second).
    pub(crate) fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), TooLarge> {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(TooLarge);
        }
        let now = Instant::now();
        let expires = now + ttl.max(Duration::from_secs(1));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
        let size = key.len() + value.len();
        if entries.bytes + size > MAX_TOTAL_BYTES {
            entries.map.retain(|_, (_, e)| *e > now);
            entries.bytes = entries
                .map
                .iter()
                .map(|(k, (v, _))| k.len() + v.len())
                .sum();
        }
        while entries.bytes + size > MAX_TOTAL_BYTES {
            let Some(soonest) = entries
                .map
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            entries.remove(&soonest);
        }
        entries.bytes += size;
        entries.map.insert(key.to_owned(), (value, expires));
        Ok(())
    }

    /// Removes the value under `key`.
    pub(crate) fn delete(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_and_are_replaced() {
        let cache = PluginCache::default();
        cache
            .set("k", b"v1".to_vec(), Duration::from_secs(60))
            .unwrap();
        cache
            .set("k", b"v2".to_vec(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(cache.get("k").as_deref(), Some(&b"v2"[..]));
        cache.delete("k");
        assert_eq!(cache.get("k"), None);
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.bytes, 0);
    }

    #[test]
    fn sizes_are_capped_and_the_oldest_values_make_room() {
        let cache = PluginCache::default();
        assert_eq!(
            cache.set("k", vec![0; MAX_VALUE_BYTES + 1], Duration::from_secs(1)),
            Err(TooLarge)
        );
        for i in 0..5u64 {
            let ttl = Duration::from_secs(10 + i);
            cache
                .set(&format!("k{i}"), vec![0; MAX_VALUE_BYTES], ttl)
                .unwrap();
        }
        assert_eq!(cache.get("k0"), None, "the value closest to expiry went");
        assert!(cache.get("k4").is_some());
        assert!(cache.entries.lock().unwrap().bytes <= MAX_TOTAL_BYTES);
    }
}
