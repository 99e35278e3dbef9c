//! Verifying JSON Web Tokens (JWS compact serialization, RFC 7515/7519).
//!
//! The plugin owns the policy: which keys ([`Key`], [`JwkSet`]), which
//! algorithms, issuers, audiences and claims ([`Validation`]). The SDK
//! checks the signature first, then the claims, and refuses `alg: none`,
//! unknown algorithms, critical header extensions, and algorithm confusion
//! (a key only verifies the algorithms of its type: an HS256 token is never
//! checked against an RSA public key).
//!
//! HMAC (HS256/384/512) is computed in the guest; RSA, ECDSA and Ed25519
//! signatures are checked by the host's native cryptography (~50 µs for
//! RS256 instead of milliseconds in WebAssembly).
//!
//! ```
//! use warden_sdk::jwt::{self, Algorithm, Key, Validation};
//! use warden_sdk::prelude::*;
//!
//! fn authenticate(request: &Request) -> Result<User, HttpError> {
//!     let token = request
//!         .bearer_token()
//!         .ok_or_else(|| HttpError::unauthorized("Missing bearer token"))?;
//!     let secret = warden_sdk::config::secret("JWT_SECRET")
//!         .ok_or_else(|| HttpError::unauthorized("No key configured"))?;
//!     let validation = Validation::new([Algorithm::Hs256]).issuer("me").audience("warden");
//!     let claims = jwt::decode(token, &Key::hmac(secret.expose()), &validation)?;
//!     let subject = claims.subject().ok_or_else(|| HttpError::unauthorized("No subject"))?;
//!     Ok(User::new(subject).with_permissions(claims.strings("roles")))
//! }
//! # let _ = authenticate;
//! ```

mod jwk;
mod signature;
mod validation;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Map, Value};

pub use jwk::{Jwk, JwkSet, Key};
pub use signature::{verify, verify_signature};
pub use validation::{DEFAULT_LEEWAY, Validation};
pub use warden_types::{Algorithm, Curve, PublicKey, SignatureError};

use crate::HttpError;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was refused. Every variant becomes a 401 through
/// `From<JwtError> for HttpError`, with the `Display` text as detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts with JSON header and claims.
    Malformed(&'static str),
    /// The header names an algorithm that is unknown or `none`.
    UnsupportedAlgorithm(String),
    /// The algorithm is known but the validation does not accept it.
    AlgorithmNotAllowed(Algorithm),
    /// The header has a `crit` extension (none are understood).
    UnsupportedCritical,
    /// No key has the token's `kid` (`None`: the token has none, and no
    /// single key fits).
    UnknownKey(Option<String>),
    /// The key cannot verify this algorithm (algorithm confusion, a short
    /// RSA or HMAC key).
    KeyMismatch,
    /// The key is malformed.
    InvalidKey(String),
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
    /// `iss` is not an accepted issuer.
    InvalidIssuer,
    /// `aud` names no accepted audience.
    InvalidAudience,
    /// A required claim is missing.
    MissingClaim(String),
    /// A claim has the wrong type (e.g. a string `exp`).
    InvalidClaim(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "Malformed token: {why}"),
            Self::UnsupportedAlgorithm(alg) => write!(f, "Unsupported token algorithm {alg:?}"),
            Self::AlgorithmNotAllowed(alg) => write!(f, "Token algorithm {alg} is not accepted"),
            Self::UnsupportedCritical => f.write_str("Unsupported critical token header"),
            Self::UnknownKey(Some(kid)) => write!(f, "Unknown signing key {kid:?}"),
            Self::UnknownKey(None) => f.write_str("No signing key for the token"),
            Self::KeyMismatch => f.write_str("The signing key does not match the token algorithm"),
            Self::InvalidKey(why) => write!(f, "Invalid signing key: {why}"),
            Self::InvalidSignature => f.write_str("Invalid token signature"),
            Self::Expired => f.write_str("Token expired"),
            Self::NotYetValid => f.write_str("Token not yet valid"),
            Self::InvalidIssuer => f.write_str("Invalid token issuer"),
            Self::InvalidAudience => f.write_str("Invalid token audience"),
            Self::MissingClaim(name) => write!(f, "Token lacks the claim {name:?}"),
            Self::InvalidClaim(name) => write!(f, "Invalid token claim {name:?}"),
        }
    }
}

impl std::error::Error for JwtError {}

impl From<JwtError> for HttpError {
    fn from(error: JwtError) -> Self {
        HttpError::unauthorized(error.to_string())
    }
}

/// A token's JOSE header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`, checked to be a supported algorithm.
    pub alg: Algorithm,
    /// `kid`, the signing key's id.
    pub kid: Option<String>,
    /// `typ`, e.g. `JWT`.
    pub typ: Option<String>,
}

/// A token's verified claims.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// The claim `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The claim `name`, when it is a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// `sub`: whom the token is about.
    pub fn subject(&self) -> Option<&str> {
        self.str("sub")
    }

    /// The claim `name` as a list of strings: an array's strings, or a
    /// string's space-separated words (as OAuth's `scope`); empty otherwise.
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }
}

/// The three parts of a compact token.
struct Parts<'a> {
    header: Header,
    signed: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let header_json: Value = b64::decode(header)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwtError::Malformed("the header is not base64url JSON"))?;
    let Value::Object(header_json) = header_json else {
        return Err(JwtError::Malformed("the header is not a JSON object"));
    };
    let alg = match header_json.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name)
            .ok_or_else(|| JwtError::UnsupportedAlgorithm(name.clone()))?,
        _ => return Err(JwtError::Malformed("the header has no `alg`")),
    };
    if header_json.contains_key("crit") {
        return Err(JwtError::UnsupportedCritical);
    }
    let text = |name: &str| {
        header_json
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let signature =
        b64::decode(signature).ok_or(JwtError::Malformed("the signature is not base64url"))?;
    Ok(Parts {
        header: Header {
            alg,
            kid: text("kid"),
            typ: text("typ"),
        },
        signed: &token[..header.len() + 1 + payload.len()],
        payload,
        signature,
    })
}

/// Reads a token's header without verifying anything: to pick a key.
pub fn decode_header(token: &str) -> Result<Header, JwtError> {
    split(token).map(|parts| parts.header)
}

/// Verifies `token` with `key` and checks its claims against `validation`.
pub fn decode(token: &str, key: &Key, validation: &Validation) -> Result<Claims, JwtError> {
    let parts = split(token)?;
    verify_parts(&parts, key, None, validation)
}

/// Verifies `token` with the key of `keys` its `kid` names (or the only key
/// fitting its algorithm when it has no `kid`), then checks its claims.
pub fn decode_with_jwks(
    token: &str,
    keys: &JwkSet,
    validation: &Validation,
) -> Result<Claims, JwtError> {
    let parts = split(token)?;
    let jwk = keys.select(parts.header.kid.as_deref(), parts.header.alg)?;
    verify_parts(&parts, &jwk.key, jwk.alg, validation)
}

fn verify_parts(
    parts: &Parts<'_>,
    key: &Key,
    key_alg: Option<Algorithm>,
    validation: &Validation,
) -> Result<Claims, JwtError> {
    let alg = parts.header.alg;
    if !validation.algorithms.contains(&alg) {
        return Err(JwtError::AlgorithmNotAllowed(alg));
    }
    if key_alg.is_some_and(|a| a != alg) || !key.suits(alg) {
        return Err(JwtError::KeyMismatch);
    }
    verify(alg, key, parts.signed.as_bytes(), &parts.signature).map_err(|e| match e {
        SignatureError::KeyMismatch => JwtError::KeyMismatch,
        SignatureError::InvalidKey => JwtError::InvalidKey("rejected by the verifier".into()),
        SignatureError::BadSignature => JwtError::InvalidSignature,
    })?;
    let claims: Value = b64::decode(parts.payload)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwtError::Malformed("the claims are not base64url JSON"))?;
    let Value::Object(claims) = claims else {
        return Err(JwtError::Malformed("the claims are not a JSON object"));
    };
    validation.check(&claims)?;
    Ok(Claims(claims))
}

/// Unpadded base64url (RFC 7515 §2).
pub(crate) mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Decodes unpadded base64url; `None` when it is not.
    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(text).ok()
    }

    /// Encodes as unpadded base64url.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }
}
