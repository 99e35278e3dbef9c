//! `/openapi.json`, generated from the route handlers' annotations, with
//! the deployment's `auth.openapi` security schemes merged in as LangGraph
//! does; `/docs` renders it (Scalar, as the reference).

use serde_json::{Value, json};
use utoipa::OpenApi;

use super::api::records::{Assistant, AssistantVersion, Cron, Item, Run, Thread};
use super::error::ErrorBody;
use super::routes;
use crate::runs::RunCreate;

#[derive(OpenApi)]
#[openapi(
    info(title = "Warden Agent Server", description = "A LangGraph-compatible Agent Server; authorization by a WebAssembly auth plugin."),
    components(schemas(Thread, Assistant, AssistantVersion, Cron, Item, Run, ErrorBody, RunCreate)),
    tags(
        (name = "threads", description = "Conversations and their state"),
        (name = "assistants", description = "Configured graphs"),
        (name = "runs", description = "Graph executions, streamed, awaited or in the background"),
        (name = "crons", description = "Runs on a schedule"),
        (name = "store", description = "Long-term memory"),
    )
)]
struct ApiDoc;

/// The OpenAPI document: the API's, with `auth.openapi` merged in —
/// `securitySchemes` (or `security_schemes`) into the components, `security`
/// as the default requirement, and `paths.{path}.{method}` as per-operation
/// requirements.
pub fn document(auth_openapi: Option<&Value>) -> Value {
    let mut api = ApiDoc::openapi();
    let components = api.components.get_or_insert_with(Default::default);
    for endpoint in routes::endpoints() {
        api.paths.merge(endpoint.doc);
        components.schemas.extend(endpoint.schemas);
    }
    let mut doc = serde_json::to_value(api).unwrap_or_else(|_| json!({}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    add_common_responses(&mut doc);
    let Some(auth) = auth_openapi else {
        return doc;
    };
    let schemes = auth
        .get("securitySchemes")
        .or_else(|| auth.get("security_schemes"));
    if let Some(schemes) = schemes {
        doc["components"]["securitySchemes"] = schemes.clone();
    }
    if let Some(security) = auth.get("security") {
        doc["security"] = security.clone();
    }
    if let Some(Value::Object(paths)) = auth.get("paths") {
        for (path, methods) in paths {
            let Value::Object(methods) = methods else {
                continue;
            };
            for (method, security) in methods {
                let operation = &mut doc["paths"][path][method.to_ascii_lowercase()];
                if operation.is_object() {
                    operation["security"] = security.clone();
                }
            }
        }
    }
    doc
}

/// Documents, on every operation that does not already, the answers any
/// of them may give: the auth plugin's 401 and 403, a 422 for invalid
/// input, a 404 when the path names a resource, a 503 while the server
/// shuts down; 408 and 413 where a body is read (`limits.body_timeout_secs`,
/// the route's body limit); 429 where a per-user quota applies (runs,
/// streams, crons, state updates). The store answers its namespace errors
/// in plain text, as the reference does.
fn add_common_responses(doc: &mut Value) {
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let mut common = vec![
            ("401", "Not authenticated (the auth plugin's answer)"),
            ("403", "Refused by the auth plugin"),
            ("422", "Invalid input"),
        ];
        if path.contains('{') {
            common.push(("404", "Not found, or outside the caller's scope"));
        }
        common.push(("503", "Shutting down, or over a server-wide bound"));
        if path.contains("/runs") || path.contains("/state") || path.ends_with("/stream") {
            common.push(("429", "Over a quota of `limits`"));
        }
        let mut content = json!({"application/json": {"schema": error}});
        if path.starts_with("/store/") {
            content["text/plain"] = json!({"schema": {"type": "string"}});
        }
        for operation in item.values_mut() {
            let reads_body = operation.get("requestBody").is_some();
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let body_answers = [
                ("408", "The body did not arrive in time"),
                ("413", "The body is over the route's limit"),
            ];
            let body_answers = if reads_body { &body_answers[..] } else { &[] };
            for (status, description) in common.iter().chain(body_answers) {
                let response = responses
                    .entry(*status)
                    .or_insert_with(|| json!({"description": description}));
                if response.get("content").is_none() {
                    response["content"] = content.clone();
                }
            }
        }
    }
}

/// The `/docs` page.
pub fn docs_html(document: &Value) -> String {
    utoipa_scalar::Scalar::new(document.clone()).to_html()
}
