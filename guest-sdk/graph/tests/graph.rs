//! The runner, the builder's checks and `describe`, through the public API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use warden_graph::prelude::*;
use warden_graph::reducers::append;

use warden_graph::{
    Edge, FinishedTask, GraphInfo, Invocation, Map, Route, Run, Send, Start, Task, TaskResult,
};

fn obj(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

/// A reducer adding numbers, like `Annotated[int, operator.add]`.
fn add(current: Option<&Value>, update: &Value) -> Result<Value, GraphError> {
    let current = current.and_then(Value::as_i64).unwrap_or(0);
    Ok((current + update.as_i64().unwrap_or(0)).into())
}

fn counter(limit: i64) -> Graph {
    StateGraph::new()
        .channel("count", add)
        .node("tick", |_: &State, _: &RunConfig| Ok(json!({"count": 1})))
        .edge(START, "tick")
        .conditional_edges(
            "tick",
            move |state: &State, _: &RunConfig| {
                if state["count"].as_i64() < Some(limit) {
                    "tick"
                } else {
                    END
                }
            },
            ["tick", END],
        )
        .compile()
        .unwrap()
}

fn run(graph: &Graph, input: Value, config: Value) -> Run {
    graph.run(input, State::new(), config, Value::Null)
}

#[test]
fn linear_graph_reports_every_step() {
    let graph = StateGraph::new()
        .node("a", |state: &State, _: &RunConfig| {
            Ok(json!({"trail": format!("{}a", state["trail"].as_str().unwrap())}))
        })
        .node("b", |state: &State, _: &RunConfig| {
            Ok(json!({"trail": format!("{}b", state["trail"].as_str().unwrap()), "done": true}))
        })
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", END)
        .compile()
        .unwrap();
    let run = run(&graph, json!({"trail": ">"}), json!({}));
    assert_eq!(run.outcome, Ok(obj(json!({"trail": ">ab", "done": true}))));
    assert_eq!(run.nodes(), ["__start__", "a", "b"]);
    let updates: Vec<_> = run
        .steps
        .iter()
        .map(|s| s.writes[0].update.clone())
        .collect();
    assert_eq!(
        updates,
        [
            json!({"trail": ">"}),
            json!({"trail": ">a"}),
            json!({"trail": ">ab", "done": true})
        ]
    );
    assert_eq!(run.steps[1].values, obj(json!({"trail": ">a"})));
    assert_eq!(
        run.steps[2].values,
        obj(json!({"trail": ">ab", "done": true}))
    );
}

#[test]
fn input_goes_through_reducers_and_adds_to_the_thread_values() {
    let graph = counter(3);
    let values = graph
        .invoke(
            json!({"count": 1, "note": "x"}),
            obj(json!({"count": 10, "other": true})),
            json!({}),
            Value::Null,
        )
        .unwrap();
    // 10 + 1 from the input, then one tick (11 >= 3).
    assert_eq!(
        values,
        obj(json!({"count": 12, "other": true, "note": "x"}))
    );
}

#[test]
fn conditional_edges_loop_until_the_router_ends() {
    let run = run(&counter(3), json!({}), json!({}));
    assert_eq!(run.outcome, Ok(obj(json!({"count": 3}))));
    assert_eq!(run.nodes(), ["__start__", "tick", "tick", "tick"]);
}

#[test]
fn recursion_limit() {
    // Exactly the limit: fine.
    let run3 = run(&counter(3), json!({}), json!({"recursion_limit": 3}));
    assert!(run3.outcome.is_ok());
    // One step more: the run fails, with the steps taken so far reported.
    let run2 = run(&counter(3), json!({}), json!({"recursion_limit": 2}));
    let error = run2.outcome.clone().unwrap_err();
    assert_eq!(error.error, "GraphRecursionError");
    assert!(error.message.starts_with(
        "Recursion limit of 2 reached without hitting a stop condition. \
         You can increase the limit by setting the `recursion_limit` config key."
    ));
    assert_eq!(run2.nodes(), ["__start__", "tick", "tick"]);
    // Default 25.
    let forever = run(&counter(i64::MAX), json!({}), json!({}));
    assert!(
        forever
            .outcome
            .unwrap_err()
            .message
            .starts_with("Recursion limit of 25 ")
    );
    assert_eq!(forever.steps.len(), 26);
    let zero = run(&counter(1), json!({}), json!({"recursion_limit": 0}));
    assert_eq!(zero.outcome.unwrap_err().error, "ValueError");
}

#[test]
fn a_node_error_fails_the_run() {
    let graph = StateGraph::new()
        .node("ok", |_: &State, _: &RunConfig| Ok(json!({"x": 1})))
        .node("bad", |_: &State, _: &RunConfig| {
            Err(GraphError::value_error("boom"))
        })
        .edge(START, "ok")
        .edge("ok", "bad")
        .compile()
        .unwrap();
    let run = run(&graph, json!({}), json!({}));
    assert_eq!(run.outcome, Err(GraphError::new("ValueError", "boom")));
    assert_eq!(run.nodes(), ["__start__", "ok"]);
}

#[test]
fn null_input_runs_from_the_thread_values() {
    let graph = counter(1);
    let run = graph.run(
        Value::Null,
        obj(json!({"count": 5})),
        json!({}),
        Value::Null,
    );
    assert_eq!(run.steps[0].writes[0].node, "__start__");
    assert_eq!(run.steps[0].writes[0].update, Value::Null);
    assert_eq!(run.steps[0].values, obj(json!({"count": 5})));
    assert_eq!(run.outcome, Ok(obj(json!({"count": 6}))));
}

#[test]
fn updates_must_be_objects() {
    let bad_input = run(&counter(1), json!(["not", "an", "object"]), json!({}));
    let error = bad_input.outcome.unwrap_err();
    assert_eq!(error.error, "InvalidUpdateError");
    assert_eq!(error.message, r#"Expected dict, got ["not","an","object"]"#);
    assert!(bad_input.steps.is_empty());

    let graph = StateGraph::new()
        .node("nothing", |_: &State, _: &RunConfig| Ok(Value::Null))
        .node("number", |_: &State, _: &RunConfig| Ok(json!(3)))
        .edge(START, "nothing")
        .edge("nothing", "number")
        .compile()
        .unwrap();
    let run = run(&graph, json!({"a": 1}), json!({}));
    assert_eq!(run.outcome.unwrap_err().error, "InvalidUpdateError");
    assert_eq!(run.steps[1].writes[0].update, Value::Null);
    assert_eq!(run.steps[1].values, obj(json!({"a": 1})));
}

#[test]
fn a_router_naming_an_undeclared_target_fails() {
    let graph = StateGraph::new()
        .node("a", |_: &State, _: &RunConfig| Ok(Value::Null))
        .conditional_edges(START, |_: &State, _: &RunConfig| "b", ["a"])
        .compile()
        .unwrap();
    assert_eq!(
        run(&graph, json!({}), json!({})).outcome.unwrap_err().error,
        "ValueError"
    );
}

#[test]
fn a_node_without_a_way_out_ends_the_run() {
    let graph = StateGraph::new()
        .node("only", |_: &State, _: &RunConfig| Ok(json!({"ran": true})))
        .edge(START, "only")
        .compile()
        .unwrap();
    assert_eq!(
        run(&graph, json!({}), json!({})).outcome,
        Ok(obj(json!({"ran": true})))
    );
}

#[test]
fn nodes_see_the_config_and_context() {
    let graph = StateGraph::new()
        .node("who", |_: &State, config: &RunConfig| {
            Ok(json!({"user": config.auth_user().map(|u| u.identity), "ctx": config.context()}))
        })
        .edge(START, "who")
        .compile()
        .unwrap();
    let config = json!({"configurable": {"langgraph_auth_user": {"identity": "u"}}});
    let values = graph
        .invoke(json!({}), State::new(), config, json!({"k": 1}))
        .unwrap();
    assert_eq!(values, obj(json!({"user": "u", "ctx": {"k": 1}})));
}

#[test]
fn streams_custom_chunks_and_messages() {
    let graph = StateGraph::new()
        .channel("messages", messages::reducer)
        .node("talk", |_: &State, _: &RunConfig| {
            stream::custom(&json!({"i": 0}));
            let mut streamed = messages::ai("streamed");
            streamed["id"] = "s1".into();
            stream::message(&streamed, &json!({"extra": true}));
            stream::custom(&json!({"i": 1}));
            Ok(json!({"messages": [streamed, messages::ai("returned"), {"role": "user", "content": "raw"}]}))
        })
        .edge(START, "talk")
        .compile()
        .unwrap();
    let run = graph.run(
        json!({"messages": [messages::human("in")]}),
        State::new(),
        json!({"metadata": {"graph_id": "g"}}),
        Value::Null,
    );
    let values = run.outcome.unwrap();
    assert_eq!(run.custom, [json!({"i": 0}), json!({"i": 1})]);

    // The streamed message once, then the returned serialised one (not the
    // raw dict, nor the input), with the id the state keeps.
    assert_eq!(run.messages.len(), 2);
    let (first, meta) = &run.messages[0];
    assert_eq!(first["id"], "s1");
    assert_eq!(meta["extra"], true);
    assert_eq!(meta["langgraph_node"], "talk");
    assert_eq!(meta["langgraph_step"], 1);
    assert_eq!(meta["graph_id"], "g");
    let (second, meta) = &run.messages[1];
    assert_eq!(messages::text(second), "returned");
    assert_eq!(meta["langgraph_node"], "talk");
    assert_eq!(meta["langgraph_triggers"], json!(["branch:to:talk"]));
    let state_messages = values["messages"].as_array().unwrap();
    assert_eq!(state_messages.len(), 4);
    assert_eq!(state_messages[2]["id"], second["id"]);
    // The step's update carries the same id.
    assert_eq!(
        run.steps[1].writes[0].update["messages"][1]["id"],
        second["id"]
    );
}

#[test]
fn invoke_outside_run_records_nothing_and_runs_nest() {
    let inner = counter(2);
    let graph = StateGraph::new()
        .node("outer", move |_: &State, _: &RunConfig| {
            stream::custom(&json!("before"));
            let values = inner.invoke(json!({}), State::new(), json!({}), Value::Null)?;
            stream::custom(&json!("after"));
            Ok(json!({"inner": values["count"]}))
        })
        .edge(START, "outer")
        .compile()
        .unwrap();
    let run = run(&graph, json!({}), json!({}));
    assert_eq!(run.outcome, Ok(obj(json!({"inner": 2}))));
    assert_eq!(run.custom, [json!("before"), json!("after")]);
    assert_eq!(run.nodes(), ["__start__", "outer"]);
}

fn noop(_: &State, _: &RunConfig) -> Result<Update, GraphError> {
    Ok(Value::Null)
}

#[test]
fn compile_checks_the_graph() {
    let base = || StateGraph::new().node("a", noop).edge(START, "a");
    let error = |graph: StateGraph| graph.compile().unwrap_err();
    assert_eq!(
        error(base().node("a", noop)),
        BuildError::DuplicateNode("a".into())
    );
    for name in [START, END, "", "a:b", "a|b"] {
        assert_eq!(
            error(base().node(name, noop)),
            BuildError::ReservedName(name.into())
        );
    }
    assert_eq!(
        error(base().edge("x", "a")),
        BuildError::UnknownSource("x".into())
    );
    assert_eq!(
        error(base().edge("a", "y")),
        BuildError::UnknownTarget {
            source: "a".into(),
            target: "y".into()
        }
    );
    assert_eq!(
        error(base().conditional_edges("a", |_: &State, _: &RunConfig| END, ["a", "z"])),
        BuildError::UnknownTarget {
            source: "a".into(),
            target: "z".into()
        }
    );
    assert_eq!(error(base().edge(END, "a")), BuildError::EdgeFromEnd);
    assert_eq!(error(base().edge("a", START)), BuildError::EdgeToStart);
    assert_eq!(
        error(StateGraph::new().node("a", noop)),
        BuildError::NoEntryPoint
    );
    assert_eq!(
        error(base().conditional_edges("a", |_: &State, _: &RunConfig| END, Vec::<String>::new())),
        BuildError::NoTargets("a".into())
    );
    assert_eq!(
        BuildError::NoEntryPoint.to_string(),
        "Graph must have an entrypoint: add at least one edge from START to another node"
    );
}

#[test]
fn describe_lists_nodes_edges_and_schemas() {
    let graph = StateGraph::new()
        .name("agent")
        .node("plan", noop)
        .node("act", noop)
        .edge(START, "plan")
        .conditional_edges("plan", |_: &State, _: &RunConfig| END, ["act", END])
        .edge("act", "plan")
        .input_schema(json!({"type": "object"}))
        .context_schema(json!({"type": "object", "properties": {}}))
        .compile()
        .unwrap();
    let edge = |source: &str, target: &str, conditional| Edge {
        source: source.into(),
        target: target.into(),
        conditional,
    };
    assert_eq!(
        graph.describe(),
        &GraphInfo {
            name: Some("agent".into()),
            nodes: vec!["plan".into(), "act".into()],
            edges: vec![
                edge(START, "plan", false),
                edge("plan", "act", true),
                edge("plan", END, true),
                edge("act", "plan", false),
            ],
            input_schema: Some(json!({"type": "object"})),
            output_schema: None,
            state_schema: None,
            config_schema: None,
            context_schema: Some(json!({"type": "object", "properties": {}})),
        }
    );
    assert_eq!(
        StateGraph::new()
            .node("a", noop)
            .edge(START, "a")
            .compile()
            .unwrap()
            .describe()
            .name,
        None
    );
}

#[test]
fn apply_goes_through_the_reducers_and_replaces_the_rest() {
    let graph = StateGraph::new()
        .channel("count", add)
        .node("tick", |_: &State, _: &RunConfig| Ok(json!({})))
        .edge(START, "tick")
        .compile()
        .unwrap();
    let mut values = obj(json!({"count": 2, "label": "a"}));
    graph
        .apply(&mut values, &obj(json!({"count": 3, "label": "b"})))
        .unwrap();
    assert_eq!(Value::Object(values), json!({"count": 5, "label": "b"}));
}

/// `a -> b -> END`, each appending its name to `trail`.
fn trail() -> StateGraph {
    let append = |name: &'static str| {
        move |state: &State, _: &RunConfig| {
            let trail = state.get("trail").and_then(Value::as_str).unwrap_or("");
            Ok(json!({"trail": format!("{trail}{name}")}))
        }
    };
    StateGraph::new()
        .node("a", append("a"))
        .node("b", append("b"))
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", END)
}

#[test]
fn every_step_tells_which_nodes_come_next() {
    let run = run(&trail().compile().unwrap(), json!({}), json!({}));
    let next: Vec<_> = run.steps.iter().map(|s| s.next.clone()).collect();
    assert_eq!(next, [vec!["a"], vec!["b"], vec![]]);
}

#[test]
fn a_breakpoint_before_a_node_pauses_the_run_and_a_resume_runs_it() {
    let graph = trail().compile().unwrap();
    let paused = graph.run_with(Invocation::input(json!({})).interrupt_before(["b"]));
    assert_eq!(paused.nodes(), ["__start__", "a"]);
    assert_eq!(paused.outcome, Ok(obj(json!({"trail": "a"}))));
    let pause = paused.pause.expect("the run paused");
    assert_eq!(pause.next, ["b"]);
    assert!(pause.interrupts.is_empty());

    // Resuming does not stop at the breakpoint it paused on.
    let resumed = graph.run_with(
        Invocation::resume([Task::new("b")])
            .values(obj(json!({"trail": "a"})))
            .interrupt_before(["b"]),
    );
    assert_eq!(resumed.pause, None);
    assert_eq!(resumed.nodes(), ["b"]);
    assert_eq!(resumed.outcome, Ok(obj(json!({"trail": "ab"}))));
}

#[test]
fn a_breakpoint_after_a_node_pauses_with_the_following_node_next() {
    let graph = trail().compile().unwrap();
    let paused = graph.run_with(Invocation::input(json!({})).interrupt_after(["a"]));
    assert_eq!(paused.nodes(), ["__start__", "a"]);
    assert_eq!(paused.pause.unwrap().next, ["b"]);

    let last = graph.run_with(Invocation::input(json!({})).interrupt_after(["*"]));
    assert_eq!(last.nodes(), ["__start__", "a"]);
    // As LangGraph: a breakpoint after the last node does nothing.
    let at_end = graph.run_with(
        Invocation::resume([Task::new("b")])
            .values(obj(json!({"trail": "a"})))
            .interrupt_after(["b"]),
    );
    assert_eq!(at_end.pause, None);
    assert_eq!(at_end.outcome, Ok(obj(json!({"trail": "ab"}))));
}

#[test]
fn the_graphs_own_breakpoints_apply_unless_the_run_names_its_own() {
    let graph = trail().interrupt_before(["a"]).compile().unwrap();
    let own = graph.run_with(Invocation::input(json!({})));
    assert_eq!(own.pause.unwrap().next, ["a"]);
    let overridden = graph.run_with(Invocation::input(json!({})).interrupt_before(["b"]));
    assert_eq!(overridden.pause.unwrap().next, ["b"]);

    let unknown = trail().interrupt_after(["nope"]).compile().unwrap_err();
    assert_eq!(unknown, BuildError::UnknownInterruptNode("nope".into()));
    assert!(trail().interrupt_before(["*"]).compile().is_ok());
}

/// `START -> ask -> END`: asks twice, then records both answers.
fn two_questions() -> Graph {
    StateGraph::new()
        .node("ask", |_: &State, _: &RunConfig| {
            let first = interrupt(json!("first?"))?;
            let second = interrupt(json!("second?"))?;
            Ok(json!({"answers": [first, second]}))
        })
        .edge(START, "ask")
        .edge("ask", END)
        .compile()
        .unwrap()
}

#[test]
fn interrupt_pauses_the_node_and_each_resume_answers_one_more_call() {
    let graph = two_questions();
    let first = run(&graph, json!({"topic": "x"}), json!({}));
    assert_eq!(
        first.nodes(),
        ["__start__"],
        "the paused node reports no step"
    );
    assert_eq!(first.outcome, Ok(obj(json!({"topic": "x"}))));
    let pause = first.pause.unwrap();
    assert_eq!(pause.next, ["ask"]);
    assert_eq!(pause.interrupts.len(), 1);
    assert_eq!(pause.interrupts[0].node, "ask");
    assert_eq!(pause.interrupts[0].value, json!("first?"));

    let values = obj(json!({"topic": "x"}));
    let second = graph
        .run_with(Invocation::resume([Task::new("ask").answer(json!("A"))]).values(values.clone()));
    assert_eq!(second.pause.unwrap().interrupts[0].value, json!("second?"));

    let done = graph.run_with(
        Invocation::resume([Task::new("ask").answer(json!("A")).answer(json!("B"))]).values(values),
    );
    assert_eq!(done.pause, None);
    assert_eq!(done.nodes(), ["ask"]);
    assert_eq!(
        done.outcome,
        Ok(obj(json!({"topic": "x", "answers": ["A", "B"]})))
    );
}

#[test]
fn a_node_that_swallows_its_interrupt_still_pauses_and_its_update_is_dropped() {
    let graph = StateGraph::new()
        .node("sly", |_: &State, _: &RunConfig| {
            let _ignored = interrupt(json!("approve?"));
            Ok(json!({"done": true}))
        })
        .edge(START, "sly")
        .edge("sly", END)
        .compile()
        .unwrap();
    let run = run(&graph, json!({}), json!({}));
    assert_eq!(run.pause.unwrap().interrupts[0].value, json!("approve?"));
    assert_eq!(run.outcome, Ok(State::new()));
}

#[test]
fn a_resume_applies_its_update_and_may_go_elsewhere() {
    let graph = trail().compile().unwrap();
    let mut invocation = Invocation::resume([Task::new("b")]).values(obj(json!({"trail": "a"})));
    invocation.start = Start::Resume {
        update: json!({"trail": "z"}),
        tasks: vec![Task::new("b")],
    };
    let run = graph.run_with(invocation);
    assert_eq!(run.outcome, Ok(obj(json!({"trail": "zb"}))));

    let to_end =
        graph.run_with(Invocation::resume([Task::new(END)]).values(obj(json!({"trail": "a"}))));
    assert_eq!(to_end.nodes(), Vec::<&str>::new());
    assert_eq!(to_end.outcome, Ok(obj(json!({"trail": "a"}))));

    let unknown = graph.run_with(Invocation::resume([Task::new("nope")]));
    assert_eq!(unknown.outcome.unwrap_err().error, "ValueError");
}

#[test]
fn interrupt_outside_a_run_is_an_error() {
    assert_eq!(interrupt(json!(1)).unwrap_err().error, "RuntimeError");
}

fn mark(name: &'static str) -> impl Fn(&State, &RunConfig) -> Result<Update, GraphError> {
    move |_: &State, _: &RunConfig| Ok(json!({"trail": [name]}))
}

#[test]
fn several_ways_out_run_their_nodes_in_one_step_merged_by_the_reducers() {
    // START -> fan -> (left, right) -> join -> END
    let graph = StateGraph::new()
        .channel("trail", append)
        .node("fan", mark("fan"))
        .node("left", mark("left"))
        .node("right", |state: &State, _: &RunConfig| {
            // Both branches see the state as the step began.
            assert_eq!(state["trail"], json!(["fan"]));
            Ok(json!({"trail": ["right"]}))
        })
        .node("join", mark("join"))
        .edge(START, "fan")
        .edge("fan", "left")
        .edge("fan", "right")
        .edge("left", "join")
        .edge("right", "join")
        .edge("join", END)
        .compile()
        .unwrap();
    let run = run(&graph, json!({}), json!({}));
    assert_eq!(
        run.outcome,
        Ok(obj(json!({"trail": ["fan", "left", "right", "join"]})))
    );
    let steps: Vec<Vec<&str>> = run
        .steps
        .iter()
        .map(|s| s.writes.iter().map(|w| w.node.as_str()).collect())
        .collect();
    assert_eq!(
        steps,
        [
            vec!["__start__"],
            vec!["fan"],
            vec!["left", "right"],
            vec!["join"]
        ]
    );
    assert_eq!(run.steps[1].next, ["left", "right"]);
    assert_eq!(run.steps[2].next, ["join"], "join runs once");
}

#[test]
fn a_router_may_send_the_run_to_several_nodes() {
    let graph = StateGraph::new()
        .channel("trail", append)
        .node("a", mark("a"))
        .node("b", mark("b"))
        .conditional_edges(START, |_: &State, _: &RunConfig| vec!["a", "b"], ["a", "b"])
        .edge("a", END)
        .edge("b", END)
        .compile()
        .unwrap();
    let run = run(&graph, json!({}), json!({}));
    assert_eq!(run.outcome, Ok(obj(json!({"trail": ["a", "b"]}))));
    assert_eq!(run.nodes(), ["__start__", "a", "b"]);
}

#[test]
fn two_nodes_of_a_step_writing_a_plain_channel_fail_the_run() {
    let graph = StateGraph::new()
        .node("a", |_: &State, _: &RunConfig| Ok(json!({"x": 1})))
        .node("b", |_: &State, _: &RunConfig| Ok(json!({"x": 2})))
        .edge(START, "a")
        .edge(START, "b")
        .compile()
        .unwrap();
    let error = run(&graph, json!({}), json!({})).outcome.unwrap_err();
    assert_eq!(error.error, "InvalidUpdateError");
    assert!(
        error
            .message
            .starts_with("At key 'x': Can receive only one value per step")
    );
}

/// Counts the calls of node `name`, which marks the trail and sends the
/// run to `after` with a `Command`.
fn counted_goto(
    calls: &Arc<AtomicUsize>,
) -> impl Fn(&State, &RunConfig) -> Result<Update, GraphError> + use<> {
    let calls = Arc::clone(calls);
    move |_: &State, _: &RunConfig| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(Command::goto("after")
            .update(json!({"trail": ["other"]}))
            .into())
    }
}

#[test]
fn a_node_that_asks_in_a_parallel_step_pauses_it_and_the_others_keep_what_they_returned() {
    // START -> first -> (ask, other); other's command goes to `after`.
    let other_calls = Arc::new(AtomicUsize::new(0));
    let graph = StateGraph::new()
        .channel("trail", append)
        .node("first", mark("first"))
        .node("ask", |_: &State, _: &RunConfig| {
            let answer = interrupt(json!("ok?"))?;
            Ok(json!({"trail": [answer]}))
        })
        .node("other", counted_goto(&other_calls))
        .node("after", mark("after"))
        .edge(START, "first")
        .edge("first", "ask")
        .edge("first", "other")
        .edge("after", END)
        .compile()
        .unwrap();
    let paused = run(&graph, json!({}), json!({}));
    let values = paused.outcome.unwrap();
    assert_eq!(
        values,
        obj(json!({"trail": ["first"]})),
        "the step wrote nothing"
    );
    let pause = paused.pause.unwrap();
    assert_eq!(pause.next, ["ask", "other"]);
    assert_eq!(pause.interrupts.len(), 1);
    assert_eq!(
        pause.finished,
        [FinishedTask {
            node: "other".into(),
            send: None,
            result: TaskResult {
                update: json!({"trail": ["other"]}),
                route: Route::from("after"),
            },
        }]
    );
    assert_eq!(other_calls.load(Ordering::SeqCst), 1);

    let mut tasks = pause.tasks();
    assert_eq!(tasks[1].finished, Some(pause.finished[0].result.clone()));
    tasks[0] = tasks[0].clone().answer(json!("yes"));
    let resumed = graph.run_with(Invocation::resume(tasks).values(values));
    assert_eq!(
        other_calls.load(Ordering::SeqCst),
        1,
        "other does not run again"
    );
    assert_eq!(writes(&resumed), [vec!["ask", "other"], vec!["after"]]);
    assert_eq!(resumed.steps[0].next, ["after"], "its command still counts");
    assert_eq!(
        resumed.outcome,
        Ok(obj(json!({"trail": ["first", "yes", "other", "after"]})))
    );
}

#[test]
fn a_task_resumed_finished_does_not_report_its_messages_again() {
    let graph = StateGraph::new()
        .channel("messages", messages::reducer)
        .node("ask", |_: &State, _: &RunConfig| {
            let answer = interrupt(json!("ok?"))?;
            Ok(json!({"answer": answer}))
        })
        .node("reply", |_: &State, _: &RunConfig| {
            Ok(json!({"messages": [messages::ai("hello")]}))
        })
        .edge(START, "ask")
        .edge(START, "reply")
        .compile()
        .unwrap();
    let paused = run(&graph, json!({}), json!({}));
    assert_eq!(paused.messages.len(), 1);
    let reported = paused.messages[0].0.clone();
    assert_eq!(messages::text(&reported), "hello");
    let pause = paused.pause.unwrap();
    // The finished task's update holds the message with its id.
    let finished = &pause.finished[0];
    assert_eq!(finished.node, "reply");
    assert_eq!(finished.result.update["messages"][0], reported);

    let resumed = graph.run_with(Invocation::resume([
        Task::new("ask").answer(json!("yes")),
        Task::new("reply").finished(finished.result.clone()),
    ]));
    assert_eq!(resumed.messages, []);
    let values = resumed.outcome.unwrap();
    assert_eq!(values["messages"], json!([reported]));
    assert_eq!(values["answer"], "yes");
}

/// `triage` decides where the run goes with a `Command`; `urgent` and
/// `normal` have edges to the end.
fn triage_graph() -> Graph {
    StateGraph::new()
        .node("triage", |state: &State, _: &RunConfig| {
            let target = if state.get("severity") == Some(&json!("high")) {
                "urgent"
            } else {
                "normal"
            };
            Ok(Command::goto(target)
                .update(json!({"triaged": true}))
                .into())
        })
        .node("urgent", |_: &State, _: &RunConfig| {
            Ok(json!({"handled_by": "urgent"}))
        })
        .node("normal", |_: &State, _: &RunConfig| {
            Ok(json!({"handled_by": "normal"}))
        })
        .edge(START, "triage")
        .edge("urgent", END)
        .edge("normal", END)
        .compile()
        .unwrap()
}

#[test]
fn a_command_writes_its_update_and_sends_the_run_where_the_node_chose() {
    let graph = triage_graph();
    let high = run(&graph, json!({"severity": "high"}), json!({}));
    let values = high.outcome.unwrap();
    assert_eq!(values["triaged"], true);
    assert_eq!(values["handled_by"], "urgent");
    // The step shows the update alone, and the node chosen as next.
    let triage = &high.steps[1];
    assert_eq!(triage.writes[0].update, json!({"triaged": true}));
    assert_eq!(triage.next, ["urgent"]);

    let low = run(&graph, json!({"severity": "low"}), json!({}));
    assert_eq!(low.outcome.unwrap()["handled_by"], "normal");
}

#[test]
fn a_command_to_a_node_that_does_not_exist_fails_the_run() {
    let graph = StateGraph::new()
        .node("lost", |_: &State, _: &RunConfig| {
            Ok(Command::goto("nowhere").into())
        })
        .edge(START, "lost")
        .compile()
        .unwrap();
    let failed = run(&graph, json!({}), json!({})).outcome.unwrap_err();
    assert_eq!(failed.error, "ValueError");
    assert!(failed.message.contains("nowhere"), "{}", failed.message);
}

/// `START -> plan`, whose router sends `write` one task per subject (and
/// runs `also` beside them when the input says so); `write -> collect ->
/// END`. `write` asks the human about the subject `ask`.
fn map_reduce() -> StateGraph {
    map_reduce_counted(Arc::default())
}

/// [`map_reduce`], counting the calls of `write` in `write_calls`.
fn map_reduce_counted(write_calls: Arc<AtomicUsize>) -> StateGraph {
    StateGraph::new()
        .channel("jokes", append)
        .node("plan", |_: &State, _: &RunConfig| {
            Ok(json!({"planned": true}))
        })
        .node("write", move |arg: &State, _: &RunConfig| {
            write_calls.fetch_add(1, Ordering::SeqCst);
            // A sent task sees its own state, not the run's.
            assert_eq!(arg.keys().collect::<Vec<_>>(), ["subject"]);
            let subject = arg["subject"].as_str().unwrap_or_default();
            let joke = match subject {
                "ask" => interrupt(json!("which joke?"))?,
                _ => json!(format!("joke about {subject}")),
            };
            stream::message(&messages::ai(subject), &Value::Null);
            Ok(json!({"jokes": [joke]}))
        })
        .node("also", mark("also"))
        .node("collect", |state: &State, _: &RunConfig| {
            Ok(json!({"count": state["jokes"].as_array().map_or(0, Vec::len)}))
        })
        .edge(START, "plan")
        .conditional_edges(
            "plan",
            |state: &State, _: &RunConfig| {
                let sends = state["subjects"].as_array().into_iter().flatten();
                let sends = sends.map(|s| Send::new("write", json!({"subject": s})));
                let route = match state.get("also") {
                    Some(_) => Route::from("also"),
                    None => Route::default(),
                };
                sends.fold(route, Route::send)
            },
            ["write", "also"],
        )
        .edge("write", "collect")
        .edge("also", "collect")
        .edge("collect", END)
}

fn writes(run: &Run) -> Vec<Vec<&str>> {
    let steps = run.steps.iter();
    steps
        .map(|s| s.writes.iter().map(|w| w.node.as_str()).collect())
        .collect()
}

fn subjects(subjects: &[&str]) -> Vec<Send> {
    let send = |s: &&str| Send::new("write", json!({"subject": s}));
    subjects.iter().map(send).collect()
}

#[test]
fn a_router_sends_one_task_per_item_and_a_reducer_gathers_them_in_order() {
    let graph = map_reduce().compile().unwrap();
    let run = run(
        &graph,
        json!({"subjects": ["cats", "dogs", "owls"]}),
        json!({}),
    );
    let values = run.outcome.clone().unwrap();
    assert_eq!(
        values["jokes"],
        json!(["joke about cats", "joke about dogs", "joke about owls"])
    );
    assert_eq!(values["count"], 3);
    assert_eq!(
        writes(&run),
        [
            vec!["__start__"],
            vec!["plan"],
            vec!["write", "write", "write"],
            vec!["collect"]
        ]
    );
    let plan = &run.steps[1];
    assert_eq!(plan.sends, subjects(&["cats", "dogs", "owls"]));
    assert!(plan.next.is_empty());
    assert_eq!(run.steps[2].next, ["collect"], "collect runs once");
    assert!(run.steps[2].sends.is_empty());

    // Each sent task streams as LangGraph's push tasks do.
    let (message, meta) = &run.messages[1];
    assert_eq!(messages::text(message), "dogs");
    assert_eq!(meta["langgraph_node"], "write");
    assert_eq!(meta["langgraph_path"], json!(["__pregel_push", 1, false]));
    assert_eq!(meta["langgraph_triggers"], json!(["__pregel_push"]));
}

#[test]
fn sent_tasks_run_before_the_nodes_of_the_same_step() {
    let graph = map_reduce().channel("trail", append).compile().unwrap();
    let run = run(
        &graph,
        json!({"subjects": ["cats"], "also": true}),
        json!({}),
    );
    assert_eq!(run.steps[1].next, ["also"]);
    assert_eq!(writes(&run)[2], ["write", "also"]);
    let values = run.outcome.unwrap();
    assert_eq!(values["count"], 1);
    assert_eq!(values["trail"], json!(["also"]));
}

#[test]
fn a_send_must_name_one_of_the_routers_targets_and_hold_an_object() {
    let router = |send: Send| {
        StateGraph::new()
            .node("a", noop)
            .node("b", noop)
            .conditional_edges(
                START,
                move |_: &State, _: &RunConfig| send.clone(),
                ["a", END],
            )
            .compile()
            .unwrap()
    };
    let error = |graph: Graph| run(&graph, json!({}), json!({})).outcome.unwrap_err();

    let elsewhere = error(router(Send::new("b", json!({}))));
    assert_eq!(elsewhere.error, "ValueError");
    assert!(elsewhere.message.contains("'b'"), "{}", elsewhere.message);
    assert_eq!(
        error(router(Send::new(END, json!({})))).error,
        "InvalidUpdateError"
    );
    let not_object = error(router(Send::new("a", json!(["x"]))));
    assert_eq!(not_object.error, "InvalidUpdateError");
    assert!(
        not_object
            .message
            .contains("Send arg must be a JSON object")
    );
    assert!(
        run(&router(Send::new("a", json!({}))), json!({}), json!({}))
            .outcome
            .is_ok()
    );
}

#[test]
fn a_command_sends_tasks_beside_its_update() {
    let graph = StateGraph::new()
        .channel("trail", append)
        .node("fan", |_: &State, _: &RunConfig| {
            Ok(Command::send(Send::new("echo", json!({"word": "one"})))
                .and_send(Send::new("echo", json!({"word": "two"})))
                .and_goto("last")
                .update(json!({"trail": ["fan"]}))
                .into())
        })
        .node("echo", |arg: &State, _: &RunConfig| {
            Ok(json!({"trail": [arg["word"]]}))
        })
        .node("last", mark("last"))
        .edge(START, "fan")
        .compile()
        .unwrap();
    let sent = run(&graph, json!({}), json!({}));
    assert_eq!(
        sent.outcome,
        Ok(obj(json!({"trail": ["fan", "one", "two", "last"]})))
    );
    assert_eq!(sent.steps[1].writes[0].update, json!({"trail": ["fan"]}));
    assert_eq!(sent.steps[1].next, ["last"]);
    assert_eq!(sent.steps[1].sends.len(), 2);
    assert_eq!(writes(&sent)[2], ["echo", "echo", "last"]);

    let lost = StateGraph::new()
        .node("lost", |_: &State, _: &RunConfig| {
            Ok(Command::send(Send::new("nowhere", json!({}))).into())
        })
        .edge(START, "lost")
        .compile()
        .unwrap();
    let failed = run(&lost, json!({}), json!({})).outcome.unwrap_err();
    assert_eq!(failed.error, "ValueError");
    assert!(failed.message.contains("nowhere"), "{}", failed.message);
}

#[test]
fn an_interrupt_in_a_sent_task_pauses_the_step_and_a_resume_runs_only_that_task() {
    let write_calls = Arc::new(AtomicUsize::new(0));
    let graph = map_reduce_counted(Arc::clone(&write_calls))
        .channel("trail", append)
        .compile()
        .unwrap();
    let input = json!({"subjects": ["cats", "ask", "dogs"], "also": true});
    let paused = run(&graph, input, json!({}));
    assert_eq!(writes(&paused).len(), 2, "the paused step reports nothing");
    assert_eq!(write_calls.load(Ordering::SeqCst), 3);
    let values = paused.outcome.unwrap();
    assert_eq!(values.get("jokes"), None);
    let pause = paused.pause.unwrap();
    assert_eq!(pause.sends, subjects(&["cats", "ask", "dogs"]));
    assert_eq!(pause.next, ["also"]);
    assert_eq!(pause.interrupts.len(), 1);
    assert_eq!(pause.interrupts[0].node, "write");
    assert_eq!(pause.interrupts[0].send, Some(1));
    assert_eq!(pause.interrupts[0].value, json!("which joke?"));
    // The other tasks of the step finished: they keep what they returned.
    let finished = |node: &str, send, update| FinishedTask {
        node: node.into(),
        send,
        result: TaskResult {
            update,
            route: Route::default(),
        },
    };
    assert_eq!(
        pause.finished,
        [
            finished("write", Some(0), json!({"jokes": ["joke about cats"]})),
            finished("write", Some(2), json!({"jokes": ["joke about dogs"]})),
            finished("also", None, json!({"trail": ["also"]})),
        ]
    );

    // The host resumes the sent tasks first, the finished ones with their
    // result, the paused one answered.
    let result = |index: usize| pause.finished[index].result.clone();
    let [cats, ask, dogs] = [0, 1, 2].map(|i| Task::from(pause.sends[i].clone()));
    let tasks = vec![
        cats.finished(result(0)),
        ask.answer(json!("the asked joke")),
        dogs.finished(result(1)),
        Task::new("also").finished(result(2)),
    ];
    let mut expected = pause.tasks();
    expected[1] = expected[1].clone().answer(json!("the asked joke"));
    assert_eq!(tasks, expected, "Pause::tasks gives the same");

    // Resumed without the answer, it pauses again: the finished tasks are
    // listed again, their writes still not applied.
    let again = graph.run_with(Invocation::resume(pause.tasks()).values(values.clone()));
    assert_eq!(
        write_calls.load(Ordering::SeqCst),
        4,
        "only `ask` ran again"
    );
    assert_eq!(again.outcome.as_ref(), Ok(&values));
    assert_eq!(again.pause.unwrap().finished, pause.finished);

    let resumed = graph.run_with(Invocation::resume(tasks).values(values));
    assert_eq!(resumed.pause, None);
    assert_eq!(
        write_calls.load(Ordering::SeqCst),
        5,
        "only `ask` ran again"
    );
    assert_eq!(
        writes(&resumed),
        [vec!["write", "write", "write", "also"], vec!["collect"]]
    );
    let done = resumed.outcome.unwrap();
    assert_eq!(
        done["jokes"],
        json!(["joke about cats", "the asked joke", "joke about dogs"])
    );
    assert_eq!(done["trail"], json!(["also"]));
    assert_eq!(done["count"], 3);
}

#[test]
fn a_breakpoint_before_a_sent_node_pauses_with_the_sends() {
    let graph = map_reduce().compile().unwrap();
    let input = json!({"subjects": ["cats", "dogs"]});
    let paused = graph.run_with(Invocation::input(input).interrupt_before(["write"]));
    assert_eq!(writes(&paused), [vec!["__start__"], vec!["plan"]]);
    let pause = paused.pause.unwrap();
    assert_eq!(pause.sends, subjects(&["cats", "dogs"]));
    assert!(pause.next.is_empty());
    assert!(pause.interrupts.is_empty());

    let tasks = [
        Task::send("write", json!({"subject": "cats"})),
        Task::send("write", json!({"subject": "dogs"})),
    ];
    let resumed = graph.run_with(
        Invocation::resume(tasks)
            .values(paused.outcome.unwrap())
            .interrupt_before(["write"]),
    );
    assert_eq!(resumed.pause, None);
    assert_eq!(resumed.outcome.unwrap()["count"], 2);
}

#[test]
fn a_breakpoint_after_a_node_pauses_with_the_tasks_it_sent() {
    let graph = map_reduce().compile().unwrap();
    let input = json!({"subjects": ["cats"]});
    let paused = graph.run_with(Invocation::input(input).interrupt_after(["plan"]));
    let pause = paused.pause.unwrap();
    assert_eq!(pause.sends, subjects(&["cats"]));
    assert!(pause.next.is_empty());
}
