//! What the server tells its operators: the auth decision log
//! ([`decisions`], read back by [`query`]), the Prometheus metrics
//! ([`metrics`]), the request ids that tie both to the server's log lines
//! ([`request_id`]) and the request spans exported over OTLP ([`traces`]).
//!
//! A leaf module: the server, the plugin runtime and the run executor
//! report here; nothing here reaches back into them.

pub mod decisions;
pub mod metrics;
pub mod query;
pub mod request_id;
pub mod traces;

pub use decisions::{Decision, DecisionLog, DecisionLogError, DecisionLogSettings, WhenFull};
pub use metrics::Metrics;
pub use request_id::RequestId;
pub use traces::Traces;
