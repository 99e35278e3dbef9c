//! `auth.cache`: `authenticate` results reused for requests that carry the
//! same values in the configured headers (LangGraph's `cache_keys`), for
//! `ttl_seconds`, at most `max_size` of them. Only users are cached: an
//! error, a timeout or a fault is never reused. A cache belongs to one
//! loaded plugin, so a new plugin (another digest) starts empty.
//!
//! Keys are SHA-256 digests of the header values: credentials are not kept
//! in memory as cache keys.
//!
//! The store is a [`moka`] cache: expired results are never returned, and
//! when it is full, expired results go first, then the least recently used.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use warden_types::{Request, User};

use super::settings::AuthCacheSettings;

/// The longest `ttl_seconds` honoured (moka's builder panics past 1000
/// years; a century is forever for a cache).
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `auth.cache` entries evicted (by size or age) in this process, every
/// plugin version's cache together: a counter that a swap does not reset.
static EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// How many `auth.cache` entries were evicted (by size or age) in this
/// process.
pub fn evictions() -> u64 {
    EVICTIONS.load(Ordering::Relaxed)
}

/// The key of one request: the digest of its cache-key header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

/// A plugin's `authenticate` results.
pub(crate) struct AuthCache {
    header_names: Vec<String>,
    users: Cache<CacheKey, User>,
}

impl fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Users stay out of logs.
        f.debug_struct("AuthCache")
            .field("header_names", &self.header_names)
            .field("entries", &self.users.entry_count())
            .finish()
    }
}

impl AuthCache {
    pub(crate) fn new(settings: AuthCacheSettings) -> Self {
        let users = Cache::builder()
            .max_capacity(u64::try_from(settings.max_size).unwrap_or(u64::MAX))
            .time_to_live(settings.ttl.min(MAX_TTL))
            // Plain LRU: a new result is always kept (moka's default
            // TinyLFU may refuse a key seen once when the cache is full).
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(|_, _, cause| {
                if cause.was_evicted() {
                    EVICTIONS.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            header_names: settings.header_names,
            users,
        }
    }

    /// The key of `request`, or `None` when it carries none of the
    /// cache-key headers (nothing to tell callers apart by).
    pub(crate) fn key(&self, request: &Request) -> Option<CacheKey> {
        let mut hasher = Sha256::new();
        let mut any = false;
        for name in &self.header_names {
            match request.header(name) {
                Some(value) => {
                    any = true;
                    hasher.update([1]);
                    hasher.update((value.len() as u64).to_le_bytes());
                    hasher.update(value.as_bytes());
                }
                None => hasher.update([0]),
            }
        }
        any.then(|| CacheKey(hasher.finalize().into()))
    }

    /// The user cached under `key`, if still fresh.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<User> {
        self.users.get(key)
    }

    /// Caches `user` under `key`. When full, expired results go first,
    /// then the least recently used.
    pub(crate) fn insert(&self, key: CacheKey, user: User) {
        self.users.insert(key, user);
        // moka bounds the size in batches; apply this insert's eviction now
        // so that `max_size` holds after every insert.
        self.users.run_pending_tasks();
    }

    /// How many results are cached (expired ones included until evicted).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.users.run_pending_tasks();
        self.users.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cache(max_size: usize, ttl: Duration) -> AuthCache {
        AuthCache::new(AuthCacheSettings {
            header_names: vec!["authorization".into(), "x-tenant".into()],
            ttl,
            max_size,
        })
    }

    fn request(token: &str, tenant: Option<&str>) -> Request {
        let mut r = Request::new("GET", "/").with_header("authorization", token);
        if let Some(t) = tenant {
            r = r.with_header("x-tenant", t);
        }
        r
    }

    #[test]
    fn keys_follow_every_configured_header() {
        let c = cache(10, Duration::from_secs(60));
        let a = c.key(&request("t1", None)).unwrap();
        assert_eq!(Some(a), c.key(&request("t1", None)));
        assert_ne!(Some(a), c.key(&request("t2", None)));
        assert_ne!(Some(a), c.key(&request("t1", Some(""))));
        assert_eq!(c.key(&Request::new("GET", "/")), None);
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let c = cache(2, Duration::from_secs(60));
        for token in ["a", "b", "c"] {
            let key = c.key(&request(token, None)).unwrap();
            c.insert(key, User::new(token));
        }
        assert_eq!(c.len(), 2);
        let key = c.key(&request("c", None)).unwrap();
        assert_eq!(c.get(&key).unwrap().identity, "c");
        let short = cache(2, Duration::ZERO);
        let key = short.key(&request("a", None)).unwrap();
        short.insert(key, User::new("a"));
        assert!(short.get(&key).is_none());
    }

    #[test]
    fn a_full_cache_keeps_the_new_result_and_drops_the_least_recently_used() {
        let c = cache(2, Duration::from_secs(60));
        let [a, b, new] = ["a", "b", "new"].map(|t| c.key(&request(t, None)).unwrap());
        c.insert(a, User::new("a"));
        c.insert(b, User::new("b"));
        assert!(c.get(&a).is_some(), "a is now the most recently used");
        c.insert(new, User::new("new"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&new).unwrap().identity, "new", "never refused");
        assert!(c.get(&a).is_some());
        assert!(c.get(&b).is_none(), "the least recently used went");
    }

    #[test]
    fn a_ttl_beyond_the_cache_crate_limit_is_capped() {
        let c = cache(2, Duration::from_secs(u64::MAX));
        let key = c.key(&request("a", None)).unwrap();
        c.insert(key, User::new("a"));
        assert_eq!(c.get(&key).unwrap().identity, "a");
    }
}
