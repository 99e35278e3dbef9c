//! Glue between the generated WIT bindings and the SDK's types; used by
//! [`export_graph!`](crate::export_graph). Not part of the SDK's API.

use serde_json::Value;

use crate::log::Level;
use crate::{
    BuildError, FinishedTask, Graph, GraphError, GraphInfo, Invocation, Outcome, Route, Send,
    Start, Step, Task, TaskResult,
};

#[allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/common/v0.1.0", "../../wit/graph/v0.2.0"],
        world: "warden:graph/graph-component@0.2.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_graph_component",
        default_bindings_module: "warden_graph::__private::bindings",
    });
}

use bindings::exports::warden::graph::graph::Guest;
use bindings::warden::graph::types as wit;

/// Exports a [`Graph`] as the component's `graph` interface.
///
/// Takes a function (or closure) returning the [`Graph`], or the
/// `Result<Graph, BuildError>` of [`StateGraph::compile`]; it runs once per
/// instance, on the first call. A graph that fails to compile traps there,
/// with the reason on standard error.
///
/// ```ignore
/// fn graph() -> Result<warden_graph::Graph, warden_graph::BuildError> { /* ... */ }
/// warden_graph::export_graph!(graph);
/// ```
///
/// [`StateGraph::compile`]: crate::StateGraph::compile
#[macro_export]
macro_rules! export_graph {
    ($graph:expr) => {
        #[doc(hidden)]
        struct __WardenGraph;

        impl $crate::__private::Component for __WardenGraph {
            fn graph() -> &'static $crate::Graph {
                static GRAPH: ::std::sync::OnceLock<$crate::Graph> = ::std::sync::OnceLock::new();
                GRAPH.get_or_init(|| $crate::__private::IntoGraph::into_graph(($graph)()))
            }
        }

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <__WardenGraph as $crate::__private::Component>::graph;
        };

        // Native builds (unit tests) export nothing: tests run the `Graph`.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::bindings::__export_graph_component!(__WardenGraph with_types_in $crate::__private::bindings);
    };
}

/// Implemented by [`export_graph!`]: where the exported functions find the
/// graph.
pub trait Component {
    /// The graph, built once per instance.
    fn graph() -> &'static Graph;
}

/// What [`export_graph!`] accepts from the graph's function.
pub trait IntoGraph {
    /// The graph; panics on a build error.
    fn into_graph(self) -> Graph;
}

impl IntoGraph for Graph {
    fn into_graph(self) -> Graph {
        self
    }
}

impl IntoGraph for Result<Graph, BuildError> {
    fn into_graph(self) -> Graph {
        self.unwrap_or_else(|e| panic!("the graph does not compile: {e}"))
    }
}

impl<T: Component> Guest for T {
    fn describe() -> wit::GraphInfo {
        info_to_wit(T::graph().describe())
    }

    fn run(invocation: wit::Invocation) -> Result<wit::Outcome, wit::GraphError> {
        let invocation = invocation_from_wit(invocation).map_err(error_to_wit)?;
        match T::graph().start(invocation).map_err(error_to_wit)? {
            Outcome::Done(values) => Ok(wit::Outcome::Done(Value::Object(values).to_string())),
            Outcome::Paused(values, pause) => Ok(wit::Outcome::Paused(wit::Pause {
                values: Value::Object(values).to_string(),
                next: pause.next,
                sends: pause.sends.iter().map(send_to_wit).collect(),
                interrupts: pause
                    .interrupts
                    .into_iter()
                    .map(|i| wit::Interrupt {
                        node: i.node,
                        // A step of more than 4 billion tasks never ran.
                        send: i.send.map(|index| index as u32),
                        value: i.value.to_string(),
                    })
                    .collect(),
                finished: pause.finished.into_iter().map(finished_to_wit).collect(),
            })),
        }
    }

    fn apply(values: String, update: String) -> Result<String, wit::GraphError> {
        let object = |what: &str, json: &str| match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(Default::default()),
            _ => Err(error_to_wit(GraphError::invalid_update(format!(
                "the {what} is not a JSON object"
            )))),
        };
        let mut values = object("thread's values", &values)?;
        let update = object("update", &update)?;
        T::graph()
            .apply(&mut values, &update)
            .map_err(error_to_wit)?;
        Ok(Value::Object(values).to_string())
    }
}

fn invocation_from_wit(invocation: wit::Invocation) -> Result<Invocation, GraphError> {
    let parse = |what: &str, json: &str| {
        serde_json::from_str::<Value>(json)
            .map_err(|e| GraphError::value_error(format!("the run's {what} is not JSON: {e}")))
    };
    let start = match invocation.start {
        wit::Start::Input(input) => Start::Input(parse("input", &input)?),
        wit::Start::Resume(resume) => Start::Resume {
            update: parse("update", &resume.update)?,
            tasks: resume
                .tasks
                .into_iter()
                .map(|task| {
                    let answers = task
                        .answers
                        .iter()
                        .map(|a| parse("resume value", a))
                        .collect::<Result<_, _>>()?;
                    let arg = task.arg.map(|arg| parse("sent task's arg", &arg));
                    let finished = task.finished.map(|result| result_from_wit(result, parse));
                    Ok(Task {
                        node: task.node,
                        arg: arg.transpose()?,
                        answers,
                        finished: finished.transpose()?,
                    })
                })
                .collect::<Result<_, GraphError>>()?,
        },
    };
    let values = match parse("values", &invocation.values)? {
        Value::Object(values) => values,
        Value::Null => Default::default(),
        other => {
            return Err(GraphError::value_error(format!(
                "the thread's values are not an object: {other}"
            )));
        }
    };
    Ok(Invocation {
        start,
        values,
        config: parse("config", &invocation.config)?,
        context: parse("context", &invocation.context)?,
        interrupt_before: invocation.interrupt_before,
        interrupt_after: invocation.interrupt_after,
    })
}

fn info_to_wit(info: &GraphInfo) -> wit::GraphInfo {
    let schema = |s: &Option<Value>| s.as_ref().map(Value::to_string);
    wit::GraphInfo {
        name: info.name.clone(),
        nodes: info.nodes.clone(),
        edges: info
            .edges
            .iter()
            .map(|e| wit::Edge {
                source: e.source.clone(),
                target: e.target.clone(),
                conditional: e.conditional,
            })
            .collect(),
        input_schema: schema(&info.input_schema),
        output_schema: schema(&info.output_schema),
        state_schema: schema(&info.state_schema),
        config_schema: schema(&info.config_schema),
        context_schema: schema(&info.context_schema),
    }
}

fn send_to_wit(send: &Send) -> wit::Send {
    wit::Send {
        node: send.node.clone(),
        arg: send.arg.to_string(),
    }
}

/// What a finished task returned, from the host: `parse` reads its JSON.
fn result_from_wit(
    result: wit::TaskResult,
    parse: impl Fn(&str, &str) -> Result<Value, GraphError>,
) -> Result<TaskResult, GraphError> {
    let sends = result
        .sends
        .into_iter()
        .map(|send| {
            Ok(Send::new(
                send.node,
                parse("finished task's send", &send.arg)?,
            ))
        })
        .collect::<Result<_, GraphError>>()?;
    Ok(TaskResult {
        update: parse("finished task's update", &result.update)?,
        route: Route {
            nodes: result.goto,
            sends,
        },
    })
}

fn finished_to_wit(finished: FinishedTask) -> wit::FinishedTask {
    let result = finished.result;
    wit::FinishedTask {
        node: finished.node,
        // A step of more than 4 billion tasks never ran.
        send: finished.send.map(|index| index as u32),
        result: wit::TaskResult {
            update: result.update.to_string(),
            goto: result.route.nodes,
            sends: result.route.sends.iter().map(send_to_wit).collect(),
        },
    }
}

fn error_to_wit(error: GraphError) -> wit::GraphError {
    wit::GraphError {
        error: error.error,
        message: error.message,
    }
}

/// Reports a step to the host (nowhere outside wasm).
pub(crate) fn step_done(step: &Step) {
    #[cfg(target_arch = "wasm32")]
    bindings::warden::graph::stream::step_done(&wit::Step {
        writes: step
            .writes
            .iter()
            .map(|w| wit::Write {
                node: w.node.clone(),
                update: w.update.to_string(),
            })
            .collect(),
        values: Value::Object(step.values.clone()).to_string(),
        next: step.next.clone(),
        sends: step.sends.iter().map(send_to_wit).collect(),
    });
    #[cfg(not(target_arch = "wasm32"))]
    let _ = step;
}

/// Sends a `custom` chunk to the host (nowhere outside wasm).
pub(crate) fn custom(data: &Value) {
    #[cfg(target_arch = "wasm32")]
    bindings::warden::graph::stream::custom(&data.to_string());
    #[cfg(not(target_arch = "wasm32"))]
    let _ = data;
}

/// Sends a message to the host (nowhere outside wasm).
pub(crate) fn message(message: &Value, metadata: &Value) {
    #[cfg(target_arch = "wasm32")]
    bindings::warden::graph::stream::message(&message.to_string(), &metadata.to_string());
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (message, metadata);
}

/// Writes a log record through the host (standard error outside wasm).
pub(crate) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::warden::graph::log::{Level as L, log};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message} {fields:?}");
}
