//! `langgraph.json`: the keys Warden reads, with Warden's per-plugin settings
//! (`timeout_ms`, `memory_mib`, `config`, `secrets`, `allowed_hosts`,
//! `http_timeout_ms`, `http_max_response_kib`) beside LangGraph's (`path`,
//! `disable_studio_auth`, `cache`, `openapi`). Nothing here fails open: a
//! top-level key that looks like `auth` is an error, other keys Warden does
//! not implement are named in a warning, and Studio's bypass is off unless
//! written out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::plugin::{
    AuthCacheSettings, HostPattern, HttpLimits, Limits, PluginSettings, SecretSource,
};
pub use crate::plugin::{
    DEFAULT_HTTP_MAX_RESPONSE_KIB, DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS,
    MAX_MEMORY_MIB,
};
use crate::telemetry::decisions::{self, DecisionLogSettings, WhenFull};

/// The longest deadline a plugin may ask for.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// The largest response-body cap a plugin may ask for, in KiB.
pub const MAX_HTTP_RESPONSE_KIB: u64 = 64 * 1024;

/// A configuration file that cannot be used, with the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, naming the key.
    pub message: String,
}

/// A parsed `langgraph.json`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// The graphs, by id, as written (paths relative to the file).
    pub graphs: BTreeMap<String, GraphConfig>,
    /// The `auth` section, if any.
    pub auth: Option<AuthConfig>,
    /// The `limits` section (Warden's own): its defaults when absent.
    pub limits: LimitsConfig,
}

/// The `auth` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The plugin: a component `.wasm` or a plugin crate directory, relative
    /// to the configuration file.
    pub path: String,
    /// LangGraph's switch for Studio's bypass. `false`, written out, turns
    /// the bypass on: a request with `x-auth-scheme: langsmith` is served as
    /// the Studio user without calling `authenticate`. Absent or `true`: the
    /// plugin authenticates every request (see [`AuthConfig::studio_bypass`]).
    #[serde(default, deserialize_with = "lenient_opt_bool")]
    pub disable_studio_auth: Option<bool>,
    /// LangGraph's authenticate-result cache settings.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Warden's decision log: one JSON line per auth decision.
    #[serde(default)]
    pub decision_log: Option<DecisionLogConfig>,
    /// OpenAPI security schemes merged into `/openapi.json`.
    #[serde(default)]
    pub openapi: Option<serde_json::Value>,
    /// Deadline of one plugin call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Memory cap of one plugin instance, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Values the plugin reads with `warden:auth/config.get` (strings;
    /// numbers and booleans are given as their JSON text).
    #[serde(default, deserialize_with = "scalar_map")]
    pub config: BTreeMap<String, String>,
    /// Secrets the plugin reads with `warden:auth/config.secret`: name →
    /// source, `env:VARIABLE` (read from Warden's environment at start-up).
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// The hosts the plugin may reach over `wasi:http`:
    /// `scheme://host[:port]`, with `*` for any scheme, any port, or a
    /// leading `*.` for any subdomain. Empty: no network.
    #[serde(default)]
    pub allowed_hosts: Vec<HostPattern>,
    /// Deadline of one outbound HTTP request, in milliseconds; it never
    /// outlives the call's own deadline.
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// The largest outbound HTTP response body accepted, in KiB.
    #[serde(default = "default_http_max_response_kib")]
    pub http_max_response_kib: u64,
}

/// `auth.cache`: LangGraph's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Header names whose values key the cache.
    #[serde(default)]
    pub cache_keys: Vec<String>,
    /// How long an entry lives.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// The most entries kept.
    #[serde(default = "default_max_size")]
    pub max_size: u64,
}

/// `auth.decision_log`: where the auth decisions are written, and what
/// they show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogConfig {
    /// A file records are appended to, relative to the configuration file.
    #[serde(default)]
    pub path: Option<String>,
    /// Whether records go to standard output too.
    #[serde(default)]
    pub stdout: bool,
    /// How many records may wait for the writer.
    #[serde(default = "default_decision_buffer")]
    pub buffer: usize,
    /// `drop` (count and go on) or `block` (wait for room).
    #[serde(default = "default_when_full")]
    pub when_full: WhenFull,
    /// The share of requests whose allowed decisions are written, 0–1;
    /// denials and faults are always written.
    #[serde(default = "default_sample")]
    pub sample_allowed: f64,
    /// Request headers whose values are written (never credentials).
    #[serde(default)]
    pub headers: Vec<String>,
    /// User fields written besides the identity (`permissions`,
    /// `display_name`, or an extra field's name).
    #[serde(default)]
    pub user_fields: Vec<String>,
}

/// The most records `auth.decision_log.buffer` may hold.
pub const MAX_DECISION_BUFFER: usize = 1_000_000;

fn default_decision_buffer() -> usize {
    10_000
}
fn default_when_full() -> WhenFull {
    WhenFull::Drop
}
fn default_sample() -> f64 {
    1.0
}

impl DecisionLogConfig {
    /// Refuses settings that would log nothing, hold too much or log a
    /// credential.
    fn check(&self) -> Result<(), String> {
        if self.path.is_none() && !self.stdout {
            return Err("`auth.decision_log`: set `path`, `stdout: true` or both".into());
        }
        if self.buffer == 0 || self.buffer > MAX_DECISION_BUFFER {
            return Err(format!(
                "`auth.decision_log.buffer`: {} is out of range 1..={MAX_DECISION_BUFFER}",
                self.buffer
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_allowed) {
            return Err(format!(
                "`auth.decision_log.sample_allowed`: {} is not between 0 and 1",
                self.sample_allowed
            ));
        }
        if let Some(header) = self
            .headers
            .iter()
            .find(|h| decisions::is_credential(&h.to_ascii_lowercase()))
        {
            return Err(format!(
                "`auth.decision_log.headers`: {header:?} carries credentials and is never logged"
            ));
        }
        if let Some(field) = self.user_fields.iter().find(|f| *f == "private_fields") {
            return Err(format!(
                "`auth.decision_log.user_fields`: {field:?} is not a field that can be logged"
            ));
        }
        Ok(())
    }

    /// The log's settings, its file resolved against `config`'s directory.
    pub fn settings(&self, config: &Config) -> DecisionLogSettings {
        DecisionLogSettings {
            file: self.path.as_ref().map(|p| config.dir().join(p)),
            stdout: self.stdout,
            buffer: self.buffer,
            when_full: self.when_full,
            sample_allowed: self.sample_allowed,
            headers: self
                .headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            user_fields: self.user_fields.clone(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}
fn default_http_timeout_ms() -> u64 {
    DEFAULT_HTTP_TIMEOUT_MS
}
fn default_http_max_response_kib() -> u64 {
    DEFAULT_HTTP_MAX_RESPONSE_KIB
}
fn default_ttl() -> u64 {
    60
}
fn default_max_size() -> u64 {
    1000
}

/// A boolean, also spelled `"true"` / `"false"` as LangGraph's own
/// configuration loader accepts (the reference `langgraph.json` does).
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Bool(bool),
        Text(String),
    }
    match Lenient::deserialize(deserializer)? {
        Lenient::Bool(b) => Ok(b),
        Lenient::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Lenient::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Lenient::Text(t) => Err(serde::de::Error::custom(format!(
            "invalid value {t:?}, expected a boolean"
        ))),
    }
}

/// [`lenient_bool`], remembering whether the key was written at all.
fn lenient_opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    lenient_bool(deserializer).map(Some)
}

/// A map of strings, also taking numbers and booleans (as their JSON text),
/// as environment-like settings are often written.
fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Ok((key, s)),
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                Ok((key, v.to_string()))
            }
            _ => Err(serde::de::Error::custom(format!(
                "`{key}`: expected a string, a number or a boolean"
            ))),
        })
        .collect()
}

/// The default deadline of one run of a graph.
pub const DEFAULT_GRAPH_TIMEOUT_MS: u64 = 600_000;
/// The longest deadline a graph may set: a day.
pub const MAX_GRAPH_TIMEOUT_MS: u64 = 86_400_000;
/// The largest response body a graph's outbound request may read: 1 GiB.
pub const MAX_GRAPH_HTTP_RESPONSE_KIB: u64 = 1 << 20;
/// The default memory cap of a graph instance.
pub const DEFAULT_GRAPH_MEMORY_MIB: u64 = 256;

/// A `graphs` entry: `"./path"` or `{"path": "./path", "description":
/// "...", "timeout_ms": ..., "memory_mib": ..., "config": {...}, "secrets":
/// {...}, "allowed_hosts": [...], "http_timeout_ms": ...,
/// "http_max_response_kib": ...}`. The path names a graph component
/// (`.wasm`) or a graph crate directory. An unknown or ill-typed key is an
/// error naming it: each one sets a sandbox limit or grant, and a misspelt
/// one would leave the default in place unnoticed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
// The derive reads the object form, as `GraphConfig::deserialize`; the
// `Deserialize` impl below takes a path as well.
#[serde(remote = "Self", deny_unknown_fields)]
pub struct GraphConfig {
    /// Where the graph is, relative to the configuration file.
    pub path: String,
    /// Its description (the system assistant's).
    #[serde(default)]
    pub description: Option<String>,
    /// The deadline of one run, in milliseconds.
    #[serde(default = "default_graph_timeout_ms")]
    pub timeout_ms: u64,
    /// The memory cap of one run, in MiB.
    #[serde(default = "default_graph_memory_mib")]
    pub memory_mib: u64,
    /// Values the graph reads with `warden:common/config.get`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub config: BTreeMap<String, String>,
    /// Secrets the graph reads with `warden:common/config.secret`: name →
    /// `env:VARIABLE`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// The hosts the graph may reach over `wasi:http` (the patterns of
    /// `auth.allowed_hosts`). Empty: no network.
    #[serde(default)]
    pub allowed_hosts: Vec<HostPattern>,
    /// Deadline of one outbound HTTP request, response body included, in
    /// milliseconds; it never outlives the run's deadline.
    #[serde(default = "default_graph_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// The most response-body bytes one outbound request may read, in KiB.
    #[serde(default = "default_graph_http_max_response_kib")]
    pub http_max_response_kib: u64,
}

impl<'de> Deserialize<'de> for GraphConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, MapDeserializer};

        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = GraphConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a graph's path, or an object with its `path` and settings")
            }

            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<GraphConfig, E> {
                // A path alone is the object with only `path`: one set of
                // defaults, the derive's.
                let fields = MapDeserializer::new(std::iter::once(("path", path)));
                GraphConfig::deserialize(fields)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<GraphConfig, A::Error> {
                GraphConfig::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

impl From<&str> for GraphConfig {
    /// The entry `"path"`: the graph at `path` with the default settings.
    fn from(path: &str) -> Self {
        use serde::de::IntoDeserializer;
        let entry: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            path.into_deserializer();
        <GraphConfig as Deserialize>::deserialize(entry)
            .expect("a path alone is a valid graph entry")
    }
}

impl GraphConfig {
    /// The graph's path, resolved against the configuration file's directory.
    pub fn resolved_path(&self, config: &Config) -> PathBuf {
        config.dir().join(&self.path)
    }

    /// The deadline and memory cap of its runs.
    pub fn limits(&self) -> crate::plugin::GraphLimits {
        crate::plugin::GraphLimits {
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: usize::try_from(self.memory_mib << 20).unwrap_or(usize::MAX),
        }
    }

    /// Everything the graph is loaded with.
    pub fn settings(&self) -> crate::plugin::GraphSettings {
        crate::plugin::GraphSettings {
            limits: self.limits(),
            config: self.config.clone(),
            secrets: self.secrets.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            http: crate::plugin::HttpLimits {
                timeout: Duration::from_millis(self.http_timeout_ms),
                max_response_bytes: usize::try_from(self.http_max_response_kib << 10)
                    .unwrap_or(usize::MAX),
            },
        }
    }
}

fn default_graph_http_timeout_ms() -> u64 {
    crate::plugin::DEFAULT_GRAPH_HTTP_TIMEOUT_MS
}
fn default_graph_http_max_response_kib() -> u64 {
    crate::plugin::DEFAULT_GRAPH_HTTP_MAX_RESPONSE_KIB
}

fn default_graph_timeout_ms() -> u64 {
    DEFAULT_GRAPH_TIMEOUT_MS
}
fn default_graph_memory_mib() -> u64 {
    DEFAULT_GRAPH_MEMORY_MIB
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    graphs: BTreeMap<String, GraphConfig>,
    #[serde(default)]
    auth: Option<AuthConfig>,
    #[serde(default)]
    limits: LimitsConfig,
}

impl Config {
    /// Reads and validates a `langgraph.json`. Top-level keys Warden does not
    /// use (`dependencies`, `env`, ...) are accepted with a warning naming
    /// them, but one that looks like `auth` is an error; the `auth` section
    /// is strict: an unknown or ill-typed key is an error naming it.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(file).map_err(|e| error(format!("cannot read: {e}")))?;
        Self::parse(file, &text)
    }

    /// Parses the text of a `langgraph.json` read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_owned(),
            message,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                error(inner.to_string())
            } else {
                error(format!("`{path}`: {inner}"))
            }
        })?;
        let keys: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| error(e.to_string()))?;
        if let Some(warning) = vet_top_level_keys(keys.keys().map(String::as_str)).map_err(error)? {
            tracing::warn!(file = %file.display(), "{warning}");
        }
        for (id, graph) in &raw.graphs {
            if graph.timeout_ms == 0 || graph.timeout_ms > MAX_GRAPH_TIMEOUT_MS {
                return Err(error(format!(
                    "`graphs.{id}.timeout_ms`: {} is out of range 1..={MAX_GRAPH_TIMEOUT_MS}",
                    graph.timeout_ms
                )));
            }
            if graph.memory_mib == 0 || graph.memory_mib > MAX_MEMORY_MIB {
                return Err(error(format!(
                    "`graphs.{id}.memory_mib`: {} is out of range 1..={MAX_MEMORY_MIB}",
                    graph.memory_mib
                )));
            }
            if graph.http_timeout_ms == 0 || graph.http_timeout_ms > MAX_GRAPH_TIMEOUT_MS {
                return Err(error(format!(
                    "`graphs.{id}.http_timeout_ms`: {} is out of range 1..={MAX_GRAPH_TIMEOUT_MS}",
                    graph.http_timeout_ms
                )));
            }
            if graph.http_max_response_kib == 0
                || graph.http_max_response_kib > MAX_GRAPH_HTTP_RESPONSE_KIB
            {
                return Err(error(format!(
                    "`graphs.{id}.http_max_response_kib`: {} is out of range \
                     1..={MAX_GRAPH_HTTP_RESPONSE_KIB}",
                    graph.http_max_response_kib
                )));
            }
            if graph.path.ends_with(".py") || graph.path.contains(".py:") {
                return Err(error(format!(
                    "`graphs.{id}`: {:?} names a Python graph; Warden runs graphs as WebAssembly \
                     components: name a component .wasm or a graph crate directory",
                    graph.path
                )));
            }
        }
        if let Some(auth) = &raw.auth {
            if auth.timeout_ms == 0 || auth.timeout_ms > MAX_TIMEOUT_MS {
                return Err(error(format!(
                    "`auth.timeout_ms`: {} is out of range 1..={MAX_TIMEOUT_MS}",
                    auth.timeout_ms
                )));
            }
            if auth.memory_mib == 0 || auth.memory_mib > MAX_MEMORY_MIB {
                return Err(error(format!(
                    "`auth.memory_mib`: {} is out of range 1..={MAX_MEMORY_MIB}",
                    auth.memory_mib
                )));
            }
            if auth.http_timeout_ms == 0 || auth.http_timeout_ms > MAX_TIMEOUT_MS {
                return Err(error(format!(
                    "`auth.http_timeout_ms`: {} is out of range 1..={MAX_TIMEOUT_MS}",
                    auth.http_timeout_ms
                )));
            }
            if auth.http_max_response_kib == 0 || auth.http_max_response_kib > MAX_HTTP_RESPONSE_KIB
            {
                return Err(error(format!(
                    "`auth.http_max_response_kib`: {} is out of range 1..={MAX_HTTP_RESPONSE_KIB}",
                    auth.http_max_response_kib
                )));
            }
            if let Some(cache) = &auth.cache {
                if cache.cache_keys.is_empty() {
                    return Err(error(
                        "`auth.cache.cache_keys`: name at least one header".into(),
                    ));
                }
                if cache.ttl_seconds == 0 || cache.max_size == 0 {
                    return Err(error(
                        "`auth.cache`: `ttl_seconds` and `max_size` must be at least 1".into(),
                    ));
                }
            }
            if let Some(log) = &auth.decision_log {
                log.check().map_err(error)?;
            }
        }
        raw.limits.check().map_err(error)?;
        Ok(Self {
            file: file.to_owned(),
            graphs: raw.graphs,
            auth: raw.auth,
            limits: raw.limits,
        })
    }

    /// The directory paths in the file are relative to.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }
}

/// The top-level keys Warden reads (`limits`: the server's request limits).
const WARDEN_KEYS: &[&str] = &["graphs", "auth", "limits"];

/// Keys that set nothing (editor metadata): accepted without a word.
const SILENT_KEYS: &[&str] = &["$schema"];

/// LangGraph's other top-level keys (langgraph-cli's `Config` and the
/// server's own), none of which Warden implements: accepted, and named in a
/// warning.
const LANGGRAPH_KEYS: &[&str] = &[
    "dependencies",
    "env",
    "python_version",
    "node_version",
    "api_version",
    "base_image",
    "image_distro",
    "pip_config_file",
    "pip_installer",
    "source",
    "dockerfile_lines",
    "keep_pkg_tools",
    "_INTERNAL_docker_tag",
    "store",
    "checkpointer",
    "encryption",
    "http",
    "webhooks",
    "ui",
    "ui_config",
    "disable_persistence",
];

/// Whether a top-level key other than `auth` was probably meant to be
/// `auth`. Compared in lower case without `_`, `-` or spaces, it contains
/// `auth` (`Auth`, `authentication`, `auth_config`), or is one edit away
/// from it (a letter added, dropped or changed, or two neighbours swapped:
/// `atuh`, `aut`, `aith`), or has its letters in another order (`htua`).
fn looks_like_auth(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let letters = |s: &str| {
        let mut letters: Vec<char> = s.chars().collect();
        letters.sort_unstable();
        letters
    };
    folded.contains("auth")
        || strsim::osa_distance(&folded, "auth") <= 1
        || letters(&folded) == letters("auth")
}

/// Vets the top-level keys of a `langgraph.json`: an error for a key that
/// looks like `auth` (a misspelt `auth` would serve without authentication),
/// else the warning naming the keys Warden ignores, if any.
fn vet_top_level_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, String> {
    let (mut langgraph, mut unknown) = (Vec::new(), Vec::new());
    for key in keys {
        if WARDEN_KEYS.contains(&key) || SILENT_KEYS.contains(&key) {
            continue;
        }
        if looks_like_auth(key) {
            return Err(format!(
                "`{key}` looks like a misspelt `auth`: did you mean `auth`? Warden refuses to \
                 start rather than serve without the auth plugin this key may name"
            ));
        }
        if LANGGRAPH_KEYS.contains(&key) {
            langgraph.push(format!("`{key}`"));
        } else {
            let near = WARDEN_KEYS
                .iter()
                .chain(LANGGRAPH_KEYS)
                .map(|known| (strsim::osa_distance(&key.to_lowercase(), known), *known))
                .filter(|(distance, _)| *distance <= 2)
                .min()
                .map(|(_, known)| known);
            unknown.push(match near {
                Some(known) => format!("`{key}` (did you mean `{known}`?)"),
                None => format!("`{key}`"),
            });
        }
    }
    let mut parts = Vec::new();
    if !langgraph.is_empty() {
        parts.push(format!(
            "LangGraph keys Warden does not implement: {}",
            langgraph.join(", ")
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "keys neither Warden nor LangGraph knows: {}",
            unknown.join(", ")
        ));
    }
    Ok((!parts.is_empty()).then(|| {
        format!(
            "top-level keys ignored, they have no effect: {}",
            parts.join("; ")
        )
    }))
}

impl AuthConfig {
    /// The plugin's settings.
    pub fn settings(&self) -> PluginSettings {
        PluginSettings {
            limits: Limits {
                timeout: self.timeout(),
                memory_bytes: self.memory_bytes(),
            },
            config: self.config.clone(),
            secrets: self.secrets.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            http: HttpLimits {
                timeout: Duration::from_millis(self.http_timeout_ms),
                max_response_bytes: usize::try_from(self.http_max_response_kib << 10)
                    .unwrap_or(usize::MAX),
            },
            auth_cache: self.cache.as_ref().map(|c| AuthCacheSettings {
                header_names: c
                    .cache_keys
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
                ttl: Duration::from_secs(c.ttl_seconds),
                max_size: usize::try_from(c.max_size).unwrap_or(usize::MAX),
            }),
        }
    }

    /// Whether Studio's bypass is on: only when `disable_studio_auth` is
    /// written out as `false`. Warden cannot verify LangSmith credentials,
    /// so unlike `langgraph dev` (where an absent key means `false`) the
    /// bypass is never on by default.
    pub fn studio_bypass(&self) -> bool {
        self.disable_studio_auth == Some(false)
    }

    /// The plugin path, resolved against the configuration file's directory.
    pub fn resolved_path(&self, config: &Config) -> PathBuf {
        config.dir().join(&self.path)
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The memory cap of one instance, in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib << 20).unwrap_or(usize::MAX)
    }
}

/// The `limits` section: the bounds on what clients can make the server
/// hold. Every key is optional; an unknown key, a zero or a value past its
/// ceiling is an error naming it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest request body of the routes not named below, in KiB.
    pub body_kib: u64,
    /// The largest body of the routes that carry a run's input (creating
    /// runs, batches and crons, `POST /threads/{id}/state`), in KiB.
    pub run_body_kib: u64,
    /// The largest body of `PUT /store/items`, in KiB.
    pub store_body_kib: u64,
    /// How long a client may take to send a request's head; also how long
    /// an idle keep-alive connection stays open.
    pub header_timeout_secs: u64,
    /// How long a client may take to send a request's body.
    pub body_timeout_secs: u64,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: u64,
    /// Streamed responses (SSE streams, `wait`, `join`) one user holds open
    /// at once.
    pub max_streams_per_user: u64,
    /// Runs pending or running at once, all users together.
    pub max_runs_in_flight: u64,
    /// Runs pending or running at once, per user.
    pub max_runs_in_flight_per_user: u64,
    /// The inputs (input, config, context) of the runs pending or running,
    /// all users together, in MiB.
    pub runs_in_flight_mib: u64,
    /// Runs in one `POST /runs/batch`.
    pub max_batch_runs: u64,
    /// Crons one user may have.
    pub max_crons_per_user: u64,
    /// States one history request may ask for (`limit`).
    pub max_history: u64,
    /// The largest history answer, in MiB.
    pub history_mib: u64,
    /// Events a running run keeps for its followers, in MiB: past it, the
    /// oldest go (a follower that fell behind is told).
    pub run_events_mib: u64,
    /// Events and results of ended runs kept for late joins and
    /// `Last-Event-ID` replays, all runs together, in MiB: past it, the
    /// oldest ended runs are forgotten.
    pub retained_events_mib: u64,
    /// Deadline of the graph code a state update runs (its reducers),
    /// waiting for a run worker included, in milliseconds.
    pub state_update_timeout_ms: u64,
    /// How long runs in flight may go on after SIGTERM before they are
    /// stopped and marked `error` (the default fits in `docker stop`'s
    /// 10 s).
    pub shutdown_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_kib: 1024,
            run_body_kib: 16 * 1024,
            store_body_kib: 1024,
            header_timeout_secs: 30,
            body_timeout_secs: 60,
            max_connections: 1024,
            max_streams_per_user: 64,
            max_runs_in_flight: 1000,
            max_runs_in_flight_per_user: 100,
            runs_in_flight_mib: 512,
            max_batch_runs: 100,
            max_crons_per_user: 100,
            max_history: 1000,
            history_mib: 64,
            run_events_mib: 16,
            retained_events_mib: 128,
            state_update_timeout_ms: 10_000,
            shutdown_grace_secs: 5,
        }
    }
}

impl LimitsConfig {
    /// Every key within `1..=` its ceiling; the message names the first
    /// that is not.
    fn check(&self) -> Result<(), String> {
        const GIB_IN_KIB: u64 = 1 << 20;
        const DAY_SECS: u64 = 86_400;
        for (key, value, ceiling) in [
            ("body_kib", self.body_kib, GIB_IN_KIB),
            ("run_body_kib", self.run_body_kib, GIB_IN_KIB),
            ("store_body_kib", self.store_body_kib, GIB_IN_KIB),
            ("header_timeout_secs", self.header_timeout_secs, DAY_SECS),
            ("body_timeout_secs", self.body_timeout_secs, DAY_SECS),
            ("max_connections", self.max_connections, 1_000_000),
            ("max_streams_per_user", self.max_streams_per_user, 1_000_000),
            ("max_runs_in_flight", self.max_runs_in_flight, 1_000_000),
            (
                "max_runs_in_flight_per_user",
                self.max_runs_in_flight_per_user,
                1_000_000,
            ),
            ("runs_in_flight_mib", self.runs_in_flight_mib, GIB_IN_KIB),
            ("max_batch_runs", self.max_batch_runs, 100_000),
            ("max_crons_per_user", self.max_crons_per_user, 1_000_000),
            ("max_history", self.max_history, 100_000),
            ("history_mib", self.history_mib, GIB_IN_KIB),
            ("run_events_mib", self.run_events_mib, GIB_IN_KIB),
            ("retained_events_mib", self.retained_events_mib, GIB_IN_KIB),
            (
                "state_update_timeout_ms",
                self.state_update_timeout_ms,
                MAX_GRAPH_TIMEOUT_MS,
            ),
            ("shutdown_grace_secs", self.shutdown_grace_secs, DAY_SECS),
        ] {
            if value == 0 || value > ceiling {
                return Err(format!(
                    "`limits.{key}`: {value} is out of range 1..={ceiling}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/p/langgraph.json"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_graph_entry_names_its_settings_and_its_network() {
        let c = parse(
            r#"{"graphs": {"chat": {"path": "./chat", "config": {"model": "m", "n": 2},
                "secrets": {"KEY": "env:OPENAI_API_KEY"},
                "allowed_hosts": ["https://api.openai.com"], "http_timeout_ms": 9000}}}"#,
        )
        .unwrap();
        let settings = c.graphs["chat"].settings();
        assert_eq!(settings.config["model"], "m");
        assert_eq!(settings.config["n"], "2");
        assert_eq!(
            settings.secrets["KEY"],
            SecretSource::Env("OPENAI_API_KEY".into())
        );
        assert_eq!(settings.allowed_hosts.len(), 1);
        assert_eq!(settings.http.timeout, Duration::from_millis(9000));
        // A plain path: no network, the defaults.
        let plain = GraphConfig::from("./chat").settings();
        assert!(plain.allowed_hosts.is_empty() && plain.secrets.is_empty());
        assert_eq!(
            plain.http.max_response_bytes,
            (crate::plugin::DEFAULT_GRAPH_HTTP_MAX_RESPONSE_KIB << 10) as usize
        );
        for (entry, named) in [
            (r#""http_timeout_ms": 0"#, "graphs.chat.http_timeout_ms"),
            (
                r#""http_max_response_kib": 0"#,
                "graphs.chat.http_max_response_kib",
            ),
        ] {
            let e = parse(&format!(
                r#"{{"graphs": {{"chat": {{"path": "./c", {entry}}}}}}}"#
            ))
            .unwrap_err();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn reads_langgraph_keys_and_warden_settings() {
        let c = parse(
            r#"{"dependencies": ["."], "graphs": {"agent": "./agent"}, "env": ".env",
                "auth": {"path": "./auth", "disable_studio_auth": "true", "timeout_ms": 250,
                         "cache": {"cache_keys": ["authorization"]}}}"#,
        )
        .unwrap();
        let auth = c.auth.as_ref().unwrap();
        assert_eq!(auth.disable_studio_auth, Some(true));
        assert!(!auth.studio_bypass());
        assert_eq!(
            (auth.timeout_ms, auth.memory_mib),
            (250, DEFAULT_MEMORY_MIB)
        );
        assert_eq!(auth.cache.as_ref().unwrap().ttl_seconds, 60);
        assert_eq!(auth.resolved_path(&c), Path::new("/p/./auth"));
        assert_eq!(c.graphs["agent"], GraphConfig::from("./agent"));
        let c =
            parse(r#"{"graphs": {"chat": {"path": "./chat", "description": "Chats"}}}"#).unwrap();
        assert_eq!(c.graphs["chat"].description.as_deref(), Some("Chats"));
    }

    #[test]
    fn an_unknown_auth_key_is_named_with_the_file() {
        let e = parse(r#"{"auth": {"path": "./a", "timeout": 5}}"#).unwrap_err();
        assert!(e.starts_with("/p/langgraph.json: "), "{e}");
        assert!(e.contains("unknown field `timeout`"), "{e}");
    }

    #[test]
    fn an_ill_typed_key_is_named() {
        let e = parse(r#"{"auth": {"path": "./a", "memory_mib": "lots"}}"#).unwrap_err();
        assert!(e.contains("`auth.memory_mib`"), "{e}");
        let e = parse(r#"{"auth": {"path": "./a", "disable_studio_auth": "maybe"}}"#).unwrap_err();
        assert!(e.contains("`auth.disable_studio_auth`"), "{e}");
    }

    #[test]
    fn limits_and_python_paths_are_refused() {
        assert!(
            parse(r#"{"auth": {"path": "./a", "timeout_ms": 0}}"#)
                .unwrap_err()
                .contains("auth.timeout_ms")
        );
        assert!(
            parse(r#"{"auth": {"path": "./a", "memory_mib": 4096}}"#)
                .unwrap_err()
                .contains("auth.memory_mib")
        );
        // A Python policy is built with componentize-py (plugin::build).
        let c = parse(r#"{"auth": {"path": "./src/auth.py:auth"}}"#).unwrap();
        assert_eq!(c.auth.unwrap().path, "./src/auth.py:auth");
    }

    #[test]
    fn plugin_grants_are_read_and_checked() {
        let c = parse(
            r#"{"auth": {"path": "./a", "config": {"issuer": "https://i", "retries": 3, "on": true},
                         "secrets": {"K": "env:K"}, "allowed_hosts": ["https://i", "http://127.0.0.1:*"],
                         "http_timeout_ms": 250}}"#,
        )
        .unwrap();
        let auth = c.auth.unwrap();
        assert_eq!(auth.config["retries"], "3");
        assert_eq!(auth.config["on"], "true");
        assert_eq!(auth.allowed_hosts.len(), 2);
        assert_eq!(auth.http_max_response_kib, DEFAULT_HTTP_MAX_RESPONSE_KIB);
        for (text, key) in [
            (r#""config": {"k": {"nested": 1}}"#, "auth.config"),
            (r#""secrets": {"K": "K"}"#, "auth.secrets.K"),
            (
                r#""allowed_hosts": ["https://i/path"]"#,
                "auth.allowed_hosts[0]",
            ),
            (r#""http_timeout_ms": 0"#, "auth.http_timeout_ms"),
            (r#""cache": {"cache_keys": []}"#, "auth.cache.cache_keys"),
            (
                r#""cache": {"cache_keys": ["a"], "max_size": 0}"#,
                "auth.cache",
            ),
        ] {
            let e = parse(&format!(r#"{{"auth": {{"path": "./a", {text}}}}}"#)).unwrap_err();
            assert!(e.contains(&format!("`{key}")), "{text}: {e}");
        }
    }

    #[test]
    fn the_studio_bypass_is_on_only_when_written_out_as_false() {
        for (section, written, bypass) in [
            (r#"{"path": "./a"}"#, None, false),
            (
                r#"{"path": "./a", "disable_studio_auth": true}"#,
                Some(true),
                false,
            ),
            (
                r#"{"path": "./a", "disable_studio_auth": false}"#,
                Some(false),
                true,
            ),
            (
                r#"{"path": "./a", "disable_studio_auth": "False"}"#,
                Some(false),
                true,
            ),
        ] {
            let c = parse(&format!(r#"{{"auth": {section}}}"#)).unwrap();
            let auth = c.auth.unwrap();
            assert_eq!(auth.disable_studio_auth, written, "{section}");
            assert_eq!(auth.studio_bypass(), bypass, "{section}");
        }
    }

    #[test]
    fn a_key_that_looks_like_auth_is_an_error_naming_it() {
        for key in [
            "atuh",
            "auht",
            "uath",
            "htua",
            "Auth",
            "AUTH",
            "aut",
            "ath",
            "aith",
            "autth",
            "a-u-t-h",
            "auth_config",
            "authentication",
            "Authorization",
        ] {
            let e = parse(&format!(
                r#"{{"graphs": {{}}, "{key}": {{"path": "./a"}}}}"#
            ))
            .unwrap_err();
            assert!(e.starts_with("/p/langgraph.json: "), "{key}: {e}");
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
            assert!(e.contains("misspelt `auth`"), "{key}: {e}");
        }
    }

    #[test]
    fn other_keys_are_ignored_with_a_warning_naming_them() {
        for key in ["path", "oath", "http", "ui", "env", "store", "graph"] {
            let text = format!(r#"{{"auth": {{"path": "./a"}}, "{key}": {{}}}}"#);
            assert!(parse(&text).is_ok(), "{key}");
        }
        let warning = vet_top_level_keys([
            "$schema",
            "dependencies",
            "graphs",
            "env",
            "auth",
            "limits",
            "frobnicate",
            "graph",
            "http",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            warning,
            "top-level keys ignored, they have no effect: LangGraph keys Warden does not \
             implement: \
             `dependencies`, `env`, `http`; keys neither Warden nor LangGraph knows: \
             `frobnicate`, `graph` (did you mean `graphs`?)"
        );
        assert_eq!(
            vet_top_level_keys(["graphs", "auth", "limits", "$schema"]),
            Ok(None)
        );
    }

    #[test]
    fn limits_have_defaults_and_each_key_is_checked() {
        let c = parse(r#"{"graphs": {}}"#).unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        let c = parse(r#"{"limits": {"body_kib": 64, "max_connections": 10}}"#).unwrap();
        assert_eq!((c.limits.body_kib, c.limits.max_connections), (64, 10));
        assert_eq!(c.limits.run_body_kib, LimitsConfig::default().run_body_kib);
        for (text, key) in [
            (
                r#"{"max_history": 0}"#,
                "`limits.max_history`: 0 is out of range",
            ),
            (r#"{"body_kib": 2000000}"#, "`limits.body_kib`"),
            (r#"{"body_kb": 1}"#, "unknown field `body_kb`"),
            (r#"{"max_connections": -1}"#, "`limits.max_connections`"),
        ] {
            let e = parse(&format!(r#"{{"limits": {text}}}"#)).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_graph_entry_is_checked_key_by_key() {
        // An ill-typed setting is named, with what was expected.
        let e =
            parse(r#"{"graphs": {"agent": {"path": "./a", "timeout_ms": "abc"}}}"#).unwrap_err();
        assert!(e.contains("`graphs.agent.timeout_ms`"), "{e}");
        assert!(e.contains("expected u64"), "{e}");
        // A misspelt setting is an error, not a default silently kept.
        let e = parse(r#"{"graphs": {"agent": {"path": "./a", "timout_ms": 5}}}"#).unwrap_err();
        assert!(e.contains("unknown field `timout_ms`"), "{e}");
        assert!(e.contains("`timeout_ms`"), "{e}");
        let e = parse(r#"{"graphs": {"agent": {"description": "No path"}}}"#).unwrap_err();
        assert!(e.contains("`graphs.agent`: missing field `path`"), "{e}");
        // Neither a path nor an object: the error says what a graph is.
        let e = parse(r#"{"graphs": {"agent": 5}}"#).unwrap_err();
        assert!(e.contains("`graphs.agent`"), "{e}");
        assert!(e.contains("expected a graph's path"), "{e}");
        assert!(!e.contains("RawGraph"), "{e}");
        // Both spellings of a plain graph agree.
        let plain = parse(r#"{"graphs": {"a": "./a", "b": {"path": "./a"}}}"#).unwrap();
        assert_eq!(plain.graphs["a"], plain.graphs["b"]);
        assert_eq!(plain.graphs["a"], GraphConfig::from("./a"));
        assert_eq!(plain.graphs["a"].timeout_ms, DEFAULT_GRAPH_TIMEOUT_MS);
    }

    #[test]
    fn a_missing_path_is_named() {
        let e = parse(r#"{"auth": {}}"#).unwrap_err();
        assert!(e.contains("missing field `path`"), "{e}");
    }
}
