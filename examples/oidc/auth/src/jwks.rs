//! The issuer's signing keys: discovered (`/.well-known/openid-configuration`
//! → `jwks_uri`), fetched over `wasi:http`, and kept in the plugin cache so
//! that requests after the first verify without a fetch. Each instance is
//! fresh, so the keys must live in the host's cache, not in guest memory.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden_sdk::jwt::JwkSet;
use warden_sdk::prelude::*;
use warden_sdk::{cache, http};

use crate::Settings;

/// The issuer's keys, able to verify a token signed by `kid` when the
/// issuer has it: the cached set, or a fresh one when nothing is cached,
/// or when `kid` is unknown and the cached set is older than
/// `jwks_refresh_seconds` (a key rotation).
pub fn keys(settings: &Settings, kid: Option<&str>) -> Result<JwkSet, HttpError> {
    let now = now();
    let cache_key = format!("jwks {}", settings.issuer);
    if let Some((fetched_at, keys)) = cached(&cache_key) {
        let known = kid.is_none_or(|kid| keys.find(kid).is_some());
        if known || now < fetched_at.saturating_add(settings.jwks_refresh) {
            return Ok(keys);
        }
    }
    let document = fetch(settings).map_err(|why| {
        warden_sdk::log::warn(&format!(
            "cannot fetch the signing keys of {}: {why}",
            settings.issuer
        ));
        HttpError::new(
            503,
            "Cannot verify the token: the issuer's keys are unavailable",
        )
    })?;
    let keys = JwkSet::from_json(&document)?;
    if settings.jwks_ttl > 0 {
        let mut value = now.to_be_bytes().to_vec();
        value.extend_from_slice(&document);
        if cache::set(&cache_key, &value, Duration::from_secs(settings.jwks_ttl)).is_err() {
            warden_sdk::log::warn("the issuer's JWKS is too large to cache");
        }
    }
    Ok(keys)
}

/// The cached set and when it was fetched.
fn cached(cache_key: &str) -> Option<(u64, JwkSet)> {
    let value = cache::get(cache_key)?;
    let (stamp, document) = value.split_at_checked(8)?;
    let fetched_at = u64::from_be_bytes(stamp.try_into().ok()?);
    Some((fetched_at, JwkSet::from_json(document).ok()?))
}

/// Discovers `jwks_uri` and fetches the key set document.
fn fetch(settings: &Settings) -> Result<Vec<u8>, String> {
    let url = format!("{}/.well-known/openid-configuration", settings.issuer);
    let discovery: Value = get(&url)?.json().map_err(|e| format!("{url}: {e}"))?;
    // OpenID Connect Discovery §4.3: the document names the same issuer.
    if discovery["issuer"]
        .as_str()
        .map(|i| i.trim_end_matches('/'))
        != Some(&settings.issuer)
    {
        return Err(format!("{url} names another issuer"));
    }
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("{url} has no jwks_uri"))?;
    Ok(get(jwks_uri)?.body)
}

fn get(url: &str) -> Result<http::Response, String> {
    let response = http::get(url).map_err(|e| format!("GET {url}: {e}"))?;
    if !response.is_success() {
        return Err(format!("GET {url}: status {}", response.status));
    }
    Ok(response)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
