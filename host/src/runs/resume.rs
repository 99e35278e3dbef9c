//! Where a run starts: from its input, or resuming the thread's paused
//! checkpoint (LangGraph's `command` and `input: null`), and how the
//! `interrupt` calls it pauses on are named and shown.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::RunSpec;
use crate::plugin::{Interrupt, Invocation, Start, Task};
use crate::storage::{Checkpoint, PendingInterrupt};

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
    let goto: Vec<String> = match command.get("goto") {
        Some(Value::String(node)) => vec![node.clone()],
        Some(Value::Array(nodes)) => nodes
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if !goto.is_empty() {
        let tasks = goto
            .into_iter()
            .map(|node| Task {
                node,
                answers: Vec::new(),
            })
            .collect();
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
        .next
        .iter()
        .map(|node| {
            let mut answers = Vec::new();
            if let Some(pending) = checkpoint.interrupts.iter().find(|i| &i.node == node) {
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
                node: node.clone(),
                answers,
            }
        })
        .collect();
    Start::Resume { update, tasks }
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
        .map(|Interrupt { node, value }| {
            let answers = match &invocation.start {
                Start::Resume { tasks, .. } => tasks
                    .iter()
                    .find(|t| t.node == node)
                    .map(|t| t.answers.clone())
                    .unwrap_or_default(),
                Start::Input(_) => Vec::new(),
            };
            let name = format!("{checkpoint_id}:{node}:{}", answers.len());
            let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
                .simple()
                .to_string();
            PendingInterrupt {
                node,
                id,
                value,
                answers,
            }
        })
        .collect()
}

/// The interrupts as the run's stream and `wait` body show them
/// (`__interrupt__`).
pub(super) fn shown(interrupts: &[PendingInterrupt]) -> Value {
    interrupts
        .iter()
        .map(|i| json!({"value": i.value, "id": i.id, "response_schema": null}))
        .collect()
}
