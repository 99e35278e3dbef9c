//! Public keys and native signature checks: the host's `crypto` import and
//! the SDK's native builds verify with the same code (`ring`), so a plugin
//! tested with `cargo test` and one running in Warden get the same answers.

use crate::Algorithm;

/// An elliptic curve of an EC public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (`"P-256"`), for ES256.
    P256,
    /// NIST P-384 (`"P-384"`), for ES384.
    P384,
}

impl Curve {
    /// The size of a coordinate (and of `r` and `s`), in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// A public key that verifies asymmetric signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An RSA key: modulus and exponent, unsigned big-endian.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
    /// An EC key: the point's coordinates, unsigned big-endian.
    Ec {
        /// The curve.
        curve: Curve,
        /// The x coordinate.
        x: Vec<u8>,
        /// The y coordinate.
        y: Vec<u8>,
    },
    /// An Ed25519 key (32 bytes).
    Ed25519(Vec<u8>),
}

impl PublicKey {
    /// Whether `alg` is an algorithm of this kind of key: RSA keys verify
    /// RS*/PS*, P-256 keys ES256, P-384 keys ES384, Ed25519 keys EdDSA.
    /// No public key verifies an HMAC algorithm (algorithm confusion).
    pub fn suits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa { .. } => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            Self::Ec { curve, .. } => {
                matches!((curve, alg), (Curve::P256, Es256) | (Curve::P384, Es384))
            }
            Self::Ed25519(_) => alg == EdDsa,
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The algorithm does not go with the key (algorithm confusion, an RSA
    /// key under 2048 bits, an HMAC secret shorter than the hash).
    KeyMismatch,
    /// The key is malformed.
    InvalidKey,
    /// The signature does not verify.
    BadSignature,
}

/// Checks an asymmetric signature with `ring`. The key must suit the
/// algorithm ([`PublicKey::suits`]); HMAC algorithms are refused here.
#[cfg(not(target_arch = "wasm32"))]
pub fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if !key.suits(alg) {
        return Err(SignatureError::KeyMismatch);
    }
    ring_backend::verify(alg, key, message, signature)
}

#[cfg(not(target_arch = "wasm32"))]
mod ring_backend {
    use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};

    use super::{Algorithm, Curve, PublicKey, SignatureError};

    pub(super) fn verify(
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        match key {
            PublicKey::Rsa { n, e } => {
                let params: &sig::RsaParameters = match alg {
                    Algorithm::Rs256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::Rs384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::Rs512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
                    Algorithm::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
                    Algorithm::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(SignatureError::KeyMismatch),
                };
                let n = strip_zeros(n);
                let e = strip_zeros(e);
                if e.is_empty() || n.is_empty() {
                    return Err(SignatureError::InvalidKey);
                }
                if n.len() < 256 || n.len() > 1024 {
                    return Err(SignatureError::KeyMismatch);
                }
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .map_err(|_| SignatureError::BadSignature)
            }
            PublicKey::Ec { curve, x, y } => {
                let algorithm: &sig::EcdsaVerificationAlgorithm = match (curve, alg) {
                    (Curve::P256, Algorithm::Es256) => &sig::ECDSA_P256_SHA256_FIXED,
                    (Curve::P384, Algorithm::Es384) => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => return Err(SignatureError::KeyMismatch),
                };
                if x.len() != curve.size() || y.len() != curve.size() {
                    return Err(SignatureError::InvalidKey);
                }
                let point = [&[4u8][..], x, y].concat();
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .map_err(|_| SignatureError::BadSignature)
            }
            PublicKey::Ed25519(key) => {
                if alg != Algorithm::EdDsa {
                    return Err(SignatureError::KeyMismatch);
                }
                if key.len() != 32 {
                    return Err(SignatureError::InvalidKey);
                }
                UnparsedPublicKey::new(&sig::ED25519, key)
                    .verify(message, signature)
                    .map_err(|_| SignatureError::BadSignature)
            }
        }
    }

    fn strip_zeros(bytes: &[u8]) -> &[u8] {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        &bytes[start..]
    }
}
