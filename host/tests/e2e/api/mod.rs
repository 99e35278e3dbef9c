//! The Agent Server API through the router (no sockets), one module per
//! resource, mostly with the reference policy (`user1-token`,
//! `user2-token`, `admin-token`, `reader-token`).

mod assistants;
mod bad_input;
mod crons;
mod routes;
mod runs;
mod store;
mod threads;

use crate::support::{TestServer, unhurried_plugin};

/// The system assistant of the graph `agent`.
const AGENT: &str = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";

/// A server with the reference policy (its deadline unhurried), the graph
/// `agent` declared.
fn reference() -> TestServer {
    TestServer::new(Some(unhurried_plugin("reference_auth")))
}
