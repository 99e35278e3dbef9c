//! `warden:auth@0.1.0`: the user and every header go with each call, and a
//! handler returns the whole modified value.

use warden_types::{Action, Change, Event, HttpError, On, Request, Resource, User};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Instance, Linker};

use super::{RawVerdict, Registration, shared_conversions, typed};
use crate::plugin::sandbox::Sandbox;

pub(super) const VERSION: &str = "0.1.0";

wasmtime::component::bindgen!({
    path: "../wit/auth/v0.1.0",
    world: "auth-plugin",
});

use self::warden::auth::types as wit;
use self::warden::auth::{cache, config, crypto, log};

shared_conversions!();
crate::plugin::crypto::crypto_import!();
crate::plugin::sandbox::plugin_imports!();

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    AuthPlugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl wit::Host for Sandbox {}

/// Where the handlers are among a 0.1.0 plugin's exports.
pub(in crate::plugin) struct Handlers {
    registered: ComponentExportIndex,
    authenticate: ComponentExportIndex,
    authorize: ComponentExportIndex,
}

type RegisteredParams = ();
type RegisteredResults = (Vec<wit::HandlerKey>,);
type AuthenticateParams<'a> = (&'a wit::Request,);
type AuthenticateResults = (Result<wit::User, wit::HttpError>,);
type AuthorizeParams<'a> = (wit::HandlerKey, &'a wit::AuthContext, &'a str);
type AuthorizeResults = (Result<wit::Verdict, wit::HttpError>,);

impl Handlers {
    pub(super) fn find(component: &Component) -> Option<Self> {
        let interface = format!("{}@{VERSION}", super::HANDLERS_INTERFACE);
        let interface = component.get_export_index(None, &interface)?;
        Some(Self {
            registered: component.get_export_index(Some(&interface), "registered")?,
            authenticate: component.get_export_index(Some(&interface), "authenticate")?,
            authorize: component.get_export_index(Some(&interface), "authorize")?,
        })
    }

    pub(super) fn register(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
    ) -> wasmtime::Result<Registration> {
        instance.get_typed_func::<AuthenticateParams<'_>, AuthenticateResults>(
            &mut *store,
            &self.authenticate,
        )?;
        instance.get_typed_func::<AuthorizeParams<'_>, AuthorizeResults>(
            &mut *store,
            &self.authorize,
        )?;
        let registered = instance
            .get_typed_func::<RegisteredParams, RegisteredResults>(&mut *store, &self.registered)?;
        let (keys,) = registered.call(&mut *store, ())?;
        Ok(Registration {
            handlers: keys.into_iter().map(key_from_wit).collect(),
            headers: None,
        })
    }

    pub(super) fn authenticate(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        request: &Request,
    ) -> wasmtime::Result<Result<User, HttpError>> {
        let request = request_to_wit(request, request.headers.clone());
        // SAFETY: the types `register` checked.
        let func = unsafe {
            typed::<AuthenticateParams<'_>, AuthenticateResults>(
                store,
                instance,
                &self.authenticate,
            )?
        };
        match func.call(store, (&request,))?.0 {
            Ok(user) => user_from_wit(user).map(Ok),
            Err(error) => error_from_wit(error).map(Err),
        }
    }

    pub(super) fn authorize(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        user: &User,
        handler: On,
        event: Event,
        value: &str,
    ) -> wasmtime::Result<Result<RawVerdict, HttpError>> {
        let context = wit::AuthContext {
            user: user_to_wit(user),
            permissions: user.permissions.clone(),
            resource: resource_to_wit(event.resource()),
            action: action_to_wit(event.action()),
        };
        // SAFETY: the types `register` checked.
        let func = unsafe {
            typed::<AuthorizeParams<'_>, AuthorizeResults>(store, instance, &self.authorize)?
        };
        let verdict = match func.call(store, (key_to_wit(handler), &context, value))?.0 {
            Ok(verdict) => verdict,
            Err(error) => return error_from_wit(error).map(Err),
        };
        let change =
            match verdict.value {
                None => Change::None,
                Some(value) => Change::Value(serde_json::from_str(&value).map_err(|e| {
                    super::bad_output(format!("the modified value is not JSON: {e}"))
                })?),
            };
        Ok(Ok(RawVerdict {
            outcome: outcome_from_wit(verdict.decision)?,
            change,
        }))
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

fn resource_from_wit(resource: wit::Resource) -> Resource {
    match resource {
        wit::Resource::Threads => Resource::Threads,
        wit::Resource::Assistants => Resource::Assistants,
        wit::Resource::Crons => Resource::Crons,
        wit::Resource::Store => Resource::Store,
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

fn key_from_wit(key: wit::HandlerKey) -> On {
    match key {
        wit::HandlerKey::Exact((r, a)) => On::Event(resource_from_wit(r), action_from_wit(a)),
        wit::HandlerKey::AnyAction(r) => On::Resource(resource_from_wit(r)),
        wit::HandlerKey::AnyResource(a) => On::Action(action_from_wit(a)),
        wit::HandlerKey::Global => On::All,
    }
}

fn key_to_wit(key: On) -> wit::HandlerKey {
    match key {
        On::Event(r, a) => wit::HandlerKey::Exact((resource_to_wit(r), action_to_wit(a))),
        On::Resource(r) => wit::HandlerKey::AnyAction(resource_to_wit(r)),
        On::Action(a) => wit::HandlerKey::AnyResource(action_to_wit(a)),
        On::All => wit::HandlerKey::Global,
    }
}
