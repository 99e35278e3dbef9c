//! The routes as a whole: the route table's guard (every protected route
//! fires a declared event before it touches data), the OpenAPI document,
//! the public routes, authentication before routing, CORS, metrics and
//! Studio's bypass.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::reference;
use crate::support::{TestServer, unhurried_plugin};

/// A valid request body for each protected route, so that only
/// authorization can refuse it.
fn body_for(method: &str, path: &str) -> Value {
    match (method, path) {
        ("POST", "/assistants") => json!({"graph_id": "agent"}),
        ("POST", p) if p.ends_with("/runs/crons") => {
            json!({"assistant_id": "agent", "schedule": "*/5 * * * *"})
        }
        ("PATCH", p) if p.starts_with("/runs/crons/") => json!({"enabled": false}),
        ("POST", "/runs/cancel") => json!({"status": "all"}),
        ("POST", p) if p.ends_with("/latest") => json!({"version": 1}),
        ("POST", "/threads/prune") => json!({"thread_ids": [Uuid::nil().to_string()]}),
        ("POST", "/runs/batch") => json!([{"assistant_id": Uuid::nil().to_string()}]),
        ("POST", p)
            if p.ends_with("/runs") || p.ends_with("/runs/stream") || p.ends_with("/runs/wait") =>
        {
            json!({"assistant_id": Uuid::nil().to_string()})
        }
        ("PUT", "/store/items") => json!({"namespace": ["a"], "key": "k", "value": {}}),
        ("DELETE", "/store/items") => json!({"namespace": ["a"], "key": "k"}),
        ("POST" | "PATCH", _) => json!({}),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn every_protected_route_fires_a_declared_event_before_touching_data() {
    // The gatekeeper refuses every event with a 403 naming it.
    let server = TestServer::new(Some(unhurried_plugin("fixture_gatekeeper")));
    let client = server.user("any");
    let endpoints = warden::server::routes::endpoints();
    assert!(endpoints.len() >= 20);
    for endpoint in endpoints {
        assert!(
            !endpoint.events.is_empty(),
            "{} {} declares no event",
            endpoint.method,
            endpoint.path
        );
        let id = Uuid::now_v7().to_string();
        let mut path = endpoint.path.to_owned();
        for param in ["{thread_id}", "{assistant_id}", "{cron_id}", "{run_id}"] {
            path = path.replace(param, &id);
        }
        path = path
            .replace("{checkpoint_id}", "1")
            .replace("{namespace}", "ns");
        if endpoint.path == "/store/items" && endpoint.method == "GET" {
            path.push_str("?namespace=a&key=k");
        }
        let method = endpoint.method.as_str();
        let reply = client
            .send(method, &path, body_for(method, &endpoint.path))
            .await;
        let declared: Vec<String> = endpoint
            .events
            .iter()
            .map(|(r, a)| format!("{r}.{a}"))
            .collect();
        // A stream refuses as the reference does: one SSE `error` event
        // whose message is "<status>: <detail>".
        let (status, fired) = match reply.text.strip_prefix("event: error\r\ndata: ") {
            Some(data) => {
                let data: Value = serde_json::from_str(data.trim()).unwrap();
                let message = data["message"].as_str().unwrap_or_default();
                let (status, detail) = message.split_once(": ").unwrap_or_default();
                (
                    StatusCode::from_bytes(status.as_bytes()).unwrap(),
                    detail.to_owned(),
                )
            }
            None => (reply.status, reply.detail().to_owned()),
        };
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.text
        );
        assert!(
            declared.contains(&fired),
            "{method} {path} fired {fired}, declares {declared:?}"
        );
    }
}

#[tokio::test]
async fn openapi_documents_every_route_and_its_schemas() {
    let server = reference();
    let anyone = server.client();
    let doc = anyone.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    for endpoint in warden::server::routes::endpoints() {
        let method = endpoint.method.as_str().to_ascii_lowercase();
        assert!(
            doc.json["paths"][&endpoint.path][&method].is_object(),
            "{method} {} is not documented",
            endpoint.path
        );
    }
    let schemas = doc.json["components"]["schemas"].as_object().unwrap();
    for name in [
        "Thread",
        "Assistant",
        "Cron",
        "Item",
        "ThreadSearch",
        "AssistantSearch",
        "CronSearch",
        "ItemSearch",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    let docs = anyone.get("/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("\"/threads/search\""));
}

#[test]
fn openapi_merges_the_auth_plugins_security() {
    let merged = warden::server::openapi_document(Some(&json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "security": [{"bearer": []}],
        "paths": {"/threads": {"POST": [{"bearer": ["threads:create"]}]}},
    })));
    assert_eq!(
        merged["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(merged["security"], json!([{"bearer": []}]));
    assert_eq!(
        merged["paths"]["/threads"]["post"]["security"],
        json!([{"bearer": ["threads:create"]}])
    );
}

#[tokio::test]
async fn public_routes_answer_without_credentials() {
    let server = reference();
    let anyone = server.client();
    for path in ["/ok", "/", "/info", "/docs", "/openapi.json", "/metrics"] {
        let reply = anyone.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        anyone.get("/ok").await.json,
        json!({"ok": true, "services": {}})
    );
}

#[tokio::test]
async fn authentication_runs_before_routing() {
    let server = reference();
    let unknown = server.client().get("/nowhere").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.json,
        json!({"detail": "Missing Authorization header"})
    );
    let unknown = server.user("user1-token").get("/nowhere").await;
    assert_eq!(
        (unknown.status, unknown.json),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    let bad = server.user("nope").post("/threads/search", json!({})).await;
    assert_eq!(
        (bad.status, bad.json),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"}))
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_before_auth() {
    let server = reference();
    let preflight = server
        .client()
        .request("OPTIONS", "/threads")
        .header("origin", "http://studio.example")
        .header("access-control-request-method", "POST")
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn metrics_count_the_answers_by_class() {
    let server = reference();
    let anyone = server.client();
    for _ in 0..2 {
        let refused = anyone.post("/threads/search", json!({})).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let metrics = anyone.get("/metrics?format=json").await;
    assert!(
        metrics.json["http"]["requests"]["4xx"].as_u64().unwrap() >= 2,
        "{}",
        metrics.text
    );
    // Prometheus' text: by method, route template and status.
    let text = anyone.get("/metrics").await.text;
    assert!(
        text.contains(
            "warden_http_requests_total{method=\"POST\",route=\"/threads/search\",status=\"401\"} 2"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_a_405_naming_the_right_one() {
    let server = reference();
    let wrong = server
        .user("user1-token")
        .put("/threads/search", json!({}))
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers["allow"], "POST");
}

#[tokio::test]
async fn credentials_come_before_the_method_the_body_and_the_id() {
    // A wrong method, a malformed body or a bad id with a bad token is a 401.
    let server = reference();
    let nope = server.user("nope");
    let wrong = nope.put("/threads/search", json!({})).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let malformed = nope.request("POST", "/threads").text("{".into()).await;
    assert_eq!(malformed.status, StatusCode::UNAUTHORIZED);
    let bad_id = server.client().get("/threads/42").await;
    assert_eq!(bad_id.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn studio_requests_become_the_studio_user_when_the_bypass_is_on() {
    let server = TestServer::builder()
        .declare("agent")
        .auth(unhurried_plugin("reference_auth"))
        .studio_bypass()
        .build();
    let studio =
        |request: crate::support::HttpRequest| request.header("x-auth-scheme", "langsmith");
    let client = server.client();
    let made = studio(client.post("/threads/search", json!({}))).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    // Handlers still run for the Studio user, as for anyone: its own
    // namespace is its to write.
    let store = studio(client.put(
        "/store/items",
        json!({"namespace": ["langgraph-studio-user"], "key": "k", "value": {}}),
    ))
    .await;
    assert_eq!(store.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn studio_requests_are_refused_when_the_bypass_is_off() {
    let server = reference();
    let refused = server
        .client()
        .post("/threads/search", json!({}))
        .header("x-auth-scheme", "langsmith")
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}
