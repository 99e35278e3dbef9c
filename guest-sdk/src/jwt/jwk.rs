//! Keys: shared HMAC secrets, public keys, JWKs and JWK sets (RFC 7517).

use std::fmt;

use serde_json::Value;

use super::{Algorithm, Curve, JwtError, PublicKey, b64};

/// A key a token is verified with.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// A shared secret, for HS256/384/512. Never printed by `Debug`.
    Hmac(Vec<u8>),
    /// A public key, for the asymmetric algorithms.
    Public(PublicKey),
}

impl Key {
    /// A shared HMAC secret (e.g. from [`crate::config::secret`]).
    pub fn hmac(secret: impl AsRef<[u8]>) -> Self {
        Self::Hmac(secret.as_ref().to_vec())
    }

    /// Whether `alg` can be verified with this key (see [`PublicKey::suits`]).
    pub fn suits(&self, alg: Algorithm) -> bool {
        match self {
            Self::Hmac(_) => alg.is_hmac(),
            Self::Public(key) => key.suits(alg),
        }
    }
}

impl From<PublicKey> for Key {
    fn from(key: PublicKey) -> Self {
        Self::Public(key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("Hmac(***)"),
            Self::Public(key) => f.debug_tuple("Public").field(key).finish(),
        }
    }
}

/// A JSON Web Key: a key with its id and the algorithm it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`: the key's id, matched against a token's `kid`.
    pub kid: Option<String>,
    /// `alg`: when set, the only algorithm this key verifies.
    pub alg: Option<Algorithm>,
    /// The key.
    pub key: Key,
}

impl Jwk {
    /// Parses one JWK object: `kty` `RSA` (`n`, `e`), `EC` (`crv` P-256 or
    /// P-384, `x`, `y`), `OKP` (`crv` Ed25519, `x`) or `oct` (`k`). A key
    /// whose `use` is not `sig`, or whose `alg` is unknown, is refused.
    pub fn from_json(jwk: &Value) -> Result<Self, JwtError> {
        let invalid = |why: &str| JwtError::InvalidKey(why.to_owned());
        let field = |name: &str| -> Result<Vec<u8>, JwtError> {
            let text = jwk[name]
                .as_str()
                .ok_or_else(|| invalid(&format!("the JWK has no `{name}`")))?;
            b64::decode(text)
                .ok_or_else(|| invalid(&format!("the JWK's `{name}` is not base64url")))
        };
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return Err(invalid(
                "the JWK is not for signatures (`use` is not \"sig\")",
            ));
        }
        let alg = match jwk.get("alg") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(Algorithm::from_name(name).ok_or_else(|| {
                invalid(&format!("the JWK's algorithm {name:?} is not supported"))
            })?),
            Some(_) => return Err(invalid("the JWK's `alg` is not a string")),
        };
        let key = match jwk["kty"].as_str() {
            Some("RSA") => Key::Public(PublicKey::Rsa {
                n: field("n")?,
                e: field("e")?,
            }),
            Some("EC") => {
                let curve = match jwk["crv"].as_str() {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    _ => return Err(invalid("the EC JWK's curve is not P-256 nor P-384")),
                };
                Key::Public(PublicKey::Ec {
                    curve,
                    x: field("x")?,
                    y: field("y")?,
                })
            }
            Some("OKP") if jwk["crv"] == "Ed25519" => Key::Public(PublicKey::Ed25519(field("x")?)),
            Some("oct") => Key::Hmac(field("k")?),
            _ => {
                return Err(invalid(
                    "the JWK's `kty` is not RSA, EC, OKP (Ed25519) or oct",
                ));
            }
        };
        if let Some(alg) = alg
            && !key.suits(alg)
        {
            return Err(invalid("the JWK's `alg` does not go with its key type"));
        }
        let kid = jwk["kid"].as_str().map(str::to_owned);
        Ok(Self { kid, alg, key })
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.key.suits(alg)
    }
}

/// A JWK set (`{"keys": [...]}`), as an issuer's `jwks_uri` serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    /// The usable signature keys. Keys of unknown types, encryption keys and
    /// symmetric (`oct`) keys are left out: a published secret is no secret.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWK set document, skipping the keys it cannot use (RFC 7517
    /// §5: unknown members and key types are ignored).
    pub fn from_json(document: &[u8]) -> Result<Self, JwtError> {
        let value: Value = serde_json::from_slice(document)
            .map_err(|e| JwtError::InvalidKey(format!("the JWK set is not JSON: {e}")))?;
        let Some(keys) = value.get("keys").and_then(Value::as_array) else {
            return Err(JwtError::InvalidKey(
                "the JWK set has no `keys` array".into(),
            ));
        };
        let keys = keys
            .iter()
            .filter_map(|k| Jwk::from_json(k).ok())
            .filter(|k| matches!(k.key, Key::Public(_)))
            .collect();
        Ok(Self { keys })
    }

    /// The key whose `kid` is `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key for a token with this `kid` and `alg`: the key with that id,
    /// or, for a token without `kid`, the only key that accepts `alg`.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Jwk, JwtError> {
        match kid {
            Some(kid) => self
                .find(kid)
                .ok_or_else(|| JwtError::UnknownKey(Some(kid.to_owned()))),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.accepts(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(JwtError::UnknownKey(None)),
                }
            }
        }
    }
}
