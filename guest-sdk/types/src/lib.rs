//! # warden-types: what Warden's host and its auth plugins share
//!
//! The request `authenticate` sees, the [`User`] it returns, the events
//! handlers authorize ([`Resource`], [`Action`], the typed [`Event`],
//! [`AuthContext`]), what a handler decides ([`Outcome`], [`Filter`],
//! [`HttpError`]) and changes ([`Change`]), which handler an event goes to ([`On::resolve`]), and the public keys whose signatures
//! the host checks natively ([`PublicKey`], [`verify_signature`]).
//!
//! Plugin authors get these through `warden-sdk`, which re-exports them; the
//! host depends on this crate alone, so it never builds the SDK's guest
//! bindings. No WebAssembly here: plain Rust types, shared by construction.
#![deny(missing_docs)]

mod algorithm;
mod change;
mod crypto;
mod event;
mod filter;
mod outcome;
mod stamp;
mod types;

pub use algorithm::Algorithm;
pub use change::Change;
#[cfg(not(target_arch = "wasm32"))]
pub use crypto::verify_signature;
pub use crypto::{Curve, PublicKey, SignatureError};
pub use event::{AssistantAction, CronAction, Event, StoreAction, ThreadAction};
pub use filter::{Clause, Condition, Filter, Operator};
pub use outcome::{HandlerResult, On, Outcome};
pub use serde_json::{Map, Value, json};
pub use stamp::stamp_metadata;
pub use types::{Action, AuthContext, HttpError, Request, Resource, User};
