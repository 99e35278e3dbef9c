//! What a node streams while it runs (LangGraph's stream writer and
//! message streaming).
//!
//! In Warden these go to the host, which streams them to the run's clients
//! that asked for the `custom` and `messages` modes; in [`Graph::run`]
//! they are recorded in the [`Run`]; elsewhere (a native [`Graph::invoke`])
//! they are dropped.
//!
//! [`Graph::run`]: crate::Graph::run
//! [`Graph::invoke`]: crate::Graph::invoke
//! [`Run`]: crate::Run

use serde_json::Value;

/// Sends a chunk of the `custom` stream mode (LangGraph's
/// `get_stream_writer()(data)`).
pub fn custom(data: &Value) {
    crate::run::custom(data);
}

/// Sends a message, or a chunk of one, to the `messages` stream modes:
/// the message as LangGraph serialises it (see [`messages`](crate::messages))
/// and its metadata, which the run completes with `langgraph_node`,
/// `langgraph_step` and the config's `metadata`.
///
/// A message a node streams with an id is not streamed again when the
/// node returns it.
pub fn message(message: &Value, metadata: &Value) {
    crate::run::message(message, metadata);
}
