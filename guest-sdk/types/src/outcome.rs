//! What a handler decides, and which handler an event goes to.

use crate::{Action, Event, Filter, HttpError, Resource};

/// What an authorization handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Allowed, no filter (Python: `None` or `True`).
    Allow,
    /// Refused with 403 `Forbidden` (Python: `False`).
    Deny,
    /// Allowed, scoped to resources whose metadata matches (Python: a dict).
    Filter(Filter),
}

impl From<Filter> for Outcome {
    fn from(filter: Filter) -> Self {
        Outcome::Filter(filter)
    }
}

impl From<bool> for Outcome {
    fn from(allowed: bool) -> Self {
        if allowed {
            Outcome::Allow
        } else {
            Outcome::Deny
        }
    }
}

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome::Allow
    }
}

/// What a handler returns: an outcome, or the error to answer with.
pub type HandlerResult = Result<Outcome, HttpError>;

/// Which events a handler covers, from most to least specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum On {
    /// One action of one resource: `@auth.on.threads.create`.
    Event(Resource, Action),
    /// Every action of a resource: `@auth.on.threads`.
    Resource(Resource),
    /// One action of every resource: `@auth.on(actions="create")`.
    Action(Action),
    /// Every event: `@auth.on`.
    All,
}

/// The key of one event's handler: `threads.create` → `On::Event(Threads, Create)`.
impl From<Event> for On {
    fn from(event: Event) -> Self {
        On::Event(event.resource(), event.action())
    }
}

impl On {
    /// The key that handles `(resource, action)` among `registered`, most
    /// specific first (LangGraph's resolution order), if any.
    pub fn resolve(
        registered: impl IntoIterator<Item = On> + Clone,
        resource: Resource,
        action: Action,
    ) -> Option<On> {
        [
            On::Event(resource, action),
            On::Resource(resource),
            On::Action(action),
            On::All,
        ]
        .into_iter()
        .find(|candidate| registered.clone().into_iter().any(|r| r == *candidate))
    }
}
