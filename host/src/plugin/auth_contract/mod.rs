//! The `warden:auth` contract versions this host speaks, one module each
//! (its bindings, how its handlers are found, checked and called), behind
//! one [`Handlers`] that speaks the SDK's types. A plugin built against any
//! of [`SUPPORTED`] loads; a new version is a new module here, and plugins
//! built against the older ones keep loading.

mod v0_1;
mod v0_2;

use warden_types::{Change, Event, HttpError, On, Outcome, Request, User};
use wasmtime::component::{Component, Instance, Linker, ResourceAny, TypedFunc};
use wasmtime::{Engine, Store};

use super::error::Fault;
use super::sandbox::Sandbox;

/// The export interface whose presence marks an auth plugin.
pub(super) const HANDLERS_INTERFACE: &str = "warden:auth/handlers";

/// The `warden:auth` versions this host loads, oldest first.
pub const SUPPORTED: &[&str] = &[v0_1::VERSION, v0_2::VERSION];

/// What a plugin registers when it is loaded.
pub(super) struct Registration {
    /// The keys of its authorization handlers.
    pub(super) handlers: Vec<On>,
    /// The headers `authenticate` reads (lower case); `None`: all of them.
    pub(super) headers: Option<Vec<String>>,
}

/// A handler's answer, before the host applies it.
pub(super) struct RawVerdict {
    pub(super) outcome: Outcome,
    pub(super) change: Change,
}

/// What a session holds in its instance between calls: the user's
/// `session` resource for a 0.2.0 plugin (the user crosses the boundary
/// once), nothing for 0.1.0 (the user goes with every event).
#[derive(Default)]
pub(super) enum Bound {
    /// Nothing yet.
    #[default]
    Unbound,
    /// The guest's session of the user with `identity`.
    Session {
        identity: String,
        handle: ResourceAny,
    },
}

/// The handler exports of one plugin, in the version it was built for:
/// found once, their types checked once ([`Handlers::register`]), so that
/// the instances of every request call them without a check of their own.
pub(super) enum Handlers {
    V0_1(v0_1::Handlers),
    V0_2(v0_2::Handlers),
}

impl Handlers {
    /// The handlers of `component`, built for `version` (one of
    /// [`SUPPORTED`]); `None` when an export is missing.
    pub(super) fn find(component: &Component, version: &str) -> Option<Self> {
        match version {
            v0_1::VERSION => v0_1::Handlers::find(component).map(Self::V0_1),
            v0_2::VERSION => v0_2::Handlers::find(component).map(Self::V0_2),
            _ => None,
        }
    }

    /// Links what a plugin of this version imports from the host (beyond
    /// WASI).
    pub(super) fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
        match self {
            Self::V0_1(_) => v0_1::add_to_linker(linker),
            Self::V0_2(_) => v0_2::add_to_linker(linker),
        }
    }

    /// Checks the handlers' types in a first instance, then asks it what it
    /// registers.
    pub(super) fn register(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
    ) -> wasmtime::Result<Registration> {
        match self {
            Self::V0_1(h) => h.register(store, instance),
            Self::V0_2(h) => h.register(store, instance),
        }
    }

    /// Runs `authenticate` on `request`, sending only `headers` when the
    /// plugin declared which it reads.
    pub(super) fn authenticate(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        request: &Request,
        headers: Option<&[String]>,
        bound: &mut Bound,
    ) -> wasmtime::Result<Result<User, HttpError>> {
        match self {
            Self::V0_1(h) => h.authenticate(store, instance, request),
            Self::V0_2(h) => h.authenticate(store, instance, request, headers, bound),
        }
    }

    /// Runs the handler registered under `handler` on `event` for `user`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorize(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        bound: &mut Bound,
        user: &User,
        handler: On,
        event: Event,
        value: &str,
    ) -> wasmtime::Result<Result<RawVerdict, HttpError>> {
        match self {
            Self::V0_1(h) => h.authorize(store, instance, user, handler, event, value),
            Self::V0_2(h) => h.authorize(store, instance, bound, user, event, value),
        }
    }
}

/// The exported function at `index` of `instance`, typed without a check.
///
/// # Safety
/// `Params` and `Results` must be the types checked with
/// `Instance::get_typed_func` for that export in an instance of the same
/// component.
unsafe fn typed<Params, Results>(
    store: &mut Store<Sandbox>,
    instance: Instance,
    index: &wasmtime::component::ComponentExportIndex,
) -> wasmtime::Result<TypedFunc<Params, Results>>
where
    Params: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    Results: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let func = instance
        .get_func(store, index)
        .ok_or_else(|| wasmtime::Error::msg("the handler is not exported"))?;
    // SAFETY: the caller's contract.
    Ok(unsafe { TypedFunc::new_unchecked(func) })
}

/// A plugin's output the host cannot accept, as a call error: it is
/// classified as [`Fault::BadOutput`].
fn bad_output(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(Fault::BadOutput(message.into()))
}

/// The version of `warden:auth/handlers` the component exports: one of
/// [`SUPPORTED`], or `Err(Some(other))`, or `Err(None)` when it exports none.
pub(super) fn exported(engine: &Engine, component: &Component) -> Result<String, Option<String>> {
    super::component::exported_version(engine, component, HANDLERS_INTERFACE, SUPPORTED)
}

/// Conversions between a contract version's bindings (in scope as `wit`)
/// and the SDK's types, for the types every version shares field for field.
macro_rules! shared_conversions {
    () => {
        fn request_to_wit(request: &Request, headers: Vec<(String, String)>) -> wit::Request {
            wit::Request {
                method: request.method.clone(),
                path: request.path.clone(),
                query: request.query.clone(),
                headers,
            }
        }

        fn user_to_wit(user: &User) -> wit::User {
            wit::User {
                identity: user.identity.clone(),
                display_name: user.display_name.clone(),
                is_authenticated: user.is_authenticated,
                permissions: user.permissions.clone(),
                extra: serde_json::Value::Object(user.extra.clone()).to_string(),
                private_fields: user.private_fields.clone(),
            }
        }

        fn user_from_wit(user: wit::User) -> wasmtime::Result<User> {
            let extra = match serde_json::from_str(&user.extra) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => return Err(super::bad_output("user.extra is not a JSON object")),
                Err(e) => return Err(super::bad_output(format!("user.extra is not JSON: {e}"))),
            };
            Ok(User {
                identity: user.identity,
                display_name: user.display_name,
                is_authenticated: user.is_authenticated,
                permissions: user.permissions,
                extra,
                private_fields: user.private_fields,
            })
        }

        fn error_from_wit(error: wit::HttpError) -> wasmtime::Result<HttpError> {
            if !(400..=599).contains(&error.status) {
                return Err(super::bad_output(format!(
                    "http-error status {} is not in 400..=599",
                    error.status
                )));
            }
            Ok(HttpError {
                status: error.status,
                detail: error.detail,
                headers: error.headers,
            })
        }

        fn outcome_from_wit(decision: wit::Decision) -> wasmtime::Result<warden_types::Outcome> {
            use warden_types::{Clause, Condition, Filter, Operator, Outcome};
            fn condition(c: wit::Condition) -> wasmtime::Result<Condition> {
                let operand = serde_json::from_str(&c.operand).map_err(|e| {
                    super::bad_output(format!(
                        "the operand of filter key {:?} is not JSON: {e}",
                        c.key
                    ))
                })?;
                let op = match c.op {
                    wit::Operator::Eq => Operator::Eq,
                    wit::Operator::Contains => Operator::Contains,
                };
                Ok(Condition {
                    key: c.key,
                    op,
                    operand,
                })
            }
            let clauses = match decision {
                wit::Decision::Allow => return Ok(Outcome::Allow),
                wit::Decision::Deny => return Ok(Outcome::Deny),
                wit::Decision::Filter(clauses) => clauses,
            };
            let clauses = clauses
                .into_iter()
                .map(|clause| match clause {
                    wit::Clause::Condition(c) => Ok(Clause::Condition(condition(c)?)),
                    wit::Clause::AnyOf(branches) if branches.len() < 2 => Err(super::bad_output(
                        "invalid $or operator: it needs at least two branches",
                    )),
                    wit::Clause::AnyOf(branches) => Ok(Clause::AnyOf(
                        branches
                            .into_iter()
                            .map(|b| b.into_iter().map(condition).collect())
                            .collect::<wasmtime::Result<_>>()?,
                    )),
                })
                .collect::<wasmtime::Result<_>>()?;
            Ok(Outcome::Filter(Filter { clauses }))
        }
    };
}
use shared_conversions;
