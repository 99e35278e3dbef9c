//! Verifies the RS256 and ES256 access tokens of an OpenID Connect issuer,
//! maps their `roles` claim to permissions, and stamps owners like the
//! reference policy (`examples/reference/auth`).
//!
//! `auth.config` in `langgraph.json`:
//!
//! | key                    | default        | meaning                                         |
//! |------------------------|----------------|-------------------------------------------------|
//! | `issuer`               | (required)     | the issuer URL; its `iss` and discovery base    |
//! | `audience`             | (not checked)  | an `aud` the token must carry                   |
//! | `algorithms`           | `RS256,ES256`  | accepted algorithms                             |
//! | `leeway_seconds`       | 30             | clock skew allowed on `exp`/`nbf`/`iat`         |
//! | `jwks_ttl_seconds`     | 300            | how long the issuer's keys are kept             |
//! | `jwks_refresh_seconds` | 30             | least time between refetches on an unknown kid  |
//!
//! The issuer's keys come from `{issuer}/.well-known/openid-configuration`
//! → `jwks_uri`, fetched over `wasi:http` (both hosts must be in
//! `auth.allowed_hosts`) and kept in the plugin cache between requests
//! ([`jwks`]). A token whose `kid` is unknown triggers one refetch (at most
//! every `jwks_refresh_seconds`): a key rotation needs no restart.
//!
//! `authenticate` reads the `Authorization` header only (and declares it:
//! the host sends no other header).
//!
//! Roles → permissions: `user` gets `threads:create` and read/write;
//! `admin` also `assistants:write` and `admin`; `reader` reads threads and
//! uses the store. A token without a known role authenticates with no
//! permissions.

pub mod jwks;
mod policy;

use warden_sdk::jwt::{self, Algorithm, Validation};
use warden_sdk::prelude::*;

/// The plugin's settings, from `auth.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `issuer`.
    pub issuer: String,
    /// `audience`.
    pub audience: Option<String>,
    /// `algorithms`.
    pub algorithms: Vec<Algorithm>,
    /// `leeway_seconds`.
    pub leeway: u64,
    /// `jwks_ttl_seconds`.
    pub jwks_ttl: u64,
    /// `jwks_refresh_seconds`.
    pub jwks_refresh: u64,
}

impl Settings {
    /// Reads the settings through `warden_sdk::config`.
    pub fn load() -> Result<Self, HttpError> {
        let misconfigured = |what: String| {
            warden_sdk::log::error(&format!("oidc plugin misconfigured: {what}"));
            HttpError::new(500, "Authentication is misconfigured")
        };
        let number = |key: &str, default: u64| match warden_sdk::config::get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| misconfigured(format!("`{key}` is not a number: {v:?}"))),
        };
        let issuer = warden_sdk::config::get("issuer")
            .ok_or_else(|| misconfigured("`issuer` is not set".into()))?;
        let algorithms = match warden_sdk::config::get("algorithms") {
            None => vec![Algorithm::Rs256, Algorithm::Es256],
            Some(list) => list
                .split(',')
                .map(|name| {
                    Algorithm::from_name(name.trim())
                        .ok_or_else(|| misconfigured(format!("unknown algorithm {name:?}")))
                })
                .collect::<Result<_, _>>()?,
        };
        if algorithms.iter().any(|a| a.is_hmac()) {
            return Err(misconfigured(
                "HMAC algorithms need a shared secret, not a JWKS".into(),
            ));
        }
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: warden_sdk::config::get("audience"),
            algorithms,
            leeway: number("leeway_seconds", 30)?,
            jwks_ttl: number("jwks_ttl_seconds", 300)?,
            jwks_refresh: number("jwks_refresh_seconds", 30)?,
        })
    }

    /// What a token must satisfy.
    pub fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithms.iter().copied())
            .issuer(&self.issuer)
            .leeway(self.leeway)
            .require("sub");
        if let Some(audience) = &self.audience {
            validation = validation.audience(audience);
        }
        validation
    }
}

fn authenticate(request: &Request) -> Result<User, HttpError> {
    if request.authorization().is_none_or(str::is_empty) {
        return Err(HttpError::unauthorized("Missing Authorization header"));
    }
    let token = request
        .bearer_token()
        .ok_or_else(|| HttpError::unauthorized("Invalid Authorization scheme; expected Bearer"))?;
    let settings = Settings::load()?;
    let header = jwt::decode_header(token)?;
    let keys = jwks::keys(&settings, header.kid.as_deref())?;
    let claims = jwt::decode_with_jwks(token, &keys, &settings.validation())?;
    Ok(policy::user(&claims))
}

/// The plugin's `Auth` object.
pub fn auth() -> Auth {
    policy::handlers(Auth::new(authenticate).reads_headers(["authorization"]))
}

warden_sdk::export_auth!(auth);
