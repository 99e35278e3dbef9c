//! The `StateGraph` builder and the compiled `Graph`.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{BuildError, END, GraphError, RunConfig, START};

/// The state of a run: one JSON value per channel.
pub type State = Map<String, Value>;

/// What a node returns: a JSON object of channel writes (each applied
/// through its channel's reducer), or `null` for none.
pub type Update = Value;

pub(crate) type NodeFn =
    Box<dyn Fn(&State, &RunConfig) -> Result<Update, GraphError> + Send + Sync>;
pub(crate) type RouterFn = Box<dyn Fn(&State, &RunConfig) -> Route + Send + Sync>;
pub(crate) type ReducerFn =
    Box<dyn Fn(Option<&Value>, &Value) -> Result<Value, GraphError> + Send + Sync>;

/// Where a router sends the run: one node (a `&str` or `String`) or
/// several (a `Vec` or an array of them), which run in the same step; or
/// tasks with their own state (a [`Send`](crate::Send), or a `Vec` of
/// them), which run in the next step before those nodes. Mix both with
/// [`send`](Route::send):
///
/// ```
/// use warden_graph::prelude::*;
/// use warden_graph::Route;
///
/// let cats = warden_graph::Send::new("write", json!({"subject": "cats"}));
/// let route = Route::from("summary").send(cats);
/// assert_eq!(route.nodes, ["summary"]);
/// assert_eq!(route.sends[0].node, "write");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The nodes to run next, on the run's state.
    pub nodes: Vec<String>,
    /// The tasks to run next, each on its own state.
    pub sends: Vec<crate::Send>,
}

impl Route {
    /// Adds a task running `send.node` on `send.arg`.
    #[must_use]
    pub fn send(mut self, send: crate::Send) -> Self {
        self.sends.push(send);
        self
    }

    /// Adds `other`'s nodes (each once, without [`END`]) and its sends.
    pub(crate) fn join(&mut self, other: Route) {
        for node in other.nodes {
            if node != END && !self.nodes.contains(&node) {
                self.nodes.push(node);
            }
        }
        self.sends.extend(other.sends);
    }
}

impl From<&str> for Route {
    fn from(node: &str) -> Self {
        Self::from(vec![node])
    }
}

impl From<String> for Route {
    fn from(node: String) -> Self {
        Self::from(vec![node])
    }
}

impl<T: Into<String>> From<Vec<T>> for Route {
    fn from(nodes: Vec<T>) -> Self {
        Self {
            nodes: nodes.into_iter().map(Into::into).collect(),
            sends: Vec::new(),
        }
    }
}

impl<T: Into<String>, const N: usize> From<[T; N]> for Route {
    fn from(nodes: [T; N]) -> Self {
        Self::from(Vec::from(nodes))
    }
}

impl From<crate::Send> for Route {
    fn from(send: crate::Send) -> Self {
        Self::from(vec![send])
    }
}

impl From<Vec<crate::Send>> for Route {
    fn from(sends: Vec<crate::Send>) -> Self {
        Self {
            nodes: Vec::new(),
            sends,
        }
    }
}

/// The way out of a node (or of `__start__`).
pub(crate) enum Way {
    /// Always to this node.
    Edge(String),
    /// To the nodes the router names, each one of `targets`.
    Branch {
        router: RouterFn,
        targets: Vec<String>,
    },
}

/// Builds a [`Graph`], the way LangGraph's `StateGraph` does in Python:
/// declare channels with their reducers, add nodes and edges, compile.
///
/// See the [crate documentation](crate) for an example.
#[derive(Default)]
#[must_use]
pub struct StateGraph {
    info: GraphInfo,
    channels: Vec<(String, ReducerFn)>,
    nodes: Vec<(String, NodeFn)>,
    ways: Vec<(String, Way)>,
    interrupt_before: Vec<String>,
    interrupt_after: Vec<String>,
}

impl StateGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the graph (LangGraph's `graph.name`), shown as the system
    /// assistant's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.info.name = Some(name.into());
        self
    }

    /// Declares channel `name` with a reducer merging a write into the
    /// current value (`None` while the channel is empty), like
    /// `Annotated[list, add_messages]`. Undeclared channels keep the last
    /// value written.
    pub fn channel<R>(mut self, name: impl Into<String>, reducer: R) -> Self
    where
        R: Fn(Option<&Value>, &Value) -> Result<Value, GraphError> + Send + Sync + 'static,
    {
        self.channels.push((name.into(), Box::new(reducer)));
        self
    }

    /// Adds node `name`: a function of the state and the run's config
    /// returning an [`Update`], or an error that fails the run.
    pub fn node<F>(mut self, name: impl Into<String>, node: F) -> Self
    where
        F: Fn(&State, &RunConfig) -> Result<Update, GraphError> + Send + Sync + 'static,
    {
        self.nodes.push((name.into(), Box::new(node)));
        self
    }

    /// Adds an edge: after `from` ([`START`] for the entry), run `to`
    /// ([`END`] to finish). A node with several ways out runs all the
    /// nodes they lead to in the next step, as LangGraph's Pregel does;
    /// their updates are merged by the channels' reducers.
    pub fn edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.ways.push((from.into(), Way::Edge(to.into())));
        self
    }

    /// Adds conditional edges: after `from`, run the node `router` names
    /// (or the nodes: a router may return a list, or
    /// [`Send`](crate::Send)s, see [`Route`]), each one of `targets` (node
    /// names or [`END`]; a `Send` may not name [`END`]).
    pub fn conditional_edges<F, T, I>(
        mut self,
        from: impl Into<String>,
        router: F,
        targets: I,
    ) -> Self
    where
        F: Fn(&State, &RunConfig) -> T + Send + Sync + 'static,
        T: Into<Route>,
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let router: RouterFn = Box::new(move |state, config| router(state, config).into());
        let targets = targets.into_iter().map(Into::into).collect();
        self.ways
            .push((from.into(), Way::Branch { router, targets }));
        self
    }

    /// Pauses every run before these nodes (`"*"` for all), as LangGraph's
    /// `compile(interrupt_before=[...])`; a run that names its own
    /// `interrupt_before` uses those instead.
    pub fn interrupt_before<I>(mut self, nodes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.interrupt_before = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Pauses every run after these nodes (`"*"` for all), as LangGraph's
    /// `compile(interrupt_after=[...])`; a run that names its own
    /// `interrupt_after` uses those instead.
    pub fn interrupt_after<I>(mut self, nodes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.interrupt_after = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the JSON Schema of the input.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.info.input_schema = Some(schema);
        self
    }

    /// Sets the JSON Schema of the output.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.info.output_schema = Some(schema);
        self
    }

    /// Sets the JSON Schema of the state.
    pub fn state_schema(mut self, schema: Value) -> Self {
        self.info.state_schema = Some(schema);
        self
    }

    /// Sets the JSON Schema of `config.configurable`.
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.info.config_schema = Some(schema);
        self
    }

    /// Sets the JSON Schema of the run's context.
    pub fn context_schema(mut self, schema: Value) -> Self {
        self.info.context_schema = Some(schema);
        self
    }

    /// Checks the graph and compiles it: node names unique and not
    /// reserved, edges between known nodes, and an edge from [`START`].
    pub fn compile(self) -> Result<Graph, BuildError> {
        let mut info = self.info;
        let mut nodes = HashMap::new();
        for (name, node) in self.nodes {
            if name.is_empty() || name == START || name == END || name.contains([':', '|']) {
                return Err(BuildError::ReservedName(name));
            }
            if nodes.contains_key(&name) {
                return Err(BuildError::DuplicateNode(name));
            }
            info.nodes.push(name.clone());
            nodes.insert(name, node);
        }

        let mut ways = HashMap::new();
        for (source, way) in self.ways {
            if source == END {
                return Err(BuildError::EdgeFromEnd);
            }
            if source != START && !nodes.contains_key(&source) {
                return Err(BuildError::UnknownSource(source));
            }
            let (targets, conditional) = match &way {
                Way::Edge(target) => (std::slice::from_ref(target), false),
                Way::Branch { targets, .. } if targets.is_empty() => {
                    return Err(BuildError::NoTargets(source));
                }
                Way::Branch { targets, .. } => (targets.as_slice(), true),
            };
            for target in targets {
                if target == START {
                    return Err(BuildError::EdgeToStart);
                }
                if target != END && !nodes.contains_key(target) {
                    return Err(BuildError::UnknownTarget {
                        source,
                        target: target.clone(),
                    });
                }
                info.edges.push(Edge {
                    source: source.clone(),
                    target: target.clone(),
                    conditional,
                });
            }
            ways.entry(source).or_insert_with(Vec::new).push(way);
        }
        if !ways.contains_key(START) {
            return Err(BuildError::NoEntryPoint);
        }
        for node in self.interrupt_before.iter().chain(&self.interrupt_after) {
            if node != "*" && !nodes.contains_key(node) {
                return Err(BuildError::UnknownInterruptNode(node.clone()));
            }
        }

        let channels = self.channels.into_iter().collect();
        Ok(Graph {
            info,
            nodes,
            ways,
            channels,
            interrupt_before: self.interrupt_before,
            interrupt_after: self.interrupt_after,
        })
    }
}

impl fmt::Debug for StateGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateGraph")
            .field("name", &self.info.name)
            .field(
                "nodes",
                &self.nodes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A compiled graph: run it with [`invoke`](Graph::invoke) (or
/// [`run`](Graph::run) to see its steps), export it with
/// [`export_graph!`](crate::export_graph).
pub struct Graph {
    pub(crate) info: GraphInfo,
    pub(crate) nodes: HashMap<String, NodeFn>,
    pub(crate) ways: HashMap<String, Vec<Way>>,
    pub(crate) channels: HashMap<String, ReducerFn>,
    pub(crate) interrupt_before: Vec<String>,
    pub(crate) interrupt_after: Vec<String>,
}

impl Graph {
    /// What the graph tells about itself: its name, nodes, edges
    /// (conditional edges expanded to one per possible target) and schemas.
    pub fn describe(&self) -> &GraphInfo {
        &self.info
    }

    /// Applies `update` to `values` through the channels' reducers, as when
    /// a node returns it.
    pub fn apply(&self, values: &mut State, update: &Map<String, Value>) -> Result<(), GraphError> {
        for (key, write) in update {
            let value = match self.channels.get(key) {
                Some(reducer) => reducer(values.get(key), write)?,
                None => write.clone(),
            };
            values.insert(key.clone(), value);
        }
        Ok(())
    }

    /// Where the run goes after `from`, in the order of its ways out: the
    /// nodes, each once (none to finish), and the tasks its routers sent.
    pub(crate) fn next(
        &self,
        from: &str,
        state: &State,
        config: &RunConfig,
    ) -> Result<Route, GraphError> {
        let mut next = Route::default();
        for way in self.ways.get(from).map(Vec::as_slice).unwrap_or_default() {
            let chosen = match way {
                Way::Edge(target) => Route::from(target.as_str()),
                Way::Branch { router, targets } => {
                    let chosen = router(state, config);
                    let sent = chosen.sends.iter().map(|s| &s.node);
                    if let Some(wrong) = chosen
                        .nodes
                        .iter()
                        .chain(sent)
                        .find(|t| !targets.contains(t))
                    {
                        return Err(GraphError::value_error(format!(
                            "The router after '{from}' returned '{wrong}', which is not one of \
                             its targets {targets:?}"
                        )));
                    }
                    for send in &chosen.sends {
                        check_send(send, from)?;
                    }
                    chosen
                }
            };
            next.join(chosen);
        }
        Ok(next)
    }
}

/// Refuses a task sent after node `from` (by a router or a command) to
/// [`END`], or with an `arg` that is not a JSON object.
pub(crate) fn check_send(send: &crate::Send, from: &str) -> Result<(), GraphError> {
    if send.node == END {
        return Err(GraphError::invalid_update(format!(
            "'{from}' sent a task to '{END}': cannot send a packet to the END node"
        )));
    }
    if !send.arg.is_object() {
        return Err(GraphError::invalid_update(format!(
            "'{from}' sent a task to '{}' with arg {}: Send arg must be a JSON object",
            send.node, send.arg
        )));
    }
    Ok(())
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("name", &self.info.name)
            .field("nodes", &self.info.nodes)
            .finish_non_exhaustive()
    }
}

/// What a graph tells about itself (WIT `graph-info`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GraphInfo {
    /// The graph's name, when it sets one.
    pub name: Option<String>,
    /// Its nodes, in the order they were added, without `__start__` and
    /// `__end__`.
    pub nodes: Vec<String>,
    /// Its edges, in the order they were added.
    pub edges: Vec<Edge>,
    /// JSON Schema of the input.
    pub input_schema: Option<Value>,
    /// JSON Schema of the output.
    pub output_schema: Option<Value>,
    /// JSON Schema of the state.
    pub state_schema: Option<Value>,
    /// JSON Schema of `config.configurable`.
    pub config_schema: Option<Value>,
    /// JSON Schema of the context.
    pub context_schema: Option<Value>,
}

/// An edge of the graph's drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The node it leaves (`__start__` for the entry).
    pub source: String,
    /// The node it reaches (`__end__` for the exit).
    pub target: String,
    /// Whether it is taken only on a condition.
    pub conditional: bool,
}

// A `Graph` lives in a `static` (see `export_graph!`).
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Graph>();
};
