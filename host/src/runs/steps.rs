//! How a graph's steps become checkpoints: the tasks a checkpoint leaves
//! to run (sent ones first, as LangGraph's push tasks before its pull
//! tasks), and the writes its metadata records.

use serde_json::{Map, Value};

use crate::storage::SentTask;
use crate::storage::{Checkpoint, NextTask};

/// A checkpoint's `next` and `sends` for the nodes a step leads to and the
/// tasks it sent.
pub(super) fn pending_tasks(next: Vec<String>, sends: Vec<SentTask>) -> (Vec<String>, Vec<Value>) {
    let (mut nodes, args): (Vec<String>, Vec<Value>) =
        sends.into_iter().map(|s| (s.node, s.arg)).unzip();
    nodes.extend(next);
    (nodes, args)
}

/// The task of checkpoint `from` that made a step's `i`-th write, by
/// `node`: the graph runs them in the checkpoint's order.
pub(super) fn ran<'a>(from: &'a Checkpoint, i: usize, node: &'a str) -> NextTask<'a> {
    from.tasks()
        .nth(i)
        .filter(|t| t.node == node)
        .unwrap_or(NextTask { node, sent: None })
}

/// A step's writes as its checkpoint's metadata records them, `{node:
/// update}`; a node that ran several times (sent tasks) has the list of
/// its updates, as LangGraph groups them.
pub(super) fn step_writes(writes: Vec<(String, Value)>) -> Value {
    let mut counts: Map<String, Value> = Map::new();
    for (node, _) in &writes {
        let n = counts.get(node).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(node.clone(), (n + 1).into());
    }
    let mut grouped = Map::new();
    for (node, update) in writes {
        if counts[&node] == 1 {
            grouped.insert(node, update);
        } else if let Value::Array(list) = grouped
            .entry(node)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(update);
        }
    }
    Value::Object(grouped)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sent_tasks_come_first_and_keep_their_state() {
        let sends = vec![
            SentTask {
                node: "write".into(),
                arg: json!({"subject": "a"}),
            },
            SentTask {
                node: "write".into(),
                arg: json!({"subject": "b"}),
            },
        ];
        let (next, args) = pending_tasks(vec!["collect".into()], sends);
        assert_eq!(next, ["write", "write", "collect"]);
        assert_eq!(args, [json!({"subject": "a"}), json!({"subject": "b"})]);
    }

    #[test]
    fn a_node_that_ran_several_times_records_the_list_of_its_updates() {
        let writes = vec![
            ("write".into(), json!({"jokes": ["a"]})),
            ("plan".into(), json!({"x": 1})),
            ("write".into(), json!({"jokes": ["b"]})),
        ];
        assert_eq!(
            step_writes(writes),
            json!({"write": [{"jokes": ["a"]}, {"jokes": ["b"]}], "plan": {"x": 1}})
        );
    }
}
