//! What a plugin is loaded with besides its component: limits, `config`
//! values, `secrets`, the outbound-HTTP allowlist and the `auth.cache`
//! settings. One [`PluginSettings`] is built from the `auth` section and can
//! load the plugin again (a reload reads secrets anew).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::allowlist::HostPattern;
use super::error::LoadError;
use super::redact::{self, MIN_SECRET_BYTES};

/// Default deadline of one plugin call.
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_MIB: u64 = 32;
/// Default deadline of one outbound HTTP request of a plugin.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 5_000;
/// Default cap on an outbound HTTP response body of a plugin, in KiB.
pub const DEFAULT_HTTP_MAX_RESPONSE_KIB: u64 = 1024;

/// The deadline and memory cap of a plugin's calls.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deadline of one call (instantiation included).
    pub timeout: Duration,
    /// Memory cap of one instance, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            memory_bytes: (DEFAULT_MEMORY_MIB << 20) as usize,
        }
    }
}

/// Everything a plugin is loaded with.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Deadline and memory cap of each call.
    pub limits: Limits,
    /// `auth.config`: values the plugin reads with `config.get`.
    pub config: BTreeMap<String, String>,
    /// `auth.secrets`: where each secret comes from.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `auth.allowed_hosts`: the hosts the plugin may reach (none: no network).
    pub allowed_hosts: Vec<HostPattern>,
    /// Limits of one outbound HTTP request.
    pub http: HttpLimits,
    /// `auth.cache`: caching `authenticate` results, when set.
    pub auth_cache: Option<AuthCacheSettings>,
}

impl From<Limits> for PluginSettings {
    fn from(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }
}

impl PluginSettings {
    /// Reads every secret from its source: a missing one, or one shorter
    /// than [`MIN_SECRET_BYTES`] (too short to redact), is an error naming
    /// the secret and its source, never a value.
    pub(crate) fn resolve_secrets(&self) -> Result<Secrets, LoadError> {
        resolve_secrets(&self.secrets)
    }
}

/// Reads every secret from its source (see
/// [`PluginSettings::resolve_secrets`]).
pub(crate) fn resolve_secrets(
    sources: &BTreeMap<String, SecretSource>,
) -> Result<Secrets, LoadError> {
    let mut values = BTreeMap::new();
    for (name, source) in sources {
        let SecretSource::Env(var) = source;
        match std::env::var(var) {
            Ok(value) if value.len() >= MIN_SECRET_BYTES => {
                values.insert(name.clone(), Secret(value));
            }
            Ok(value) if !value.is_empty() => {
                return Err(LoadError::ShortSecret {
                    name: name.clone(),
                    from: source.to_string(),
                    min: MIN_SECRET_BYTES,
                });
            }
            _ => {
                return Err(LoadError::MissingSecret {
                    name: name.clone(),
                    from: source.to_string(),
                });
            }
        }
    }
    Ok(Secrets::new(values))
}

/// Default deadline of one outbound HTTP request of a graph: a model may
/// stream its answer for a while (the run's deadline still cuts it).
pub const DEFAULT_GRAPH_HTTP_TIMEOUT_MS: u64 = 300_000;
/// Default cap on the response body of a graph's outbound HTTP request, in
/// KiB.
pub const DEFAULT_GRAPH_HTTP_MAX_RESPONSE_KIB: u64 = 8 * 1024;

/// The deadline and memory cap of a graph's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphLimits {
    /// Deadline of one run (instantiation included).
    pub timeout: Duration,
    /// Memory cap of one instance, in bytes.
    pub memory_bytes: usize,
}

/// Everything a graph is loaded with besides its component: the limits of
/// its runs, its `config` values and `secrets`, and where its outbound HTTP
/// may go.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Deadline and memory cap of each run.
    pub limits: GraphLimits,
    /// Values the graph reads with `config.get`.
    pub config: BTreeMap<String, String>,
    /// Where each of its secrets comes from.
    pub secrets: BTreeMap<String, SecretSource>,
    /// The hosts it may reach (none: no network).
    pub allowed_hosts: Vec<HostPattern>,
    /// Limits of one outbound HTTP request.
    pub http: HttpLimits,
}

impl From<GraphLimits> for GraphSettings {
    fn from(limits: GraphLimits) -> Self {
        Self {
            limits,
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            allowed_hosts: Vec::new(),
            http: HttpLimits {
                timeout: Duration::from_millis(DEFAULT_GRAPH_HTTP_TIMEOUT_MS),
                max_response_bytes: (DEFAULT_GRAPH_HTTP_MAX_RESPONSE_KIB << 10) as usize,
            },
        }
    }
}

/// Limits of one outbound HTTP request of a plugin.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// The request's deadline (connect to last body byte); the call's own
    /// deadline cuts it shorter.
    pub timeout: Duration,
    /// The largest response body accepted.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(DEFAULT_HTTP_TIMEOUT_MS),
            max_response_bytes: (DEFAULT_HTTP_MAX_RESPONSE_KIB << 10) as usize,
        }
    }
}

/// `auth.cache`: which headers key a cached `authenticate` result, for how
/// long, and how many results are kept.
#[derive(Debug, Clone)]
pub struct AuthCacheSettings {
    /// Lower-case header names whose values form the key.
    pub header_names: Vec<String>,
    /// How long a result is reused.
    pub ttl: Duration,
    /// The most results kept.
    pub max_size: usize,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SecretSource {
    /// `env:NAME`: the environment variable `NAME` of the Warden process.
    Env(String),
}

impl SecretSource {
    /// Parses `env:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("env", var)) if !var.is_empty() && !var.contains('=') && !var.contains('\0') => {
                Ok(Self::Env(var.to_owned()))
            }
            _ => Err(format!(
                "{text:?} is not a secret source: write \"env:VARIABLE\""
            )),
        }
    }
}

impl TryFrom<String> for SecretSource {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(var) => write!(f, "env:{var}"),
        }
    }
}

/// A secret's value: shown as `***` by `Debug`, so it cannot reach a log by
/// accident.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A plugin's resolved secrets, by name, and the forms their values may
/// take in text (see [`redact`](super::redact)).
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    values: BTreeMap<String, Secret>,
    /// Every form of every value, longest first.
    forms: Vec<Secret>,
}

impl Secrets {
    fn new(values: BTreeMap<String, Secret>) -> Self {
        let mut forms: Vec<Secret> = values
            .values()
            .flat_map(|secret| redact::forms(secret.expose()))
            .map(Secret)
            .collect();
        forms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        forms.dedup_by(|a, b| a.0 == b.0);
        Self { values, forms }
    }

    /// The secret named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name)
    }

    fn needles(&self) -> Vec<&str> {
        self.forms.iter().map(Secret::expose).collect()
    }

    /// Text bound for a log or an error message: every secret, in any of
    /// its forms, and the credentials of every URL, replaced by `[secret]`.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match redact::url_credentials(text) {
            Cow::Borrowed(text) => self.redact_secrets(text),
            Cow::Owned(text) => Cow::Owned(self.redact_secrets(&text).into_owned()),
        }
    }

    /// `text` with every secret, in any of its forms, replaced by `[secret]`.
    pub(crate) fn redact_secrets<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.forms.is_empty() {
            return Cow::Borrowed(text);
        }
        redact::replace(text, &self.needles())
    }

    /// [`Secrets::redact_secrets`] on every string and object key of `value`.
    pub(crate) fn redact_json(&self, value: &mut serde_json::Value) {
        if !self.forms.is_empty() {
            redact::replace_in_json(value, &self.needles());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_sources_are_env_variables() {
        assert_eq!(
            SecretSource::parse("env:JWT_SECRET"),
            Ok(SecretSource::Env("JWT_SECRET".into()))
        );
        for bad in ["JWT_SECRET", "env:", "file:/etc/x", "vault:x"] {
            assert!(SecretSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_secret_names_the_key_and_never_a_value() {
        let mut settings = PluginSettings::default();
        settings.secrets.insert(
            "JWT_SECRET".into(),
            SecretSource::Env("WARDEN_TEST_SURELY_UNSET_VARIABLE".into()),
        );
        let error = settings.resolve_secrets().unwrap_err().to_string();
        assert!(error.contains("JWT_SECRET"), "{error}");
        assert!(
            error.contains("env:WARDEN_TEST_SURELY_UNSET_VARIABLE"),
            "{error}"
        );
    }

    fn secrets(values: &[&str]) -> Secrets {
        Secrets::new(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("k{i}"), Secret((*v).to_owned())))
                .collect(),
        )
    }

    #[test]
    fn secrets_are_redacted_and_never_debug_printed() {
        let secrets = secrets(&["hunter22", "pä55\"w0rd"]);
        assert_eq!(secrets.redact("pw=hunter22!"), "pw=[secret]!");
        assert_eq!(secrets.redact("nothing here"), "nothing here");
        assert_eq!(
            secrets.redact(r#"{"pw":"p\u00e455\"w0rd"} "pä55\"w0rd""#),
            r#"{"pw":"[secret]"} "[secret]""#
        );
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("w0rd"),
            "{shown}"
        );
    }

    #[test]
    fn logs_lose_url_credentials_but_values_keep_them() {
        let secrets = secrets(&["hunter22"]);
        assert_eq!(
            secrets.redact("GET https://svc:pw@idp/token"),
            "GET https://[secret]@idp/token"
        );
        let mut value = serde_json::json!({"db": "postgres://svc:pw@db/x", "k": "hunter22"});
        secrets.redact_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"db": "postgres://svc:pw@db/x", "k": "[secret]"})
        );
    }
}
