//! A chat agent: it calls the model its config names over OpenAI's
//! chat-completions protocol (any compatible server: OpenAI, Ollama,
//! vLLM...), streams the answer token by token, and asks a human before it
//! runs a tool (`interrupt`).
//!
//! `START -> agent -> (tools -> agent)* -> END`:
//! - `agent` sends the conversation to the model, with the `send_email`
//!   tool; its answer (streamed as `AIMessageChunk`s to the run's
//!   `messages` modes) joins `messages`;
//! - when the answer calls tools, `tools` asks for approval of each call
//!   (`{"question": ..., "tool_call": ...}`); a resume with `true`, `"yes"`
//!   or `{"approved": true}` runs it, anything else declines it; either way
//!   a tool message answers the call, and the model has the next word.
//!
//! Settings (its entry in `langgraph.json`): `config.base_url` (the
//! server), `config.model` (the default model; a run's
//! `configurable.model` overrides it), the secret `OPENAI_API_KEY` when the
//! server needs one, and `allowed_hosts`, which must name the server.

use warden_graph::chat::{ChatModel, Tool};
use warden_graph::prelude::*;
use warden_graph::settings;

/// What the agent is told before the conversation.
const SYSTEM_PROMPT: &str = "You are a helpful assistant. You can send e-mails with the \
    send_email tool; a human approves every e-mail before it leaves.";

/// The tool the model may call.
fn send_email_tool() -> Tool {
    Tool::new(
        "send_email",
        "Sends an e-mail.",
        json!({
            "type": "object",
            "properties": {
                "to": {"type": "string", "description": "The recipient's address"},
                "subject": {"type": "string"},
                "body": {"type": "string"}
            },
            "required": ["to", "subject", "body"]
        }),
    )
}

/// The model the run talks to.
fn model(config: &RunConfig) -> Result<ChatModel, GraphError> {
    let base_url = settings::get("base_url").ok_or_else(|| {
        GraphError::new(
            "ValueError",
            "The graph's config sets no base_url (its entry in langgraph.json)",
        )
    })?;
    let name = config
        .configurable()
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| settings::get("model"))
        .ok_or_else(|| GraphError::new("ValueError", "No model: set configurable.model"))?;
    let mut model = ChatModel::new(base_url, name).bind_tools(vec![send_email_tool()]);
    if let Some(key) = settings::secret("OPENAI_API_KEY") {
        model = model.api_key(key.expose());
    }
    Ok(model)
}

/// The conversation so far.
fn history(state: &State) -> &[Value] {
    state
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Sends the conversation to the model; its answer joins it.
fn agent(state: &State, config: &RunConfig) -> Result<Update, GraphError> {
    let mut conversation = vec![messages::system(SYSTEM_PROMPT)];
    conversation.extend(history(state).iter().cloned());
    let answer = model(config)?.invoke(&conversation)?;
    Ok(json!({"messages": [answer]}))
}

/// Whether a human's answer approves a tool call.
fn approves(answer: &Value) -> bool {
    match answer {
        Value::Bool(yes) => *yes,
        Value::String(text) => {
            matches!(text.to_ascii_lowercase().as_str(), "yes" | "y" | "approve")
        }
        Value::Object(fields) => fields.get("approved") == Some(&Value::Bool(true)),
        _ => false,
    }
}

/// Runs the last answer's tool calls, each once a human approves it.
fn tools(state: &State, _: &RunConfig) -> Result<Update, GraphError> {
    let calls = history(state)
        .last()
        .and_then(|m| m["tool_calls"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut results = Vec::new();
    let mut sent = state
        .get("sent")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for call in &calls {
        let id = call["id"].as_str().unwrap_or_default();
        let answer = interrupt(json!({
            "question": format!("Run {}?", call["name"].as_str().unwrap_or("the tool")),
            "tool_call": call,
        }))?;
        let result = if call["name"] != "send_email" {
            format!("Unknown tool {}", call["name"])
        } else if approves(&answer) {
            sent.push(call["args"].clone());
            format!(
                "Sent to {}.",
                call["args"]["to"].as_str().unwrap_or("nobody")
            )
        } else {
            "The user declined: the e-mail was not sent.".to_owned()
        };
        results.push(messages::tool(result, id));
    }
    Ok(json!({"messages": results, "sent": sent}))
}

/// `tools` when the last answer calls any, else the end.
fn route(state: &State, _: &RunConfig) -> &'static str {
    let calls = history(state)
        .last()
        .and_then(|m| m["tool_calls"].as_array())
        .is_some_and(|calls| !calls.is_empty());
    if calls { "tools" } else { END }
}

/// The graph, named "assistant".
pub fn graph() -> Result<Graph, BuildError> {
    StateGraph::new()
        .name("assistant")
        .channel("messages", messages::reducer)
        .node("agent", agent)
        .node("tools", tools)
        .edge(START, "agent")
        .conditional_edges("agent", route, ["tools", END])
        .edge("tools", "agent")
        .compile()
}

warden_graph::export_graph!(graph);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_without_tools_end_the_run_and_tool_calls_go_to_tools() {
        let config = RunConfig::new(json!({}), Value::Null);
        let mut state = State::new();
        state.insert("messages".into(), json!([messages::ai("hi")]));
        assert_eq!(route(&state, &config), END);
        let mut call = messages::ai("");
        call["tool_calls"] =
            json!([{"name": "send_email", "args": {"to": "bob"}, "id": "c1", "type": "tool_call"}]);
        state.insert("messages".into(), json!([call]));
        assert_eq!(route(&state, &config), "tools");
    }

    #[test]
    fn approvals_are_yes_true_or_approved() {
        for yes in [json!(true), json!("yes"), json!({"approved": true})] {
            assert!(approves(&yes), "{yes}");
        }
        for no in [
            json!(false),
            json!("no"),
            json!({"approved": "maybe"}),
            Value::Null,
        ] {
            assert!(!approves(&no), "{no}");
        }
    }
}
