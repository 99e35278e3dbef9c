//! `Command`: a node that decides where the run goes next, as LangGraph's
//! `return Command(update=..., goto=...)`.

use serde_json::{Map, Value, json};

use crate::{GraphError, Route, Update};

/// The key under which a [`Command`] travels as a node's [`Update`];
/// the run takes it apart before anything sees it.
const KEY: &str = "__warden_command__";

/// What a node returns to write to the state and choose the next nodes
/// itself: `Ok(Command::goto("review").update(json!({...})).into())`. The
/// `goto` nodes run in the next step, beside those its edges lead to
/// (`END` ends nothing early: the other ways out still run).
///
/// It may also send tasks that run a node on their own state, as
/// LangGraph's `Command(goto=Send(node, arg))`: see [`send`](Command::send).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Command {
    update: Value,
    goto: Vec<String>,
    sends: Vec<crate::Send>,
}

impl Command {
    /// A command that sends the run to `node` next.
    pub fn goto(node: impl Into<String>) -> Self {
        Self {
            goto: vec![node.into()],
            ..Self::default()
        }
    }

    /// A command that sends a task to the next step: `send.node` runs on
    /// `send.arg` as its state, before the step's other nodes.
    pub fn send(send: crate::Send) -> Self {
        Self {
            sends: vec![send],
            ..Self::default()
        }
    }

    /// Sends the run to `node` too, in the same next step.
    pub fn and_goto(mut self, node: impl Into<String>) -> Self {
        self.goto.push(node.into());
        self
    }

    /// Sends another task to the next step, after the ones already sent.
    pub fn and_send(mut self, send: crate::Send) -> Self {
        self.sends.push(send);
        self
    }

    /// Writes `update` (a JSON object of channel writes) to the state, as a
    /// node's returned update.
    pub fn update(mut self, update: Value) -> Self {
        self.update = update;
        self
    }
}

impl From<Command> for Update {
    fn from(command: Command) -> Self {
        json!({ KEY: {"update": command.update, "goto": command.goto, "sends": command.sends} })
    }
}

/// A node's returned value, taken apart: the update, and where a command
/// sends the run (nowhere for a plain update).
pub(crate) fn take(returned: Update) -> Result<(Update, Route), GraphError> {
    let Value::Object(mut map) = returned else {
        return Ok((returned, Route::default()));
    };
    let Some(command) = map.remove(KEY) else {
        return Ok((Value::Object(map), Route::default()));
    };
    if !map.is_empty() {
        return Err(GraphError::invalid_update(
            "A node returned a Command together with other keys",
        ));
    }
    let mut command: Map<String, Value> = match command {
        Value::Object(command) => command,
        _ => return Err(GraphError::invalid_update("A Command is not an object")),
    };
    let nodes = command
        .remove("goto")
        .and_then(|g| g.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    let sends = match command.remove("sends") {
        Some(sends) => serde_json::from_value(sends)
            .map_err(|e| GraphError::invalid_update(format!("A Command's sends are wrong: {e}")))?,
        None => Vec::new(),
    };
    let update = command.remove("update").unwrap_or(Value::Null);
    Ok((update, Route { nodes, sends }))
}
