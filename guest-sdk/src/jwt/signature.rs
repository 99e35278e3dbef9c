//! Signature checks. HMAC runs where the SDK runs (in the guest, with
//! constant-time comparison). Asymmetric signatures are checked by native
//! code: inside Warden through the host's `warden:auth/crypto` import, and
//! in native builds (unit tests, and the host itself) with `ring`, the
//! same library the host uses, so both agree by construction.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::{Algorithm, Key, PublicKey, SignatureError};

/// Checks that `signature` signs `message` under `key` with `alg`.
pub fn verify(
    alg: Algorithm,
    key: &Key,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    match key {
        Key::Hmac(secret) => verify_hmac(alg, secret, message, signature),
        Key::Public(key) => verify_signature(alg, key, message, signature),
    }
}

fn verify_hmac(
    alg: Algorithm,
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    fn check<M: Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
            .map_err(|_| SignatureError::InvalidKey)?;
        mac.update(message);
        // `verify_slice` compares in constant time.
        mac.verify_slice(signature)
            .map_err(|_| SignatureError::BadSignature)
    }
    // RFC 7518 §3.2: the key is at least as long as the hash output.
    let (minimum, result) = match alg {
        Algorithm::Hs256 => (32, check::<Hmac<Sha256>> as fn(&[u8], &[u8], &[u8]) -> _),
        Algorithm::Hs384 => (48, check::<Hmac<Sha384>> as fn(&[u8], &[u8], &[u8]) -> _),
        Algorithm::Hs512 => (64, check::<Hmac<Sha512>> as fn(&[u8], &[u8], &[u8]) -> _),
        _ => return Err(SignatureError::KeyMismatch),
    };
    if secret.len() < minimum {
        return Err(SignatureError::KeyMismatch);
    }
    result(secret, message, signature)
}

/// Checks an asymmetric signature with native cryptography: the host's
/// `warden:auth/crypto.verify` inside Warden, `ring` in native builds. The
/// key must suit the algorithm ([`PublicKey::suits`]); HMAC algorithms are
/// refused here.
pub fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    #[cfg(not(target_arch = "wasm32"))]
    return warden_types::verify_signature(alg, key, message, signature);
    #[cfg(target_arch = "wasm32")]
    {
        if !key.suits(alg) {
            return Err(SignatureError::KeyMismatch);
        }
        backend::verify(alg, key, message, signature)
    }
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::{Algorithm, PublicKey, SignatureError};
    use crate::__private::bindings::warden::auth::crypto as wit;

    pub(super) fn verify(
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let algorithm = match alg {
            Algorithm::Rs256 => wit::Algorithm::Rs256,
            Algorithm::Rs384 => wit::Algorithm::Rs384,
            Algorithm::Rs512 => wit::Algorithm::Rs512,
            Algorithm::Ps256 => wit::Algorithm::Ps256,
            Algorithm::Ps384 => wit::Algorithm::Ps384,
            Algorithm::Ps512 => wit::Algorithm::Ps512,
            Algorithm::Es256 => wit::Algorithm::Es256,
            Algorithm::Es384 => wit::Algorithm::Es384,
            Algorithm::EdDsa => wit::Algorithm::EdDsa,
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                return Err(SignatureError::KeyMismatch);
            }
        };
        let key = match key {
            PublicKey::Rsa { n, e } => wit::PublicKey::Rsa(wit::RsaKey {
                n: n.clone(),
                e: e.clone(),
            }),
            PublicKey::Ec { curve, x, y } => wit::PublicKey::Ec(wit::EcKey {
                curve: match curve {
                    super::super::Curve::P256 => wit::Curve::P256,
                    super::super::Curve::P384 => wit::Curve::P384,
                },
                x: x.clone(),
                y: y.clone(),
            }),
            PublicKey::Ed25519(k) => wit::PublicKey::Ed25519(k.clone()),
        };
        wit::verify(algorithm, &key, message, signature).map_err(|e| match e {
            wit::VerifyError::KeyMismatch => SignatureError::KeyMismatch,
            wit::VerifyError::InvalidKey => SignatureError::InvalidKey,
            wit::VerifyError::BadSignature => SignatureError::BadSignature,
        })
    }
}
