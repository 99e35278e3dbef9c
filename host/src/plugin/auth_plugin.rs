//! One loaded auth plugin, and the fresh instances (sessions) it serves
//! requests with.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use warden_types::{Action, Change, Event, HttpError, On, Outcome, Request, Resource, User};
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::auth_cache::AuthCache;
use super::auth_contract::{self, Bound, Handlers, Registration};
use super::build::locate_component;
use super::busy::BUSY_BUDGET;
use super::component::{PluginInfo, check_header, classify_fault, digest};
use super::engine::{EPOCH_TICK, Runtime};
use super::error::{Fault, LoadError};
use super::outbound::{Bodies, EgressPolicy};
use super::plugin_cache::PluginCache;
use super::sandbox::{Capabilities, Sandbox};
use super::settings::{Limits, PluginSettings};
use super::waits;

/// The least deadline of loading a plugin (instantiating it cold and
/// calling `registered`), whatever its calls' deadline.
const LOAD_TIMEOUT: Duration = Duration::from_secs(1);

/// A loaded, validated auth plugin. Cheap to share; every request gets its
/// own [`Session`]. What outlives requests lives here, and so goes with it
/// when the plugin is replaced: the `auth.cache` results and the plugin's
/// own cache start empty for a new plugin.
pub struct AuthPlugin {
    info: PluginInfo,
    engine: Engine,
    pre: InstancePre<Sandbox>,
    handlers: Handlers,
    registered: Vec<On>,
    /// The headers `authenticate` reads, when the plugin declared them.
    headers: Option<Vec<String>>,
    limits: Limits,
    settings: PluginSettings,
    /// The deadline of an instance's calls (longer while loading).
    call_timeout: Duration,
    /// Epoch ticks to a call's first look at the clock: at its deadline or
    /// busy budget, whichever comes first.
    first_check: u64,
    grants: Arc<Capabilities>,
    auth_cache: Option<AuthCache>,
}

/// Whether `auth.cache` answered an authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// No cache, or the request carries none of its key headers.
    Off,
    /// The cache held the user: `authenticate` was not called.
    Hit,
    /// `authenticate` ran (and its user, if any, is cached now).
    Miss,
}

/// What [`AuthPlugin::authenticate`] found.
pub struct Authenticated {
    /// The user, or the error the plugin answered with.
    pub result: Result<User, HttpError>,
    /// The instance `authenticate` ran in, for the request's authorization
    /// events; `None` when the user came from `auth.cache` (no instance was
    /// created: one is made only if a handler must run).
    pub session: Option<Session>,
    /// Whether `auth.cache` answered.
    pub cache: CacheLookup,
}

/// The result of an authorization call.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The handler that ran, or `None` when no handler covers the event (and
    /// the plugin was not called).
    pub handler: Option<On>,
    /// What it decided.
    pub outcome: Outcome,
    /// The event's value as the handler left it, when it changed it.
    pub value: Option<Value>,
}

impl AuthPlugin {
    /// Loads the plugin at `path` (a component `.wasm` or a plugin crate
    /// directory, which is built first) with `settings`: [`Limits`] alone,
    /// or the whole [`PluginSettings`] of an `auth` section. Secrets are
    /// read from their sources now; a missing one fails the load.
    pub fn load(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        settings: impl Into<PluginSettings>,
    ) -> Result<Arc<Self>, LoadError> {
        let settings = settings.into();
        let wasm = locate_component(path)?;
        let bytes = std::fs::read(&wasm).map_err(|source| LoadError::Read {
            path: wasm.clone(),
            source,
        })?;
        Self::from_bytes(runtime, name, &wasm, &bytes, settings)
    }

    /// Loads a plugin from the bytes of a component read from `path`.
    pub fn from_bytes(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        bytes: &[u8],
        settings: impl Into<PluginSettings>,
    ) -> Result<Arc<Self>, LoadError> {
        let settings = settings.into();
        let kept = settings.clone();
        let secrets = settings.resolve_secrets()?;
        let limits = settings.limits;
        check_header(path, bytes)?;
        let engine = runtime.engine();
        let digest = digest(bytes);
        let component = runtime.compile(&digest, path, bytes)?;
        let contract = contract_version(engine, &component, path)?;
        let handlers =
            Handlers::find(&component, &contract).ok_or_else(|| LoadError::NotAPlugin {
                path: path.to_owned(),
            })?;

        let link_error = |e: wasmtime::Error| LoadError::Link {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        waits::add_to_linker(&mut linker).map_err(link_error)?;
        // Linked for every plugin; only `allowed_hosts` are reachable.
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(link_error)?;
        handlers.add_to_linker(&mut linker).map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;

        let label: Arc<str> = Arc::from(name);
        let grants = Arc::new(Capabilities {
            plugin: label.clone(),
            config: settings.config,
            secrets,
            cache: PluginCache::default(),
            egress: Arc::new(EgressPolicy {
                plugin: label,
                setting: "auth.allowed_hosts".into(),
                allowed_hosts: settings.allowed_hosts,
                limits: settings.http,
                bodies: Bodies::Whole,
            }),
        });
        let mut plugin = Self {
            info: PluginInfo {
                name: name.to_owned(),
                path: path.to_owned(),
                digest,
                contract,
            },
            engine: engine.clone(),
            pre,
            handlers,
            registered: Vec::new(),
            headers: None,
            limits,
            settings: kept,
            call_timeout: limits.timeout,
            first_check: runtime.deadline_ticks(limits.timeout.min(BUSY_BUDGET)),
            grants,
            auth_cache: settings.auth_cache.map(AuthCache::new),
        };
        // Loading (a cold first instance and `registered`) is the operator's
        // work, not a request's: it gets at least LOAD_TIMEOUT.
        plugin.call_timeout = limits.timeout.max(LOAD_TIMEOUT);
        let registration = plugin.instantiate().and_then(|(mut store, instance)| {
            plugin
                .handlers
                .register(&mut store, instance)
                .map_err(|e| plugin.fault(&store, e))
        });
        plugin.call_timeout = limits.timeout;
        let Registration { handlers, headers } =
            registration.map_err(|fault| LoadError::Registration {
                path: path.to_owned(),
                fault,
            })?;
        plugin.registered = handlers;
        plugin.headers = headers;
        plugin.warn_uncovered();
        Ok(Arc::new(plugin))
    }

    /// Name, path, digest and contract version.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Everything it was loaded with (limits, config, secret sources,
    /// allowed hosts, `auth.cache`).
    pub fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    /// The deadline and memory cap of its calls.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Another version of this plugin, from `bytes` (read from `path`):
    /// same name and settings (secrets read again), validated like a first
    /// load, with empty caches.
    pub fn with_component(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Self>, LoadError> {
        Self::from_bytes(runtime, &self.info.name, path, bytes, self.settings.clone())
    }

    /// The keys the plugin registered handlers under.
    pub fn registered(&self) -> &[On] {
        &self.registered
    }

    /// The headers `authenticate` reads, when the plugin declared them
    /// (`warden:auth@0.2.0`): only those are sent to it. `None`: all.
    pub fn declared_headers(&self) -> Option<&[String]> {
        self.headers.as_deref()
    }

    /// Whether the plugin registers no authorization handler at all: every
    /// event is allowed unfiltered, so any authenticated user may read,
    /// change and delete every resource.
    pub fn authorizes_nothing(&self) -> bool {
        self.registered.is_empty()
    }

    /// The handler that covers `(resource, action)`, most specific first;
    /// `None` means the event is allowed without calling the plugin.
    pub fn handler_for(&self, resource: Resource, action: Action) -> Option<On> {
        On::resolve(self.registered.iter().copied(), resource, action)
    }

    /// Authenticates `request`: from `auth.cache` when it holds a fresh
    /// result for the request's cache-key headers (no instance is created),
    /// else by `authenticate` in a fresh [`Session`], whose user is cached.
    /// Errors and faults are never cached.
    pub fn authenticate(self: &Arc<Self>, request: &Request) -> Result<Authenticated, Fault> {
        let key = self
            .auth_cache
            .as_ref()
            .and_then(|c| Some((c, c.key(request)?)));
        if let Some((cache, key)) = &key
            && let Some(user) = cache.get(key)
        {
            return Ok(Authenticated {
                result: Ok(user),
                session: None,
                cache: CacheLookup::Hit,
            });
        }
        let mut session = self.session()?;
        let result = session.authenticate(request)?;
        let lookup = match &key {
            Some(_) => CacheLookup::Miss,
            None => CacheLookup::Off,
        };
        if let (Some((cache, key)), Ok(user)) = (key, &result) {
            cache.insert(key, user.clone());
        }
        Ok(Authenticated {
            result,
            session: Some(session),
            cache: lookup,
        })
    }

    /// Blanks the plugin's secrets out of `value`, for what leaves the
    /// server (the decision log).
    pub fn redact_json(&self, value: &mut Value) {
        self.grants.secrets.redact_json(value);
    }

    /// A fresh instance of the plugin for one request.
    pub fn session(self: &Arc<Self>) -> Result<Session, Fault> {
        let (store, instance) = self.instantiate().inspect_err(|fault| {
            self.log_fault(&"instantiate", fault);
        })?;
        Ok(Session {
            plugin: Arc::clone(self),
            store,
            instance,
            bound: Bound::default(),
            failed: None,
        })
    }

    /// A fresh instance. The handlers' types were checked once at load
    /// ([`Handlers::register`]): an instance of the same component needs
    /// no check of its own (bindgen's instantiation checks every export
    /// again, a microsecond per request), so the raw instance is kept and
    /// its handlers are called through [`Handlers`].
    fn instantiate(&self) -> Result<(Store<Sandbox>, Instance), Fault> {
        let mut store = self.store();
        match self.pre.instantiate(&mut store) {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(self.instantiate_fault(&store, e)),
        }
    }

    /// A store for one instance, its deadline set for instantiation.
    fn store(&self) -> Store<Sandbox> {
        let mut sandbox = Sandbox::new(self.grants.clone(), self.limits.memory_bytes);
        sandbox.start_call(self.call_timeout);
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.memory);
        store.set_epoch_deadline(self.first_check);
        // The epoch may jump (a ticker catching up): when the ticks run
        // out, the call's deadline by the clock decides; a call computing
        // past its busy budget is throttled.
        store.epoch_deadline_callback(|mut store| {
            let Some(left) = store.data_mut().next_check() else {
                return Ok(UpdateDeadline::Interrupt);
            };
            let ticks = left.as_micros().div_ceil(EPOCH_TICK.as_micros());
            Ok(UpdateDeadline::Continue(
                u64::try_from(ticks).unwrap_or(u64::MAX),
            ))
        });
        store
    }

    /// Classifies a failed instantiation (a trap in a start function is an
    /// instantiation fault).
    fn instantiate_fault(&self, store: &Store<Sandbox>, error: wasmtime::Error) -> Fault {
        match self.fault(store, error) {
            Fault::Trap(reason) => Fault::Instantiate(reason),
            fault => fault,
        }
    }

    /// Classifies a failed call.
    fn fault(&self, store: &Store<Sandbox>, error: wasmtime::Error) -> Fault {
        classify_fault(
            &error,
            store.data().memory.exceeded,
            self.limits.timeout,
            self.limits.memory_bytes,
        )
    }

    fn log_fault(&self, event: &dyn std::fmt::Display, fault: &Fault) {
        tracing::error!(
            plugin = %self.info.name,
            digest = %&self.info.digest[..12],
            %event,
            %fault,
            "auth plugin fault: request refused"
        );
    }

    /// LangGraph warns at start-up when handlers exist but some events have
    /// none (and are therefore allowed unfiltered). A plugin with no handler
    /// at all is warned about too, though LangGraph says nothing: it
    /// authenticates, and then authorizes nothing.
    fn warn_uncovered(&self) {
        if self.authorizes_nothing() {
            tracing::warn!(
                plugin = %self.info.name,
                digest = %&self.info.digest[..12],
                "the plugin registers no authorization handlers: every event is allowed \
                 unfiltered, so any authenticated user may read, change and delete every \
                 thread, run, assistant, cron and store item"
            );
            return;
        }
        if self.registered.contains(&On::All) {
            return;
        }
        let uncovered: Vec<String> = Resource::ALL
            .iter()
            .flat_map(|r| r.actions().iter().map(move |a| (*r, *a)))
            .filter(|(r, a)| self.handler_for(*r, *a).is_none())
            .map(|(r, a)| format!("{r}.{a}"))
            .collect();
        if !uncovered.is_empty() {
            tracing::warn!(
                plugin = %self.info.name,
                "no handler covers {}: these events are allowed unfiltered",
                uncovered.join(", ")
            );
        }
    }
}

/// An event value may use at most this share (1/n) of the plugin's memory cap.
const MAX_VALUE_SHARE: usize = 4;

/// One fresh plugin instance, for one request: authenticate, then any number
/// of authorization events. A fault ends it: later calls report the same fault.
pub struct Session {
    plugin: Arc<AuthPlugin>,
    store: Store<Sandbox>,
    instance: Instance,
    /// The user's session in the instance (`warden:auth@0.2.0`).
    bound: Bound,
    failed: Option<Fault>,
}

impl Session {
    /// The plugin this session is an instance of.
    pub fn plugin(&self) -> &Arc<AuthPlugin> {
        &self.plugin
    }

    /// Runs `authenticate`: the user, or the HTTP error the plugin answered with.
    pub fn authenticate(&mut self, request: &Request) -> Result<Result<User, HttpError>, Fault> {
        let plugin = Arc::clone(&self.plugin);
        let bound = &mut self.bound;
        let result = call(
            &plugin,
            &mut self.store,
            self.instance,
            &self.failed,
            &"authenticate",
            |store, instance| {
                plugin.handlers.authenticate(
                    store,
                    instance,
                    request,
                    plugin.headers.as_deref(),
                    bound,
                )
            },
        );
        result
            .and_then(|result| match result {
                Ok(user) => self.scrub_user(user).map(Ok),
                Err(error) => Ok(Err(self.scrub_error(error))),
            })
            .inspect_err(|fault| self.fail(&"authenticate", fault))
    }

    /// Authorizes `user`'s `event` on `value`: runs the handler that covers
    /// it, or allows without a call when none does.
    pub fn authorize(
        &mut self,
        user: &User,
        event: impl Into<Event>,
        value: &Value,
    ) -> Result<Result<Verdict, HttpError>, Fault> {
        let event = event.into();
        let Some(handler) = self.plugin.handler_for(event.resource(), event.action()) else {
            return Ok(Ok(Verdict {
                handler: None,
                outcome: Outcome::Allow,
                value: None,
            }));
        };
        let text = value.to_string();
        // The guest holds the value several times over (the string, the
        // parsed JSON, the modified copy): a value near the memory cap can
        // only fault. Refuse it as too large instead.
        let cap = self.plugin.limits.memory_bytes;
        if text.len() > cap / MAX_VALUE_SHARE {
            return Ok(Err(HttpError::new(
                413,
                format!(
                    "Request too large for the auth plugin ({} MiB memory cap)",
                    cap >> 20
                ),
            )));
        }
        let plugin = Arc::clone(&self.plugin);
        let bound = &mut self.bound;
        let result = call(
            &plugin,
            &mut self.store,
            self.instance,
            &self.failed,
            &event,
            |store, instance| {
                plugin
                    .handlers
                    .authorize(store, instance, bound, user, handler, event, &text)
            },
        );
        let secrets = &self.plugin.grants.secrets;
        result
            .map(|result| match result {
                Ok(verdict) => {
                    // Stamped metadata and store values are kept and
                    // returned to clients: no secret goes with them.
                    let value = match verdict.change {
                        Change::None => None,
                        mut change => {
                            match &mut change {
                                Change::Value(changed) => secrets.redact_json(changed),
                                Change::Stamps(stamps) => stamps
                                    .iter_mut()
                                    .for_each(|(_, stamp)| secrets.redact_json(stamp)),
                                Change::None => {}
                            }
                            let mut changed = value.clone();
                            change.apply(&mut changed);
                            Some(changed)
                        }
                    };
                    Ok(Verdict {
                        handler: Some(handler),
                        outcome: verdict.outcome,
                        value,
                    })
                }
                Err(error) => Err(self.scrub_error(error)),
            })
            .inspect_err(|fault| self.fail(&event, fault))
    }

    /// The user with the plugin's secret values blanked out: a secret never
    /// reaches responses, the database nor run kwargs through the user. Its
    /// fields are searched as parsed JSON, so however the plugin escaped a
    /// secret in them, it is found. An identity holding a secret is a
    /// fault: blanked, it could name another user.
    fn scrub_user(&self, mut user: User) -> Result<User, Fault> {
        let secrets = &self.plugin.grants.secrets;
        if let std::borrow::Cow::Owned(_) = secrets.redact_secrets(&user.identity) {
            return Err(Fault::BadOutput(
                "the user's identity holds one of the plugin's secrets".into(),
            ));
        }
        let scrub = |text: &mut String| {
            if let std::borrow::Cow::Owned(clean) = secrets.redact_secrets(text) {
                *text = clean;
            }
        };
        user.display_name.as_mut().map(scrub);
        user.permissions.iter_mut().for_each(scrub);
        user.private_fields.iter_mut().for_each(scrub);
        let mut extra = Value::Object(std::mem::take(&mut user.extra));
        secrets.redact_json(&mut extra);
        if let Value::Object(extra) = extra {
            user.extra = extra;
        }
        Ok(user)
    }

    /// The error with the plugin's secret values (and URL credentials)
    /// blanked out.
    fn scrub_error(&self, mut error: HttpError) -> HttpError {
        let secrets = &self.plugin.grants.secrets;
        if let Some(detail) = &error.detail {
            error.detail = Some(secrets.redact(detail).into_owned());
        }
        for (name, value) in &mut error.headers {
            *name = secrets.redact_secrets(name).into_owned();
            *value = secrets.redact(value).into_owned();
        }
        error
    }

    fn fail(&mut self, event: &dyn std::fmt::Display, fault: &Fault) {
        if self.failed.is_none() {
            self.plugin.log_fault(event, fault);
            self.failed = Some(fault.clone());
        }
    }
}

/// Runs `f` on the session's instance, for one call with its own deadline:
/// refused when an earlier call faulted (the instance is unusable).
fn call<R>(
    plugin: &AuthPlugin,
    store: &mut Store<Sandbox>,
    instance: Instance,
    failed: &Option<Fault>,
    event: &dyn std::fmt::Display,
    f: impl FnOnce(&mut Store<Sandbox>, Instance) -> wasmtime::Result<R>,
) -> Result<R, Fault> {
    if let Some(fault) = failed {
        return Err(Fault::Instantiate(format!(
            "the instance is unusable after an earlier fault ({}); {event} not called",
            fault.kind()
        )));
    }
    store.set_epoch_deadline(plugin.first_check);
    store.data_mut().start_call(plugin.limits.timeout);
    f(store, instance).map_err(|e| plugin.fault(store, e))
}

/// The `warden:auth` version the component exports its handlers for.
fn contract_version(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<String, LoadError> {
    match auth_contract::exported(engine, component) {
        Ok(version) => Ok(version),
        Err(Some(found)) => Err(LoadError::Contract {
            path: path.to_owned(),
            found,
            supported: auth_contract::SUPPORTED
                .iter()
                .map(|v| format!("warden:auth@{v}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Err(None) => Err(LoadError::NotAPlugin {
            path: path.to_owned(),
        }),
    }
}
