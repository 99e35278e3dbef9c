//! Graph components (`warden:graph@0.2.0`, and `0.1.0`, which keeps
//! loading): one loaded graph, and its runs, each in a fresh sandboxed
//! instance under the graph's deadline and memory cap, cancellable from
//! another thread.
//!
//! A graph's sandbox grants randomness (message ids), captured output, the
//! `log` import, the `stream` import through which it reports its steps
//! and chunks, and (from `0.2.0`) its own `config` values and `secrets`
//! and outbound HTTP to its `allowed_hosts` only, bodies streamed
//! ([`super::outbound`]). No wall clock, files, sockets or environment.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::build::locate_component;
use super::component::{
    FrozenClock, Output, PluginInfo, Source, check_header, classify_fault, digest, emit,
    exported_version,
};
use super::engine::Runtime;
use super::error::{Fault, LoadError};
use super::outbound::{Bodies, Egress, EgressPolicy};
use super::sandbox::MemoryCap;
use super::settings::{GraphLimits, GraphSettings, Secrets, resolve_secrets};
use super::waits::{self, BoundedIo, BoundedWaits, WaitLimit};
use crate::storage::{FinishedTask, Item, SentTask, TaskResult};
use crate::types::User;

/// `warden:graph@0.1.0`: runs that start from their input and never pause.
mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/graph/v0.1.0",
        world: "graph-component",
        imports: { default: trappable },
    });
}

/// `warden:graph@0.2.0`: runs that pause and resume.
mod v0_2 {
    wasmtime::component::bindgen!({
        path: ["../wit/common/v0.1.0", "../wit/graph/v0.2.0"],
        world: "warden:graph/graph-component@0.2.0",
        imports: { default: trappable },
    });
}

use v0_2::warden::common::config;
use v0_2::warden::graph::{log, store, stream, types as wit};

/// The newest `warden:graph` contract version this host speaks.
pub const GRAPH_CONTRACT_VERSION: &str = "0.2.0";

/// Every `warden:graph` contract version this host loads, oldest first.
pub const GRAPH_CONTRACT_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// The contract version still in development, if any: its WIT may change
/// until it is released (listed in `wit/released.txt`), so components built
/// against it may need a rebuild; every other version is frozen. None now:
/// every version this host speaks is released.
pub const GRAPH_CONTRACT_IN_DEVELOPMENT: Option<&str> = None;

/// The export interface whose presence marks a graph.
const GRAPH_INTERFACE: &str = "warden:graph/graph";

/// An edge of a graph's drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The node it leaves.
    pub source: String,
    /// The node it reaches.
    pub target: String,
    /// Whether it is taken only on a condition.
    pub conditional: bool,
}

/// What a graph tells about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GraphInfo {
    /// Its name, when it sets one.
    pub name: Option<String>,
    /// Its nodes, without `__start__` and `__end__`.
    pub nodes: Vec<String>,
    /// Its edges.
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

/// A node a resumed run executes, and the answers to its `interrupt`
/// calls, in call order.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The node.
    pub node: String,
    /// For a task a `Send` made: the state the node runs on.
    pub arg: Option<Value>,
    /// What its `interrupt` calls return.
    pub answers: Vec<Value>,
    /// For a task that finished before its step paused: what it returned
    /// (it does not run again).
    pub finished: Option<TaskResult>,
}

impl Task {
    /// Node `node` on the run's state, its `interrupt` calls unanswered.
    pub fn node(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            arg: None,
            answers: Vec::new(),
            finished: None,
        }
    }
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// From `__start__`, with the run's input (an object or `null`).
    Input(Value),
    /// From a checkpoint with nodes still to run.
    Resume {
        /// Writes applied first (`command.update`), or `null`.
        update: Value,
        /// The nodes of the first step.
        tasks: Vec<Task>,
    },
}

/// What a run asks of a graph.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Where it starts.
    pub start: Start,
    /// The thread's values before the run (an object).
    pub values: Value,
    /// The run's config.
    pub config: Value,
    /// The run's context.
    pub context: Value,
    /// Nodes to pause before (`*` for all).
    pub interrupt_before: Vec<String>,
    /// Nodes to pause after (`*` for all).
    pub interrupt_after: Vec<String>,
}

impl Invocation {
    /// A run of `input` from `__start__`, without breakpoints.
    pub fn input(input: Value, values: Value, config: Value, context: Value) -> Self {
        Self {
            start: Start::Input(input),
            values,
            config,
            context,
            interrupt_before: Vec::new(),
            interrupt_after: Vec::new(),
        }
    }

    /// Whether it asks what only `warden:graph@0.2.0` graphs do: to resume
    /// or to pause.
    fn pauses_or_resumes(&self) -> bool {
        matches!(self.start, Start::Resume { .. })
            || !self.interrupt_before.is_empty()
            || !self.interrupt_after.is_empty()
    }
}

/// An `interrupt(value)` call that paused a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupt {
    /// The node that called it.
    pub node: String,
    /// For a task a `Send` made: its index in the pause's `sends`.
    pub send: Option<usize>,
    /// The value it passed.
    pub value: Value,
}

/// How a run ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It reached the end: the thread's new values.
    Done(Value),
    /// It paused, to be resumed by a later run.
    Paused(Pause),
}

/// Where a run paused: its values, and what is left to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    /// The values when it paused.
    pub values: Value,
    /// The nodes to run when it resumes.
    pub next: Vec<String>,
    /// The sent tasks to run when it resumes, before `next`.
    pub sends: Vec<SentTask>,
    /// The `interrupt` calls it paused on; empty at a breakpoint.
    pub interrupts: Vec<Interrupt>,
    /// The tasks of the step that finished before it paused: they do not
    /// run again when it resumes.
    pub finished: Vec<FinishedTask>,
}

/// What a graph reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphEvent {
    /// A step ran: its nodes (or, for `__start__`, the input), then their
    /// updates were applied.
    Step {
        /// Each node and what it returned, in order.
        writes: Vec<(String, Value)>,
        /// The whole state after them.
        values: Value,
        /// The nodes it leads to (always empty from a `0.1.0` graph, which
        /// does not tell).
        next: Vec<String>,
        /// The tasks it sent, to run before `next`.
        sends: Vec<SentTask>,
    },
    /// A chunk of the `custom` stream mode.
    Custom(Value),
    /// A message for the `messages` stream modes, with its metadata.
    Message {
        /// The message.
        message: Value,
        /// Its metadata.
        metadata: Value,
    },
}

/// Why a run did not produce values.
#[derive(Debug, Clone)]
pub enum RunFailure {
    /// The graph reported an error.
    Error {
        /// Its kind (`ValueError`, ...).
        error: String,
        /// What went wrong.
        message: String,
    },
    /// The graph faulted: trap, deadline, memory cap, bad output.
    Fault(Fault),
    /// The run was cancelled while the graph ran.
    Cancelled,
}

impl RunFailure {
    /// The `{"error", "message"}` pair the API reports.
    pub fn error_and_message(&self) -> (String, String) {
        match self {
            RunFailure::Error { error, message } => (error.clone(), message.clone()),
            RunFailure::Fault(fault) => ("GraphFault".into(), format!("The graph failed: {fault}")),
            RunFailure::Cancelled => ("CancelledError".into(), "The run was cancelled".into()),
        }
    }
}

/// Why a node's store call failed: what the HTTP API would have answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// The status (403: the auth plugin refused).
    pub status: u16,
    /// What went wrong.
    pub detail: String,
}

/// The server's store as a run's nodes reach it: each call authorized as
/// `user` by the auth plugin's `store` handlers, as over the HTTP API.
pub trait GraphStore: Send + Sync {
    /// The item at `key` in `namespace`, within the user's scope.
    fn get(
        &self,
        user: &User,
        namespace: Vec<String>,
        key: &str,
    ) -> Result<Option<Item>, StoreError>;
    /// Writes `value` (an object) at `key` in `namespace`.
    fn put(
        &self,
        user: &User,
        namespace: Vec<String>,
        key: &str,
        value: Value,
    ) -> Result<(), StoreError>;
    /// Deletes the item at `key` in `namespace`, if any.
    fn delete(&self, user: &User, namespace: Vec<String>, key: &str) -> Result<(), StoreError>;
    /// The items under `prefix` whose values match `filter`.
    fn search(
        &self,
        user: &User,
        prefix: Vec<String>,
        filter: Option<Map<String, Value>>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Item>, StoreError>;
    /// The namespaces under `prefix` holding items.
    fn list_namespaces(
        &self,
        user: &User,
        prefix: Vec<String>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Vec<String>>, StoreError>;
}

/// The store a run's nodes reach, and the user they reach it as.
#[derive(Clone)]
pub struct RunStore {
    /// The store.
    pub store: Arc<dyn GraphStore>,
    /// The run's user.
    pub user: User,
}

/// Receives a run's [`GraphEvent`]s as they happen.
pub type EventSink = Box<dyn FnMut(GraphEvent) + Send>;

/// A component ready to instantiate, by contract version.
enum Pre {
    V0_1(v0_1::GraphComponentPre<GraphSandbox>),
    V0_2(v0_2::GraphComponentPre<GraphSandbox>),
}

/// A loaded, validated graph component. Cheap to share; every run gets a
/// fresh instance.
pub struct GraphComponent {
    graph_id: String,
    info_for_slot: PluginInfo,
    engine: Engine,
    pre: Pre,
    info: GraphInfo,
    limits: GraphLimits,
    /// Everything it was loaded with, to load it again.
    settings: GraphSettings,
    grants: Arc<Grants>,
}

/// What a graph grants its instances, shared by them all.
struct Grants {
    config: std::collections::BTreeMap<String, String>,
    secrets: Secrets,
    egress: Arc<EgressPolicy>,
}

impl std::fmt::Debug for GraphComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphComponent")
            .field("graph_id", &self.graph_id)
            .field("path", &self.info_for_slot.path)
            .field("digest", &self.info_for_slot.digest)
            .finish_non_exhaustive()
    }
}

impl GraphComponent {
    /// Loads graph `graph_id` from `path` (a component `.wasm`, or a crate
    /// directory, which is built first) and asks it to describe itself.
    pub fn load(
        runtime: &Runtime,
        graph_id: &str,
        path: &Path,
        settings: impl Into<GraphSettings>,
    ) -> Result<Arc<Self>, LoadError> {
        let wasm = locate_component(path)?;
        let bytes = std::fs::read(&wasm).map_err(|source| LoadError::Read {
            path: wasm.clone(),
            source,
        })?;
        Self::from_bytes(runtime, graph_id, &wasm, &bytes, settings)
    }

    /// Loads a graph from the bytes of a component read from `path`.
    pub fn from_bytes(
        runtime: &Runtime,
        graph_id: &str,
        path: &Path,
        bytes: &[u8],
        settings: impl Into<GraphSettings>,
    ) -> Result<Arc<Self>, LoadError> {
        let settings = settings.into();
        let limits = settings.limits;
        let secrets = resolve_secrets(&settings.secrets)?;
        check_header(path, bytes)?;
        let engine = runtime.engine();
        let digest = digest(bytes);
        let component = runtime.compile(&digest, path, bytes)?;
        let contract = check_contract(engine, &component, path)?;
        let link_error = |e: wasmtime::Error| LoadError::Link {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        waits::add_to_linker(&mut linker).map_err(link_error)?;
        let pre = if contract == "0.1.0" {
            v0_1::GraphComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
                .map_err(link_error)?;
            let pre = linker.instantiate_pre(&component).map_err(link_error)?;
            Pre::V0_1(v0_1::GraphComponentPre::new(pre).map_err(link_error)?)
        } else {
            // Linked for every graph; only `allowed_hosts` are reachable.
            wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
                .map_err(link_error)?;
            v0_2::GraphComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
                .map_err(link_error)?;
            let pre = linker.instantiate_pre(&component).map_err(link_error)?;
            Pre::V0_2(v0_2::GraphComponentPre::new(pre).map_err(link_error)?)
        };
        let mut graph = Self {
            graph_id: graph_id.to_owned(),
            info_for_slot: PluginInfo {
                name: graph_id.to_owned(),
                path: path.to_owned(),
                digest,
                contract,
            },
            engine: engine.clone(),
            pre,
            info: GraphInfo::default(),
            limits,
            grants: Arc::new(Grants {
                config: settings.config.clone(),
                secrets,
                egress: Arc::new(EgressPolicy {
                    plugin: Arc::from(graph_id),
                    setting: format!("graphs.{graph_id}.allowed_hosts"),
                    allowed_hosts: settings.allowed_hosts.clone(),
                    limits: settings.http,
                    bodies: Bodies::Streamed,
                }),
            }),
            settings,
        };
        graph.info = graph.describe().map_err(|fault| LoadError::Registration {
            path: path.to_owned(),
            fault,
        })?;
        Ok(Arc::new(graph))
    }

    /// The graph's id in `langgraph.json`.
    pub fn graph_id(&self) -> &str {
        &self.graph_id
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.info_for_slot.path
    }

    /// SHA-256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.info_for_slot.digest
    }

    /// Name (the graph id), file, digest and contract version, as `/info`
    /// shows plugins.
    pub fn plugin_info(&self) -> &PluginInfo {
        &self.info_for_slot
    }

    /// What the graph said about itself when loaded.
    pub fn info(&self) -> &GraphInfo {
        &self.info
    }

    /// The deadline and memory cap of its runs.
    pub fn limits(&self) -> GraphLimits {
        self.limits
    }

    /// Everything it was loaded with (a reload loads it with the same).
    pub fn settings(&self) -> &GraphSettings {
        &self.settings
    }

    /// Whether its runs may pause and resume (interrupts, breakpoints,
    /// `command`): graphs built against `warden:graph@0.1.0` cannot.
    pub fn pauses(&self) -> bool {
        matches!(self.pre, Pre::V0_2(_))
    }

    fn describe(&self) -> Result<GraphInfo, Fault> {
        let never = Arc::new(AtomicBool::new(false));
        let mut store = self.store(never, Box::new(|_| {}));
        let info = match &self.pre {
            Pre::V0_1(pre) => {
                let instance = self.instantiate(&mut store, |s| pre.instantiate(s))?;
                let info = instance
                    .warden_graph_graph()
                    .call_describe(&mut store)
                    .map_err(|e| self.fault(&store, e))?;
                // The records of both versions are the same.
                wit::GraphInfo {
                    name: info.name,
                    nodes: info.nodes,
                    edges: info
                        .edges
                        .into_iter()
                        .map(|e| wit::Edge {
                            source: e.source,
                            target: e.target,
                            conditional: e.conditional,
                        })
                        .collect(),
                    input_schema: info.input_schema,
                    output_schema: info.output_schema,
                    state_schema: info.state_schema,
                    config_schema: info.config_schema,
                    context_schema: info.context_schema,
                }
            }
            Pre::V0_2(pre) => {
                let instance = self.instantiate(&mut store, |s| pre.instantiate(s))?;
                instance
                    .warden_graph_graph()
                    .call_describe(&mut store)
                    .map_err(|e| self.fault(&store, e))?
            }
        };
        let schema = |s: Option<String>, what: &str| -> Result<Option<Value>, Fault> {
            s.map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| Fault::BadOutput(format!("the {what} schema is not JSON: {e}")))
        };
        Ok(GraphInfo {
            name: info.name,
            nodes: info.nodes,
            edges: info
                .edges
                .into_iter()
                .map(|e| Edge {
                    source: e.source,
                    target: e.target,
                    conditional: e.conditional,
                })
                .collect(),
            input_schema: schema(info.input_schema, "input")?,
            output_schema: schema(info.output_schema, "output")?,
            state_schema: schema(info.state_schema, "state")?,
            config_schema: schema(info.config_schema, "config")?,
            context_schema: schema(info.context_schema, "context")?,
        })
    }

    /// Runs the graph in a fresh instance on the calling thread: the new
    /// values or where the run paused, or why there are none. `sink`
    /// receives the graph's events as they happen; setting `cancel` stops
    /// the graph within a millisecond.
    pub fn run(
        &self,
        invocation: &Invocation,
        cancel: Arc<AtomicBool>,
        sink: EventSink,
    ) -> Result<Outcome, RunFailure> {
        self.run_as(invocation, cancel, sink, None)
    }

    /// [`GraphComponent::run`], its nodes reaching `store` (none: their
    /// store calls fail with a 503).
    pub fn run_as(
        &self,
        invocation: &Invocation,
        cancel: Arc<AtomicBool>,
        sink: EventSink,
        run_store: Option<RunStore>,
    ) -> Result<Outcome, RunFailure> {
        let cancelled = cancel.clone();
        let failure = |fault: Fault| {
            if cancelled.load(Ordering::Relaxed) {
                RunFailure::Cancelled
            } else {
                tracing::warn!(graph = %self.graph_id, digest = %&self.digest()[..12], %fault, "graph fault: the run failed");
                RunFailure::Fault(fault)
            }
        };
        let mut store = self.store(cancel, sink);
        store.data_mut().store = run_store;
        let result = match &self.pre {
            Pre::V0_1(pre) => {
                let Start::Input(input) = &invocation.start else {
                    return Err(not_pausing());
                };
                if invocation.pauses_or_resumes() {
                    return Err(not_pausing());
                }
                let instance = self
                    .instantiate(&mut store, |s| pre.instantiate(s))
                    .map_err(failure)?;
                let invocation = v0_1::warden::graph::types::Invocation {
                    input: input.to_string(),
                    values: invocation.values.to_string(),
                    config: invocation.config.to_string(),
                    context: invocation.context.to_string(),
                };
                instance
                    .warden_graph_graph()
                    .call_run(&mut store, &invocation)
                    .map_err(|e| failure(self.fault(&store, e)))?
                    .map(wit::Outcome::Done)
                    .map_err(|e| (e.error, e.message))
            }
            Pre::V0_2(pre) => {
                let instance = self
                    .instantiate(&mut store, |s| pre.instantiate(s))
                    .map_err(failure)?;
                instance
                    .warden_graph_graph()
                    .call_run(&mut store, &invocation_to_wit(invocation))
                    .map_err(|e| failure(self.fault(&store, e)))?
                    .map_err(|e| (e.error, e.message))
            }
        };
        let object = |text: &str, what: &str| match serde_json::from_str::<Value>(text) {
            Ok(values @ Value::Object(_)) => Ok(values),
            Ok(_) => Err(failure(Fault::BadOutput(format!(
                "the {what} are not a JSON object"
            )))),
            Err(e) => Err(failure(Fault::BadOutput(format!(
                "the {what} are not JSON: {e}"
            )))),
        };
        match result {
            Ok(wit::Outcome::Done(values)) => Ok(Outcome::Done(object(&values, "run's values")?)),
            Ok(wit::Outcome::Paused(pause)) => {
                let sends = pause
                    .sends
                    .into_iter()
                    .map(|s| sent_from_wit(s).map_err(|e| failure(Fault::BadOutput(e))))
                    .collect::<Result<Vec<_>, _>>()?;
                // A task the pause names by its index among the sent ones
                // must be one of them.
                let unknown = |send: Option<u32>, node: &str| {
                    send.is_some_and(|s| sends.get(s as usize).is_none_or(|s| s.node != node))
                };
                let finished = pause
                    .finished
                    .into_iter()
                    .map(|f| {
                        if unknown(f.send, &f.node) {
                            return Err("a finished task names a sent task the pause does not \
                                        hold"
                                .to_owned());
                        }
                        Ok(FinishedTask {
                            node: f.node,
                            send: f.send.map(|s| s as usize),
                            result: result_from_wit(f.result)?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| failure(Fault::BadOutput(e)))?;
                let interrupts = pause
                    .interrupts
                    .into_iter()
                    .map(|i| {
                        let send = i.send.map(|s| s as usize);
                        if unknown(i.send, &i.node) {
                            return Err(failure(Fault::BadOutput(
                                "an interrupt names a sent task the pause does not hold".into(),
                            )));
                        }
                        match serde_json::from_str(&i.value) {
                            Ok(value) => Ok(Interrupt {
                                node: i.node,
                                send,
                                value,
                            }),
                            Err(e) => Err(failure(Fault::BadOutput(format!(
                                "an interrupt's value is not JSON: {e}"
                            )))),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Outcome::Paused(Pause {
                    values: object(&pause.values, "paused run's values")?,
                    next: pause.next,
                    sends,
                    interrupts,
                    finished,
                }))
            }
            Err((error, message)) => Err(RunFailure::Error {
                error,
                message: self.grants.secrets.redact(&message).into_owned(),
            }),
        }
    }

    /// Applies `update` to `values` through the graph's reducers, in a
    /// fresh instance: the new values, or why not.
    pub fn apply(&self, values: &Value, update: &Value) -> Result<Value, RunFailure> {
        self.apply_within(values, update, self.limits.timeout)
    }

    /// [`GraphComponent::apply`] within `timeout` (at most the graph's own
    /// deadline): a state update's deadline, not a run's.
    pub fn apply_within(
        &self,
        values: &Value,
        update: &Value,
        timeout: Duration,
    ) -> Result<Value, RunFailure> {
        let never = Arc::new(AtomicBool::new(false));
        let timeout = timeout.min(self.limits.timeout);
        let failure = |fault: Fault| {
            let fault = match fault {
                Fault::Timeout(_) => Fault::Timeout(timeout.as_millis() as u64),
                fault => fault,
            };
            tracing::warn!(graph = %self.graph_id, digest = %&self.digest()[..12], %fault, "graph fault: the state update failed");
            RunFailure::Fault(fault)
        };
        let mut store = self.store(never, Box::new(|_| {}));
        let deadline = Instant::now() + timeout;
        store.data_mut().waits.set_deadline(deadline);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        let (values, update) = (values.to_string(), update.to_string());
        let result = match &self.pre {
            Pre::V0_1(pre) => self
                .instantiate(&mut store, |s| pre.instantiate(s))
                .map_err(failure)?
                .warden_graph_graph()
                .call_apply(&mut store, &values, &update)
                .map_err(|e| failure(self.fault(&store, e)))?
                .map_err(|e| (e.error, e.message)),
            Pre::V0_2(pre) => self
                .instantiate(&mut store, |s| pre.instantiate(s))
                .map_err(failure)?
                .warden_graph_graph()
                .call_apply(&mut store, &values, &update)
                .map_err(|e| failure(self.fault(&store, e)))?
                .map_err(|e| (e.error, e.message)),
        };
        match result {
            Ok(values) => match serde_json::from_str::<Value>(&values) {
                Ok(values @ Value::Object(_)) => Ok(values),
                _ => Err(failure(Fault::BadOutput(
                    "the updated values are not a JSON object".into(),
                ))),
            },
            Err((error, message)) => Err(RunFailure::Error {
                error,
                message: self.grants.secrets.redact(&message).into_owned(),
            }),
        }
    }

    /// A store for one call, under the graph's deadline and memory cap.
    fn store(&self, cancel: Arc<AtomicBool>, sink: EventSink) -> Store<GraphSandbox> {
        let mut sandbox = GraphSandbox::new(
            &self.graph_id,
            self.limits.memory_bytes,
            sink,
            self.grants.clone(),
        );
        // Checked every epoch tick, and by every wait: the deadline, and
        // cancellation. Outbound requests end a little earlier, so that
        // the graph hears of their timeout.
        let deadline = Instant::now() + self.limits.timeout;
        let reserve = (self.limits.timeout / EGRESS_RESERVE).min(Duration::from_millis(50));
        sandbox.egress.set_deadline(deadline - reserve);
        sandbox.waits.set_deadline(deadline);
        sandbox.waits.set_cancel(cancel.clone());
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if cancel.load(Ordering::Relaxed) || Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    /// Instantiates the component in `store` with `instantiate`.
    fn instantiate<T>(
        &self,
        store: &mut Store<GraphSandbox>,
        instantiate: impl FnOnce(&mut Store<GraphSandbox>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        match instantiate(store) {
            Ok(instance) => Ok(instance),
            Err(e) => match self.fault(store, e) {
                Fault::Trap(reason) => Err(Fault::Instantiate(reason)),
                fault => Err(fault),
            },
        }
    }

    fn fault(&self, store: &Store<GraphSandbox>, error: wasmtime::Error) -> Fault {
        if let Some(bad) = &store.data().bad_output {
            return Fault::BadOutput(bad.clone());
        }
        classify_fault(
            &error,
            store.data().memory.exceeded,
            self.limits.timeout,
            self.limits.memory_bytes,
        )
    }
}

/// The failure of a run that a `0.1.0` graph cannot do (the API refuses
/// such runs before they are created).
fn not_pausing() -> RunFailure {
    RunFailure::Error {
        error: "NotImplementedError".into(),
        message: "This graph is built against warden:graph@0.1.0, whose runs cannot pause or \
                  resume: rebuild it with a newer warden-graph"
            .into(),
    }
}

fn result_to_wit(result: &TaskResult) -> wit::TaskResult {
    wit::TaskResult {
        update: result.update.to_string(),
        goto: result.goto.clone(),
        sends: result
            .sends
            .iter()
            .map(|s| wit::Send {
                node: s.node.clone(),
                arg: s.arg.to_string(),
            })
            .collect(),
    }
}

/// A task a graph sent: its state must be a JSON object.
fn sent_from_wit(send: wit::Send) -> Result<SentTask, String> {
    match serde_json::from_str(&send.arg) {
        Ok(arg @ Value::Object(_)) => Ok(SentTask {
            node: send.node,
            arg,
        }),
        Ok(_) => Err("a sent task's state is not a JSON object".into()),
        Err(e) => Err(format!("a sent task's state is not JSON: {e}")),
    }
}

/// What a task returned, as a graph reports it: its update must be a JSON
/// object or `null`.
fn result_from_wit(result: wit::TaskResult) -> Result<TaskResult, String> {
    let update = match serde_json::from_str(&result.update) {
        Ok(update @ (Value::Object(_) | Value::Null)) => update,
        Ok(_) => return Err("a finished task's update is not a JSON object".into()),
        Err(e) => return Err(format!("a finished task's update is not JSON: {e}")),
    };
    Ok(TaskResult {
        update,
        goto: result.goto,
        sends: result
            .sends
            .into_iter()
            .map(sent_from_wit)
            .collect::<Result<_, _>>()?,
    })
}

fn invocation_to_wit(invocation: &Invocation) -> wit::Invocation {
    let start = match &invocation.start {
        Start::Input(input) => wit::Start::Input(input.to_string()),
        Start::Resume { update, tasks } => wit::Start::Resume(wit::Resume {
            update: update.to_string(),
            tasks: tasks
                .iter()
                .map(|t| wit::Task {
                    node: t.node.clone(),
                    arg: t.arg.as_ref().map(Value::to_string),
                    answers: t.answers.iter().map(Value::to_string).collect(),
                    finished: t.finished.as_ref().map(result_to_wit),
                })
                .collect(),
        }),
    };
    wit::Invocation {
        run: run_context(&invocation.config),
        start,
        values: invocation.values.to_string(),
        config: invocation.config.to_string(),
        context: invocation.context.to_string(),
        interrupt_before: invocation.interrupt_before.clone(),
        interrupt_after: invocation.interrupt_after.clone(),
    }
}

/// The user a run acts for, from the `langgraph_auth_user` its config
/// records (its mapping view: identity, display name, permissions, the
/// plugin's other fields); none when the run records no user.
pub fn recorded_user(recorded: &Value) -> Option<User> {
    let fields = recorded.as_object()?;
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut user = User::new(text("identity").unwrap_or_default());
    user.display_name = text("display_name");
    user.is_authenticated = fields
        .get("is_authenticated")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    user.permissions = fields
        .get("permissions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let known = [
        "identity",
        "display_name",
        "is_authenticated",
        "permissions",
    ];
    user.extra = fields
        .iter()
        .filter(|(key, _)| !known.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Some(user)
}

/// The typed run context: the server's keys of the run's
/// `config.configurable`, which the run's creation wrote.
fn run_context(config: &Value) -> wit::RunContext {
    let configurable = &config["configurable"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let user = recorded_user(&configurable["langgraph_auth_user"]).map(|user| wit::RunUser {
        display_name: user.display_name.unwrap_or_else(|| user.identity.clone()),
        identity: user.identity,
        is_authenticated: user.is_authenticated,
        permissions: user.permissions,
        fields: Value::Object(user.extra).to_string(),
    });
    wit::RunContext {
        run_id: text(&configurable["run_id"]),
        thread_id: text(&configurable["thread_id"]),
        assistant_id: text(&configurable["assistant_id"]),
        graph_id: text(&configurable["graph_id"]),
        user,
    }
}

/// Refuses components that are not graphs of a contract this host speaks;
/// the version of the one it does.
fn check_contract(
    engine: &Engine,
    component: &wasmtime::component::Component,
    path: &Path,
) -> Result<String, LoadError> {
    match exported_version(engine, component, GRAPH_INTERFACE, &GRAPH_CONTRACT_VERSIONS) {
        Ok(version) => Ok(version),
        Err(Some(found)) => Err(LoadError::GraphContract {
            path: path.to_owned(),
            found,
            supported: GRAPH_CONTRACT_VERSIONS.join(", "),
        }),
        Err(None) => Err(LoadError::NotAGraph {
            path: path.to_owned(),
        }),
    }
}

/// Outbound requests end this share (1/n) of a run's timeout (at most
/// 50 ms) before its deadline.
const EGRESS_RESERVE: u32 = 10;

/// The store data of one graph instance.
struct GraphSandbox {
    graph: Arc<str>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    egress: Egress,
    grants: Arc<Grants>,
    table: ResourceTable,
    memory: MemoryCap,
    sink: EventSink,
    /// Set when the guest handed the host something it cannot accept.
    bad_output: Option<String>,
    output: Output,
    /// The run's deadline and cancellation, for the guest's waits.
    waits: WaitLimit,
    /// The store its nodes reach, as the run's user.
    store: Option<RunStore>,
}

impl GraphSandbox {
    fn new(graph: &str, memory_bytes: usize, sink: EventSink, grants: Arc<Grants>) -> Self {
        let output = Output::new();
        let wasi = output.wasi().wall_clock(FrozenClock).build();
        Self {
            graph: Arc::from(graph),
            wasi,
            http: WasiHttpCtx::new(),
            egress: Egress::new(grants.egress.clone()),
            grants,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            sink,
            bad_output: None,
            output,
            waits: WaitLimit::default(),
            store: None,
        }
    }

    /// Parses JSON the guest sent; invalid JSON traps the guest.
    fn json(&mut self, text: &str, what: &str) -> wasmtime::Result<Value> {
        serde_json::from_str(text).map_err(|e| {
            let reason = format!("the {what} is not JSON: {e}");
            self.bad_output = Some(reason.clone());
            wasmtime::Error::msg(reason)
        })
    }
}

impl Drop for GraphSandbox {
    fn drop(&mut self) {
        let secrets = &self.grants.secrets;
        self.output.log(Source::Graph(&self.graph), |text| {
            secrets.redact(text).into_owned()
        });
    }
}

impl WasiHttpView for GraphSandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

fn item_to_wit(item: Item) -> store::Item {
    store::Item {
        namespace: item.namespace,
        key: item.key,
        value: Value::Object(item.value).to_string(),
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

impl GraphSandbox {
    /// The run's store and user, or the error a store-less run answers.
    fn run_store(&self) -> Result<RunStore, store::StoreError> {
        self.store.clone().ok_or_else(|| store::StoreError {
            status: 503,
            detail: "This run has no store".into(),
        })
    }

    /// `text` as a JSON value, or a 422 the guest sees.
    fn store_json(&self, text: &str, what: &str) -> Result<Value, store::StoreError> {
        serde_json::from_str(text).map_err(|e| store::StoreError {
            status: 422,
            detail: format!("{what}: not JSON: {e}"),
        })
    }
}

fn store_error(e: StoreError) -> store::StoreError {
    store::StoreError {
        status: e.status,
        detail: e.detail,
    }
}

impl store::Host for GraphSandbox {
    fn get(
        &mut self,
        namespace: Vec<String>,
        key: String,
    ) -> wasmtime::Result<Result<Option<store::Item>, store::StoreError>> {
        Ok(self.run_store().and_then(|run| {
            let item = run.store.get(&run.user, namespace, &key);
            item.map(|i| i.map(item_to_wit)).map_err(store_error)
        }))
    }

    fn put(
        &mut self,
        namespace: Vec<String>,
        key: String,
        value: String,
    ) -> wasmtime::Result<Result<(), store::StoreError>> {
        Ok(self.run_store().and_then(|run| {
            let value = self.store_json(&value, "value")?;
            run.store
                .put(&run.user, namespace, &key, value)
                .map_err(store_error)
        }))
    }

    fn delete(
        &mut self,
        namespace: Vec<String>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::StoreError>> {
        Ok(self.run_store().and_then(|run| {
            run.store
                .delete(&run.user, namespace, &key)
                .map_err(store_error)
        }))
    }

    fn search(
        &mut self,
        namespace_prefix: Vec<String>,
        filter: String,
        limit: u32,
        offset: u32,
    ) -> wasmtime::Result<Result<Vec<store::Item>, store::StoreError>> {
        Ok(self.run_store().and_then(|run| {
            let filter = match self.store_json(&filter, "filter")? {
                Value::Object(filter) => Some(filter),
                Value::Null => None,
                _ => {
                    return Err(store::StoreError {
                        status: 422,
                        detail: "filter: must be an object or null".into(),
                    });
                }
            };
            let items = run.store.search(
                &run.user,
                namespace_prefix,
                filter,
                limit.into(),
                offset.into(),
            );
            items
                .map(|items| items.into_iter().map(item_to_wit).collect())
                .map_err(store_error)
        }))
    }

    fn list_namespaces(
        &mut self,
        prefix: Vec<String>,
        limit: u32,
        offset: u32,
    ) -> wasmtime::Result<Result<Vec<Vec<String>>, store::StoreError>> {
        Ok(self.run_store().and_then(|run| {
            run.store
                .list_namespaces(&run.user, prefix, limit.into(), offset.into())
                .map_err(store_error)
        }))
    }
}

impl config::Host for GraphSandbox {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.grants.config.get(&key).cloned())
    }

    fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .grants
            .secrets
            .get(&name)
            .map(|s| s.expose().to_owned()))
    }
}

impl BoundedWaits for GraphSandbox {
    fn bounded_io(&mut self) -> BoundedIo<'_> {
        BoundedIo {
            table: &mut self.table,
            limit: &self.waits,
        }
    }
}

impl WasiView for GraphSandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for GraphSandbox {}
impl v0_1::warden::graph::types::Host for GraphSandbox {}

impl log::Host for GraphSandbox {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let secrets = &self.grants.secrets;
        let message = secrets.redact(&message);
        let fields = fields
            .iter()
            .map(|(k, v)| secrets.redact(&format!("{k}={v}")).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        emit(Source::Graph(&self.graph), level, &message, "log", &fields);
        Ok(())
    }
}

impl stream::Host for GraphSandbox {
    fn step_done(&mut self, step: wit::Step) -> wasmtime::Result<()> {
        let writes = step
            .writes
            .into_iter()
            .map(|w| Ok((w.node, self.json(&w.update, "step's update")?)))
            .collect::<wasmtime::Result<_>>()?;
        let values = self.json(&step.values, "step's values")?;
        let sends = step
            .sends
            .into_iter()
            .map(|s| {
                sent_from_wit(s).map_err(|reason| {
                    self.bad_output = Some(reason.clone());
                    wasmtime::Error::msg(reason)
                })
            })
            .collect::<wasmtime::Result<_>>()?;
        (self.sink)(GraphEvent::Step {
            writes,
            values,
            next: step.next,
            sends,
        });
        Ok(())
    }

    fn custom(&mut self, data: String) -> wasmtime::Result<()> {
        let data = self.json(&data, "custom chunk")?;
        (self.sink)(GraphEvent::Custom(data));
        Ok(())
    }

    fn message(&mut self, message: String, metadata: String) -> wasmtime::Result<()> {
        let message = self.json(&message, "message")?;
        let metadata = self.json(&metadata, "message metadata")?;
        (self.sink)(GraphEvent::Message { message, metadata });
        Ok(())
    }
}

impl v0_1::warden::graph::log::Host for GraphSandbox {
    fn log(
        &mut self,
        level: v0_1::warden::graph::log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        use v0_1::warden::graph::log::Level as Old;
        let level = match level {
            Old::Trace => log::Level::Trace,
            Old::Debug => log::Level::Debug,
            Old::Info => log::Level::Info,
            Old::Warn => log::Level::Warn,
            Old::Error => log::Level::Error,
        };
        log::Host::log(self, level, message, fields)
    }
}

impl v0_1::warden::graph::stream::Host for GraphSandbox {
    fn step_done(&mut self, step: v0_1::warden::graph::types::Step) -> wasmtime::Result<()> {
        stream::Host::step_done(
            self,
            wit::Step {
                writes: vec![wit::Write {
                    node: step.node,
                    update: step.update,
                }],
                values: step.values,
                next: Vec::new(),
                sends: Vec::new(),
            },
        )
    }

    fn custom(&mut self, data: String) -> wasmtime::Result<()> {
        stream::Host::custom(self, data)
    }

    fn message(&mut self, message: String, metadata: String) -> wasmtime::Result<()> {
        stream::Host::message(self, message, metadata)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_run_context_is_the_configurables_server_keys_typed() {
        let config = json!({"configurable": {
            "run_id": "r", "thread_id": "t", "assistant_id": "a", "graph_id": "g",
            "langgraph_auth_user": {"identity": "user1", "display_name": "Alice",
                "is_authenticated": true, "permissions": ["threads:read"], "team": "blue"},
        }});
        let run = run_context(&config);
        assert_eq!(
            (run.run_id, run.thread_id, run.assistant_id, run.graph_id),
            ("r".into(), "t".into(), "a".into(), "g".into())
        );
        let user = run.user.expect("a user");
        assert_eq!(
            (user.identity.as_str(), user.display_name.as_str()),
            ("user1", "Alice")
        );
        assert_eq!(user.permissions, ["threads:read"]);
        assert_eq!(
            serde_json::from_str::<Value>(&user.fields).unwrap(),
            json!({"team": "blue"})
        );
        // Without an auth plugin a run records no user.
        assert!(run_context(&json!({"configurable": {}})).user.is_none());
        let bare = recorded_user(&json!({"identity": "u"})).unwrap();
        assert!(bare.is_authenticated && bare.display_name.is_none());
    }
}
