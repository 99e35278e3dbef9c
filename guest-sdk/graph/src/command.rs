//! `Command`: a node that decides where the run goes next, as LangGraph's
//! `return Command(update=..., goto=...)`.

use serde_json::{Map, Value, json};

use crate::{GraphError, Update};

/// The key under which a [`Command`] travels as a node's [`Update`];
/// the run takes it apart before anything sees it.
const KEY: &str = "__warden_command__";

/// What a node returns to write to the state and choose the next nodes
/// itself: `Ok(Command::goto("review").update(json!({...})).into())`. The
/// `goto` nodes run in the next step, beside those its edges lead to
/// (`END` ends nothing early: the other ways out still run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Command {
    update: Value,
    goto: Vec<String>,
}

impl Command {
    /// A command that sends the run to `node` next.
    pub fn goto(node: impl Into<String>) -> Self {
        Self {
            update: Value::Null,
            goto: vec![node.into()],
        }
    }

    /// Sends the run to `node` too, in the same next step.
    pub fn and_goto(mut self, node: impl Into<String>) -> Self {
        self.goto.push(node.into());
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
        json!({ KEY: {"update": command.update, "goto": command.goto} })
    }
}

/// A node's returned value, taken apart: the update, and the nodes a
/// command sends the run to (none for a plain update).
pub(crate) fn take(returned: Update) -> Result<(Update, Vec<String>), GraphError> {
    let Value::Object(mut map) = returned else {
        return Ok((returned, Vec::new()));
    };
    let Some(command) = map.remove(KEY) else {
        return Ok((Value::Object(map), Vec::new()));
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
    let goto = command
        .remove("goto")
        .and_then(|g| g.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    Ok((command.remove("update").unwrap_or(Value::Null), goto))
}
