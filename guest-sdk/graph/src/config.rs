//! The run's config (LangGraph's `RunnableConfig`) and context, as a node
//! sees them.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Map, Value};

/// The recursion limit of a run whose config sets none (LangGraph's default).
pub const DEFAULT_RECURSION_LIMIT: u64 = 25;

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// The run's config and context, passed to every node and router.
///
/// The config is LangGraph's `RunnableConfig` as JSON: `configurable` holds
/// the client's keys and the ones the server sets (the authenticated user,
/// `thread_id`, `run_id`, `assistant_id`, `graph_id`); `tags`, `metadata`
/// and `recursion_limit` sit beside it.
///
/// ```
/// use warden_graph::{RunConfig, json};
///
/// let config = RunConfig::new(
///     json!({"configurable": {
///         "thread_id": "t1",
///         "langgraph_auth_user": {"identity": "user1", "permissions": ["read"], "org": "acme"},
///     }}),
///     json!({"model": "small"}),
/// );
/// assert_eq!(config.thread_id(), Some("t1"));
/// let user = config.auth_user().unwrap();
/// assert_eq!(user.identity, "user1");
/// assert!(user.has_permission("read"));
/// assert_eq!(user.extra["org"], "acme");
/// assert_eq!(config.context()["model"], "small");
/// assert_eq!(config.recursion_limit(), 25);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    config: Value,
    context: Value,
}

impl RunConfig {
    /// Wraps a run's config (a JSON object) and context.
    pub fn new(config: Value, context: Value) -> Self {
        Self { config, context }
    }

    /// The whole config, as JSON.
    pub fn as_json(&self) -> &Value {
        &self.config
    }

    /// `config.configurable` (empty when absent).
    pub fn configurable(&self) -> &Map<String, Value> {
        self.config
            .get("configurable")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    }

    /// `config.metadata` (empty when absent).
    pub fn metadata(&self) -> &Map<String, Value> {
        self.config
            .get("metadata")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    }

    /// `config.tags`, the strings among them.
    pub fn tags(&self) -> Vec<&str> {
        self.config
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The authenticated user (`configurable.langgraph_auth_user`), when
    /// the server set one.
    pub fn auth_user(&self) -> Option<AuthUser> {
        let user = self
            .configurable()
            .get("langgraph_auth_user")?
            .as_object()?;
        AuthUser::from_json(user, self.configurable().get("langgraph_auth_permissions"))
    }

    /// The authenticated user's identity (`configurable.langgraph_auth_user_id`).
    pub fn user_id(&self) -> Option<&str> {
        self.configurable_str("langgraph_auth_user_id")
    }

    /// The thread the run belongs to (`configurable.thread_id`).
    pub fn thread_id(&self) -> Option<&str> {
        self.configurable_str("thread_id")
    }

    /// The run's id (`configurable.run_id`).
    pub fn run_id(&self) -> Option<&str> {
        self.configurable_str("run_id")
    }

    /// The assistant the run uses (`configurable.assistant_id`).
    pub fn assistant_id(&self) -> Option<&str> {
        self.configurable_str("assistant_id")
    }

    /// The graph's id in `langgraph.json` (`configurable.graph_id`).
    pub fn graph_id(&self) -> Option<&str> {
        self.configurable_str("graph_id")
    }

    /// How many node steps the run may take: `config.recursion_limit`,
    /// [`DEFAULT_RECURSION_LIMIT`] when unset.
    pub fn recursion_limit(&self) -> u64 {
        self.config
            .get("recursion_limit")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_RECURSION_LIMIT)
    }

    /// The run's context (LangGraph's `Runtime.context`), `null` when none.
    pub fn context(&self) -> &Value {
        &self.context
    }

    fn configurable_str(&self, key: &str) -> Option<&str> {
        self.configurable().get(key).and_then(Value::as_str)
    }
}

/// The user the server authenticated for the run, as the auth plugin
/// returned it (`configurable.langgraph_auth_user`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthUser {
    /// Who the user is.
    pub identity: String,
    /// The name to show (the identity when the plugin set none).
    pub display_name: String,
    /// Whether the user is authenticated.
    pub is_authenticated: bool,
    /// The user's permissions.
    pub permissions: Vec<String>,
    /// The plugin's other fields.
    pub extra: Map<String, Value>,
}

impl AuthUser {
    fn from_json(user: &Map<String, Value>, permissions: Option<&Value>) -> Option<Self> {
        let identity = match user.get("identity")? {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
        };
        let extra = user
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "identity" | "display_name" | "is_authenticated" | "permissions"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Self {
            display_name: user
                .get("display_name")
                .and_then(Value::as_str)
                .map_or_else(|| identity.clone(), str::to_owned),
            is_authenticated: user
                .get("is_authenticated")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            permissions: user
                .get("permissions")
                .and_then(strings)
                .or_else(|| permissions.and_then(strings))
                .unwrap_or_default(),
            identity,
            extra,
        })
    }

    /// Whether the user holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn platform_config() -> RunConfig {
        RunConfig::new(
            json!({
                "configurable": {
                    "langgraph_auth_user": {
                        "identity": "user1", "display_name": "Alice", "is_authenticated": true,
                        "permissions": ["threads:create"], "org": "acme",
                    },
                    "langgraph_auth_user_id": "user1",
                    "langgraph_auth_permissions": ["threads:create"],
                    "thread_id": "t1", "run_id": "r1", "assistant_id": "a1", "graph_id": "agent",
                    "model": "small",
                },
                "metadata": {"source": "test"},
                "tags": ["x", 1],
                "recursion_limit": 7,
            }),
            json!({"tenant": "t"}),
        )
    }

    #[test]
    fn accessors() {
        let config = platform_config();
        assert_eq!(config.thread_id(), Some("t1"));
        assert_eq!(config.run_id(), Some("r1"));
        assert_eq!(config.assistant_id(), Some("a1"));
        assert_eq!(config.graph_id(), Some("agent"));
        assert_eq!(config.user_id(), Some("user1"));
        assert_eq!(config.recursion_limit(), 7);
        assert_eq!(config.configurable()["model"], "small");
        assert_eq!(config.metadata()["source"], "test");
        assert_eq!(config.tags(), ["x"]);
        assert_eq!(config.context(), &json!({"tenant": "t"}));
        assert_eq!(config.as_json()["recursion_limit"], 7);
    }

    #[test]
    fn auth_user() {
        let user = platform_config().auth_user().unwrap();
        assert_eq!(
            user,
            AuthUser {
                identity: "user1".into(),
                display_name: "Alice".into(),
                is_authenticated: true,
                permissions: vec!["threads:create".into()],
                extra: json!({"org": "acme"}).as_object().unwrap().clone(),
            }
        );
        assert!(user.has_permission("threads:create"));
        assert!(!user.has_permission("admin"));
    }

    #[test]
    fn auth_user_defaults() {
        let config = RunConfig::new(
            json!({"configurable": {
                "langgraph_auth_user": {"identity": "bob"},
                "langgraph_auth_permissions": ["read"],
            }}),
            Value::Null,
        );
        let user = config.auth_user().unwrap();
        assert_eq!(user.display_name, "bob");
        assert!(user.is_authenticated);
        assert_eq!(user.permissions, ["read"]);
        assert!(user.extra.is_empty());
        assert_eq!(config.user_id(), None);
    }

    #[test]
    fn empty_config() {
        let config = RunConfig::new(Value::Null, Value::Null);
        assert!(config.auth_user().is_none());
        assert!(config.configurable().is_empty());
        assert_eq!(config.thread_id(), None);
        assert_eq!(config.recursion_limit(), DEFAULT_RECURSION_LIMIT);
        assert!(config.context().is_null());
        let no_identity = RunConfig::new(
            json!({"configurable": {"langgraph_auth_user": {"display_name": "x"}}}),
            Value::Null,
        );
        assert!(no_identity.auth_user().is_none());
    }
}
