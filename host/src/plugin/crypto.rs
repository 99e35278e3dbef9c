//! `warden:auth/crypto`: asymmetric signature checks with native code
//! (`ring`), so an RS256 token costs tens of microseconds instead of the
//! milliseconds of pure-Rust RSA in WebAssembly. The verification itself is
//! the one the SDK uses natively ([`warden_types::verify_signature`]):
//! plugins tested natively and plugins running here get the same answers.

use warden_types::{self as jwt, Curve, PublicKey, SignatureError};

use super::bindings::crypto as wit;
use super::sandbox::Sandbox;

impl wit::Host for Sandbox {
    fn verify(
        &mut self,
        algorithm: wit::Algorithm,
        key: wit::PublicKey,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<(), wit::VerifyError> {
        jwt::verify_signature(
            algorithm_from_wit(algorithm),
            &key_from_wit(key),
            &message,
            &signature,
        )
        .map_err(|e| match e {
            SignatureError::KeyMismatch => wit::VerifyError::KeyMismatch,
            SignatureError::InvalidKey => wit::VerifyError::InvalidKey,
            SignatureError::BadSignature => wit::VerifyError::BadSignature,
        })
    }
}

fn algorithm_from_wit(algorithm: wit::Algorithm) -> jwt::Algorithm {
    match algorithm {
        wit::Algorithm::Rs256 => jwt::Algorithm::Rs256,
        wit::Algorithm::Rs384 => jwt::Algorithm::Rs384,
        wit::Algorithm::Rs512 => jwt::Algorithm::Rs512,
        wit::Algorithm::Ps256 => jwt::Algorithm::Ps256,
        wit::Algorithm::Ps384 => jwt::Algorithm::Ps384,
        wit::Algorithm::Ps512 => jwt::Algorithm::Ps512,
        wit::Algorithm::Es256 => jwt::Algorithm::Es256,
        wit::Algorithm::Es384 => jwt::Algorithm::Es384,
        wit::Algorithm::EdDsa => jwt::Algorithm::EdDsa,
    }
}

fn key_from_wit(key: wit::PublicKey) -> PublicKey {
    match key {
        wit::PublicKey::Rsa(k) => PublicKey::Rsa { n: k.n, e: k.e },
        wit::PublicKey::Ec(k) => PublicKey::Ec {
            curve: match k.curve {
                wit::Curve::P256 => Curve::P256,
                wit::Curve::P384 => Curve::P384,
            },
            x: k.x,
            y: k.y,
        },
        wit::PublicKey::Ed25519(k) => PublicKey::Ed25519(k),
    }
}
