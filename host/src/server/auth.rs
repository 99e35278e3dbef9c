//! Authentication, and the per-request [`Caller`] through which every route
//! authorizes its events.
//!
//! Every protected route, the 404 fallback and the 405 answers take a
//! [`Pending`] request and authenticate it **first**, before looking at the
//! body, the ids or the data: so, as in LangGraph, an unknown path or a
//! malformed body with bad credentials is a 401. One fresh plugin instance
//! serves a request: `authenticate` runs in it, then every authorization
//! event, all on one thread of the [`WorkPool`] (one hand-off per request,
//! as without auth). A request with a body (or a stream) is authenticated
//! earlier, from its head, by [`head_first`]: its body is
//! never read for a client that fails, and the route's [`Pending`] takes
//! the caller (and the instance) it found. Plugin calls never run on an
//! async worker: WASI's blocking stream operations (a guest printing, or
//! panicking) drive a future to completion on the calling thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::Instrument as _;

use super::AppState;
use super::audit::Audit;
use super::error::ApiError;
use super::limits::{BodyBudget, BodyClass, is_stream};
use super::work_pool::WorkPool;
use crate::plugin::{AuthPlugin, CacheLookup, Session, Verdict};
use crate::storage::{Filter, Storage, wait};
use crate::types::{Action, Outcome, Resource, User};

/// An authorization event: `(resource, action)`.
pub type Event = (Resource, Action);

/// The events a route may fire, from the route table.
#[derive(Debug, Clone, Copy)]
pub struct Events(pub &'static [Event]);

/// The authenticated caller of one request, with its plugin instance.
pub struct Caller {
    /// Who is calling.
    pub user: User,
    plugin: Option<Arc<AuthPlugin>>,
    session: Option<Session>,
    events: &'static [Event],
    audit: Audit,
}

/// What an authorization event allowed: the scope to apply in storage and
/// the value as the handler left it (metadata stamped).
#[derive(Debug)]
pub struct Authorized {
    /// The plugin's filter; `None` when unfiltered.
    pub filter: Option<Filter>,
    /// The event's value after the handler.
    pub value: Value,
}

impl Caller {
    /// Runs the handler that covers `(resource, action)` with `value`: the
    /// filter and the possibly modified value, or the error to answer with.
    /// Without an auth plugin, or without a covering handler, everything is
    /// allowed unfiltered and no plugin call is made.
    pub fn authorize(
        &mut self,
        resource: Resource,
        action: Action,
        value: Value,
    ) -> Result<Authorized, ApiError> {
        if !self.events.contains(&(resource, action)) {
            // A route fired an event its table entry does not declare.
            tracing::error!(%resource, %action, "undeclared authorization event");
            return Err(ApiError::internal("Internal Server Error"));
        }
        let allowed = |value| {
            Ok(Authorized {
                filter: None,
                value,
            })
        };
        let Some(plugin) = &self.plugin else {
            return allowed(value);
        };
        let Some(event) = crate::types::Event::new(resource, action) else {
            tracing::error!(%resource, %action, "not an authorization event");
            return Err(ApiError::internal("Internal Server Error"));
        };
        if plugin.handler_for(resource, action).is_none() {
            let unhandled = Ok(Verdict {
                handler: None,
                outcome: Outcome::Allow,
                value: None,
            });
            let took = Duration::ZERO;
            self.audit
                .authorized(plugin, &self.user, event, &value, Ok(&unhandled), took);
            return allowed(value);
        }
        let _span = tracing::debug_span!("authorize", %resource, %action).entered();
        let started = Instant::now();
        if self.session.is_none() {
            match plugin.session() {
                Ok(session) => {
                    self.audit.instantiated();
                    self.session = Some(session);
                }
                Err(failed) => {
                    let took = started.elapsed();
                    self.audit
                        .authorized(plugin, &self.user, event, &value, Err(&failed), took);
                    return Err(fault(failed));
                }
            }
        }
        let Some(session) = self.session.as_mut() else {
            return Err(ApiError::internal("Internal Server Error"));
        };
        let result = session.authorize(&self.user, event, &value);
        let took = started.elapsed();
        self.audit
            .authorized(plugin, &self.user, event, &value, result.as_ref(), took);
        let verdict = result.map_err(fault)??;
        let value = verdict.value.unwrap_or(value);
        match verdict.outcome {
            Outcome::Allow => allowed(value),
            Outcome::Deny => Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden")),
            Outcome::Filter(f) if f.clauses.is_empty() => allowed(value),
            Outcome::Filter(f) => Ok(Authorized {
                filter: Some(f),
                value,
            }),
        }
    }

    /// A caller the server itself acts as, e.g. a cron's creator when the
    /// cron fires, or a run's user when its nodes reach the store: not
    /// authenticated again; its events go through the live auth plugin as
    /// `user`, and the decision log names `what` as the route.
    pub fn acting_as(
        state: &super::AppState,
        user: User,
        events: &'static [Event],
        what: &'static str,
    ) -> Self {
        Self {
            user,
            plugin: state.auth.as_ref().map(|slot| slot.current()),
            session: None,
            events,
            audit: Audit::internal(state, what),
        }
    }

    /// [`Caller::authorize`], keeping only the filter.
    pub fn scope(
        &mut self,
        resource: Resource,
        action: Action,
        value: Value,
    ) -> Result<Option<Filter>, ApiError> {
        Ok(self.authorize(resource, action, value)?.filter)
    }
}

/// The runtime has logged the plugin, digest, event and fault; the request
/// fails closed.
fn fault(fault: crate::plugin::Fault) -> ApiError {
    ApiError::internal(format!(
        "Authorization failed: auth plugin {}",
        fault.kind()
    ))
}

/// Who the request claims to be, before authentication.
enum Claim {
    /// Known without a plugin call (no plugin: anonymous).
    Known(User),
    /// Studio's bypass (`disable_studio_auth: false`): the Studio user.
    Studio(User),
    /// To be decided by the plugin's `authenticate`.
    Ask(Arc<AuthPlugin>, crate::types::Request),
    /// Decided from the head already, with the session `authenticate` ran in.
    Settled(User, Option<Session>),
}

/// A request authenticated from its head before its body was read
/// ([`super::limits::head_first`]): handed to the route's [`Pending`]
/// through the request's extensions.
#[derive(Clone)]
pub struct Authenticated {
    identity: String,
    settled: Arc<Mutex<Option<Settled>>>,
}

/// A caller found from a request's head, until its route takes it.
struct Settled {
    user: User,
    session: Option<Session>,
    plugin: Option<Arc<AuthPlugin>>,
}

impl Authenticated {
    /// The caller's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }
}

/// A request not yet authenticated: what `authenticate` needs, and the
/// events the route declares. [`Pending::authenticate`] turns it into a
/// [`Caller`].
pub struct Pending {
    claim: Claim,
    plugin: Option<Arc<AuthPlugin>>,
    events: &'static [Event],
    work: Arc<WorkPool>,
    audit: Audit,
}

impl Pending {
    /// Runs `authenticate` in a fresh plugin instance (on the calling
    /// thread), or takes its result from `auth.cache`: the caller, or the
    /// plugin's error, or a 500 when the plugin faults (fail closed; the
    /// runtime has logged which plugin and why).
    pub fn authenticate(self) -> Result<Caller, ApiError> {
        let (user, session) = match self.claim {
            Claim::Known(user) => (user, None),
            Claim::Studio(user) => {
                self.audit.studio(&user);
                (user, None)
            }
            Claim::Settled(user, session) => (user, session),
            Claim::Ask(plugin, request) => {
                let _span = tracing::debug_span!("authenticate").entered();
                let started = Instant::now();
                let authenticated = plugin.authenticate(&request);
                let took = started.elapsed();
                match &authenticated {
                    Ok(found) => {
                        if found.session.is_some() {
                            self.audit.instantiated();
                        }
                        self.audit
                            .authenticated(&plugin, found.cache, Ok(&found.result), took);
                    }
                    Err(fault) => {
                        let cache = CacheLookup::Off;
                        self.audit.authenticated(&plugin, cache, Err(fault), took);
                    }
                }
                let authenticated = authenticated.map_err(|fault| {
                    ApiError::internal(format!(
                        "Authentication failed: auth plugin {}",
                        fault.kind()
                    ))
                })?;
                (authenticated.result?, authenticated.session)
            }
        };
        Ok(Caller {
            user,
            plugin: self.plugin,
            session,
            events: self.events,
            audit: self.audit,
        })
    }
}

impl Pending {
    /// [`Pending::authenticate`], for a request whose route is not known
    /// yet: the caller, to hand to the route through the request's
    /// extensions.
    pub fn authenticate_head(self) -> Result<Authenticated, ApiError> {
        let plugin = self.plugin.clone();
        let caller = self.authenticate()?;
        Ok(Authenticated {
            identity: caller.user.identity.clone(),
            settled: Arc::new(Mutex::new(Some(Settled {
                user: caller.user,
                session: caller.session,
                plugin,
            }))),
        })
    }

    /// Whether authenticating calls the plugin (else it is known at once,
    /// and needs no work-pool thread).
    pub fn asks_plugin(&self) -> bool {
        matches!(self.claim, Claim::Ask(..))
    }

    /// The request as its head tells, before the route is known.
    pub fn from_head(parts: &Parts, state: &Arc<AppState>) -> Self {
        let events = parts.extensions.get::<Events>().map(|e| e.0).unwrap_or(&[]);
        let settled = parts
            .extensions
            .get::<Authenticated>()
            .and_then(|a| a.settled.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(settled) = settled {
            return Pending {
                claim: Claim::Settled(settled.user, settled.session),
                plugin: settled.plugin,
                events,
                work: state.work.clone(),
                audit: Audit::from_head(parts, state),
            };
        }
        let studio = !state.disable_studio_auth
            && parts
                .headers
                .get("x-auth-scheme")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"langsmith"));
        // The live version, taken once: the request ends on it even if a
        // new one is swapped in meanwhile.
        let plugin = state.auth.as_ref().map(|slot| slot.current());
        let claim = match &plugin {
            None => Claim::Known(anonymous_user()),
            Some(_) if studio => Claim::Studio(studio_user()),
            Some(plugin) => Claim::Ask(Arc::clone(plugin), plugin_request(parts)),
        };
        Pending {
            claim,
            plugin,
            events,
            work: state.work.clone(),
            audit: Audit::from_head(parts, state),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Pending {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Pending::from_head(parts, state))
    }
}

/// Authenticates `pending` and runs `body` as the caller, on the
/// [`WorkPool`]: the route's whole synchronous work (plugin calls, database).
pub async fn as_caller<F>(pending: Pending, body: F) -> Response
where
    F: FnOnce(&mut Caller) -> Result<Response, ApiError> + Send + 'static,
{
    let pool = pending.work.clone();
    let audit = pending.audit.clone();
    let work = move || {
        crate::storage::take_waited();
        let answer = body(&mut pending.authenticate()?);
        let waited = crate::storage::take_waited();
        if !waited.is_zero() {
            audit.storage(waited);
        }
        answer
    };
    match pool.run(work).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(_) => ApiError::internal("Internal Server Error").into_response(),
    }
}

/// Authenticates `pending` and runs `authorize` as the caller on the
/// [`WorkPool`] (the plugin's calls), then the route's storage work `then`
/// with what it returned: on the work pool too when the backend works
/// inline (SQLite), else awaited on the runtime, so that no work-pool
/// thread waits for the database's answer (PostgreSQL).
pub async fn as_caller_then<T, A, S, Fut>(
    pending: Pending,
    storage: &dyn Storage,
    authorize: A,
    then: S,
) -> Response
where
    T: Send + 'static,
    A: FnOnce(&mut Caller) -> Result<T, ApiError> + Send + 'static,
    S: FnOnce(T) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send,
{
    if storage.works_inline() {
        return as_caller(pending, move |caller| wait(then(authorize(caller)?))).await;
    }
    let audit = pending.audit.clone();
    let backend = storage.backend();
    let pool = pending.work.clone();
    let authorized = match pool
        .run(move || authorize(&mut pending.authenticate()?))
        .await
    {
        Ok(authorized) => authorized,
        Err(_) => return ApiError::internal("Internal Server Error").into_response(),
    };
    match authorized {
        Ok(t) => {
            let started = Instant::now();
            let span = tracing::debug_span!("storage", backend);
            let answer = then(t).instrument(span).await;
            audit.storage(started.elapsed());
            answer.unwrap_or_else(IntoResponse::into_response)
        }
        Err(error) => error.into_response(),
    }
}

/// The user LangGraph's dev server gives Studio requests (`x-auth-scheme:
/// langsmith`) when `disable_studio_auth` is false. No credential is checked:
/// Warden cannot verify LangSmith credentials.
fn studio_user() -> User {
    let mut user = User::new("langgraph-studio-user").unauthenticated();
    user.extra.insert("kind".into(), Value::from("StudioUser"));
    user
}

/// The user of a deployment without an auth plugin (LangGraph's `noop`).
fn anonymous_user() -> User {
    User::new("").unauthenticated()
}

/// The request as `authenticate` sees it.
fn plugin_request(parts: &Parts) -> crate::types::Request {
    crate::types::Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
    }
}

/// Authenticates a request that carries a body, or opens a stream, from
/// its head alone, before its route runs: a 401 never reads the body. It
/// then refuses a body whose announced length is past its route's limit
/// (413), counts the caller's open streams (429 past the limit), and hands
/// the authenticated caller to the route's [`Pending`]. Other requests
/// (plain `GET`s) skip it: their route authenticates in its one hop to the
/// work pool.
pub(super) async fn head_first(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let has_body = !request.body().is_end_stream();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let stream = matched.is_some_and(|p| is_stream(request.method(), p));
    if !(has_body || stream) {
        return next.run(request).await;
    }
    let path = matched.map(str::to_owned);
    let method = request.method().clone();
    let (mut parts, body) = request.into_parts();
    let pending = Pending::from_head(&parts, &state);
    let authenticated = if pending.asks_plugin() {
        match state.work.run(move || pending.authenticate_head()).await {
            Ok(authenticated) => authenticated,
            Err(_) => Err(ApiError::internal("Internal Server Error")),
        }
    } else {
        pending.authenticate_head()
    };
    let authenticated = match authenticated {
        Ok(authenticated) => authenticated,
        Err(error) => return error.into_response(),
    };
    if has_body {
        let class = path
            .as_deref()
            .map_or(BodyClass::Default, |p| BodyClass::of(&method, p));
        let budget = BodyBudget {
            limit: state.limits.body_bytes[class as usize],
            class,
            timeout: state.limits.body_timeout,
        };
        let announced = body.size_hint().lower();
        if announced > budget.limit as u64 {
            return budget.too_large().into_response();
        }
        parts.extensions.insert(budget);
    }
    let slot = if stream {
        let max = state.limits.max_streams_per_user;
        match state.streams.open(authenticated.identity(), max) {
            Some(slot) => Some(slot),
            None => {
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many open streams: a user holds at most {max} at once \
                         (`limits.max_streams_per_user`); close one first"
                    ),
                )
                .into_response();
            }
        }
    } else {
        None
    };
    parts.extensions.insert(authenticated);
    let response = next.run(Request::from_parts(parts, body)).await;
    match slot {
        // An error is no stream: its place is free at once.
        Some(slot) if response.status().is_success() => {
            response.map(|body| state.streams.hold(body, slot))
        }
        _ => response,
    }
}
