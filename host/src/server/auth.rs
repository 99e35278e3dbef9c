//! Authentication before routing, and the per-request [`Caller`] through
//! which every route authorizes its events.
//!
//! One fresh plugin instance serves a request: `authenticate` runs in it,
//! then every authorization event of the request. Plugin calls run on the
//! blocking pool, never on an async worker: WASI's blocking stream
//! operations (a guest printing, or panicking) drive a future to completion
//! on the calling thread.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use crate::plugin::{AuthPlugin, Session};
use crate::storage::Filter;
use crate::types::{Action, AuthContext, Outcome, Resource, User};

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
        if plugin.handler_for(resource, action).is_none() {
            return allowed(value);
        }
        let session = match &mut self.session {
            Some(session) => session,
            slot => slot.insert(plugin.session().map_err(fault)?),
        };
        let ctx = AuthContext::new(self.user.clone(), resource, action);
        let verdict = session.authorize(&ctx, &value).map_err(fault)??;
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

/// What authentication produced: the user, and the instance it ran in.
struct Authenticated {
    user: User,
    session: Option<Session>,
}

/// The caller, handed from the middleware to the route (taken once).
#[derive(Clone)]
struct CallerSlot(Arc<Mutex<Option<Authenticated>>>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let taken = parts
            .extensions
            .get::<CallerSlot>()
            .and_then(|slot| slot.0.lock().ok()?.take());
        let plugin = parts
            .extensions
            .get::<PluginRef>()
            .and_then(|p| p.0.clone());
        let events = parts.extensions.get::<Events>().map(|e| e.0).unwrap_or(&[]);
        let Some(Authenticated { user, session }) = taken else {
            tracing::error!("a route asked for the caller outside the authenticated router");
            return Err(ApiError::internal("Internal Server Error"));
        };
        Ok(Caller {
            user,
            plugin,
            session,
            events,
        })
    }
}

/// The plugin that authenticated the request (authorization uses the same one).
#[derive(Clone)]
struct PluginRef(Option<Arc<AuthPlugin>>);

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

/// The middleware: authenticates the request in a fresh plugin instance
/// before any routing; refuses it with the plugin's error, or with a 500
/// when the plugin faults (fail closed).
pub(super) async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let plugin = state.auth.clone();
    let studio = !state.disable_studio_auth
        && request
            .headers()
            .get("x-auth-scheme")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"langsmith"));
    let caller = match &plugin {
        None => Authenticated {
            user: anonymous_user(),
            session: None,
        },
        Some(_) if studio => Authenticated {
            user: studio_user(),
            session: None,
        },
        Some(plugin) => {
            let plugin_request = plugin_request(&request);
            let plugin = Arc::clone(plugin);
            let call = tokio::task::spawn_blocking(move || {
                let mut session = plugin.session()?;
                let user = session.authenticate(&plugin_request)?;
                Ok::<_, crate::plugin::Fault>(user.map(|user| Authenticated {
                    user,
                    session: Some(session),
                }))
            });
            let Ok(result) = call.await else {
                return ApiError::internal("Authentication failed: auth plugin call aborted")
                    .into_response();
            };
            match result {
                Ok(Ok(caller)) => caller,
                Ok(Err(error)) => return ApiError::from(error).into_response(),
                Err(fault) => {
                    return ApiError::internal(format!(
                        "Authentication failed: auth plugin {}",
                        fault.kind()
                    ))
                    .into_response();
                }
            }
        }
    };
    request
        .extensions_mut()
        .insert(CallerSlot(Arc::new(Mutex::new(Some(caller)))));
    request.extensions_mut().insert(PluginRef(plugin));
    next.run(request).await
}

/// The request as `authenticate` sees it.
fn plugin_request(request: &Request) -> crate::types::Request {
    let uri = request.uri();
    crate::types::Request {
        method: request.method().as_str().to_owned(),
        path: uri.path().to_owned(),
        query: form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
    }
}
