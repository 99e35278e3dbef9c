//! `Send`: a task that runs a node on its own state, as LangGraph's
//! `Send(node, arg)` (the map of a map-reduce).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task of the next step that runs `node` on `arg` (a JSON object) as
/// its state instead of the run's, as LangGraph's `Send(node, arg)`: a
/// router returns one per item to map over, each runs as a task of its
/// own (the same node may be sent several times), and the channels'
/// reducers gather their updates.
///
/// A router returns it (see [`Route`](crate::Route)), or a node with
/// [`Command::send`](crate::Command::send). Sent tasks run before the
/// step's other nodes, in the order they were sent.
///
/// It is exported at the crate root only, not in the
/// [`prelude`](crate::prelude), whose glob import would hide
/// `std::marker::Send` from `T: Send` bounds: name it
/// `warden_graph::Send`, or import it under another name.
///
/// ```
/// use warden_graph::prelude::*;
///
/// let send = warden_graph::Send::new("write", json!({"subject": "cats"}));
/// assert_eq!(send.node, "write");
/// assert_eq!(send.arg["subject"], "cats");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// The node to run.
    pub node: String,
    /// The state it runs on: a JSON object.
    pub arg: Value,
}

impl Send {
    /// A task running `node` on `arg` (a JSON object) as its state.
    pub fn new(node: impl Into<String>, arg: Value) -> Self {
        Self {
            node: node.into(),
            arg,
        }
    }
}
