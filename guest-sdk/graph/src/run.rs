//! Running a graph: the runner, and where what a run reports goes.
//!
//! A run reports its steps, `custom` chunks and messages. Inside a
//! [`Graph::run`] they are recorded in the returned [`Run`]; otherwise they
//! go to the host's `stream` import (and nowhere in native builds).

use std::cell::RefCell;
use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::graph::{Graph, State};
use crate::{GraphError, RunConfig, START, messages};

/// One step of a run: a node ran (or `__start__` took the input) and its
/// update was applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The node that ran (`__start__` for the input).
    pub node: String,
    /// What the node returned (the input for `__start__`): a JSON object,
    /// or `null` for nothing.
    pub update: Value,
    /// The whole state after the update.
    pub values: State,
}

/// A run and everything it reported, from [`Graph::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The final values, or why the run failed.
    pub outcome: Result<State, GraphError>,
    /// The steps, `__start__` first.
    pub steps: Vec<Step>,
    /// The `custom` chunks ([`stream::custom`](crate::stream::custom)).
    pub custom: Vec<Value>,
    /// The messages and their metadata: the ones the nodes streamed
    /// ([`stream::message`](crate::stream::message)) and the ones they
    /// returned.
    pub messages: Vec<(Value, Value)>,
}

impl Run {
    /// The nodes of the steps, in order (`__start__` first).
    pub fn nodes(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.node.as_str()).collect()
    }
}

impl Graph {
    /// Runs the graph on `input` (a JSON object of channel writes, or
    /// `null` for none) from the thread's `values`, with the run's
    /// `config` and `context`, and returns the new values.
    ///
    /// The input is applied through the channels' reducers as the
    /// `__start__` step; then the nodes run one at a time, following the
    /// edges from [`START`], each update applied through the reducers,
    /// until [`END`](crate::END) or a node without a way out. More node
    /// steps than `config.recursion_limit` (default 25) fail the run with
    /// a `GraphRecursionError`.
    ///
    /// Messages a node returns in LangGraph's serialised form (top-level
    /// values of its update, or in lists there) get an id when they lack
    /// one and go to the `messages` stream, as in LangGraph.
    pub fn invoke(
        &self,
        input: Value,
        values: State,
        config: Value,
        context: Value,
    ) -> Result<State, GraphError> {
        let config = RunConfig::new(config, context);
        let scope = Scope::enter(&config, false);
        let outcome = self.execute(input, values, &config);
        drop(scope);
        outcome
    }

    /// Like [`invoke`](Graph::invoke), but records what the run reports
    /// instead of sending it to the host: for tests.
    pub fn run(&self, input: Value, values: State, config: Value, context: Value) -> Run {
        let config = RunConfig::new(config, context);
        let scope = Scope::enter(&config, true);
        let outcome = self.execute(input, values, &config);
        let recorder = scope.finish();
        Run {
            outcome,
            steps: recorder.steps,
            custom: recorder.custom,
            messages: recorder.messages,
        }
    }

    fn execute(
        &self,
        input: Value,
        mut values: State,
        config: &RunConfig,
    ) -> Result<State, GraphError> {
        let limit = config.recursion_limit();
        if limit == 0 {
            return Err(GraphError::value_error(
                "recursion_limit must be at least 1",
            ));
        }
        let update = match input {
            Value::Object(ref map) => {
                self.apply(&mut values, map)?;
                input
            }
            Value::Null => Value::Null,
            other => return Err(expected_object(&other)),
        };
        step_done(START, update, &values);

        let mut current = START.to_owned();
        let mut steps = 0;
        while let Some(node) = self.next(&current, &values, config)? {
            if steps == limit {
                return Err(GraphError::recursion(limit));
            }
            steps += 1;
            set_node(&node, steps);
            let mut update = self.nodes[&node](&values, config)?;
            match &mut update {
                Value::Object(map) => {
                    messages_returned(map);
                    self.apply(&mut values, map)?;
                }
                Value::Null => {}
                other => return Err(expected_object(other)),
            }
            step_done(&node, update, &values);
            current = node;
        }
        Ok(values)
    }
}

fn expected_object(value: &Value) -> GraphError {
    GraphError::invalid_update(format!("Expected dict, got {value}"))
}

/// What the current run (on this thread) knows while its nodes run.
struct Context {
    /// The metadata of the messages the run reports.
    metadata: Map<String, Value>,
    /// The ids of the messages already reported.
    seen: HashSet<String>,
    /// Where reports go in [`Graph::run`]; `None` sends them to the host.
    recorder: Option<Recorder>,
}

#[derive(Default)]
struct Recorder {
    steps: Vec<Step>,
    custom: Vec<Value>,
    messages: Vec<(Value, Value)>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The current run's context while it lives; the previous one (a run
/// inside a node) comes back when it ends, even on a panic.
struct Scope {
    previous: Option<Context>,
}

impl Scope {
    fn enter(config: &RunConfig, record: bool) -> Self {
        let context = Context {
            metadata: config.metadata().clone(),
            seen: HashSet::new(),
            recorder: record.then(Recorder::default),
        };
        Self {
            previous: CONTEXT.replace(Some(context)),
        }
    }

    fn finish(mut self) -> Recorder {
        let ours = CONTEXT.replace(self.previous.take());
        // The previous context is back: dropping would clear it.
        std::mem::forget(self);
        ours.and_then(|c| c.recorder).unwrap_or_default()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CONTEXT.set(self.previous.take());
    }
}

fn set_node(node: &str, step: u64) {
    CONTEXT.with_borrow_mut(|context| {
        if let Some(context) = context {
            let metadata = &mut context.metadata;
            metadata.insert("langgraph_step".into(), step.into());
            metadata.insert("langgraph_node".into(), node.into());
            metadata.insert(
                "langgraph_triggers".into(),
                json!([format!("branch:to:{node}")]),
            );
            metadata.insert("langgraph_path".into(), json!(["__pregel_pull", node]));
        }
    });
}

/// What a run reports.
enum Report {
    Step(Step),
    Custom(Value),
    Message(Value, Value),
}

fn report(report: Report) {
    let report = CONTEXT.with_borrow_mut(|context| {
        let Some(recorder) = context.as_mut().and_then(|c| c.recorder.as_mut()) else {
            return Some(report);
        };
        match report {
            Report::Step(step) => recorder.steps.push(step),
            Report::Custom(data) => recorder.custom.push(data),
            Report::Message(m, meta) => recorder.messages.push((m, meta)),
        }
        None
    });
    match report {
        Some(Report::Step(step)) => crate::__private::step_done(&step),
        Some(Report::Custom(data)) => crate::__private::custom(&data),
        Some(Report::Message(m, meta)) => crate::__private::message(&m, &meta),
        None => {}
    }
}

fn step_done(node: &str, update: Value, values: &State) {
    report(Report::Step(Step {
        node: node.to_owned(),
        update,
        values: values.clone(),
    }));
}

pub(crate) fn custom(data: &Value) {
    report(Report::Custom(data.clone()));
}

/// Reports a message a node streams: the run's metadata fills in what
/// `metadata` lacks, and the message's id is not reported again when the
/// node returns it.
pub(crate) fn message(message: &Value, metadata: &Value) {
    let metadata = CONTEXT.with_borrow_mut(|context| {
        let Some(context) = context else {
            return metadata.clone();
        };
        if let Some(id) = message.get("id").and_then(Value::as_str) {
            context.seen.insert(id.to_owned());
        }
        match metadata {
            Value::Object(given) => {
                let mut merged = context.metadata.clone();
                merged.extend(given.clone());
                merged.into()
            }
            Value::Null => context.metadata.clone().into(),
            other => other.clone(),
        }
    });
    report(Report::Message(message.clone(), metadata));
}

/// Gives the messages a node returned (top-level values of its update, or
/// in lists there) an id when they lack one, and reports those not yet
/// reported, as LangGraph's `messages` stream mode does.
fn messages_returned(update: &mut Map<String, Value>) {
    let mut found = Vec::new();
    for value in update.values_mut() {
        match value {
            Value::Array(items) => {
                found.extend(items.iter_mut().filter(|m| messages::is_message(m)))
            }
            value if messages::is_message(value) => found.push(value),
            _ => {}
        }
    }
    for message in found {
        if message["id"].is_null() {
            message["id"] = messages::new_id().into();
        }
        let id = message["id"].as_str().map(str::to_owned);
        let metadata = CONTEXT.with_borrow_mut(|context| {
            let context = context.as_mut()?;
            let fresh = id.is_none_or(|id| context.seen.insert(id));
            fresh.then(|| Value::Object(context.metadata.clone()))
        });
        if let Some(metadata) = metadata {
            report(Report::Message(message.clone(), metadata));
        }
    }
}
