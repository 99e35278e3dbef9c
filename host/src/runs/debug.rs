//! The chunks of the `checkpoints`, `tasks` and `debug` stream modes, as
//! `langgraph dev` writes them, derived from Warden's checkpoints and the
//! steps a graph reports.
//!
//! Warden's checkpoints are its own: it has no `loop` checkpoint with the
//! bare input before the first node (LangGraph's step `-1` with `next:
//! ["__start__"]`); its `input` checkpoint is the state after the input,
//! whose `next` are the first nodes. The chunks follow Warden's
//! checkpoints (their ids, parents and steps are the ones `/history`
//! shows), and invent none.

use serde_json::{Value, json};

use crate::storage::{Checkpoint, NextTask, PendingInterrupt};
use crate::timestamp::now;

/// The config that names checkpoint `id`: the run's `configurable` with
/// the checkpoint's ids.
fn config(configurable: &Value, c: &Checkpoint, id: &str) -> Value {
    let mut configurable = configurable.as_object().cloned().unwrap_or_default();
    configurable.insert("thread_id".into(), c.thread_id.to_string().into());
    configurable.insert("checkpoint_ns".into(), "".into());
    configurable.insert("checkpoint_id".into(), id.into());
    json!({ "configurable": configurable })
}

/// A `checkpoints` chunk: the checkpoint with its configs and the tasks
/// its `next` make (their ids those of the thread state's `tasks`).
pub(super) fn checkpoint(configurable: &Value, c: &Checkpoint) -> Value {
    let tasks: Vec<Value> = c
        .tasks()
        .map(|task| {
            json!({"id": c.task_id(task.node, task.send()), "name": task.node,
                   "interrupts": c.interrupts_of(&task), "state": null})
        })
        .collect();
    json!({
        "config": config(configurable, c, &c.checkpoint_id),
        "parent_config": c.parent_checkpoint_id.as_deref().map(|p| config(configurable, c, p)),
        "values": c.values,
        "metadata": c.metadata,
        "next": c.nodes_to_run(),
        "tasks": tasks,
    })
}

/// The `debug` chunk of a checkpoint: its `checkpoints` chunk with
/// references to it and its parent.
pub(super) fn debug_checkpoint(configurable: &Value, c: &Checkpoint) -> Value {
    let reference =
        |id: &str| json!({"checkpoint_id": id, "thread_id": c.thread_id, "checkpoint_ns": ""});
    let mut payload = checkpoint(configurable, c);
    payload["checkpoint"] = reference(&c.checkpoint_id);
    payload["parent_checkpoint"] = c
        .parent_checkpoint_id
        .as_deref()
        .map_or(Value::Null, reference);
    debug(step(c), "checkpoint", payload)
}

/// The step of `c`, as its metadata numbers it.
pub(super) fn step(c: &Checkpoint) -> i64 {
    c.metadata.get("step").and_then(Value::as_i64).unwrap_or(0)
}

/// A `tasks` chunk: `task` starts from checkpoint `from`, on its values
/// (a sent task on its own state).
pub(super) fn task_start(from: &Checkpoint, task: NextTask<'_>, metadata: &Value) -> Value {
    let node = task.node;
    let (input, trigger) = match task.sent {
        Some((_, arg)) => (arg, "__pregel_push".to_owned()),
        None => (&from.values, format!("branch:to:{node}")),
    };
    json!({"id": from.task_id(node, task.send()), "name": node, "input": input,
           "triggers": [trigger], "metadata": metadata})
}

/// A `tasks` chunk: `task`, started from checkpoint `from`, returned
/// `result` (its update) or paused on `interrupts`.
pub(super) fn task_result(
    from: &Checkpoint,
    task: NextTask<'_>,
    result: &Value,
    interrupts: &[&PendingInterrupt],
) -> Value {
    let interrupts: Vec<Value> = interrupts
        .iter()
        .map(|i| json!({"value": i.value, "id": i.id, "response_schema": null}))
        .collect();
    json!({"id": from.task_id(task.node, task.send()), "name": task.node, "error": null,
           "result": result, "interrupts": interrupts})
}

/// A `debug` chunk: `payload` of `kind` (`checkpoint`, `task`,
/// `task_result`) at `step`.
pub(super) fn debug(step: i64, kind: &str, payload: Value) -> Value {
    json!({"step": step, "timestamp": now(), "type": kind, "payload": payload})
}
