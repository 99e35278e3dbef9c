//! `warden:auth/crypto`: asymmetric signature checks with native code
//! (`ring`), so an RS256 token costs tens of microseconds instead of the
//! milliseconds of pure-Rust RSA in WebAssembly. The verification itself is
//! the one the SDK uses natively ([`warden_types::verify_signature`]):
//! plugins tested natively and plugins running here get the same answers.

/// The host side of `crypto` for the `warden:auth` version whose interface
/// is in scope as `crypto` (every version has the same one).
macro_rules! crypto_import {
    () => {
        impl crypto::Host for $crate::plugin::sandbox::Sandbox {
            fn verify(
                &mut self,
                algorithm: crypto::Algorithm,
                key: crypto::PublicKey,
                message: Vec<u8>,
                signature: Vec<u8>,
            ) -> Result<(), crypto::VerifyError> {
                use warden_types::{Algorithm, Curve, PublicKey, SignatureError};
                let algorithm = match algorithm {
                    crypto::Algorithm::Rs256 => Algorithm::Rs256,
                    crypto::Algorithm::Rs384 => Algorithm::Rs384,
                    crypto::Algorithm::Rs512 => Algorithm::Rs512,
                    crypto::Algorithm::Ps256 => Algorithm::Ps256,
                    crypto::Algorithm::Ps384 => Algorithm::Ps384,
                    crypto::Algorithm::Ps512 => Algorithm::Ps512,
                    crypto::Algorithm::Es256 => Algorithm::Es256,
                    crypto::Algorithm::Es384 => Algorithm::Es384,
                    crypto::Algorithm::EdDsa => Algorithm::EdDsa,
                };
                let key = match key {
                    crypto::PublicKey::Rsa(k) => PublicKey::Rsa { n: k.n, e: k.e },
                    crypto::PublicKey::Ec(k) => PublicKey::Ec {
                        curve: match k.curve {
                            crypto::Curve::P256 => Curve::P256,
                            crypto::Curve::P384 => Curve::P384,
                        },
                        x: k.x,
                        y: k.y,
                    },
                    crypto::PublicKey::Ed25519(k) => PublicKey::Ed25519(k),
                };
                warden_types::verify_signature(algorithm, &key, &message, &signature).map_err(|e| {
                    match e {
                        SignatureError::KeyMismatch => crypto::VerifyError::KeyMismatch,
                        SignatureError::InvalidKey => crypto::VerifyError::InvalidKey,
                        SignatureError::BadSignature => crypto::VerifyError::BadSignature,
                    }
                })
            }
        }
    };
}
pub(super) use crypto_import;
