//! Running a graph: the runner, and where what a run reports goes.
//!
//! A run reports its steps, `custom` chunks and messages. Inside a
//! [`Graph::run`] they are recorded in the returned [`Run`]; otherwise they
//! go to the host's `stream` import (and nowhere in native builds).

use std::cell::RefCell;
use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::graph::{Graph, Route, State, check_send};
use crate::{END, GraphError, RunConfig, START, Send, messages};

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
/// state (or `__start__` took the input; sent tasks on their own), then
/// their updates were applied through the reducers, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The nodes that ran and what each returned, in order: the sent
    /// tasks first.
    pub writes: Vec<Write>,
    /// The whole state after the updates.
    pub values: State,
    /// The nodes the edges lead to from here: empty (with `sends`) when
    /// the run ends.
    pub next: Vec<String>,
    /// The tasks the step's routers and commands sent, in order: they run
    /// in the next step, before the nodes of `next`.
    pub sends: Vec<Send>,
}

/// What a task returned: its update, and where a [`Command`](crate::Command)
/// in it sent the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskResult {
    /// Its update: a JSON object (its messages already have their ids),
    /// or `null` when it returned nothing.
    pub update: Value,
    /// The nodes its command sent the run to (`goto`) and the tasks it
    /// sent; empty for a plain update.
    pub route: Route,
}

/// A task of a paused step that finished before the step paused
/// (LangGraph's pending writes): when the run resumes, it does not run
/// again and what it returned joins the step's.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTask {
    /// The node.
    pub node: String,
    /// For a sent task: its index in the pause's [`sends`](Pause::sends).
    /// `None` for a node of its `next`.
    pub send: Option<usize>,
    /// What it returned.
    pub result: TaskResult,
}

/// A node a resumed run executes, and the answers to its
/// [`interrupt`](crate::interrupt) calls, in call order; or, for a task
/// that finished before its step paused, what it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The node.
    pub node: String,
    /// For a task a [`Send`] made: the state it runs on (a JSON object).
    /// `None` for a node that runs on the run's state.
    pub arg: Option<Value>,
    /// What its `interrupt` calls return: the first call the first value,
    /// and so on; a call past the last one pauses the run again.
    pub answers: Vec<Value>,
    /// For a task that finished before its step paused: what it returned.
    /// It does not run again; its result joins the step's as if it had
    /// just run (its messages are not reported again).
    pub finished: Option<TaskResult>,
}

impl Task {
    /// Node `node`, on the run's state, with no answers yet.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            arg: None,
            answers: Vec::new(),
            finished: None,
        }
    }

    /// A sent task: node `node` on `arg` (a JSON object) as its state, as
    /// a pause's [`sends`](Pause::sends) lists it; no answers yet.
    pub fn send(node: impl Into<String>, arg: Value) -> Self {
        Self {
            arg: Some(arg),
            ..Self::new(node)
        }
    }

    /// Adds an answer to the node's next unanswered `interrupt` call.
    #[must_use]
    pub fn answer(mut self, value: Value) -> Self {
        self.answers.push(value);
        self
    }

    /// Marks the task as finished before its step paused, with what it
    /// returned (a pause's [`finished`](Pause::finished)): it does not run
    /// again.
    #[must_use]
    pub fn finished(mut self, result: TaskResult) -> Self {
        self.finished = Some(result);
        self
    }
}

impl From<Send> for Task {
    fn from(send: Send) -> Self {
        Self::send(send.node, send.arg)
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
        /// The tasks of the first step: the sent ones (with an `arg`)
        /// run first.
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
    /// For a sent task: its index in the pause's [`sends`](Pause::sends).
    /// `None` for a node of its `next`.
    pub send: Option<usize>,
    /// The value it passed.
    pub value: Value,
}

/// Where a paused run stopped.
///
/// A step paused by an [`interrupt`](crate::interrupt) keeps what its
/// other tasks returned (LangGraph's pending writes): they are listed in
/// [`finished`](Pause::finished), and when the run resumes they do not
/// run again; only the tasks that asked do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pause {
    /// The nodes to run when it resumes.
    pub next: Vec<String>,
    /// The sent tasks to run when it resumes, before `next`: resume them
    /// as [`Task`]s with their `arg` (`Task::from(send)`).
    pub sends: Vec<Send>,
    /// The `interrupt` calls it paused on; empty at a breakpoint.
    pub interrupts: Vec<Interrupt>,
    /// The tasks of the step that finished before it paused, in task
    /// order; empty at a breakpoint. Resume them
    /// [`finished`](Task::finished): they do not run again.
    pub finished: Vec<FinishedTask>,
}

impl Pause {
    /// The tasks to resume it with, in order: the sent ones, then the
    /// nodes of `next`, each [`finished`](Task::finished) with its result
    /// when it is one of the step's finished tasks. Add the answers for
    /// those that asked.
    pub fn tasks(&self) -> Vec<Task> {
        let sent = self.sends.iter().cloned().map(Task::from).enumerate();
        let sent = sent.map(|(index, task)| (Some(index), task));
        let next = self
            .next
            .iter()
            .map(|node| (None, Task::new(node.as_str())));
        sent.chain(next)
            .map(|(index, task)| {
                let finished = self
                    .finished
                    .iter()
                    .find(|f| f.send == index && (index.is_some() || f.node == task.node));
                match finished {
                    Some(finished) => task.finished(finished.result.clone()),
                    None => task,
                }
            })
            .collect()
    }
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
    /// [`END`](crate::END) or nodes without a way out. The tasks their
    /// routers and commands sent ([`Send`]) run in the next step too, each
    /// on its own state, before those nodes. More steps than
    /// `config.recursion_limit` (default 25) fail the run with a
    /// `GraphRecursionError`.
    ///
    /// A node that calls [`interrupt`](crate::interrupt) pauses its step:
    /// none of the step's updates is applied yet. As in LangGraph, the
    /// step's other tasks keep what they returned ([`Pause::finished`])
    /// and do not run again when the run resumes: only the tasks that
    /// asked do, then the step's updates are applied together, in task
    /// order.
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
                step_done(writes, &values, &next);
                (tasks_of(next), false)
            }
            Start::Resume { update, tasks } => {
                match update {
                    Value::Object(ref map) => self.apply(&mut values, map)?,
                    Value::Null => {}
                    other => return Err(expected_object(&other)),
                }
                let mut runnable = Vec::new();
                for task in tasks {
                    if task.node == END && task.arg.is_none() {
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
                // Sent tasks first, as in every step.
                runnable.sort_by_key(|task| task.arg.is_none());
                (runnable, true)
            }
        };

        let mut steps = 0;
        while !tasks.is_empty() {
            if !resumed && stops(&before, &tasks) {
                return Ok(Outcome::Paused(values, pause(tasks, Vec::new())));
            }
            resumed = false;
            if steps == limit {
                return Err(GraphError::recursion(limit));
            }
            steps += 1;

            // Every node of the step sees the state as the step began; a
            // sent task (they come first) sees its own.
            let mut done = Vec::with_capacity(tasks.len());
            let mut interrupts = Vec::new();
            for (index, task) in tasks.iter().enumerate() {
                let sent = task.arg.is_some().then_some(index);
                if let Some(result) = &task.finished {
                    // It finished before the step paused: it does not run
                    // again, and its messages were reported then.
                    self.check_result(&task.node, result)?;
                    done.push((index, result.clone()));
                    continue;
                }
                let state = match &task.arg {
                    None => &values,
                    Some(Value::Object(arg)) => arg,
                    Some(other) => {
                        return Err(GraphError::invalid_update(format!(
                            "The task sent to '{}' has arg {other}: Send arg must be a JSON \
                             object",
                            task.node
                        )));
                    }
                };
                set_node(&task.node, steps, sent, task.answers.clone());
                let returned = self.nodes[&task.node](state, config);
                if let Some(value) = take_interrupt() {
                    interrupts.push(Interrupt {
                        node: task.node.clone(),
                        send: sent,
                        value,
                    });
                    continue;
                }
                let (update, route) = crate::command::take(returned?)?;
                let mut result = TaskResult { update, route };
                self.check_result(&task.node, &result)?;
                if let Value::Object(map) = &mut result.update {
                    messages_returned(map);
                }
                done.push((index, result));
            }
            if !interrupts.is_empty() {
                // None of the step's updates is applied; the tasks that
                // finished keep what they returned, and only those that
                // asked run again when the run resumes.
                for (index, result) in done {
                    tasks[index].finished = Some(result);
                }
                return Ok(Outcome::Paused(values, pause(tasks, interrupts)));
            }
            let (writes, routes): (Vec<Write>, Vec<Route>) = done
                .into_iter()
                .map(|(index, result)| {
                    let node = tasks[index].node.clone();
                    let update = result.update;
                    (Write { node, update }, result.route)
                })
                .unzip();
            self.apply_step(&mut values, &writes)?;
            // Task by task, where its command then its ways out lead.
            let mut next = Route::default();
            for (write, route) in writes.iter().zip(routes) {
                next.join(route);
                next.join(self.next(&write.node, &values, config)?);
            }
            let ran: Vec<Task> = std::mem::take(&mut tasks);
            step_done(writes, &values, &next);
            // As LangGraph: a breakpoint after the last node does nothing.
            let more = !next.nodes.is_empty() || !next.sends.is_empty();
            if more && stops(&after, &ran) {
                return Ok(Outcome::Paused(values, pause(tasks_of(next), Vec::new())));
            }
            tasks = tasks_of(next);
        }
        Ok(Outcome::Done(values))
    }

    /// Refuses what node `from` returned when it is not a JSON object (or
    /// `null`), or its command sends the run to a node that does not
    /// exist, or a task to `END`.
    fn check_result(&self, from: &str, result: &TaskResult) -> Result<(), GraphError> {
        let goto = &result.route;
        for send in &goto.sends {
            check_send(send, from)?;
        }
        let sent = goto.sends.iter().map(|s| &s.node);
        let unknown = goto
            .nodes
            .iter()
            .chain(sent)
            .find(|node| *node != END && !self.nodes.contains_key(*node));
        if let Some(node) = unknown {
            return Err(GraphError::value_error(format!(
                "'{from}' sent the run to '{node}', which is not a node"
            )));
        }
        match &result.update {
            Value::Object(_) | Value::Null => Ok(()),
            other => Err(expected_object(other)),
        }
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

/// The tasks of a step that `route` leads to: the sent ones first.
fn tasks_of(route: Route) -> Vec<Task> {
    let sent = route.sends.into_iter().map(Task::from);
    sent.chain(route.nodes.into_iter().map(Task::new)).collect()
}

/// Where a run paused before (or in) a step of `tasks`: they all run when
/// it resumes, except those that finished.
fn pause(tasks: Vec<Task>, interrupts: Vec<Interrupt>) -> Pause {
    let mut pause = Pause {
        interrupts,
        ..Pause::default()
    };
    for (index, task) in tasks.into_iter().enumerate() {
        if let Some(result) = task.finished {
            pause.finished.push(FinishedTask {
                node: task.node.clone(),
                send: task.arg.is_some().then_some(index),
                result,
            });
        }
        match task.arg {
            Some(arg) => pause.sends.push(Send::new(task.node, arg)),
            None => pause.next.push(task.node),
        }
    }
    pause
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

/// Sets the metadata and answers of the task about to run: node `node`,
/// the `sent`-th sent task of its step, if it is one.
fn set_node(node: &str, step: u64, sent: Option<usize>, answers: Vec<Value>) {
    CONTEXT.with_borrow_mut(|context| {
        if let Some(context) = context {
            context.answers = answers.into_iter();
            context.interrupt = None;
            let metadata = &mut context.metadata;
            metadata.insert("langgraph_step".into(), step.into());
            metadata.insert("langgraph_node".into(), node.into());
            // As LangGraph: a sent task is a push task, the others pull.
            let (triggers, path) = match sent {
                Some(index) => (
                    json!(["__pregel_push"]),
                    json!(["__pregel_push", index, false]),
                ),
                None => (
                    json!([format!("branch:to:{node}")]),
                    json!(["__pregel_pull", node]),
                ),
            };
            metadata.insert("langgraph_triggers".into(), triggers);
            metadata.insert("langgraph_path".into(), path);
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

fn step_done(writes: Vec<Write>, values: &State, next: &Route) {
    report(Report::Step(Step {
        writes,
        values: values.clone(),
        next: next.nodes.clone(),
        sends: next.sends.clone(),
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
