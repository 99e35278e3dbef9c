//! What an assistant's graph looks like: `GET /assistants/{id}/graph`
//! (which also takes a graph name), `GET /assistants/{id}/schemas` and
//! `GET /assistants/{id}/subgraphs`, from what the graph component
//! described when it was loaded.

use crate::storage::wait;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{ok, path_id};
use crate::plugin::{GraphComponent, GraphInfo};
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::{AppState, Pending, as_caller};
use crate::types::{Action, Resource};

/// The assistant's graph component, if the caller may read the assistant.
fn component(
    state: &AppState,
    caller: &mut Caller,
    id: Uuid,
) -> Result<(String, Arc<GraphComponent>), ApiError> {
    let scope = caller.scope(
        Resource::Assistants,
        Action::Read,
        json!({"assistant_id": id}),
    )?;
    let assistant = wait(state.storage.assistant(id, scope.as_ref()))?
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
    let graph = state
        .graph_components
        .get(&assistant.graph_id)
        .map(|slot| slot.current())
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
    Ok((assistant.graph_id, graph))
}

/// The drawing LangGraph serves: `__start__`, the nodes, `__end__` when an
/// edge reaches it; conditional edges marked.
fn drawing(info: &GraphInfo) -> Value {
    let node = |id: &str| json!({"id": id, "type": "runnable", "data": {"name": id}});
    let mut nodes = vec![node("__start__")];
    nodes.extend(info.nodes.iter().map(|n| node(n)));
    if info.edges.iter().any(|e| e.target == "__end__") {
        nodes.push(json!({"id": "__end__"}));
    }
    let edges: Vec<Value> = info
        .edges
        .iter()
        .map(|e| {
            let mut edge = json!({"source": e.source, "target": e.target});
            if e.conditional {
                edge["conditional"] = json!(true);
            }
            edge
        })
        .collect();
    json!({"nodes": nodes, "edges": edges})
}

/// `xray`: a boolean or a non-negative depth.
fn check_xray(query: Option<&str>) -> Result<(), ApiError> {
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "xray" {
            let valid = matches!(value.as_ref(), "true" | "false" | "True" | "False")
                || value.parse::<u32>().is_ok();
            if !valid {
                return Err(ApiError::unprocessable("Invalid xray value"));
            }
        }
    }
    Ok(())
}

/// `GET /assistants/{assistant_id}/graph`.
#[utoipa::path(
    get,
    operation_id = "graphs_graph",
    path = "/assistants/{assistant_id}/graph",
    tag = "assistants",
    params(("assistant_id" = String, Path, description = "The assistant (UUID; a graph name for /graph)")),
    responses((status = 200, description = "The graph's nodes and edges"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn graph(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    as_caller(pending, move |caller| {
        let id = match state.graphs.get(&id) {
            Some(system) => *system,
            None => path_id(&id, "assistant")?,
        };
        check_xray(uri.query())?;
        let (_, graph) = component(&state, caller, id)?;
        ok(drawing(graph.info()))
    })
    .await
}

/// `GET /assistants/{assistant_id}/schemas`.
#[utoipa::path(
    get,
    operation_id = "graphs_schemas",
    path = "/assistants/{assistant_id}/schemas",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    responses((status = 200, description = "The graph's JSON Schemas"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn schemas(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(id): Path<String>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = path_id(&id, "assistant")?;
        let (graph_id, graph) = component(&state, caller, id)?;
        let info = graph.info();
        ok(json!({
            "graph_id": graph_id,
            "input_schema": info.input_schema,
            "output_schema": info.output_schema,
            "state_schema": info.state_schema,
            "config_schema": info.config_schema,
            "context_schema": info.context_schema,
        }))
    })
    .await
}

/// `GET /assistants/{assistant_id}/subgraphs[/{namespace}]`: a graph
/// component is one graph, so there are none (`{}`), as LangGraph answers
/// for a graph without subgraphs.
#[utoipa::path(
    get,
    operation_id = "graphs_subgraphs",
    path = "/assistants/{assistant_id}/subgraphs",
    tag = "assistants",
    params(("assistant_id" = Uuid, Path, description = "The assistant (UUID)")),
    responses((status = 200, description = "The graph's subgraphs by namespace: none"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn subgraphs(
    State(state): State<Arc<AppState>>,
    pending: Pending,
    Path(params): Path<Vec<(String, String)>>,
) -> Response {
    as_caller(pending, move |caller| {
        let id = params
            .iter()
            .find(|(name, _)| name == "assistant_id")
            .map_or("", |(_, value)| value.as_str());
        let id = path_id(id, "assistant")?;
        component(&state, caller, id)?;
        ok(json!({}))
    })
    .await
}

/// `GET /assistants/{assistant_id}/subgraphs/{namespace}`: as
/// [`subgraphs`], under a namespace.
#[utoipa::path(
    get,
    operation_id = "graphs_subgraphs_in_namespace",
    path = "/assistants/{assistant_id}/subgraphs/{namespace}",
    tag = "assistants",
    params(
        ("assistant_id" = Uuid, Path, description = "The assistant (UUID)"),
        ("namespace" = String, Path, description = "The subgraph namespace"),
    ),
    responses((status = 200, description = "The graph's subgraphs under the namespace: none"), (status = 404, description = "Not found, or outside the caller's scope", body = crate::server::error::ErrorBody), (status = 422, description = "Invalid input", body = crate::server::error::ErrorBody))
)]
pub(in crate::server) async fn subgraphs_in_namespace(
    state: State<Arc<AppState>>,
    pending: Pending,
    params: Path<Vec<(String, String)>>,
) -> Response {
    subgraphs(state, pending, params).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Edge;

    #[test]
    fn the_echo_graph_draws_as_langgraph_does() {
        let edge = |s: &str, t: &str| Edge {
            source: s.into(),
            target: t.into(),
            conditional: false,
        };
        let info = GraphInfo {
            name: Some("agent".into()),
            nodes: vec!["echo".into()],
            edges: vec![edge("__start__", "echo"), edge("echo", "__end__")],
            ..GraphInfo::default()
        };
        assert_eq!(
            drawing(&info),
            json!({"nodes":[{"id":"__start__","type":"runnable","data":{"name":"__start__"}},
                            {"id":"echo","type":"runnable","data":{"name":"echo"}},{"id":"__end__"}],
                   "edges":[{"source":"__start__","target":"echo"},{"source":"echo","target":"__end__"}]})
        );
    }

    #[test]
    fn xray_is_a_boolean_or_a_depth() {
        assert!(check_xray(Some("xray=true")).is_ok());
        assert!(check_xray(Some("xray=2")).is_ok());
        assert!(check_xray(None).is_ok());
        assert_eq!(check_xray(Some("xray=maybe")).unwrap_err().status, 422);
    }
}
