//! Host bindings of `warden:auth@0.1.0`, and their conversions to the SDK's
//! types. A future contract version gets a sibling module converting to the
//! same types, so plugins built today keep loading.

use serde_json::Value;
use warden_types::{
    Action, Clause, Condition, Filter, HttpError, On, Operator, Request, Resource, User,
};

use super::error::Fault;

wasmtime::component::bindgen!({
    path: "../wit/auth/v0.1.0",
    world: "auth-plugin",
});

pub(crate) use self::warden::auth::{cache, config, crypto, log, types};
use types as wit;

/// The export interface whose presence marks an auth plugin.
pub(crate) const HANDLERS_INTERFACE: &str = "warden:auth/handlers";

pub(crate) fn request_to_wit(request: &Request) -> wit::Request {
    wit::Request {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
    }
}

pub(crate) fn user_to_wit(user: &User) -> wit::User {
    wit::User {
        identity: user.identity.clone(),
        display_name: user.display_name.clone(),
        is_authenticated: user.is_authenticated,
        permissions: user.permissions.clone(),
        extra: Value::Object(user.extra.clone()).to_string(),
        private_fields: user.private_fields.clone(),
    }
}

pub(crate) fn user_from_wit(user: wit::User) -> Result<User, Fault> {
    let extra = match serde_json::from_str(&user.extra) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Fault::BadOutput("user.extra is not a JSON object".into())),
        Err(e) => return Err(Fault::BadOutput(format!("user.extra is not JSON: {e}"))),
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

pub(crate) fn error_from_wit(error: wit::HttpError) -> Result<HttpError, Fault> {
    if !(400..=599).contains(&error.status) {
        return Err(Fault::BadOutput(format!(
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

pub(crate) fn filter_from_wit(clauses: Vec<wit::Clause>) -> Result<Filter, Fault> {
    fn condition(c: wit::Condition) -> Result<Condition, Fault> {
        let operand = serde_json::from_str(&c.operand).map_err(|e| {
            Fault::BadOutput(format!(
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
    let clauses = clauses
        .into_iter()
        .map(|clause| match clause {
            wit::Clause::Condition(c) => Ok(Clause::Condition(condition(c)?)),
            wit::Clause::AnyOf(branches) if branches.len() < 2 => Err(Fault::BadOutput(
                "invalid $or operator: it needs at least two branches".into(),
            )),
            wit::Clause::AnyOf(branches) => Ok(Clause::AnyOf(
                branches
                    .into_iter()
                    .map(|b| b.into_iter().map(condition).collect())
                    .collect::<Result<_, _>>()?,
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(Filter { clauses })
}

pub(crate) fn resource_to_wit(resource: Resource) -> wit::Resource {
    match resource {
        Resource::Threads => wit::Resource::Threads,
        Resource::Assistants => wit::Resource::Assistants,
        Resource::Crons => wit::Resource::Crons,
        Resource::Store => wit::Resource::Store,
    }
}

fn resource_from_wit(resource: wit::Resource) -> Resource {
    match resource {
        wit::Resource::Threads => Resource::Threads,
        wit::Resource::Assistants => Resource::Assistants,
        wit::Resource::Crons => Resource::Crons,
        wit::Resource::Store => Resource::Store,
    }
}

pub(crate) fn action_to_wit(action: Action) -> wit::Action {
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

pub(crate) fn key_from_wit(key: wit::HandlerKey) -> On {
    match key {
        wit::HandlerKey::Exact((r, a)) => On::Event(resource_from_wit(r), action_from_wit(a)),
        wit::HandlerKey::AnyAction(r) => On::Resource(resource_from_wit(r)),
        wit::HandlerKey::AnyResource(a) => On::Action(action_from_wit(a)),
        wit::HandlerKey::Global => On::All,
    }
}

pub(crate) fn key_to_wit(key: On) -> wit::HandlerKey {
    match key {
        On::Event(r, a) => wit::HandlerKey::Exact((resource_to_wit(r), action_to_wit(a))),
        On::Resource(r) => wit::HandlerKey::AnyAction(resource_to_wit(r)),
        On::Action(a) => wit::HandlerKey::AnyResource(action_to_wit(a)),
        On::All => wit::HandlerKey::Global,
    }
}

/// `warden:auth@0.2.0` (with `warden:common@0.1.0`), not loaded yet: its
/// bindings are generated so that the contract is checked by every build.
#[cfg(test)]
mod contract_v0_2 {
    wasmtime::component::bindgen!({
        path: ["../wit/common/v0.1.0", "../wit/auth/v0.2.0"],
        world: "warden:auth/auth-plugin@0.2.0",
    });

    #[test]
    fn the_next_contract_parses_with_typed_events() {
        use warden::auth::types::{Event, HandlerKey, ThreadAction};
        let key = HandlerKey::Event(Event::Threads(ThreadAction::Read));
        assert!(matches!(key, HandlerKey::Event(Event::Threads(_))));
    }
}
