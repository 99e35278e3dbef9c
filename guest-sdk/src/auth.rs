//! The `Auth` object: an authenticate function and the `on` handlers.

use serde_json::Value;

use crate::{Action, AuthContext, HandlerResult, HttpError, On, Outcome, Request, Resource, User};

type Authenticate = Box<dyn Fn(&Request) -> Result<User, HttpError> + Send + Sync>;
type Handler = Box<dyn Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync>;

/// The plugin: LangGraph's `Auth` object, built from functions.
///
/// ```
/// # use warden_sdk::prelude::*;
/// # fn authenticate(_: &Request) -> Result<User, HttpError> { Ok(User::new("u")) }
/// # fn h(_: &AuthContext, _: &mut Value) -> HandlerResult { Ok(Outcome::Allow) }
/// let auth = Auth::new(authenticate)
///     .on_all(h)                                   // @auth.on
///     .on_resource(Resource::Store, h)             // @auth.on.store
///     .on(Resource::Threads, Action::Create, h);   // @auth.on.threads.create
/// ```
pub struct Auth {
    authenticate: Authenticate,
    handlers: Vec<(On, Handler)>,
}

impl Auth {
    /// An `Auth` with this authenticate handler and no `on` handlers (every
    /// event allowed).
    pub fn new<F>(authenticate: F) -> Self
    where
        F: Fn(&Request) -> Result<User, HttpError> + Send + Sync + 'static,
    {
        Self {
            authenticate: Box::new(authenticate),
            handlers: Vec::new(),
        }
    }

    fn register<F>(mut self, key: On, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        if let On::Event(resource, action) = key {
            assert!(
                resource.actions().contains(&action),
                "{resource} has no action {action}"
            );
        }
        assert!(
            self.handlers.iter().all(|(k, _)| *k != key),
            "a handler is already registered for {key:?}"
        );
        self.handlers.push((key, Box::new(handler)));
        self
    }

    /// Registers a handler for one action of one resource
    /// (`@auth.on.threads.create`).
    ///
    /// # Panics
    /// When the resource has no such action, or the pair already has a handler.
    pub fn on<F>(self, resource: Resource, action: Action, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        self.register(On::Event(resource, action), handler)
    }

    /// Registers a handler for every action of a resource (`@auth.on.threads`).
    ///
    /// # Panics
    /// When the resource already has a handler.
    pub fn on_resource<F>(self, resource: Resource, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        self.register(On::Resource(resource), handler)
    }

    /// Registers a handler for one action of every resource
    /// (`@auth.on(actions="create")`).
    ///
    /// # Panics
    /// When the action already has a handler.
    pub fn on_action<F>(self, action: Action, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        self.register(On::Action(action), handler)
    }

    /// Registers the global handler (`@auth.on`), which covers every event
    /// no more specific handler covers, store events included.
    ///
    /// # Panics
    /// When a global handler is already registered.
    pub fn on_all<F>(self, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        self.register(On::All, handler)
    }

    /// The keys handlers are registered under.
    pub fn registered(&self) -> impl Iterator<Item = On> + Clone + '_ {
        self.handlers.iter().map(|(key, _)| *key)
    }

    /// Runs the authenticate handler.
    pub fn authenticate(&self, request: &Request) -> Result<User, HttpError> {
        (self.authenticate)(request)
    }

    /// Authorizes an event as the host does: runs the most specific handler
    /// that covers it, or allows when none does.
    pub fn authorize(&self, ctx: &AuthContext, value: &mut Value) -> HandlerResult {
        match On::resolve(self.registered(), ctx.resource, ctx.action) {
            Some(key) => self.run(key, ctx, value),
            None => Ok(Outcome::Allow),
        }
    }

    /// Runs the handler registered under `key`, if there is one.
    pub(crate) fn run(&self, key: On, ctx: &AuthContext, value: &mut Value) -> HandlerResult {
        let (_, handler) = self
            .handlers
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no handler is registered for {key:?}"));
        handler(ctx, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(name: &'static str) -> impl Fn(&AuthContext, &mut Value) -> HandlerResult {
        move |_, value| {
            value["by"] = json!(name);
            Ok(Outcome::Allow)
        }
    }

    fn ctx(resource: Resource, action: Action) -> AuthContext {
        AuthContext::new(User::new("u"), resource, action)
    }

    fn who(auth: &Auth, resource: Resource, action: Action) -> Value {
        let mut value = json!({});
        auth.authorize(&ctx(resource, action), &mut value).unwrap();
        value["by"].clone()
    }

    #[test]
    fn the_most_specific_handler_wins() {
        let auth = Auth::new(|_| Ok(User::new("u")))
            .on_all(named("global"))
            .on_action(Action::Create, named("action"))
            .on_resource(Resource::Threads, named("resource"))
            .on(Resource::Threads, Action::Create, named("exact"));
        assert_eq!(who(&auth, Resource::Threads, Action::Create), "exact");
        assert_eq!(who(&auth, Resource::Threads, Action::Read), "resource");
        assert_eq!(who(&auth, Resource::Crons, Action::Create), "action");
        assert_eq!(who(&auth, Resource::Store, Action::Put), "global");
    }

    #[test]
    fn no_handler_allows() {
        let auth = Auth::new(|_| Ok(User::new("u")));
        assert_eq!(who(&auth, Resource::Threads, Action::Delete), Value::Null);
    }

    #[test]
    #[should_panic(expected = "already registered")]
    fn duplicate_registration_panics() {
        let _ = Auth::new(|_| Ok(User::new("u")))
            .on_all(named("a"))
            .on_all(named("b"));
    }

    #[test]
    #[should_panic(expected = "store has no action create")]
    fn impossible_events_are_refused() {
        let _ = Auth::new(|_| Ok(User::new("u"))).on(Resource::Store, Action::Create, named("a"));
    }
}
