//! Glue between the generated WIT bindings and the SDK's types; used by
//! [`export_auth!`](crate::export_auth). Not part of the SDK's API.

use serde_json::Value;

use crate::log::Level;
use crate::{Action, Auth, AuthContext, Clause, Filter, HttpError, On, Operator, Outcome};
use crate::{Request, Resource, User};

#[allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/auth/v0.1.0",
        world: "auth-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_auth_plugin",
        default_bindings_module: "warden_sdk::__private::bindings",
    });
}

use bindings::exports::warden::auth::handlers::Guest;
use bindings::warden::auth::types as wit;

/// Exports an [`Auth`] as the plugin's handlers.
///
/// Takes a function (or closure) returning the [`Auth`]; it runs once per
/// plugin instance, on its first call.
///
/// ```ignore
/// fn auth() -> warden_sdk::Auth { /* ... */ }
/// warden_sdk::export_auth!(auth);
/// ```
#[macro_export]
macro_rules! export_auth {
    ($auth:expr) => {
        #[doc(hidden)]
        struct __WardenAuthPlugin;

        impl $crate::__private::Plugin for __WardenAuthPlugin {
            fn auth() -> &'static $crate::Auth {
                static AUTH: ::std::sync::OnceLock<$crate::Auth> = ::std::sync::OnceLock::new();
                AUTH.get_or_init($auth)
            }
        }

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <__WardenAuthPlugin as $crate::__private::Plugin>::auth;
        };

        // Native builds (unit tests) export nothing: the handlers are called
        // directly through the `Auth` there.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::bindings::__export_auth_plugin!(__WardenAuthPlugin with_types_in $crate::__private::bindings);
    };
}

/// Implemented by [`export_auth!`]: where the exported handlers find the `Auth`.
pub trait Plugin {
    /// The plugin's `Auth`, built once per instance.
    fn auth() -> &'static Auth;
}

impl<T: Plugin> Guest for T {
    fn registered() -> Vec<wit::HandlerKey> {
        T::auth().registered().map(handler_key_to_wit).collect()
    }

    fn authenticate(request: wit::Request) -> Result<wit::User, wit::HttpError> {
        let request = Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
        };
        T::auth()
            .authenticate(&request)
            .map(user_to_wit)
            .map_err(error_to_wit)
    }

    fn authorize(
        handler: wit::HandlerKey,
        context: wit::AuthContext,
        value: String,
    ) -> Result<wit::Verdict, wit::HttpError> {
        let ctx = AuthContext {
            user: user_from_wit(context.user),
            permissions: context.permissions,
            resource: resource_from_wit(context.resource),
            action: action_from_wit(context.action),
        };
        let original: Value = serde_json::from_str(&value).expect("the host sends valid JSON");
        let mut value = original.clone();
        let outcome = T::auth()
            .run(handler_key_from_wit(handler), &ctx, &mut value)
            .map_err(error_to_wit)?;
        let decision = match outcome {
            Outcome::Allow => wit::Decision::Allow,
            Outcome::Deny => wit::Decision::Deny,
            Outcome::Filter(filter) => wit::Decision::Filter(filter_to_wit(filter)),
        };
        let value = (value != original).then(|| value.to_string());
        Ok(wit::Verdict { decision, value })
    }
}

/// Writes a log record through the host (standard error outside wasm).
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::warden::auth::log::{Level as L, log};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message} {fields:?}");
}

fn user_to_wit(user: User) -> wit::User {
    wit::User {
        identity: user.identity,
        display_name: user.display_name,
        is_authenticated: user.is_authenticated,
        permissions: user.permissions,
        extra: Value::Object(user.extra).to_string(),
        private_fields: user.private_fields,
    }
}

fn user_from_wit(user: wit::User) -> User {
    let extra = match serde_json::from_str(&user.extra) {
        Ok(Value::Object(map)) => map,
        _ => Default::default(),
    };
    User {
        identity: user.identity,
        display_name: user.display_name,
        is_authenticated: user.is_authenticated,
        permissions: user.permissions,
        extra,
        private_fields: user.private_fields,
    }
}

fn error_to_wit(error: HttpError) -> wit::HttpError {
    wit::HttpError {
        status: error.status,
        detail: error.detail,
        headers: error.headers,
    }
}

fn filter_to_wit(filter: Filter) -> Vec<wit::Clause> {
    fn condition(c: crate::Condition) -> wit::Condition {
        wit::Condition {
            key: c.key,
            op: match c.op {
                Operator::Eq => wit::Operator::Eq,
                Operator::Contains => wit::Operator::Contains,
            },
            operand: c.operand.to_string(),
        }
    }
    filter
        .clauses
        .into_iter()
        .map(|clause| match clause {
            Clause::Condition(c) => wit::Clause::Condition(condition(c)),
            Clause::AnyOf(branches) => wit::Clause::AnyOf(
                branches
                    .into_iter()
                    .map(|b| b.into_iter().map(condition).collect())
                    .collect(),
            ),
        })
        .collect()
}

fn resource_from_wit(resource: wit::Resource) -> Resource {
    match resource {
        wit::Resource::Threads => Resource::Threads,
        wit::Resource::Assistants => Resource::Assistants,
        wit::Resource::Crons => Resource::Crons,
        wit::Resource::Store => Resource::Store,
    }
}

fn resource_to_wit(resource: Resource) -> wit::Resource {
    match resource {
        Resource::Threads => wit::Resource::Threads,
        Resource::Assistants => wit::Resource::Assistants,
        Resource::Crons => wit::Resource::Crons,
        Resource::Store => wit::Resource::Store,
    }
}

fn action_from_wit(action: wit::Action) -> Action {
    match action {
        wit::Action::Create => Action::Create,
        wit::Action::Read => Action::Read,
        wit::Action::Update => Action::Update,
        wit::Action::Delete => Action::Delete,
        wit::Action::Search => Action::Search,
        wit::Action::CreateRun => Action::CreateRun,
        wit::Action::Put => Action::Put,
        wit::Action::Get => Action::Get,
        wit::Action::ListNamespaces => Action::ListNamespaces,
    }
}

fn action_to_wit(action: Action) -> wit::Action {
    match action {
        Action::Create => wit::Action::Create,
        Action::Read => wit::Action::Read,
        Action::Update => wit::Action::Update,
        Action::Delete => wit::Action::Delete,
        Action::Search => wit::Action::Search,
        Action::CreateRun => wit::Action::CreateRun,
        Action::Put => wit::Action::Put,
        Action::Get => wit::Action::Get,
        Action::ListNamespaces => wit::Action::ListNamespaces,
    }
}

fn handler_key_to_wit(key: On) -> wit::HandlerKey {
    match key {
        On::Event(r, a) => wit::HandlerKey::Exact((resource_to_wit(r), action_to_wit(a))),
        On::Resource(r) => wit::HandlerKey::AnyAction(resource_to_wit(r)),
        On::Action(a) => wit::HandlerKey::AnyResource(action_to_wit(a)),
        On::All => wit::HandlerKey::Global,
    }
}

fn handler_key_from_wit(key: wit::HandlerKey) -> On {
    match key {
        wit::HandlerKey::Exact((r, a)) => On::Event(resource_from_wit(r), action_from_wit(a)),
        wit::HandlerKey::AnyAction(r) => On::Resource(resource_from_wit(r)),
        wit::HandlerKey::AnyResource(a) => On::Action(action_from_wit(a)),
        wit::HandlerKey::Global => On::All,
    }
}
