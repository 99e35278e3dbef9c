//! # warden-sdk: write Warden auth plugins in Rust
//!
//! A Warden auth plugin is a `wasm32-wasip2` component that plays the part of
//! LangGraph's `Auth` object: an `authenticate` function that runs on every
//! request, and `on` handlers that authorize resource actions.
//!
//! 1. Create a library crate with `crate-type = ["cdylib", "rlib"]` and depend
//!    on `warden-sdk` (and nothing else: `wit-bindgen` comes re-exported).
//! 2. Write an `authenticate` function and your handlers, and build an
//!    [`Auth`] from them, the way `@auth.authenticate` and `@auth.on...`
//!    build the Python object.
//! 3. Export it with [`export_auth!`].
//! 4. Build with `cargo build --target wasm32-wasip2 --release`, or name the
//!    crate directory as `auth.path` in `langgraph.json` and let `warden`
//!    build it.
//!
//! ```
//! use warden_sdk::prelude::*;
//!
//! fn authenticate(request: &Request) -> Result<User, HttpError> {
//!     match request.bearer_token() {
//!         Some("user1-token") => Ok(User::new("user1").with_permissions(["threads:create"])),
//!         _ => Err(HttpError::unauthorized("Invalid token")),
//!     }
//! }
//!
//! fn owner_only(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
//!     if matches!(ctx.action, Action::Create | Action::CreateRun | Action::Update) {
//!         value.stamp_metadata("owner", &ctx.user.identity);
//!     }
//!     Ok(Filter::eq("owner", &ctx.user.identity).into())
//! }
//!
//! fn threads_create(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
//!     if !ctx.has_permission("threads:create") {
//!         return Err(HttpError::forbidden("Missing permission: threads:create"));
//!     }
//!     owner_only(ctx, value)
//! }
//!
//! pub fn auth() -> Auth {
//!     Auth::new(authenticate)
//!         .reads_headers(["authorization"])        // the host sends only this header
//!         .on_all(owner_only)                      // @auth.on
//!         .on(ThreadAction::Create, threads_create) // @auth.on.threads.create
//! }
//!
//! // In the plugin crate: warden_sdk::export_auth!(auth);
//!
//! // Handlers are plain Rust: test them natively with `cargo test`.
//! let user = auth()
//!     .authenticate(&Request::new("GET", "/threads").with_header("authorization", "Bearer user1-token"))
//!     .unwrap();
//! let ctx = AuthContext::new(user, Resource::Threads, Action::Create);
//! let mut value = json!({"metadata": {"owner": "someone-else"}});
//! let outcome = auth().authorize(&ctx, &mut value).unwrap();
//! assert_eq!(outcome, Outcome::Filter(Filter::eq("owner", "user1")));
//! assert_eq!(value["metadata"]["owner"], "user1");
//! ```
//!
//! Beyond handlers, plugins get what production authentication needs:
//! [`jwt`] (verify HS/RS/PS/ES/EdDSA tokens, JWK sets, claims), [`config`]
//! (`auth.config` values and `auth.secrets`), [`http`] (outbound requests
//! to `auth.allowed_hosts` only), [`cache`] (values kept between calls) and
//! the wall clock (`std::time::SystemTime`).
//!
//! Events are typed: [`Auth::on`] takes an [`Event`] or one resource's
//! action ([`ThreadAction`], [`AssistantAction`], [`CronAction`],
//! [`StoreAction`]), so an event that does not exist (`store.create`) does
//! not compile. [`Auth::reads_headers`] declares the headers `authenticate`
//! reads: the host then sends only those.
//!
//! Everything the host and the plugin exchange is defined by the versioned
//! WIT contract `warden:auth@0.2.0` ([`CONTRACT_VERSION`]), with `json`,
//! `log` and `config` from `warden:common@0.1.0`. `authenticate` returns the
//! user and a session that keeps it, on which the host authorizes the
//! request's events; a handler's change to the value crosses back as the
//! metadata keys it stamped when that is all it did ([`Change`]). The
//! contract's package version is recorded in the component, so a host
//! refuses a plugin built for a contract it does not speak and says which
//! versions differ.
#![deny(missing_docs)]

extern crate self as warden_sdk;

mod auth;
pub mod cache;
/// The plugin's `auth.config` values and `auth.secrets`.
pub use warden_common as config;
/// Outbound HTTP (`wasi:http`) to `auth.allowed_hosts`.
pub use warden_http as http;
pub mod jwt;
pub mod log;
mod value;

#[doc(hidden)]
pub mod __private;

pub use auth::Auth;
pub use serde_json::{Map, Value, json};
pub use value::ValueExt;
pub use warden_types::{
    Action, AssistantAction, AuthContext, Change, Clause, Condition, CronAction, Event, Filter,
    HandlerResult, HttpError, On, Operator, Outcome, Request, Resource, StoreAction, ThreadAction,
    User,
};
/// The `wit-bindgen` this SDK was built with, so plugin crates never pin it.
pub use wit_bindgen;

/// The version of the `warden:auth` WIT contract this SDK implements.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Action, AssistantAction, Auth, AuthContext, CronAction, Event, Filter, HandlerResult,
        HttpError, Outcome, Request, Resource, StoreAction, ThreadAction, User, Value, ValueExt,
        json,
    };
}
