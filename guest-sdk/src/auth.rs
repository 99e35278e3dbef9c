//! The `Auth` object: an authenticate function and the `on` handlers.

use serde_json::Value;

use crate::{
    Action, AuthContext, Event, HandlerResult, HttpError, On, Outcome, Request, Resource, User,
};

type Authenticate = Box<dyn Fn(&Request) -> Result<User, HttpError> + Send + Sync>;
type Handler = Box<dyn Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync>;

/// The plugin: LangGraph's `Auth` object, built from functions.
///
/// ```
/// # use warden_sdk::prelude::*;
/// # fn authenticate(_: &Request) -> Result<User, HttpError> { Ok(User::new("u")) }
/// # fn h(_: &AuthContext, _: &mut Value) -> HandlerResult { Ok(Outcome::Allow) }
/// let auth = Auth::new(authenticate)
///     .reads_headers(["authorization"])     // only this header is sent
///     .on_all(h)                            // @auth.on
///     .on_resource(Resource::Store, h)      // @auth.on.store
///     .on(ThreadAction::Create, h)          // @auth.on.threads.create
///     .on(StoreAction::Put, h);             // @auth.on.store.put
/// ```
///
/// An event is a resource and one of *its* actions, so an event that does
/// not exist does not compile:
///
/// ```compile_fail,E0599
/// # use warden_sdk::prelude::*;
/// # fn authenticate(_: &Request) -> Result<User, HttpError> { Ok(User::new("u")) }
/// # fn h(_: &AuthContext, _: &mut Value) -> HandlerResult { Ok(Outcome::Allow) }
/// let auth = Auth::new(authenticate).on(StoreAction::Create, h); // the store has no `create`
/// ```
pub struct Auth {
    authenticate: Authenticate,
    headers: Option<Vec<String>>,
    handlers: Vec<(On, Handler)>,
}

impl Auth {
    /// An `Auth` with this authenticate handler and no `on` handlers (every
    /// event allowed). It receives every header of the request until
    /// [`reads_headers`](Auth::reads_headers) says which it reads.
    pub fn new<F>(authenticate: F) -> Self
    where
        F: Fn(&Request) -> Result<User, HttpError> + Send + Sync + 'static,
    {
        Self {
            authenticate: Box::new(authenticate),
            headers: None,
            handlers: Vec::new(),
        }
    }

    /// Declares the headers `authenticate` reads (names case-insensitive):
    /// the host sends only those, which makes every request cheaper to
    /// authenticate. Any other header is absent from the [`Request`], in
    /// the server and in native tests alike (so a test catches a header
    /// read but not declared). Without this call every header is sent.
    ///
    /// ```
    /// # use warden_sdk::prelude::*;
    /// fn authenticate(request: &Request) -> Result<User, HttpError> {
    ///     assert_eq!(request.header("x-api-key"), None); // not declared
    ///     request.bearer_token().map(User::new).ok_or_else(|| HttpError::unauthorized("No token"))
    /// }
    /// let auth = Auth::new(authenticate).reads_headers(["Authorization"]);
    /// let request = Request::new("GET", "/threads")
    ///     .with_header("authorization", "Bearer alice")
    ///     .with_header("x-api-key", "k");
    /// assert_eq!(auth.authenticate(&request).unwrap().identity, "alice");
    /// assert_eq!(auth.headers(), Some(&["authorization".to_owned()][..]));
    /// ```
    pub fn reads_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let headers = self.headers.get_or_insert_with(Vec::new);
        for name in names {
            let name = name.as_ref().to_ascii_lowercase();
            if !headers.contains(&name) {
                headers.push(name);
            }
        }
        self
    }

    /// The headers `authenticate` reads, lower case; `None` when it did not
    /// say (every header is sent).
    pub fn headers(&self) -> Option<&[String]> {
        self.headers.as_deref()
    }

    fn register<F>(mut self, key: On, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        assert!(
            self.handlers.iter().all(|(k, _)| *k != key),
            "a handler is already registered for {key:?}"
        );
        self.handlers.push((key, Box::new(handler)));
        self
    }

    /// Registers a handler for one event (`@auth.on.threads.create`):
    /// `.on(ThreadAction::Create, h)`, `.on(StoreAction::Put, h)`, or any
    /// [`Event`].
    ///
    /// # Panics
    /// When the event already has a handler.
    pub fn on<F>(self, event: impl Into<Event>, handler: F) -> Self
    where
        F: Fn(&AuthContext, &mut Value) -> HandlerResult + Send + Sync + 'static,
    {
        self.register(On::from(event.into()), handler)
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

    /// Runs the authenticate handler on the request as the host sends it:
    /// without the headers [`reads_headers`](Auth::reads_headers) did not
    /// declare, when it declared some.
    pub fn authenticate(&self, request: &Request) -> Result<User, HttpError> {
        match &self.headers {
            None => (self.authenticate)(request),
            Some(_) => self.authenticate_owned(request.clone()),
        }
    }

    /// [`authenticate`](Auth::authenticate) on a request the caller owns.
    pub(crate) fn authenticate_owned(&self, mut request: Request) -> Result<User, HttpError> {
        if let Some(declared) = &self.headers {
            request
                .headers
                .retain(|(name, _)| declared.iter().any(|d| d.eq_ignore_ascii_case(name)));
        }
        (self.authenticate)(&request)
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
    fn run(&self, key: On, ctx: &AuthContext, value: &mut Value) -> HandlerResult {
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
            .on(crate::ThreadAction::Create, named("exact"));
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
    #[should_panic(expected = "already registered")]
    fn the_same_event_twice_panics() {
        let _ = Auth::new(|_| Ok(User::new("u")))
            .on(crate::StoreAction::Put, named("a"))
            .on(crate::Event::Store(crate::StoreAction::Put), named("b"));
    }

    #[test]
    fn undeclared_headers_are_dropped() {
        let seen = |request: &Request| {
            Ok(User::new("u").with_field("headers", serde_json::json!(request.headers)))
        };
        let request = Request::new("GET", "/")
            .with_header("Authorization", "Bearer t")
            .with_header("x-other", "o")
            .with_header("authorization", "Bearer t2");
        let all = Auth::new(seen).authenticate(&request).unwrap();
        assert_eq!(all.field("headers").unwrap().as_array().unwrap().len(), 3);
        let declared = Auth::new(seen).reads_headers(["AUTHORIZATION"]);
        assert_eq!(declared.headers(), Some(&["authorization".to_owned()][..]));
        let user = declared.authenticate(&request).unwrap();
        assert_eq!(
            user.field("headers"),
            Some(&serde_json::json!([
                ["authorization", "Bearer t"],
                ["authorization", "Bearer t2"]
            ]))
        );
        let none = Auth::new(seen).reads_headers::<_, &str>([]);
        assert_eq!(none.headers(), Some(&[][..]));
        let user = none.authenticate(&request).unwrap();
        assert_eq!(user.field("headers"), Some(&serde_json::json!([])));
    }
}
