//! End-to-end tests of the plugin runtime, the API and the `warden` binary,
//! with real components built from `examples/` and `tests/fixtures/` (see
//! `support`).

mod api;
mod artefacts;
mod assistant;
mod capabilities;
mod cli;
mod config_safety;
mod contracts;
mod faults;
mod fuzzed;
mod graph_store;
mod hot_swap;
mod idp;
mod interrupts;
mod isolation;
mod isolation_property;
mod limits;
mod loading;
mod model_server;
mod observability;
mod oidc;
mod postgres;
mod python;
mod replicas;
mod resolution;
mod rollout;
mod scaffold;
mod sends;
mod streams;
mod support;
mod time_travel;
mod typescript;
mod waits;
