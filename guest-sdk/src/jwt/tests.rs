//! Native tests of token verification, with tokens minted by [`testing`].

use serde_json::{Value, json};

use super::testing::{SigningKey, unsigned};
use super::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";

fn rsa_a() -> SigningKey {
    SigningKey::rsa_pkcs8(include_bytes!("../../../tests/keys/rsa-a.pk8.der")).with_kid("a")
}

fn rsa_b() -> SigningKey {
    SigningKey::rsa_pkcs8(include_bytes!("../../../tests/keys/rsa-b.pk8.der")).with_kid("b")
}

fn claims() -> Value {
    json!({"sub": "alice", "iss": "https://idp.test", "aud": "warden",
           "exp": NOW + 60, "iat": NOW - 10, "nbf": NOW - 10, "roles": ["admin"]})
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn validation(algs: &[Algorithm]) -> Validation {
    Validation::new(algs.iter().copied())
        .issuer("https://idp.test")
        .audience("warden")
        .at(NOW)
}

fn jwks(keys: &[&SigningKey]) -> JwkSet {
    let doc = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    JwkSet::from_json(doc.to_string().as_bytes()).unwrap()
}

fn check(token: &str, keys: &JwkSet, algs: &[Algorithm]) -> Result<Claims, JwtError> {
    decode_with_jwks(token, keys, &validation(algs))
}

#[test]
fn every_asymmetric_algorithm_verifies_through_a_jwk_set() {
    let rsa = rsa_a();
    let p256 = SigningKey::generate_ec(Curve::P256).with_kid("p256");
    let p384 = SigningKey::generate_ec(Curve::P384).with_kid("p384");
    let ed = SigningKey::generate_ed25519().with_kid("ed");
    let keys = jwks(&[&rsa, &p256, &p384, &ed]);
    use Algorithm::*;
    for (key, alg) in [
        (&rsa, Rs256),
        (&rsa, Rs384),
        (&rsa, Rs512),
        (&rsa, Ps256),
        (&rsa, Ps384),
        (&rsa, Ps512),
        (&p256, Es256),
        (&p384, Es384),
        (&ed, EdDsa),
    ] {
        let token = key.sign(alg, &claims());
        let claims = check(&token, &keys, &[alg]).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.subject(), Some("alice"));
        assert_eq!(claims.strings("roles"), ["admin"]);
    }
}

#[test]
fn hmac_verifies_in_the_guest_and_needs_a_full_length_secret() {
    use Algorithm::*;
    let long = "x".repeat(64);
    for alg in [Hs256, Hs384, Hs512] {
        let token = SigningKey::hmac(&long).sign(alg, &claims());
        assert!(
            decode(&token, &Key::hmac(&long), &validation(&[alg])).is_ok(),
            "{alg}"
        );
        let wrong = "y".repeat(64);
        assert_eq!(
            decode(&token, &Key::hmac(&wrong), &validation(&[alg])),
            Err(JwtError::InvalidSignature)
        );
    }
    let token = SigningKey::hmac("short").sign(Hs256, &claims());
    assert_eq!(
        decode(&token, &Key::hmac("short"), &validation(&[Hs256])),
        Err(JwtError::KeyMismatch)
    );
    let token = SigningKey::hmac(SECRET).sign(Hs256, &claims());
    assert!(decode(&token, &Key::hmac(SECRET), &validation(&[Hs256])).is_ok());
}

#[test]
fn time_claims_are_checked_with_leeway() {
    let key = rsa_a();
    let keys = jwks(&[&key]);
    let run = |c: Value| check(&key.sign(Algorithm::Rs256, &c), &keys, &[Algorithm::Rs256]);
    assert_eq!(run(with(json!({"exp": NOW - 31}))), Err(JwtError::Expired));
    assert!(
        run(with(json!({"exp": NOW - 29}))).is_ok(),
        "within the leeway"
    );
    assert_eq!(
        run(with(json!({"nbf": NOW + 31}))),
        Err(JwtError::NotYetValid)
    );
    assert!(run(with(json!({"nbf": NOW + 29}))).is_ok());
    assert_eq!(
        run(with(json!({"iat": NOW + 120}))),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        run(with(json!({"exp": null}))),
        Err(JwtError::MissingClaim("exp".into()))
    );
    assert_eq!(
        run(with(json!({"exp": "tomorrow"}))),
        Err(JwtError::InvalidClaim("exp".into()))
    );
    assert!(run(with(json!({"exp": (NOW + 60) as f64 + 0.5}))).is_ok());
}

#[test]
fn issuer_audience_and_required_claims_are_enforced() {
    let key = rsa_a();
    let keys = jwks(&[&key]);
    let run = |c: Value| check(&key.sign(Algorithm::Rs256, &c), &keys, &[Algorithm::Rs256]);
    assert_eq!(
        run(with(json!({"iss": "https://evil.test"}))),
        Err(JwtError::InvalidIssuer)
    );
    assert_eq!(
        run(with(json!({"iss": null}))),
        Err(JwtError::InvalidIssuer)
    );
    assert_eq!(
        run(with(json!({"aud": "other"}))),
        Err(JwtError::InvalidAudience)
    );
    assert_eq!(
        run(with(json!({"aud": null}))),
        Err(JwtError::InvalidAudience)
    );
    assert!(run(with(json!({"aud": ["other", "warden"]}))).is_ok());
    let token = key.sign(Algorithm::Rs256, &with(json!({"sub": null})));
    let strict = validation(&[Algorithm::Rs256]).require("sub");
    assert_eq!(
        decode_with_jwks(&token, &keys, &strict),
        Err(JwtError::MissingClaim("sub".into()))
    );
}

#[test]
fn alg_none_and_unknown_algorithms_are_refused() {
    let keys = jwks(&[&rsa_a()]);
    let token = unsigned(&claims());
    assert_eq!(
        check(&token, &keys, &[Algorithm::Rs256]),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    let header = json!({"alg": "HS1", "kid": "a"});
    let token = rsa_a().sign_with_header(Algorithm::Rs256, &header, &claims());
    assert_eq!(
        check(&token, &keys, &[Algorithm::Rs256]),
        Err(JwtError::UnsupportedAlgorithm("HS1".into()))
    );
}

#[test]
fn an_hs_token_is_never_verified_with_an_rsa_key() {
    // The classic confusion: HMAC over the token with the RSA public key's
    // bytes as the secret, hoping the verifier treats the key as a secret.
    let rsa = rsa_a();
    let keys = jwks(&[&rsa]);
    let public_n = rsa.jwk()["n"].as_str().unwrap().to_owned();
    let forged = SigningKey::hmac(public_n.as_bytes())
        .with_kid("a")
        .sign(Algorithm::Hs256, &claims());
    assert_eq!(
        check(&forged, &keys, &[Algorithm::Rs256]),
        Err(JwtError::AlgorithmNotAllowed(Algorithm::Hs256))
    );
    // Even a careless policy that accepts both is safe: the key decides.
    assert_eq!(
        check(&forged, &keys, &[Algorithm::Rs256, Algorithm::Hs256]),
        Err(JwtError::KeyMismatch)
    );
    let pk = match &keys.keys[0].key {
        Key::Public(pk) => pk.clone(),
        Key::Hmac(_) => unreachable!(),
    };
    assert_eq!(
        verify_signature(Algorithm::Hs256, &pk, b"m", b"s"),
        Err(SignatureError::KeyMismatch)
    );
    // And an ES256 token cannot pick an RSA key either.
    let ec = SigningKey::generate_ec(Curve::P256).with_kid("a");
    let token = ec.sign(Algorithm::Es256, &claims());
    assert_eq!(
        check(&token, &keys, &[Algorithm::Rs256, Algorithm::Es256]),
        Err(JwtError::KeyMismatch)
    );
}

#[test]
fn a_tampered_token_or_a_foreign_key_fails_the_signature() {
    let (a, b) = (rsa_a(), rsa_b());
    let keys = jwks(&[&a, &b]);
    let token = a.sign(Algorithm::Rs256, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let evil = b64::encode(with(json!({"sub": "mallory"})).to_string().as_bytes());
    parts[1] = &evil;
    assert_eq!(
        check(&parts.join("."), &keys, &[Algorithm::Rs256]),
        Err(JwtError::InvalidSignature)
    );
    // Signed by b but claiming a's kid.
    let header = json!({"alg": "RS256", "kid": "a"});
    let token = b.sign_with_header(Algorithm::Rs256, &header, &claims());
    assert_eq!(
        check(&token, &keys, &[Algorithm::Rs256]),
        Err(JwtError::InvalidSignature)
    );
}

#[test]
fn keys_are_selected_by_kid() {
    let (a, b) = (rsa_a(), rsa_b());
    let token = b.sign(Algorithm::Rs256, &claims());
    assert!(check(&token, &jwks(&[&a, &b]), &[Algorithm::Rs256]).is_ok());
    assert_eq!(
        check(&token, &jwks(&[&a]), &[Algorithm::Rs256]),
        Err(JwtError::UnknownKey(Some("b".into())))
    );
    // Without a kid: the only key that fits, or none.
    let header = json!({"alg": "RS256"});
    let token = a.sign_with_header(Algorithm::Rs256, &header, &claims());
    assert!(check(&token, &jwks(&[&a]), &[Algorithm::Rs256]).is_ok());
    assert_eq!(
        check(&token, &jwks(&[&a, &b]), &[Algorithm::Rs256]),
        Err(JwtError::UnknownKey(None))
    );
}

#[test]
fn jwk_sets_keep_only_usable_signature_keys() {
    let doc = json!({"keys": [
        rsa_a().jwk(),
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        {"kty": "XYZ", "kid": "odd"},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
    ]});
    let set = JwkSet::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].kid.as_deref(), Some("a"));
    assert!(JwkSet::from_json(b"not json").is_err());
    assert!(JwkSet::from_json(b"{}").is_err());
    // A JWK pinned to RS256 refuses PS256 tokens.
    let mut jwk = rsa_a().jwk();
    jwk["alg"] = json!("RS256");
    let set = JwkSet::from_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    let token = rsa_a().sign(Algorithm::Ps256, &claims());
    assert_eq!(
        check(&token, &set, &[Algorithm::Ps256]),
        Err(JwtError::KeyMismatch)
    );
}

#[test]
fn short_rsa_keys_and_malformed_tokens_are_refused() {
    // A 1024-bit modulus: too short to trust, whatever the signature.
    let short =
        json!({"keys": [{"kty": "RSA", "kid": "a", "n": b64::encode(&[0xc5; 128]), "e": "AQAB"}]});
    let short = JwkSet::from_json(short.to_string().as_bytes()).unwrap();
    let token = rsa_a().sign(Algorithm::Rs256, &claims());
    assert_eq!(
        check(&token, &short, &[Algorithm::Rs256]),
        Err(JwtError::KeyMismatch)
    );
    let keys = jwks(&[&rsa_a()]);
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.e30.",
        &"x".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert!(
            matches!(
                check(bad, &keys, &[Algorithm::Rs256]),
                Err(JwtError::Malformed(_))
            ),
            "{bad:.20}"
        );
    }
    let header = json!({"alg": "RS256", "kid": "a", "crit": ["exp"]});
    let token = rsa_a().sign_with_header(Algorithm::Rs256, &header, &claims());
    assert_eq!(
        check(&token, &keys, &[Algorithm::Rs256]),
        Err(JwtError::UnsupportedCritical)
    );
}

#[test]
fn errors_become_401_with_their_reason() {
    let error: crate::HttpError = JwtError::Expired.into();
    assert_eq!(
        (error.status, error.detail.as_deref()),
        (401, Some("Token expired"))
    );
    assert!(!format!("{:?}", Key::hmac(SECRET)).contains(SECRET));
}
