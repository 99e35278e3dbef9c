//! The store behind `warden:auth/cache`: small values a plugin keeps
//! between calls (instances are fresh per request, so guest memory never
//! outlives one). One store per loaded plugin, dropped with it: a new
//! version of the plugin starts empty. Bounded in key size, value size and
//! total bytes; when full, expired values go first, then the least recently
//! used.

use std::fmt;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

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
pub(crate) struct PluginCache {
    values: Cache<String, Value>,
}

/// A stored value, with the time to live it was set with.
#[derive(Clone)]
struct Value {
    bytes: Vec<u8>,
    ttl: Duration,
}

/// Each value lives for the time it was set with, counted from that set.
struct SetTtl;

impl Expiry<String, Value> for SetTtl {
    fn expire_after_create(&self, _: &String, value: &Value, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Value,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl Default for PluginCache {
    fn default() -> Self {
        let values = Cache::builder()
            .max_capacity(MAX_TOTAL_BYTES as u64)
            .weigher(|key: &String, value: &Value| {
                u32::try_from(key.len() + value.bytes.len()).unwrap_or(u32::MAX)
            })
            .expire_after(SetTtl)
            // Plain LRU: a new value is always kept (moka's default TinyLFU
            // may refuse a key seen once when the store is full).
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self { values }
    }
}

impl fmt::Debug for PluginCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginCache")
            .field("entries", &self.values.entry_count())
            .field("bytes", &self.values.weighted_size())
            .finish()
    }
}

impl PluginCache {
    /// The value under `key`, unless absent or expired.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.values.get(key).map(|value| value.bytes)
    }

    /// Stores `value` under `key` for `ttl` (at least a second).
    pub(crate) fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), TooLarge> {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(TooLarge);
        }
        let ttl = ttl.max(Duration::from_secs(1));
        self.values
            .insert(key.to_owned(), Value { bytes: value, ttl });
        // moka bounds the size in batches; apply this set's eviction now so
        // that the plugin never holds more than MAX_TOTAL_BYTES.
        self.values.run_pending_tasks();
        Ok(())
    }

    /// Removes the value under `key`.
    pub(crate) fn delete(&self, key: &str) {
        self.values.invalidate(key);
    }

    /// The bytes kept (keys and values), pending evictions applied.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.values.run_pending_tasks();
        self.values.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

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
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_replaced_value_lives_for_its_own_ttl() {
        let key = "k".to_owned();
        let value = |secs| Value {
            bytes: Vec::new(),
            ttl: Duration::from_secs(secs),
        };
        let now = Instant::now();
        let left = Some(Duration::from_secs(50));
        assert_eq!(
            SetTtl.expire_after_update(&key, &value(5), now, left),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            SetTtl.expire_after_create(&key, &value(60), now),
            Some(Duration::from_secs(60))
        );
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
            assert!(cache.bytes() <= MAX_TOTAL_BYTES as u64, "after set {i}");
        }
        assert_eq!(cache.get("k0"), None, "the oldest value went");
        assert!(cache.get("k4").is_some(), "the newest was kept");
    }

    #[test]
    fn a_value_read_recently_outlives_an_older_unread_one() {
        let cache = PluginCache::default();
        let ttl = Duration::from_secs(60);
        for key in ["a", "b", "c"] {
            cache.set(key, vec![0; MIB], ttl).unwrap();
        }
        assert!(cache.get("a").is_some());
        cache.set("d", vec![0; MIB], ttl).unwrap();
        assert!(cache.get("a").is_some(), "read since it was set");
        assert_eq!(cache.get("b"), None, "the least recently used went");
        assert!(cache.get("d").is_some());
    }

    #[test]
    fn the_longest_ttl_a_guest_can_ask_for_is_kept() {
        let cache = PluginCache::default();
        let ttl = Duration::from_secs(u32::MAX.into());
        cache.set("k", b"v".to_vec(), ttl).unwrap();
        assert_eq!(cache.get("k").as_deref(), Some(&b"v"[..]));
    }
}
