//! Glue between the generated WIT bindings and the SDK's types; used by
//! [`export_auth!`](crate::export_auth). Not part of the SDK's API.

use std::cell::RefCell;
use std::marker::PhantomData;

use serde_json::Value;

use crate::log::Level;
use crate::{
    Action, AssistantAction, Auth, AuthContext, Change, Clause, CronAction, Event, Filter,
    HttpError, On, Operator, Outcome, Request, Resource, StoreAction, ThreadAction, User,
};

#[allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../wit/common/v0.1.0", "../wit/auth/v0.2.0"],
        world: "warden:auth/auth-plugin@0.2.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_auth_plugin",
        default_bindings_module: "warden_sdk::__private::bindings",
    });
}

use bindings::exports::warden::auth::handlers::{self as handlers, Guest, GuestSession};
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
pub trait Plugin: 'static {
    /// The plugin's `Auth`, built once per instance.
    fn auth() -> &'static Auth;
}

/// The `session` resource: the user `authenticate` returned (or the host
/// handed to the constructor), kept in the instance so that events are
/// authorized without sending it again. Dropped when the host drops its
/// handle.
pub struct Session<T> {
    /// The handlers' context, built once: each event sets only its
    /// resource and action (the user is not copied again per event).
    ctx: RefCell<AuthContext>,
    plugin: PhantomData<fn() -> T>,
}

impl<T: Plugin> Session<T> {
    fn of(user: User) -> Self {
        Self {
            ctx: RefCell::new(AuthContext::new(user, Resource::Threads, Action::Read)),
            plugin: PhantomData,
        }
    }
}

impl<T: Plugin> Guest for T {
    type Session = Session<T>;

    fn register() -> wit::Registration {
        let auth = T::auth();
        wit::Registration {
            handlers: auth.registered().map(handler_key_to_wit).collect(),
            headers: auth.headers().map(<[String]>::to_vec),
        }
    }

    fn authenticate(
        request: wit::Request,
    ) -> Result<(wit::User, handlers::Session), wit::HttpError> {
        let request = Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
        };
        let user = T::auth()
            .authenticate_owned(request)
            .map_err(error_to_wit)?;
        let session = handlers::Session::new(Session::<T>::of(user.clone()));
        Ok((user_to_wit(user), session))
    }
}

impl<T: Plugin> GuestSession for Session<T> {
    fn new(user: wit::User) -> Self {
        Session::of(user_from_wit(user))
    }

    fn authorize(&self, event: wit::Event, value: String) -> Result<wit::Verdict, wit::HttpError> {
        let event = event_from_wit(event);
        let mut ctx = self.ctx.borrow_mut();
        (ctx.resource, ctx.action) = (event.resource(), event.action());
        let original: Value = serde_json::from_str(&value).expect("the host sends valid JSON");
        let mut value = original.clone();
        let outcome = T::auth()
            .authorize(&ctx, &mut value)
            .map_err(error_to_wit)?;
        let decision = match outcome {
            Outcome::Allow => wit::Decision::Allow,
            Outcome::Deny => wit::Decision::Deny,
            Outcome::Filter(filter) => wit::Decision::Filter(filter_to_wit(filter)),
        };
        let change = match Change::between(&original, value) {
            Change::None => wit::Change::None,
            Change::Stamps(stamps) => wit::Change::Stamps(
                stamps
                    .into_iter()
                    .map(|(key, stamp)| (key, stamp.to_string()))
                    .collect(),
            ),
            Change::Value(value) => wit::Change::Value(value.to_string()),
        };
        Ok(wit::Verdict { decision, change })
    }
}

/// Writes a log record through the host (standard error outside wasm).
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::warden::common::log::{Level as L, log};
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

fn event_from_wit(event: wit::Event) -> Event {
    match event {
        wit::Event::Threads(a) => Event::Threads(match a {
            wit::ThreadAction::Create => ThreadAction::Create,
            wit::ThreadAction::Read => ThreadAction::Read,
            wit::ThreadAction::Update => ThreadAction::Update,
            wit::ThreadAction::Delete => ThreadAction::Delete,
            wit::ThreadAction::Search => ThreadAction::Search,
            wit::ThreadAction::CreateRun => ThreadAction::CreateRun,
        }),
        wit::Event::Assistants(a) => Event::Assistants(match a {
            wit::AssistantAction::Create => AssistantAction::Create,
            wit::AssistantAction::Read => AssistantAction::Read,
            wit::AssistantAction::Update => AssistantAction::Update,
            wit::AssistantAction::Delete => AssistantAction::Delete,
            wit::AssistantAction::Search => AssistantAction::Search,
        }),
        wit::Event::Crons(a) => Event::Crons(match a {
            wit::CronAction::Create => CronAction::Create,
            wit::CronAction::Read => CronAction::Read,
            wit::CronAction::Update => CronAction::Update,
            wit::CronAction::Delete => CronAction::Delete,
            wit::CronAction::Search => CronAction::Search,
        }),
        wit::Event::Store(a) => Event::Store(match a {
            wit::StoreAction::Put => StoreAction::Put,
            wit::StoreAction::Get => StoreAction::Get,
            wit::StoreAction::Search => StoreAction::Search,
            wit::StoreAction::Delete => StoreAction::Delete,
            wit::StoreAction::ListNamespaces => StoreAction::ListNamespaces,
        }),
    }
}

fn event_to_wit(event: Event) -> wit::Event {
    match event {
        Event::Threads(a) => wit::Event::Threads(match a {
            ThreadAction::Create => wit::ThreadAction::Create,
            ThreadAction::Read => wit::ThreadAction::Read,
            ThreadAction::Update => wit::ThreadAction::Update,
            ThreadAction::Delete => wit::ThreadAction::Delete,
            ThreadAction::Search => wit::ThreadAction::Search,
            ThreadAction::CreateRun => wit::ThreadAction::CreateRun,
        }),
        Event::Assistants(a) => wit::Event::Assistants(match a {
            AssistantAction::Create => wit::AssistantAction::Create,
            AssistantAction::Read => wit::AssistantAction::Read,
            AssistantAction::Update => wit::AssistantAction::Update,
            AssistantAction::Delete => wit::AssistantAction::Delete,
            AssistantAction::Search => wit::AssistantAction::Search,
        }),
        Event::Crons(a) => wit::Event::Crons(match a {
            CronAction::Create => wit::CronAction::Create,
            CronAction::Read => wit::CronAction::Read,
            CronAction::Update => wit::CronAction::Update,
            CronAction::Delete => wit::CronAction::Delete,
            CronAction::Search => wit::CronAction::Search,
        }),
        Event::Store(a) => wit::Event::Store(match a {
            StoreAction::Put => wit::StoreAction::Put,
            StoreAction::Get => wit::StoreAction::Get,
            StoreAction::Search => wit::StoreAction::Search,
            StoreAction::Delete => wit::StoreAction::Delete,
            StoreAction::ListNamespaces => wit::StoreAction::ListNamespaces,
        }),
    }
}

fn resource_to_wit(resource: Resource) -> wit::ResourceKind {
    match resource {
        Resource::Threads => wit::ResourceKind::Threads,
        Resource::Assistants => wit::ResourceKind::Assistants,
        Resource::Crons => wit::ResourceKind::Crons,
        Resource::Store => wit::ResourceKind::Store,
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
        On::Event(resource, action) => wit::HandlerKey::Event(event_to_wit(
            Event::new(resource, action).expect("`Auth::on` registers existing events only"),
        )),
        On::Resource(r) => wit::HandlerKey::AnyAction(resource_to_wit(r)),
        On::Action(a) => wit::HandlerKey::AnyResource(action_to_wit(a)),
        On::All => wit::HandlerKey::Global,
    }
}

#[cfg(test)]
mod tests {
    //! The exports as the host calls them, minus `authenticate` (creating a
    //! resource handle needs the component model).
    use super::*;
    use crate::ValueExt;

    struct Owners;

    impl Plugin for Owners {
        fn auth() -> &'static Auth {
            static AUTH: std::sync::OnceLock<Auth> = std::sync::OnceLock::new();
            AUTH.get_or_init(|| {
                Auth::new(|_| Ok(User::new("u")))
                    .reads_headers(["Authorization"])
                    .on(ThreadAction::Create, |ctx, value| {
                        value.stamp_metadata("owner", &ctx.user.identity);
                        Ok(Filter::eq("owner", &ctx.user.identity).into())
                    })
                    .on_resource(Resource::Store, |ctx, value| {
                        value["namespace"] = serde_json::json!([ctx.user.identity]);
                        Ok(Outcome::Deny)
                    })
                    .on_action(Action::Read, |_, _| Ok(Outcome::Allow))
            })
        }
    }

    fn authorize(event: wit::Event, value: &str) -> String {
        let user = user_to_wit(User::new("alice").with_field("team", "blue"));
        let session = <Session<Owners> as GuestSession>::new(user);
        let verdict = session.authorize(event, value.to_owned()).unwrap();
        format!("{:?} {:?}", verdict.decision, verdict.change)
    }

    #[test]
    fn registration_lists_handlers_and_headers() {
        let registration = <Owners as Guest>::register();
        assert_eq!(
            format!("{:?}", registration.handlers),
            "[HandlerKey::Event(Event::Threads(ThreadAction::Create)), \
             HandlerKey::AnyAction(ResourceKind::Store), HandlerKey::AnyResource(Action::Read)]"
        );
        assert_eq!(registration.headers, Some(vec!["authorization".to_owned()]));
    }

    #[test]
    fn a_stamp_crosses_as_a_stamp() {
        let verdict = authorize(
            wit::Event::Threads(wit::ThreadAction::Create),
            r#"{"thread_id": "t"}"#,
        );
        assert_eq!(
            verdict,
            r#"Decision::Filter([Clause::Condition(Condition { key: "owner", op: Operator::Eq, operand: "\"alice\"" })]) Change::Stamps([("owner", "\"alice\"")])"#
        );
    }

    #[test]
    fn any_other_change_crosses_as_the_value() {
        let verdict = authorize(
            wit::Event::Store(wit::StoreAction::Put),
            r#"{"namespace": ["bob"]}"#,
        );
        assert_eq!(
            verdict,
            r#"Decision::Deny Change::Value("{\"namespace\":[\"alice\"]}")"#
        );
    }

    #[test]
    fn no_change_or_no_handler_is_no_change() {
        let read = authorize(wit::Event::Crons(wit::CronAction::Read), "{}");
        assert_eq!(read, "Decision::Allow Change::None");
        let uncovered = authorize(wit::Event::Crons(wit::CronAction::Delete), "{}");
        assert_eq!(uncovered, "Decision::Allow Change::None");
    }
}
