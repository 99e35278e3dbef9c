//! `warden:auth@0.2.0`: the plugin declares the headers it reads,
//! `authenticate` returns a `session` resource that the request's events
//! are authorized on (the user crosses the boundary once), events are a
//! typed variant, and a handler returns the metadata it stamps.

use warden_types::{
    Action, AssistantAction, Change, CronAction, Event, HttpError, On, Request, Resource,
    StoreAction, ThreadAction, User,
};
use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, HasSelf, Instance, Linker, ResourceAny,
};

use super::{Bound, RawVerdict, Registration, shared_conversions, typed};
use crate::plugin::sandbox::Sandbox;

pub(super) const VERSION: &str = "0.2.0";

wasmtime::component::bindgen!({
    path: ["../wit/common/v0.1.0", "../wit/auth/v0.2.0"],
    world: "warden:auth/auth-plugin@0.2.0",
});

use self::warden::auth::types as wit;
use self::warden::auth::{cache, crypto};
use self::warden::common::{config, log};

shared_conversions!();
crate::plugin::crypto::crypto_import!();
crate::plugin::sandbox::plugin_imports!();

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    AuthPlugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl wit::Host for Sandbox {}
impl self::warden::common::json::Host for Sandbox {}

/// Where the handlers are among a 0.2.0 plugin's exports.
pub(in crate::plugin) struct Handlers {
    register: ComponentExportIndex,
    authenticate: ComponentExportIndex,
    new_session: ComponentExportIndex,
    authorize: ComponentExportIndex,
}

type RegisterParams = ();
type RegisterResults = (wit::Registration,);
type AuthenticateParams<'a> = (&'a wit::Request,);
type AuthenticateResults = (Result<(wit::User, ResourceAny), wit::HttpError>,);
type NewSessionParams<'a> = (&'a wit::User,);
type NewSessionResults = (ResourceAny,);
type AuthorizeParams<'a> = (ResourceAny, wit::Event, &'a str);
type AuthorizeResults = (Result<wit::Verdict, wit::HttpError>,);

impl Handlers {
    pub(super) fn find(component: &Component) -> Option<Self> {
        let interface = format!("{}@{VERSION}", super::HANDLERS_INTERFACE);
        let interface = component.get_export_index(None, &interface)?;
        let export = |name| component.get_export_index(Some(&interface), name);
        Some(Self {
            register: export("register")?,
            authenticate: export("authenticate")?,
            new_session: export("[constructor]session")?,
            authorize: export("[method]session.authorize")?,
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
        instance.get_typed_func::<NewSessionParams<'_>, NewSessionResults>(
            &mut *store,
            &self.new_session,
        )?;
        instance.get_typed_func::<AuthorizeParams<'_>, AuthorizeResults>(
            &mut *store,
            &self.authorize,
        )?;
        let register = instance
            .get_typed_func::<RegisterParams, RegisterResults>(&mut *store, &self.register)?;
        let (registration,) = register.call(&mut *store, ())?;
        let headers = registration.headers.map(|names| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            names.sort();
            names.dedup();
            names
        });
        Ok(Registration {
            handlers: registration
                .handlers
                .into_iter()
                .map(key_from_wit)
                .collect(),
            headers,
        })
    }

    pub(super) fn authenticate(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        request: &Request,
        declared: Option<&[String]>,
        bound: &mut Bound,
    ) -> wasmtime::Result<Result<User, HttpError>> {
        let headers = match declared {
            None => request.headers.clone(),
            Some(names) => request
                .headers
                .iter()
                .filter(|(name, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
                .cloned()
                .collect(),
        };
        let request = request_to_wit(request, headers);
        // SAFETY: the types `register` checked.
        let func = unsafe {
            typed::<AuthenticateParams<'_>, AuthenticateResults>(
                store,
                instance,
                &self.authenticate,
            )?
        };
        match func.call(store, (&request,))?.0 {
            Ok((user, handle)) => {
                let user = user_from_wit(user)?;
                *bound = Bound::Session {
                    identity: user.identity.clone(),
                    handle,
                };
                Ok(Ok(user))
            }
            Err(error) => error_from_wit(error).map(Err),
        }
    }

    pub(super) fn authorize(
        &self,
        store: &mut Store<Sandbox>,
        instance: Instance,
        bound: &mut Bound,
        user: &User,
        event: Event,
        value: &str,
    ) -> wasmtime::Result<Result<RawVerdict, HttpError>> {
        let handle = match bound {
            Bound::Session { identity, handle } if *identity == user.identity => *handle,
            // No session yet (the user came from `auth.cache`, or is a
            // run's stored user): the guest makes one for the user.
            _ => {
                // SAFETY: the types `register` checked.
                let func = unsafe {
                    typed::<NewSessionParams<'_>, NewSessionResults>(
                        store,
                        instance,
                        &self.new_session,
                    )?
                };
                let (handle,) = func.call(&mut *store, (&user_to_wit(user),))?;
                *bound = Bound::Session {
                    identity: user.identity.clone(),
                    handle,
                };
                handle
            }
        };
        // SAFETY: the types `register` checked.
        let func = unsafe {
            typed::<AuthorizeParams<'_>, AuthorizeResults>(store, instance, &self.authorize)?
        };
        let verdict = match func.call(store, (handle, event_to_wit(event), value))?.0 {
            Ok(verdict) => verdict,
            Err(error) => return error_from_wit(error).map(Err),
        };
        let json = |what: &str, text: &str| {
            serde_json::from_str(text)
                .map_err(|e| super::bad_output(format!("{what} is not JSON: {e}")))
        };
        let change = match verdict.change {
            wit::Change::None => Change::None,
            wit::Change::Stamps(stamps) => Change::Stamps(
                stamps
                    .into_iter()
                    .map(|(key, stamp)| {
                        let stamp = json(&format!("the stamp of metadata key {key:?}"), &stamp)?;
                        Ok((key, stamp))
                    })
                    .collect::<wasmtime::Result<_>>()?,
            ),
            wit::Change::Value(value) => Change::Value(json("the modified value", &value)?),
        };
        Ok(Ok(RawVerdict {
            outcome: outcome_from_wit(verdict.decision)?,
            change,
        }))
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

fn resource_from_wit(resource: wit::ResourceKind) -> Resource {
    match resource {
        wit::ResourceKind::Threads => Resource::Threads,
        wit::ResourceKind::Assistants => Resource::Assistants,
        wit::ResourceKind::Crons => Resource::Crons,
        wit::ResourceKind::Store => Resource::Store,
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
        wit::HandlerKey::Event(event) => {
            let event = event_from_wit(event);
            On::Event(event.resource(), event.action())
        }
        wit::HandlerKey::AnyAction(r) => On::Resource(resource_from_wit(r)),
        wit::HandlerKey::AnyResource(a) => On::Action(action_from_wit(a)),
        wit::HandlerKey::Global => On::All,
    }
}
