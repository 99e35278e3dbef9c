//! The Agent Server API's handlers, one module per resource, and what they
//! share: request parsing ([`extract`]) and the records as the API answers
//! with them ([`records`]). Every handler runs as the authenticated caller
//! ([`super::auth`]).

pub(in crate::server) mod assistants;
pub(in crate::server) mod crons;
pub(in crate::server) mod extract;
pub(in crate::server) mod graphs;
pub(in crate::server) mod records;
pub(in crate::server) mod run_access;
pub mod runs;
pub(in crate::server) mod state;
pub(in crate::server) mod store;
pub(in crate::server) mod system;
pub(in crate::server) mod threads;
