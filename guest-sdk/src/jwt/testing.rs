//! Minting tokens for tests (native builds only): sign claims with HMAC,
//! RSA (a PKCS#8 key), or a freshly generated EC or Ed25519 key, and publish
//! the public half as a JWK. Test a plugin's `authenticate` natively with
//! real tokens, or serve [`SigningKey::jwk`] from a test identity provider.
//!
//! ```
//! use warden_sdk::jwt::testing::SigningKey;
//! use warden_sdk::jwt::{self, Algorithm, JwkSet, Validation};
//! use warden_sdk::json;
//!
//! let key = SigningKey::generate_ec(jwt::Curve::P256).with_kid("k1");
//! let token = key.sign(Algorithm::Es256, &json!({"sub": "alice", "exp": 4102444800u64}));
//! let jwks = JwkSet::from_json(json!({"keys": [key.jwk()]}).to_string().as_bytes()).unwrap();
//! let claims = jwt::decode_with_jwks(&token, &jwks, &Validation::new([Algorithm::Es256])).unwrap();
//! assert_eq!(claims.subject(), Some("alice"));
//! ```

use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::{Algorithm, Curve, b64};

/// A private key that signs test tokens.
pub struct SigningKey {
    kind: Kind,
    kid: Option<String>,
}

enum Kind {
    Hmac(Vec<u8>),
    Rsa(RsaKeyPair),
    Ec(Curve, Vec<u8>),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// An HMAC secret.
    pub fn hmac(secret: impl AsRef<[u8]>) -> Self {
        Self::new(Kind::Hmac(secret.as_ref().to_vec()))
    }

    /// An RSA key from its PKCS#8 DER encoding.
    ///
    /// # Panics
    /// When `der` is not an RSA PKCS#8 key.
    pub fn rsa_pkcs8(der: &[u8]) -> Self {
        Self::new(Kind::Rsa(
            RsaKeyPair::from_pkcs8(der).expect("an RSA PKCS#8 key"),
        ))
    }

    /// A new EC key on `curve`.
    pub fn generate_ec(curve: Curve) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(ec_signing(curve), &SystemRandom::new())
            .expect("generating an EC key");
        Self::new(Kind::Ec(curve, pkcs8.as_ref().to_vec()))
    }

    /// A new Ed25519 key.
    pub fn generate_ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generating a key");
        Self::new(Kind::Ed25519(
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a fresh key"),
        ))
    }

    fn new(kind: Kind) -> Self {
        Self { kind, kid: None }
    }

    /// Sets the key id (`kid`) put in tokens and in the JWK.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The public key as a JWK (an `oct` JWK for an HMAC secret).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.kind {
            Kind::Hmac(secret) => json!({"kty": "oct", "k": b64::encode(secret)}),
            Kind::Rsa(pair) => {
                let public = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({"kty": "RSA", "use": "sig", "n": b64::encode(&public.n), "e": b64::encode(&public.e)})
            }
            Kind::Ec(curve, pkcs8) => {
                let pair = ec_pair(*curve, pkcs8);
                let point = pair.public_key().as_ref();
                let size = curve.size();
                let crv = match curve {
                    Curve::P256 => "P-256",
                    Curve::P384 => "P-384",
                };
                json!({"kty": "EC", "use": "sig", "crv": crv,
                       "x": b64::encode(&point[1..1 + size]), "y": b64::encode(&point[1 + size..])})
            }
            Kind::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(pair.public_key().as_ref())})
            }
        };
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// A token of `claims` signed with `alg`, header `{"alg", "typ", "kid"}`.
    pub fn sign(&self, alg: Algorithm, claims: &Value) -> String {
        let mut header = json!({"alg": alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        self.sign_with_header(alg, &header, claims)
    }

    /// A token with this exact header, signed as `alg` (which the header
    /// need not name: for tests of mismatched headers).
    ///
    /// # Panics
    /// When `alg` is not an algorithm of this key.
    pub fn sign_with_header(&self, alg: Algorithm, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let message = signed.as_bytes();
        let rng = SystemRandom::new();
        let signature = match (&self.kind, alg) {
            (Kind::Hmac(secret), Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512) => {
                let algorithm = match alg {
                    Algorithm::Hs256 => ring::hmac::HMAC_SHA256,
                    Algorithm::Hs384 => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                let key = ring::hmac::Key::new(algorithm, secret);
                ring::hmac::sign(&key, message).as_ref().to_vec()
            }
            (Kind::Rsa(pair), _) => {
                let padding: &dyn sig::RsaEncoding = match alg {
                    Algorithm::Rs256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::Rs384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::Rs512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::Ps256 => &sig::RSA_PSS_SHA256,
                    Algorithm::Ps384 => &sig::RSA_PSS_SHA384,
                    Algorithm::Ps512 => &sig::RSA_PSS_SHA512,
                    _ => panic!("an RSA key does not sign {alg}"),
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .expect("RSA signing");
                out
            }
            (Kind::Ec(curve, pkcs8), Algorithm::Es256 | Algorithm::Es384) => ec_pair(*curve, pkcs8)
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            (Kind::Ed25519(pair), Algorithm::EdDsa) => pair.sign(message).as_ref().to_vec(),
            _ => panic!("this key does not sign {alg}"),
        };
        format!("{signed}.{}", b64::encode(&signature))
    }
}

/// An unsigned token (`alg: none`, empty signature): what verifiers refuse.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64::encode(claims.to_string().as_bytes())
    )
}

fn ec_signing(curve: Curve) -> &'static sig::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
    }
}

fn ec_pair(curve: Curve, pkcs8: &[u8]) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(ec_signing(curve), pkcs8, &SystemRandom::new())
        .expect("a generated EC key")
}
