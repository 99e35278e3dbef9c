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

/// What one node of a step returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Write {
    /// The node (`__start__` for the input).
    pub node: String,
    /// What it returned (the input for `__start__`): a JSON object, or
    /// `null` for nothing.
    pub update: Value,
}

/// One step of a run (LangGraph's superstep): its nodes ran on the same
/// state (or `__start__` took the input), then their updates were applied
/// through the reducers, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The nodes that ran and what each returned, in order.
    pub writes: Vec<Write>,
    /// The whole state after the updates.
    pub values: State,
    /// The nodes the edges lead to from here: empty when the run ends.
    pub next: Vec<String>,
}

/// A node a resumed run executes, and the answers to its
/// [`interrupt`](crate::interrupt) calls, in call order.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The node.
    pub node: String,
    /// What its `interrupt` calls return: the first call the first value,
    /// and so on; a call past the last one pauses the run again.
    pub answers: Vec<Value>,
}

impl Task {
    /// Node `node`, with no answers yet.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            answers: Vec::new(),
        }
    }

    /// Adds an answer to the node's next unanswered `interrupt` call.
    #[must_use]
    pub fn answer(mut self, value: Value) -> Self {
        self.answers.push(value);
        self
    }
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// From [`START`]: the input (a JSON object, or `null` for none) goes
    /// through the reducers, then the edges from [`START`] are followed.
    Input(Value),
    /// From a paused checkpoint: `update` (a JSON object of channel
    /// writes, or `null`) goes through the reducers, then `tasks` run
    /// first, without stopping at a breakpoint before them (LangGraph's
    /// `Command(resume=..., update=..., goto=...)`, or `input: None`).
    Resume {
        /// Writes applied before the tasks run.
        update: Value,
        /// The nodes of the first step.
        tasks: Vec<Task>,
    },
}

/// Everything a run is given: where it starts, the thread's values, the
/// config and context, and where it pauses.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Invocation {
    /// Where the run starts.
    pub start: Start,
    /// The thread's values before the run.
    pub values: State,
    /// The run's config (LangGraph's `RunnableConfig`).
    pub config: Value,
    /// The run's context.
    pub context: Value,
    /// Nodes to pause before (`*` for all); when empty, the graph's own
    /// ([`StateGraph::interrupt_before`](crate::StateGraph::interrupt_before)).
    pub interrupt_before: Vec<String>,
    /// Nodes to pause after (`*` for all); when empty, the graph's own.
    pub interrupt_after: Vec<String>,
}

impl Invocation {
    /// A run of `input` from [`START`], on empty values, config and context.
    pub fn input(input: Value) -> Self {
        Self::from(Start::Input(input))
    }

    /// A run that resumes a paused checkpoint with `tasks`.
    pub fn resume(tasks: impl IntoIterator<Item = Task>) -> Self {
        Self::from(Start::Resume {
            update: Value::Null,
            tasks: tasks.into_iter().collect(),
        })
    }

    /// The thread's values before the run.
    pub fn values(mut self, values: State) -> Self {
        self.values = values;
        self
    }

    /// The run's config.
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// The run's context.
    pub fn context(mut self, context: Value) -> Self {
        self.context = context;
        self
    }

    /// Pauses before these nodes (`*` for all).
    pub fn interrupt_before<I: IntoIterator<Item: Into<String>>>(mut self, nodes: I) -> Self {
        self.interrupt_before = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Pauses after these nodes (`*` for all).
    pub fn interrupt_after<I: IntoIterator<Item: Into<String>>>(mut self, nodes: I) -> Self {
        self.interrupt_after = nodes.into_iter().map(Into::into).collect();
        self
    }
}

impl From<Start> for Invocation {
    fn from(start: Start) -> Self {
        Self {
            start,
            values: State::new(),
            config: json!({}),
            context: Value::Null,
            interrupt_before: Vec::new(),
            interrupt_after: Vec::new(),
        }
    }
}

/// An [`interrupt`](crate::interrupt) call that paused a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interrupt {
    /// The node that called it.
    pub node: String,
    /// The value it passed.
    pub value: Value,
}

/// Where a paused run stopped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pause {
    /// The nodes to run when it resumes.
    pub next: Vec<String>,
    /// The `interrupt` calls it paused on; empty at a breakpoint.
    pub interrupts: Vec<Interrupt>,
}

/// How a run ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It reached the end, with these values.
    Done(State),
    /// It paused with these values, to be resumed.
    Paused(State, Pause),
}

impl Outcome {
    /// The values it ended or paused with.
    pub fn values(&self) -> &State {
        match self {
            Outcome::Done(values) | Outcome::Paused(values, _) => values,
        }
    }
}

/// A run and everything it reported, from [`Graph::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The values it ended (or paused) with, or why the run failed.
    pub outcome: Result<State, GraphError>,
    /// Where it paused, when it did.
    pub pause: Option<Pause>,
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
        self.steps
            .iter()
            .flat_map(|s| s.writes.iter().map(|w| w.node.as_str()))
            .collect()
    }
}

impl Graph {
    /// Runs the graph on `input` (a JSON object of channel writes, or
    /// `null` for none) from the thread's `values`, with the run's
    /// `config` and `context`, and returns the new values (the values it
    /// paused with, if a node paused it).
    ///
    /// The input is applied through the channels' reducers as the
    /// `__start__` step; then the nodes run in steps, following the edges
    /// from [`START`]: a step's nodes all see the state as the step began,
    /// then their updates are applied through the reducers in order (a
    /// channel without one takes one value per step), and every node their
    /// ways out lead to runs, once, in the next step, until
    /// [`END`](crate::END) or nodes without a way out. More steps than
    /// `config.recursion_limit` (default 25) fail the run with a
    /// `GraphRecursionError`.
    ///
    /// A node that calls [`interrupt`](crate::interrupt) pauses its step:
    /// none of the step's updates is applied, and the whole step runs
    /// again when the run resumes (LangGraph keeps the other nodes'
    /// updates and runs only the one that asked).
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
        let invocation = Invocation::input(input)
            .values(values)
            .config(config)
            .context(context);
        self.start(invocation).map(|outcome| match outcome {
            Outcome::Done(values) | Outcome::Paused(values, _) => values,
        })
    }

    /// Runs `invocation` (from the input or resuming a paused checkpoint,
    /// with breakpoints): the values it ended with, or where it paused.
    /// What the run reports goes to the host.
    pub fn start(&self, invocation: Invocation) -> Result<Outcome, GraphError> {
        let config = RunConfig::new(invocation.config.clone(), invocation.context.clone());
        let scope = Scope::enter(&config, false);
        let outcome = self.execute(invocation, &config);
        drop(scope);
        outcome
    }

    /// Like [`invoke`](Graph::invoke), but records what the run reports
    /// instead of sending it to the host: for tests.
    pub fn run(&self, input: Value, values: State, config: Value, context: Value) -> Run {
        self.run_with(
            Invocation::input(input)
                .values(values)
                .config(config)
                .context(context),
        )
    }

    /// Like [`start`](Graph::start), but records what the run reports
    /// instead of sending it to the host: for tests.
    pub fn run_with(&self, invocation: Invocation) -> Run {
        let config = RunConfig::new(invocation.config.clone(), invocation.context.clone());
        let scope = Scope::enter(&config, true);
        let outcome = self.execute(invocation, &config);
        let recorder = scope.finish();
        let (outcome, pause) = match outcome {
            Ok(Outcome::Done(values)) => (Ok(values), None),
            Ok(Outcome::Paused(values, pause)) => (Ok(values), Some(pause)),
            Err(e) => (Err(e), None),
        };
        Run {
            outcome,
            pause,
            steps: recorder.steps,
            custom: recorder.custom,
            messages: recorder.messages,
        }
    }

    fn execute(&self, invocation: Invocation, config: &RunConfig) -> Result<Outcome, GraphError> {
        let limit = config.recursion_limit();
        if limit == 0 {
            return Err(GraphError::value_error(
                "recursion_limit must be at least 1",
            ));
        }
        let breakpoints = |asked: Vec<String>, own: &[String]| {
            if asked.is_empty() {
                own.to_vec()
            } else {
                asked
            }
        };
        let before = breakpoints(invocation.interrupt_before, &self.interrupt_before);
        let after = breakpoints(invocation.interrupt_after, &self.interrupt_after);
        let stops = |list: &[String], tasks: &[Task]| {
            list.iter()
                .any(|n| n == "*" || tasks.iter().any(|t| &t.node == n))
        };
        let mut values = invocation.values;

        // The first step's tasks, and whether they pause before.
        let (mut tasks, mut resumed) = match invocation.start {
            Start::Input(input) => {
                let update = match input {
                    Value::Object(ref map) => {
                        self.apply(&mut values, map)?;
                        input
                    }
                    Value::Null => Value::Null,
                    other => return Err(expected_object(&other)),
                };
                let next = self.next(START, &values, config)?;
                let writes = vec![Write {
                    node: START.to_owned(),
                    update,
                }];
                step_done(writes, &values, next.clone());
                (next.into_iter().map(Task::new).collect::<Vec<_>>(), false)
            }
            Start::Resume { update, tasks } => {
                match update {
                    Value::Object(ref map) => self.apply(&mut values, map)?,
                    Value::Null => {}
                    other => return Err(expected_object(&other)),
                }
                let mut runnable = Vec::new();
                for task in tasks {
                    if task.node == crate::END {
                        continue;
                    }
                    if !self.nodes.contains_key(&task.node) {
                        return Err(GraphError::value_error(format!(
                            "Cannot resume at '{}': the graph has no such node",
                            task.node
                        )));
                    }
                    runnable.push(task);
                }
                (runnable, true)
            }
        };

        let mut steps = 0;
        while !tasks.is_empty() {
            if !resumed && stops(&before, &tasks) {
                return Ok(Outcome::Paused(
                    values,
                    Pause {
                        next: tasks.into_iter().map(|t| t.node).collect(),
                        interrupts: Vec::new(),
                    },
                ));
            }
            resumed = false;
            if steps == limit {
                return Err(GraphError::recursion(limit));
            }
            steps += 1;

            // Every node of the step sees the state as the step began.
            let mut writes = Vec::with_capacity(tasks.len());
            let mut interrupts = Vec::new();
            let mut sent: Vec<String> = Vec::new();
            for task in &tasks {
                set_node(&task.node, steps, task.answers.clone());
                let returned = self.nodes[&task.node](&values, config);
                if let Some(value) = take_interrupt() {
                    interrupts.push(Interrupt {
                        node: task.node.clone(),
                        value,
                    });
                    continue;
                }
                let (mut update, goto) = crate::command::take(returned?)?;
                for node in goto {
                    if node != crate::END && !self.nodes.contains_key(&node) {
                        return Err(GraphError::value_error(format!(
                            "'{}' sent the run to '{node}', which is not a node",
                            task.node
                        )));
                    }
                    if node != crate::END && !sent.contains(&node) {
                        sent.push(node);
                    }
                }
                match &mut update {
                    Value::Object(map) => messages_returned(map),
                    Value::Null => {}
                    other => return Err(expected_object(other)),
                }
                writes.push(Write {
                    node: task.node.clone(),
                    update,
                });
            }
            if !interrupts.is_empty() {
                // The whole step runs again when the run resumes.
                return Ok(Outcome::Paused(
                    values,
                    Pause {
                        next: tasks.into_iter().map(|t| t.node).collect(),
                        interrupts,
                    },
                ));
            }
            self.apply_step(&mut values, &writes)?;
            let mut next: Vec<String> = sent;
            for write in &writes {
                for node in self.next(&write.node, &values, config)? {
                    if !next.contains(&node) {
                        next.push(node);
                    }
                }
            }
            let ran: Vec<Task> = std::mem::take(&mut tasks);
            step_done(writes, &values, next.clone());
            // As LangGraph: a breakpoint after the last node does nothing.
            if !next.is_empty() && stops(&after, &ran) {
                return Ok(Outcome::Paused(
                    values,
                    Pause {
                        next,
                        interrupts: Vec::new(),
                    },
                ));
            }
            tasks = next.into_iter().map(Task::new).collect();
        }
        Ok(Outcome::Done(values))
    }

    /// Applies a step's writes through the reducers, in order: a channel
    /// without a reducer takes one value per step, as in LangGraph.
    fn apply_step(&self, values: &mut State, writes: &[Write]) -> Result<(), GraphError> {
        let mut written = std::collections::HashSet::new();
        for write in writes {
            let Value::Object(update) = &write.update else {
                continue;
            };
            for key in update.keys() {
                if !self.channels.contains_key(key) && !written.insert(key.clone()) {
                    return Err(GraphError::invalid_update(format!(
                        "At key '{key}': Can receive only one value per step. Use an Annotated \
                         key to handle multiple values."
                    )));
                }
            }
            self.apply(values, update)?;
        }
        Ok(())
    }
}

fn expected_object(value: &Value) -> GraphError {
    GraphError::invalid_update(format!("Expected dict, got {value}"))
}

/// What the current run (on this thread) knows while its nodes run.
struct Context {
    /// The metadata of the messages the run reports.
    metadata: Map<String, Value>,
    /// The answers to the running node's `interrupt` calls.
    answers: std::vec::IntoIter<Value>,
    /// The value of the `interrupt` call that pauses the run.
    interrupt: Option<Value>,
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
        // As LangChain's `ensure_config`: the configurable's scalar keys
        // (thread_id, run_id, assistant_id, ...) join the metadata.
        let mut metadata = config.metadata().clone();
        for (key, value) in config.configurable() {
            let scalar = matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_));
            if scalar && !key.starts_with("__") && !metadata.contains_key(key) {
                metadata.insert(key.clone(), value.clone());
            }
        }
        let context = Context {
            metadata,
            answers: Vec::new().into_iter(),
            interrupt: None,
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

fn set_node(node: &str, step: u64, answers: Vec<Value>) {
    CONTEXT.with_borrow_mut(|context| {
        if let Some(context) = context {
            context.answers = answers.into_iter();
            context.interrupt = None;
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

fn step_done(writes: Vec<Write>, values: &State, next: Vec<String>) {
    report(Report::Step(Step {
        writes,
        values: values.clone(),
        next,
    }));
}

/// The value of the `interrupt` call that paused the node that just ran.
fn take_interrupt() -> Option<Value> {
    CONTEXT.with_borrow_mut(|context| context.as_mut()?.interrupt.take())
}

/// Asks a human: see [`interrupt`](crate::interrupt).
pub(crate) fn interrupt(value: Value) -> Result<Value, GraphError> {
    CONTEXT.with_borrow_mut(|context| {
        let Some(context) = context else {
            return Err(GraphError::new(
                "RuntimeError",
                "interrupt() was called outside of a run's node",
            ));
        };
        if context.interrupt.is_none()
            && let Some(answer) = context.answers.next()
        {
            return Ok(answer);
        }
        context.interrupt.get_or_insert(value);
        Err(GraphError::new(
            "GraphInterrupt",
            "The run paused for a human: the node runs again when it resumes",
        ))
    })
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
