//! # warden-graph: write Warden graphs in Rust
//!
//! A Warden graph is a `wasm32-wasip2` component that plays the part of a
//! compiled LangGraph `StateGraph`: a run hands it the input, the thread's
//! values and the run's config; it runs its nodes and returns the new
//! values, reporting each step so the server can stream it and record a
//! checkpoint.
//!
//! 1. Create a library crate with `crate-type = ["cdylib", "rlib"]` and
//!    depend on `warden-graph` (and nothing else: `wit-bindgen` comes
//!    re-exported).
//! 2. Build a [`Graph`] with [`StateGraph`], the way Python builds one:
//!    channels and their reducers (`Annotated[list, add_messages]` is
//!    `.channel("messages", messages::reducer)`), nodes, edges from
//!    [`START`] to [`END`], a name.
//! 3. Export it with [`export_graph!`].
//! 4. Build with `cargo build --target wasm32-wasip2 --release`, and name
//!    the crate directory in `langgraph.json`'s `graphs`.
//!
//! ```
//! use warden_graph::prelude::*;
//!
//! fn reply(state: &State, config: &RunConfig) -> Result<Update, GraphError> {
//!     let history = state["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
//!     let Some(last) = history.last() else {
//!         return Err(GraphError::value_error("no message to answer"));
//!     };
//!     let user = config.auth_user().map_or("stranger".to_owned(), |u| u.display_name);
//!     stream::custom(&json!({"progress": "replying"}));
//!     Ok(json!({
//!         "messages": [messages::ai(format!("{user} said: {}", messages::text(last)))],
//!         "turns": state.get("turns").and_then(Value::as_u64).unwrap_or(0) + 1,
//!     }))
//! }
//!
//! pub fn graph() -> Result<Graph, BuildError> {
//!     StateGraph::new()
//!         .name("agent")
//!         .channel("messages", messages::reducer)
//!         .node("reply", reply)
//!         .edge(START, "reply")
//!         .edge("reply", END)
//!         .compile()
//! }
//!
//! // Exports it as the component's `graph` interface (in wasm builds).
//! warden_graph::export_graph!(graph);
//!
//! // Graphs are plain Rust: test them natively with `cargo test`.
//! let config = json!({"configurable": {"langgraph_auth_user": {"identity": "user1", "display_name": "Alice"}}});
//! let input = json!({"messages": [{"role": "user", "content": "hi"}]});
//! let run = graph()?.run(input, State::new(), config, Value::Null);
//! assert_eq!(run.nodes(), ["__start__", "reply"]);
//! assert_eq!(run.custom, [json!({"progress": "replying"})]);
//! let values = run.outcome?;
//! assert_eq!(messages::text(&values["messages"][1]), "Alice said: hi");
//! assert_eq!(values["turns"], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Inside a node, [`stream`] sends `custom` chunks and messages to the
//! run's stream, [`log`] writes to the server's log, [`RunConfig`]
//! tells who the caller is and which thread and run this is, and
//! [`chat::ChatModel`] calls an OpenAI-compatible model, streaming its
//! tokens to the run's `messages` stream.
//!
//! A router may return [`Send`]s, as LangGraph's `Send(node, arg)`, to map
//! a node over several items: each runs the node in the next step, on its
//! own `arg` as its state, and a reducer gathers what they return, in the
//! order they were sent. (`Send` is not in the prelude, whose glob import
//! would then hide `std::marker::Send`.)
//!
//! ```
//! use warden_graph::prelude::*;
//! use warden_graph::reducers::append;
//!
//! // One task per subject, each with its own state.
//! fn per_subject(state: &State, _: &RunConfig) -> Vec<warden_graph::Send> {
//!     let subjects = state["subjects"].as_array().map(Vec::as_slice).unwrap_or_default();
//!     subjects
//!         .iter()
//!         .map(|subject| warden_graph::Send::new("write", json!({"subject": subject})))
//!         .collect()
//! }
//!
//! let graph = StateGraph::new()
//!     .channel("jokes", append)
//!     .node("write", |arg: &State, _: &RunConfig| {
//!         let subject = arg["subject"].as_str().unwrap_or("?");
//!         Ok(json!({"jokes": [format!("a joke about {subject}")]}))
//!     })
//!     .conditional_edges(START, per_subject, ["write"])
//!     .edge("write", END)
//!     .compile()?;
//! let run = graph.run(json!({"subjects": ["cats", "dogs"]}), State::new(), json!({}), Value::Null);
//! assert_eq!(run.nodes(), ["__start__", "write", "write"]);
//! assert_eq!(run.steps[0].sends[1].arg, json!({"subject": "dogs"}));
//! assert_eq!(run.outcome?["jokes"], json!(["a joke about cats", "a joke about dogs"]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything the host and the graph exchange is defined by the versioned
//! WIT contract `warden:graph@0.2.0` ([`CONTRACT_VERSION`]). A graph may
//! use `wasi:random` (message ids come from it) and nothing else from the
//! outside world; each run has a deadline and a memory cap.
#![deny(missing_docs)]

extern crate self as warden_graph;

pub mod chat;
mod command;
mod config;
mod error;
mod graph;
pub mod log;
pub mod messages;
pub mod reducers;
mod run;
mod send;
pub mod store;
pub mod stream;

#[doc(hidden)]
pub mod __private;

pub use command::Command;
pub use config::{AuthUser, DEFAULT_RECURSION_LIMIT, RunConfig};
pub use error::{BuildError, GraphError};
pub use graph::{Edge, Graph, GraphInfo, Route, State, StateGraph, Update};
pub use run::{
    FinishedTask, Interrupt, Invocation, Outcome, Pause, Run, Start, Step, Task, TaskResult, Write,
};
// Not in the prelude: its glob import would hide `std::marker::Send`.
pub use send::Send;
pub use serde_json::{Map, Value, json};
/// The graph's `config` values and `secrets`, from its entry in
/// `langgraph.json`'s `graphs`.
pub use warden_common as settings;
/// Outbound HTTP (`wasi:http`) to the graph's `allowed_hosts`: whole or
/// streamed responses, server-sent events.
pub use warden_http as http;
/// The `wit-bindgen` this SDK was built with, so graph crates never pin it.
pub use wit_bindgen;

/// The version of the `warden:graph` WIT contract this SDK implements.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Pauses the run to ask a human, as LangGraph's `interrupt(value)`: the
/// run ends `interrupted` with `value` shown to the client (the thread's
/// `interrupts`, `__interrupt__` in the stream and the `wait` body), and
/// the node's update is dropped. A later run with `command: {"resume":
/// answer}` runs the node again from its start, and this call then returns
/// `Ok(answer)`; a node's second call needs a second resume, and so on.
/// The other tasks of the step keep what they returned and do not run
/// again (LangGraph's pending writes: see [`Pause::finished`]).
///
/// Return the error with `?`: a node that called `interrupt` without an
/// answer pauses the run whatever it returns.
///
/// ```
/// use warden_graph::prelude::*;
/// use warden_graph::{Invocation, Task};
///
/// fn approve(_: &State, _: &RunConfig) -> Result<Update, GraphError> {
///     let answer = interrupt(json!({"question": "Send the e-mail?"}))?;
///     Ok(json!({"approved": answer == "yes"}))
/// }
///
/// let graph = StateGraph::new()
///     .node("approve", approve)
///     .edge(START, "approve")
///     .edge("approve", END)
///     .compile()?;
///
/// // The first run pauses in `approve`...
/// let run = graph.run(json!({}), State::new(), json!({}), Value::Null);
/// let pause = run.pause.expect("paused");
/// assert_eq!(pause.next, ["approve"]);
/// assert_eq!(pause.interrupts[0].value, json!({"question": "Send the e-mail?"}));
///
/// // ... and the resumed one runs it again with the answer.
/// let resumed = graph.run_with(Invocation::resume([Task::new("approve").answer(json!("yes"))]));
/// assert_eq!(resumed.outcome?["approved"], true);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn interrupt(value: Value) -> Result<Value, GraphError> {
    run::interrupt(value)
}

/// The entry of a graph: edges from `START` lead to its first node.
pub const START: &str = "__start__";

/// The exit of a graph: an edge to `END` finishes the run.
pub const END: &str = "__end__";

/// Everything a graph usually needs, in one import.
pub mod prelude {
    pub use crate::{
        BuildError, Command, END, Graph, GraphError, RunConfig, START, State, StateGraph, Update,
        Value, chat, interrupt, json, messages, stream,
    };
}
