//! Which tokens to accept: algorithms, issuer, audience, required claims,
//! and the time claims with leeway.

use serde_json::{Map, Value};

use super::{Algorithm, JwtError};

/// What a token must satisfy beyond its signature.
///
/// ```
/// use warden_sdk::jwt::{Algorithm, Validation};
/// let validation = Validation::new([Algorithm::Rs256, Algorithm::Es256])
///     .issuer("https://idp.example.com")
///     .audience("warden")
///     .leeway(30)
///     .require("sub");
/// # let _ = validation;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The algorithms accepted; a token signed otherwise is refused.
    pub algorithms: Vec<Algorithm>,
    /// The accepted `iss` values; empty: not checked.
    pub issuers: Vec<String>,
    /// The accepted audiences (one must be in `aud`); empty: not checked.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// Claims that must be present (`exp` by default).
    pub required: Vec<String>,
    /// The current time in seconds since the epoch; `None`: the wall clock.
    pub now: Option<u64>,
}

/// The default leeway on time claims, in seconds.
pub const DEFAULT_LEEWAY: u64 = 30;

impl Validation {
    /// Accepts tokens signed with one of `algorithms`, requires `exp`, and
    /// allows [`DEFAULT_LEEWAY`] seconds of clock skew.
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            algorithms: algorithms.into_iter().collect(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            required: vec!["exp".to_owned()],
            now: None,
        }
    }

    /// Accepts `iss` equal to `issuer` (repeatable: any of them).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Requires `audience` among `aud` (repeatable: any of them).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the clock skew allowed, in seconds.
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Requires the claim `name` to be present.
    pub fn require(mut self, name: impl Into<String>) -> Self {
        self.required.push(name.into());
        self
    }

    /// Checks the time claims against `now` (seconds since the epoch)
    /// instead of the wall clock, e.g. in tests.
    pub fn at(mut self, now: u64) -> Self {
        self.now = Some(now);
        self
    }

    /// Checks the claims of a token whose signature verified.
    pub(crate) fn check(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        for name in &self.required {
            if !claims.contains_key(name) {
                return Err(JwtError::MissingClaim(name.clone()));
            }
        }
        let now = self.now.unwrap_or_else(now);
        let time = |name: &str| -> Result<Option<u64>, JwtError> {
            match claims.get(name) {
                None => Ok(None),
                // Fractional times are allowed (NumericDate); a second is enough.
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(t) if t >= 0.0 => Ok(Some(t as u64)),
                    _ => Err(JwtError::InvalidClaim(name.to_owned())),
                },
                Some(_) => Err(JwtError::InvalidClaim(name.to_owned())),
            }
        };
        if let Some(exp) = time("exp")?
            && now >= exp.saturating_add(self.leeway)
        {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = time("nbf")?
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(JwtError::NotYetValid);
        }
        if let Some(iat) = time("iat")?
            && now.saturating_add(self.leeway) < iat
        {
            return Err(JwtError::NotYetValid);
        }
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
                return Err(JwtError::InvalidIssuer);
            }
        }
        if !self.audiences.is_empty() {
            let matches = |aud: &str| self.audiences.iter().any(|a| a == aud);
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => matches(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(matches),
                _ => false,
            };
            if !ok {
                return Err(JwtError::InvalidAudience);
            }
        }
        Ok(())
    }
}

/// Seconds since the epoch, from the wall clock the host grants.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
