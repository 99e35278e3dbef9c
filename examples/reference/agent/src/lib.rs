//! The reference echo graph (`shared/reference/src/agent/graph.py`) as a
//! Warden graph: no LLM, it answers the last human message with its text
//! and records who asked.
//!
//! - input: `{"messages": [{"role": "user", "content": "<text>"}]}`
//!   (`{"type": "human", ...}` messages too);
//! - output: `{"messages": [..., <the user message>, <an AI message whose
//!   content is "<text>">], "seen_user": "<identity of the caller>"}`.

use warden_graph::prelude::*;

/// Who the run is for: `langgraph_auth_user.identity`, else
/// `langgraph_auth_user_id`, else nobody.
fn identity(config: &RunConfig) -> Option<String> {
    config
        .auth_user()
        .map(|user| user.identity)
        .or_else(|| config.user_id().map(str::to_owned))
}

/// Answers the last human message with its text.
fn echo(state: &State, config: &RunConfig) -> Result<Update, GraphError> {
    let history = state
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text = history
        .iter()
        .rev()
        .find(|m| m["type"] == "human")
        .map(messages::text)
        .unwrap_or_default();
    Ok(json!({
        "messages": [messages::ai(text)],
        "seen_user": identity(config),
    }))
}

/// The graph: `START -> echo -> END`, named "agent".
pub fn graph() -> Result<Graph, BuildError> {
    StateGraph::new()
        .name("agent")
        .channel("messages", messages::reducer)
        .node("echo", echo)
        .edge(START, "echo")
        .edge("echo", END)
        .compile()
}

warden_graph::export_graph!(graph);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(configurable: Value) -> Value {
        json!({"configurable": configurable})
    }

    fn user1() -> Value {
        config(json!({
            "langgraph_auth_user": {"identity": "user1", "display_name": "Alice", "permissions": []},
            "langgraph_auth_user_id": "user1",
        }))
    }

    fn invoke(input: Value, values: State, config: Value) -> State {
        graph()
            .unwrap()
            .invoke(input, values, config, Value::Null)
            .unwrap()
    }

    #[test]
    fn echoes_the_user_and_records_who_asked() {
        let input = json!({"messages": [{"role": "user", "content": "hi"}]});
        let values = invoke(input, State::new(), user1());
        let messages = values["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        let (human, ai) = (&messages[0], &messages[1]);
        assert_eq!(human["type"], "human");
        assert_eq!(human["content"], "hi");
        assert_eq!(ai["type"], "ai");
        assert_eq!(ai["content"], "hi");
        assert!(human["id"].is_string() && ai["id"].is_string());
        assert_ne!(human["id"], ai["id"]);
        assert_eq!(values["seen_user"], "user1");
        // The whole serialised form, ids aside.
        let mut ai = ai.clone();
        ai["id"] = Value::Null;
        assert_eq!(ai, messages::ai("hi"));
    }

    #[test]
    fn a_second_run_appends() {
        let first = invoke(
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            State::new(),
            user1(),
        );
        let second = invoke(
            json!({"messages": [{"type": "human", "content": "again"}]}),
            first.clone(),
            user1(),
        );
        let messages = second["messages"].as_array().unwrap();
        let texts: Vec<_> = messages.iter().map(messages::text).collect();
        assert_eq!(texts, ["hi", "hi", "again", "again"]);
        assert_eq!(messages[..2], first["messages"].as_array().unwrap()[..]);
    }

    #[test]
    fn content_blocks() {
        let input = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hello "},
            {"type": "text", "text": "world"},
        ]}]});
        let values = invoke(input, State::new(), user1());
        assert_eq!(values["messages"][1]["content"], "hello world");
    }

    #[test]
    fn seen_user_falls_back_to_the_user_id_then_null() {
        let input = || json!({"messages": [{"role": "user", "content": "hi"}]});
        let by_id = invoke(
            input(),
            State::new(),
            config(json!({"langgraph_auth_user_id": "u9"})),
        );
        assert_eq!(by_id["seen_user"], "u9");
        let nobody = invoke(input(), State::new(), json!({}));
        assert_eq!(nobody["seen_user"], Value::Null);
    }

    #[test]
    fn steps_and_description() {
        let run = graph().unwrap().run(
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            State::new(),
            user1(),
            Value::Null,
        );
        assert_eq!(run.nodes(), ["__start__", "echo"]);
        // The AI message goes to the `messages` stream with the state's id.
        let values = run.outcome.unwrap();
        assert_eq!(run.messages.len(), 1);
        assert_eq!(run.messages[0].0, values["messages"][1]);
        assert_eq!(run.messages[0].1["langgraph_node"], "echo");

        let graph = graph().unwrap();
        let info = graph.describe();
        assert_eq!(info.name.as_deref(), Some("agent"));
        assert_eq!(info.nodes, ["echo"]);
        let edges: Vec<_> = info
            .edges
            .iter()
            .map(|e| (e.source.as_str(), e.target.as_str(), e.conditional))
            .collect();
        assert_eq!(
            edges,
            [("__start__", "echo", false), ("echo", "__end__", false)]
        );
    }
}
