//! Reducers for [`StateGraph::channel`](crate::StateGraph::channel) beyond
//! [`messages::reducer`](crate::messages::reducer).

use serde_json::Value;

use crate::GraphError;

/// Appends a list to the channel's list, as LangGraph's
/// `Annotated[list, operator.add]`: what gathers the updates of a step's
/// nodes, or of the tasks a [`Send`](crate::Send) made, in task order.
///
/// An empty channel takes the update as it is; a write or a current value
/// that is not a list fails the step with an `InvalidUpdateError`, as
/// Python's `list + x` fails.
///
/// ```
/// use warden_graph::prelude::*;
/// use warden_graph::reducers::append;
///
/// let jokes = append(Some(&json!(["a"])), &json!(["b", "c"]))?;
/// assert_eq!(jokes, json!(["a", "b", "c"]));
/// assert_eq!(append(None, &json!(["a"]))?, json!(["a"]));
/// assert!(append(None, &json!("a")).is_err());
/// # Ok::<(), GraphError>(())
/// ```
pub fn append(current: Option<&Value>, update: &Value) -> Result<Value, GraphError> {
    let Value::Array(more) = update else {
        return Err(GraphError::invalid_update(format!(
            "append expects a list, got {update}"
        )));
    };
    match current {
        None | Some(Value::Null) => Ok(update.clone()),
        Some(Value::Array(list)) => Ok(list.iter().chain(more).cloned().collect()),
        Some(other) => Err(GraphError::invalid_update(format!(
            "append expects the channel to hold a list, it holds {other}"
        ))),
    }
}
