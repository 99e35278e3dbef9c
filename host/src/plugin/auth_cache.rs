//! `auth.cache`: `authenticate` results reused for requests that carry the
//! same values in the configured headers (LangGraph's `cache_keys`), for
//! `ttl_seconds`, at most `max_size` of them. Only users are cached: an
//! error, a timeout or a fault is never reused. A cache belongs to one
//! loaded plugin, so a new plugin (another digest) starts empty.
//!
//! Keys are SHA-256 digests of the header values: credentials are not kept
//! in memory as cache keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};
use warden_types::{Request, User};

use super::settings::AuthCacheSettings;

/// The key of one request: the digest of its cache-key header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

/// A plugin's `authenticate` results.
#[derive(Debug)]
pub(crate) struct AuthCache {
    settings: AuthCacheSettings,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

#[derive(Debug)]
struct Entry {
    user: User,
    expires: Instant,
}

impl AuthCache {
    pub(crate) fn new(settings: AuthCacheSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key of `request`, or `None` when it carries none of the
    /// cache-key headers (nothing to tell callers apart by).
    pub(crate) fn key(&self, request: &Request) -> Option<CacheKey> {
        let mut hasher = Sha256::new();
        let mut any = false;
        for name in &self.settings.header_names {
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
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(entry) if entry.expires > Instant::now() => Some(entry.user.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches `user` under `key`. When full, expired entries go first, then
    /// the entry closest to expiry (the oldest).
    pub(crate) fn insert(&self, key: CacheKey, user: User) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.settings.max_size && !entries.contains_key(&key) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.settings.max_size
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                user,
                expires: now + self.settings.ttl,
            },
        );
    }

    /// How many results are cached (expired ones included until evicted).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
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
}
