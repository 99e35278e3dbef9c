//! What a request's auth decisions leave behind: a record in the decision
//! log (when `auth.decision_log` is on) and the plugin metrics, for every
//! authentication and every authorization event, whatever it decided.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use super::AppState;
use crate::plugin::{AuthPlugin, CacheLookup, Fault, Verdict};
use crate::telemetry::decisions::{self, CacheUse, Decision, Handler, Kind, Outcome};
use crate::telemetry::metrics::method_label;
use crate::telemetry::{DecisionLog, Metrics, RequestId};
use crate::types::{Event, HttpError, User};

/// The plugin's name in the metrics.
const AUTH: &str = "auth";

/// One request, as its decisions are recorded.
#[derive(Clone)]
pub(super) struct Audit {
    metrics: Arc<Metrics>,
    log: Option<Arc<DecisionLog>>,
    request_id: Arc<str>,
    method: &'static str,
    route: Arc<str>,
    /// The storage backend (`sqlite`, `postgres`), for the metrics; none
    /// when no route matched (a path is no metric label).
    backend: Option<&'static str>,
    /// Whether its allowed decisions are written.
    sampled: bool,
    /// The headers the log's configuration names, as sent.
    headers: Option<Arc<Map<String, Value>>>,
}

impl Audit {
    /// The request whose head is `parts`.
    pub(super) fn from_head(parts: &Parts, state: &AppState) -> Self {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(|| Arc::from(""), |id| id.0.clone());
        let matched = parts.extensions.get::<axum::extract::MatchedPath>();
        let route = Arc::from(matched.map_or(parts.uri.path(), |p| p.as_str()));
        let log = state.decisions.clone();
        let sampled = log.as_ref().is_some_and(|log| log.samples(&request_id));
        let headers = log.as_ref().and_then(|log| {
            log.headers(
                parts
                    .headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
            )
        });
        Self {
            metrics: state.metrics.clone(),
            log,
            request_id,
            method: method_label(&parts.method),
            route,
            backend: matched.map(|_| state.storage.backend()),
            sampled,
            headers,
        }
    }

    /// Work the server does on its own behalf (a cron firing): `what` as
    /// the route, no request id.
    pub(super) fn internal(state: &AppState, what: &'static str) -> Self {
        let log = state.decisions.clone();
        Self {
            metrics: state.metrics.clone(),
            sampled: log.as_ref().is_some_and(|log| log.samples(what)),
            log,
            request_id: Arc::from(""),
            method: "internal",
            route: Arc::from(what),
            backend: Some(state.storage.backend()),
            headers: None,
        }
    }

    /// The request's storage work took `took`.
    pub(super) fn storage(&self, took: Duration) {
        if let Some(backend) = self.backend {
            self.metrics.storage(backend, &self.route, took);
        }
    }

    /// A fresh instance of the auth plugin was made.
    pub(super) fn instantiated(&self) {
        self.metrics.instantiated(AUTH);
    }

    /// `authenticate` ran (or `auth.cache` answered) in `took`.
    pub(super) fn authenticated(
        &self,
        plugin: &AuthPlugin,
        cache: CacheLookup,
        result: Result<&Result<User, HttpError>, &Fault>,
        took: Duration,
    ) {
        let cache = match cache {
            CacheLookup::Off => None,
            CacheLookup::Hit => {
                self.metrics.auth_cache_hits.inc();
                Some(CacheUse::Hit)
            }
            CacheLookup::Miss => {
                self.metrics.auth_cache_misses.inc();
                Some(CacheUse::Miss)
            }
        };
        let (outcome, user, status, detail, fault) = match result {
            Ok(Ok(user)) => (Outcome::Allow, Some(user), None, None, None),
            Ok(Err(error)) => {
                let (status, detail) = answer(error);
                (Outcome::Deny, None, Some(status), Some(detail), None)
            }
            Err(fault) => (
                Outcome::Fault,
                None,
                Some(500),
                Some(format!(
                    "Authentication failed: auth plugin {}",
                    fault.kind()
                )),
                Some(fault.kind()),
            ),
        };
        if cache != Some(CacheUse::Hit) {
            self.call("authenticate", outcome, fault, took);
        }
        let Some(log) = &self.log else { return };
        if !(self.sampled || outcome.is_always_written()) {
            return;
        }
        let mut decision = self.decision(Kind::Authenticate, outcome, plugin);
        decision.identity = user.map(|u| u.identity.clone());
        decision.user = user.and_then(|u| log.user_fields(|| user_fields(u)));
        decision.cache = cache;
        decision.status = status;
        decision.detail = detail;
        decision.fault = fault;
        decision.latency_us = micros(took);
        log.record(decision, self.sampled);
    }

    /// Studio's bypass let the request in as `user`, without a plugin call.
    pub(super) fn studio(&self, user: &User) {
        let Some(log) = self.log.as_ref().filter(|_| self.sampled) else {
            return;
        };
        let mut decision = self.bare(Kind::Authenticate, Outcome::Allow);
        decision.identity = Some(user.identity.clone());
        decision.handler = Some(Handler::StudioBypass);
        log.record(decision, self.sampled);
    }

    /// `user`'s `event` on `value` was decided (`result`) in `took` by
    /// `handler` (none: no handler covers it, and the plugin was not called).
    pub(super) fn authorized(
        &self,
        plugin: &AuthPlugin,
        user: &User,
        event: Event,
        value: &Value,
        result: Result<&Result<Verdict, HttpError>, &Fault>,
        took: Duration,
    ) {
        let handler = plugin.handler_for(event.resource(), event.action());
        let (outcome, fault) = match result {
            Ok(Ok(verdict)) => match &verdict.outcome {
                crate::types::Outcome::Filter(f) if !f.clauses.is_empty() => {
                    (Outcome::Filter, None)
                }
                crate::types::Outcome::Deny => (Outcome::Deny, None),
                _ => (Outcome::Allow, None),
            },
            Ok(Err(_)) => (Outcome::Deny, None),
            Err(fault) => (Outcome::Fault, Some(fault.kind())),
        };
        if handler.is_some() {
            self.call(&event.to_string(), outcome, fault, took);
        }
        let Some(log) = &self.log else { return };
        if !(self.sampled || outcome.is_always_written()) {
            return;
        }
        let mut decision = self.decision(Kind::Authorize, outcome, plugin);
        decision.fault = fault;
        match result {
            Ok(Ok(verdict)) => {
                if let crate::types::Outcome::Filter(f) = &verdict.outcome
                    && outcome == Outcome::Filter
                {
                    let mut filter = f.to_json();
                    plugin.redact_json(&mut filter);
                    decision.filter = Some(filter);
                }
                if outcome == Outcome::Deny {
                    decision.status = Some(403);
                    decision.detail = Some("Forbidden".into());
                }
                if let Some(after) = &verdict.value {
                    decision.stamped = decisions::changed_keys(value, after);
                }
            }
            Ok(Err(error)) => {
                let (status, detail) = answer(error);
                decision.status = Some(status);
                decision.detail = Some(detail);
            }
            Err(fault) => {
                decision.status = Some(500);
                decision.detail = Some(format!(
                    "Authorization failed: auth plugin {}",
                    fault.kind()
                ));
            }
        }
        decision.identity = Some(user.identity.clone());
        decision.user = log.user_fields(|| user_fields(user));
        decision.event = Some(event);
        decision.handler = handler.map(Handler::On);
        decision.latency_us = micros(took);
        log.record(decision, self.sampled);
    }

    /// Counts one plugin call.
    fn call(&self, event: &str, outcome: Outcome, fault: Option<&'static str>, took: Duration) {
        self.metrics
            .plugin_call(AUTH, event, outcome.as_str(), took);
        if let Some(kind) = fault {
            self.metrics.plugin_fault(AUTH, kind);
        }
    }

    fn decision(&self, kind: Kind, outcome: Outcome, plugin: &AuthPlugin) -> Decision {
        let mut decision = self.bare(kind, outcome);
        if let Some(log) = &self.log {
            let info = plugin.info();
            decision.plugin = Some(log.version(&info.digest, &info.contract));
        }
        decision
    }

    fn bare(&self, kind: Kind, outcome: Outcome) -> Decision {
        Decision {
            time: chrono::Utc::now(),
            request_id: self.request_id.clone(),
            method: self.method,
            route: self.route.clone(),
            kind,
            identity: None,
            event: None,
            handler: None,
            outcome,
            filter: None,
            status: None,
            detail: None,
            stamped: Vec::new(),
            latency_us: 0,
            plugin: None,
            cache: None,
            fault: None,
            headers: self.headers.clone(),
            user: None,
        }
    }
}

/// The status and detail a plugin's error is answered with.
fn answer(error: &HttpError) -> (u16, String) {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let detail = error
        .detail
        .clone()
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    (status.as_u16(), detail)
}

pub use crate::telemetry::decisions::handler_name;

/// The fields of `user` the log may show: never its private fields.
fn user_fields(user: &User) -> Map<String, Value> {
    let mut fields: Map<String, Value> = user
        .extra
        .iter()
        .filter(|(k, _)| !user.private_fields.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.insert("identity".into(), Value::from(user.identity.clone()));
    if let Some(name) = &user.display_name {
        fields.insert("display_name".into(), Value::from(name.clone()));
    }
    fields.insert(
        "is_authenticated".into(),
        Value::from(user.is_authenticated),
    );
    fields.insert("permissions".into(), Value::from(user.permissions.clone()));
    fields
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}
