//! The request, user, context and error types handlers work with.

use std::fmt;

use serde_json::{Map, Value};

/// The HTTP request `authenticate` sees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The HTTP method, upper case.
    pub method: String,
    /// The raw request path.
    pub path: String,
    /// Query parameters in request order; repeated keys are kept.
    pub query: Vec<(String, String)>,
    /// Headers in request order, names in lower case; duplicates are kept.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A request with no headers and no query, e.g. for tests.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// Adds a header (its name is lower-cased, as the host delivers them).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Adds a query parameter.
    pub fn with_query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// The value of a header (case-insensitive); the last one when repeated,
    /// as LangGraph's `headers` dict has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `authorization` header, LangGraph's `authorization` parameter.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme
    /// case-insensitive, surrounding spaces trimmed), if there is a non-empty one.
    pub fn bearer_token(&self) -> Option<&str> {
        let (scheme, token) = self.authorization()?.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The value of a query parameter; the last one when repeated.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The authenticated user (`ctx.user`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    /// The user's identity.
    pub identity: String,
    /// A human-readable name; the host uses the identity when absent.
    pub display_name: Option<String>,
    /// Whether the user is authenticated (true unless you say otherwise).
    pub is_authenticated: bool,
    /// The credential scopes, which handlers see as `ctx.permissions`.
    pub permissions: Vec<String>,
    /// Any other fields; they reach graphs as part of `langgraph_auth_user`.
    pub extra: Map<String, Value>,
    /// Names of `extra` fields that reach graphs but are never persisted
    /// nor returned by the API.
    pub private_fields: Vec<String>,
}

impl User {
    /// An authenticated user with this identity and no permissions.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            is_authenticated: true,
            ..Self::default()
        }
    }

    /// Sets the display name.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the permissions.
    pub fn with_permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.permissions = permissions.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a custom field, returned with the user like any key of the
    /// dict a Python `authenticate` returns.
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// Adds a custom field that graphs see but that is never persisted nor
    /// returned by the API (a token, a secret).
    pub fn with_private_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        self.private_fields.push(key.clone());
        self.with_field(key, value)
    }

    /// Marks the user as not authenticated.
    pub fn unauthenticated(mut self) -> Self {
        self.is_authenticated = false;
        self
    }

    /// The display name, or the identity when none was set.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.identity)
    }

    /// A custom field.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.extra.get(key)
    }
}

/// An error that becomes the HTTP response (`Auth.exceptions.HTTPException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status, 400–599.
    pub status: u16,
    /// The response's `detail`; the reason phrase of the status when absent.
    pub detail: Option<String>,
    /// Extra response headers, e.g. `www-authenticate`.
    pub headers: Vec<(String, String)>,
}

impl HttpError {
    /// An error with this status and detail.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: Some(detail.into()),
            headers: Vec::new(),
        }
    }

    /// 401 with this detail.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, detail)
    }

    /// 403 with this detail.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, detail)
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{} {detail}", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

impl std::error::Error for HttpError {}

macro_rules! names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// Every value, in contract order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name LangGraph uses (`threads`, `create_run`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// The resource an authorization event is about.
    Resource {
        /// Threads, and runs (which LangGraph authorizes as threads).
        Threads = "threads",
        /// Assistants.
        Assistants = "assistants",
        /// Crons.
        Crons = "crons",
        /// The long-term memory store.
        Store = "store",
    }
}

names! {
    /// The action of an authorization event.
    Action {
        /// Create a resource.
        Create = "create",
        /// Read one resource.
        Read = "read",
        /// Update a resource.
        Update = "update",
        /// Delete a resource.
        Delete = "delete",
        /// Search or count resources.
        Search = "search",
        /// Create a run on a thread (or a stateless run).
        CreateRun = "create_run",
        /// Put a store item.
        Put = "put",
        /// Get a store item.
        Get = "get",
        /// List store namespaces.
        ListNamespaces = "list_namespaces",
    }
}

impl Resource {
    /// The actions that exist for this resource.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Resource::Threads => &[Create, Read, Update, Delete, Search, CreateRun],
            Resource::Assistants | Resource::Crons => &[Create, Read, Update, Delete, Search],
            Resource::Store => &[Put, Get, Search, Delete, ListNamespaces],
        }
    }
}

/// What an authorization handler knows about the event (`ctx`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthContext {
    /// The user `authenticate` returned.
    pub user: User,
    /// The user's credential scopes.
    pub permissions: Vec<String>,
    /// The event's resource.
    pub resource: Resource,
    /// The event's action.
    pub action: Action,
}

impl AuthContext {
    /// The context of an event for this user, with the user's permissions.
    pub fn new(user: User, resource: Resource, action: Action) -> Self {
        Self {
            permissions: user.permissions.clone(),
            user,
            resource,
            action,
        }
    }

    /// Whether `permission` is among the credential scopes.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}
