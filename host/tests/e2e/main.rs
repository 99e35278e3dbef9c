//! End-to-end tests of the plugin runtime and the `warden` binary, with real
//! components built from `examples/` and `tests/fixtures/` (see `support`).

mod cli;
mod faults;
mod loading;
mod resolution;
mod support;
