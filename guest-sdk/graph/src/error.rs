//! Why a run or a build fails.

use std::fmt;

use serde::Serialize;

/// Why a run failed: the kind of error, named like a Python exception
/// (`ValueError`, `GraphRecursionError`, ...), and what went wrong.
///
/// A node returns it to fail the run; the host streams it as the `error`
/// event and `wait` returns it as `__error__`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphError {
    /// The kind of error, like a Python exception's type name.
    pub error: String,
    /// What went wrong.
    pub message: String,
}

impl GraphError {
    /// An error of kind `error` (e.g. `"ValueError"`).
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
        }
    }

    /// A `ValueError`.
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("ValueError", message)
    }

    /// An `InvalidUpdateError`: a node or the input wrote something the
    /// state cannot take.
    pub fn invalid_update(message: impl Into<String>) -> Self {
        Self::new("InvalidUpdateError", message)
    }

    /// The `GraphRecursionError` of a run that reached `limit` steps.
    pub fn recursion(limit: u64) -> Self {
        Self::new(
            "GraphRecursionError",
            format!(
                "Recursion limit of {limit} reached without hitting a stop condition. \
                 You can increase the limit by setting the `recursion_limit` config key.\n\
                 For troubleshooting, visit: \
                 https://docs.langchain.com/oss/python/langgraph/errors/GRAPH_RECURSION_LIMIT"
            ),
        )
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl std::error::Error for GraphError {}

/// Why [`StateGraph::compile`](crate::StateGraph::compile) refused a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Two nodes have the same name.
    DuplicateNode(String),
    /// A node is named `__start__` or `__end__`, or its name is empty or
    /// holds a reserved character (`:` or `|`).
    ReservedName(String),
    /// An edge leaves a node that does not exist.
    UnknownSource(String),
    /// An edge from `source` reaches `target`, which does not exist.
    UnknownTarget {
        /// Where the edge starts.
        source: String,
        /// The unknown node it reaches.
        target: String,
    },
    /// An edge leaves `__end__`.
    EdgeFromEnd,
    /// An edge reaches `__start__`.
    EdgeToStart,
    /// No edge leaves `__start__`.
    NoEntryPoint,
    /// Conditional edges were declared with no possible target.
    NoTargets(String),
    /// `interrupt_before` or `interrupt_after` names a node that does not
    /// exist.
    UnknownInterruptNode(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateNode(name) => write!(f, "Node `{name}` already present."),
            Self::ReservedName(name) => write!(
                f,
                "Node name `{name}` is reserved (`__start__`, `__end__`, empty, or holding `:` or `|`)."
            ),
            Self::UnknownSource(name) => write!(f, "Found edge starting at unknown node '{name}'"),
            Self::UnknownTarget { source, target } => write!(
                f,
                "Found edge ending at unknown node '{target}' (from '{source}')"
            ),
            Self::EdgeFromEnd => write!(f, "END cannot be a start node"),
            Self::EdgeToStart => write!(f, "START cannot be an end node"),
            Self::NoEntryPoint => write!(
                f,
                "Graph must have an entrypoint: add at least one edge from START to another node"
            ),
            Self::NoTargets(name) => {
                write!(f, "Conditional edges from '{name}' have no possible target")
            }
            Self::UnknownInterruptNode(name) => write!(f, "Interrupt node {name} not found"),
        }
    }
}

impl std::error::Error for BuildError {}
