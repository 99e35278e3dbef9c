//! Where a run starts: from its input, or resuming the thread's paused
//! checkpoint (LangGraph's `command` and `input: null`), and how the
//! `interrupt` calls it pauses on are named and shown.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::RunSpec;
use crate::plugin::{Interrupt, Invocation, Start, Task};
use crate::storage::{Checkpoint, FinishedTask, PendingInterrupt};

/// What `spec` asks of its graph, on the thread's `values`, whose latest
/// checkpoint is `latest`.
///
/// As LangGraph: a `command` resumes the checkpoint's nodes (or goes to
/// `command.goto`) after applying `command.update`, and `command.resume`
/// answers the `interrupt` call they paused on (a plain value answers the
/// first one; an object keyed by interrupt ids answers those); `input:
/// null` on a checkpoint with nodes left runs them again; any other input
/// starts from `__start__`.
pub(super) fn invocation(spec: &RunSpec, values: Value, latest: Option<&Checkpoint>) -> Invocation {
    let kwargs = &spec.run.kwargs;
    let command = kwargs
        .get("command")
        .and_then(Value::as_object)
        .filter(|c| !c.is_empty());
    let pending = latest.filter(|c| !c.next.is_empty());
    let start = match (command, pending) {
        (Some(command), _) => resume(command, latest),
        (None, Some(checkpoint)) if spec.input.is_null() => resume(&Map::new(), Some(checkpoint)),
        (None, _) => Start::Input(spec.input.clone()),
    };
    Invocation {
        start,
        values,
        config: spec.config.clone(),
        context: spec.context.clone(),
        interrupt_before: breakpoints(&kwargs["interrupt_before"]),
        interrupt_after: breakpoints(&kwargs["interrupt_after"]),
    }
}

/// The nodes `interrupt_before` / `interrupt_after` name (checked when the
/// run was created).
fn breakpoints(value: &Value) -> Vec<String> {
    match value {
        Value::String(all) => vec![all.clone()],
        Value::Array(nodes) => nodes
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn resume(command: &Map<String, Value>, latest: Option<&Checkpoint>) -> Start {
    let update = command
        .get("update")
        .filter(|u| u.is_object())
        .cloned()
        .unwrap_or(Value::Null);
    let goto = match command.get("goto") {
        Some(Value::Array(targets)) => targets.iter().filter_map(goto_task).collect(),
        Some(target) => goto_task(target).into_iter().collect(),
        None => Vec::new(),
    };
    if !goto.is_empty() {
        // Sent tasks run first, as LangGraph's push tasks.
        let (mut tasks, pulls): (Vec<Task>, Vec<Task>) =
            goto.into_iter().partition(|t| t.arg.is_some());
        tasks.extend(pulls);
        return Start::Resume { update, tasks };
    }
    let Some(checkpoint) = latest else {
        return Start::Resume {
            update,
            tasks: Vec::new(),
        };
    };
    let answer = command.get("resume").filter(|r| !r.is_null());
    let by_id = answer.and_then(Value::as_object).filter(|ids| {
        !ids.is_empty()
            && ids
                .keys()
                .all(|id| checkpoint.interrupts.iter().any(|i| &i.id == id))
    });
    let mut answered_plainly = false;
    let tasks = checkpoint
        .tasks()
        .map(|task| {
            let mut answers = Vec::new();
            let paused = |i: &&PendingInterrupt| i.node == task.node && i.send == task.send();
            if let Some(pending) = checkpoint.interrupts.iter().find(paused) {
                answers.clone_from(&pending.answers);
                let given = match by_id {
                    Some(ids) => ids.get(&pending.id).cloned(),
                    None if !answered_plainly => answer.cloned(),
                    None => None,
                };
                if let Some(given) = given {
                    answered_plainly = true;
                    answers.push(given);
                }
            }
            Task {
                node: task.node.to_owned(),
                arg: task.sent.map(|(_, arg)| arg.clone()),
                answers,
                finished: checkpoint.finished_of(&task).cloned(),
            }
        })
        .collect();
    Start::Resume { update, tasks }
}

/// A task `command.goto` names: a node (`"name"`), or a `Send` (`{"node",
/// "input"}`, LangGraph's `RunSend`: the node runs on `input`).
fn goto_task(target: &Value) -> Option<Task> {
    match target {
        Value::String(node) => Some(Task::node(node.clone())),
        Value::Object(send) => {
            let mut task = Task::node(send.get("node")?.as_str()?);
            task.arg = Some(match send.get("input") {
                Some(input @ Value::Object(_)) => input.clone(),
                _ => Value::Object(Map::new()),
            });
            Some(task)
        }
        _ => None,
    }
}

/// The `interrupt` calls a run paused on, as the checkpoint records them:
/// each with the answers its node was given, and an id that names this
/// call of that node on that checkpoint (the same pause on the same
/// checkpoint gets the same id, as in LangGraph).
pub(super) fn pending(
    checkpoint_id: &str,
    interrupts: Vec<Interrupt>,
    invocation: &Invocation,
) -> Vec<PendingInterrupt> {
    interrupts
        .into_iter()
        .map(|Interrupt { node, send, value }| {
            // The resumed tasks are in the checkpoint's order: sent ones first.
            let answers = match &invocation.start {
                Start::Resume { tasks, .. } => tasks
                    .iter()
                    .enumerate()
                    .find(|(i, t)| t.node == node && t.arg.as_ref().map(|_| *i) == send)
                    .map(|(_, t)| t.answers.clone())
                    .unwrap_or_default(),
                Start::Input(_) => Vec::new(),
            };
            let name = match send {
                None => format!("{checkpoint_id}:{node}:{}", answers.len()),
                Some(i) => format!("{checkpoint_id}:{node}:push:{i}:{}", answers.len()),
            };
            let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
                .simple()
                .to_string();
            PendingInterrupt {
                node,
                send,
                id,
                value,
                answers,
            }
        })
        .collect()
}

/// Whether `task` was given to the run as finished (in an earlier run of
/// its paused step), rather than finishing in this one.
pub(super) fn was_finished(task: &FinishedTask, invocation: &Invocation) -> bool {
    let Start::Resume { tasks, .. } = &invocation.start else {
        return false;
    };
    // The resumed tasks are in the checkpoint's order: sent ones first.
    tasks.iter().enumerate().any(|(i, t)| {
        t.finished.is_some() && t.node == task.node && t.arg.as_ref().map(|_| i) == task.send
    })
}

/// The interrupts as the run's stream and `wait` body show them
/// (`__interrupt__`).
pub(super) fn shown(interrupts: &[PendingInterrupt]) -> Value {
    interrupts
        .iter()
        .map(|i| json!({"value": i.value, "id": i.id, "response_schema": null}))
        .collect()
}
