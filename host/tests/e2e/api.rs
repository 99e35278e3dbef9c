//! The Agent Server API through the router (no sockets), with the reference
//! policy and the route-table guard.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{app, app_with, plugin, send, send_raw, send_with};

const AGENT: &str = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";

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
    let app = app(Some(plugin("fixture_gatekeeper")));
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
        let reply = send(&app, method, &path, "any", body_for(method, endpoint.path)).await;
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
            None => (
                reply.status,
                reply.json["detail"].as_str().unwrap_or_default().to_owned(),
            ),
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
async fn public_routes_answer_without_credentials_and_auth_runs_before_routing() {
    let app = app(Some(plugin("reference_auth")));
    for path in ["/ok", "/", "/info", "/docs", "/openapi.json", "/metrics"] {
        let reply = send(&app, "GET", path, "", Value::Null).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        send(&app, "GET", "/ok", "", Value::Null).await.json,
        json!({"ok": true, "services": {}})
    );
    let unknown = send(&app, "GET", "/nowhere", "", Value::Null).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.json,
        json!({"detail": "Missing Authorization header"})
    );
    let unknown = send(&app, "GET", "/nowhere", "user1-token", Value::Null).await;
    assert_eq!(
        (unknown.status, unknown.json),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    let bad = send(&app, "POST", "/threads/search", "nope", json!({})).await;
    assert_eq!(
        (bad.status, bad.json),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"}))
    );
    // CORS preflights are answered before auth.
    let preflight = send_with(
        &app,
        "OPTIONS",
        "/threads",
        &[
            ("origin", "http://studio.example"),
            ("access-control-request-method", "POST"),
        ],
        Value::Null,
    )
    .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    let metrics = send(&app, "GET", "/metrics?format=json", "", Value::Null).await;
    assert!(
        metrics.json["http"]["requests"]["4xx"].as_u64().unwrap() >= 2,
        "{}",
        metrics.text
    );
    let text = send(&app, "GET", "/metrics", "", Value::Null).await.text;
    assert!(
        text.contains("warden_http_requests_total{code=\"2xx\"}"),
        "{text}"
    );
    // A known path with the wrong method.
    let wrong = send(&app, "PUT", "/threads/search", "user1-token", json!({})).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers["allow"], "POST");
    // Credentials come first: a wrong method, a malformed body or a bad id
    // with a bad token is a 401.
    let wrong = send(&app, "PUT", "/threads/search", "nope", json!({})).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let malformed = send_raw(
        &app,
        "POST",
        "/threads",
        &[("authorization", "Bearer nope")],
        Some("{".into()),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::UNAUTHORIZED);
    let bad_id = send(&app, "GET", "/threads/42", "", Value::Null).await;
    assert_eq!(bad_id.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn threads_are_scoped_to_their_owner() {
    let app = app(Some(plugin("reference_auth")));
    // A spoofed owner is overwritten by the plugin's stamp; reserved keys are dropped.
    let created = send(
        &app,
        "POST",
        "/threads",
        "user1-token",
        json!({"metadata": {"owner": "user2", "topic": "x", "run_id": "spoof"}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(
        created.json["metadata"],
        json!({"owner": "user1", "topic": "x"})
    );
    assert_eq!(created.json["status"], "idle");
    let id = created.json["thread_id"].as_str().unwrap().to_owned();
    assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 7);

    let mine = send(
        &app,
        "GET",
        &format!("/threads/{id}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(mine.json, created.json);

    // Another user's thread is indistinguishable from a missing one.
    let theirs = send(
        &app,
        "GET",
        &format!("/threads/{id}"),
        "user2-token",
        Value::Null,
    )
    .await;
    let random = Uuid::now_v7();
    let missing = send(
        &app,
        "GET",
        &format!("/threads/{random}"),
        "user2-token",
        Value::Null,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.text.replace(&id, "ID"),
        missing.text.replace(&random.to_string(), "ID")
    );

    let search = send(&app, "POST", "/threads/search", "user2-token", json!({})).await;
    assert_eq!(search.json, json!([]));
    assert_eq!(search.headers["x-pagination-total"], "0");
    let count = send(&app, "POST", "/threads/count", "user2-token", json!({})).await;
    assert_eq!(count.json, json!(0));
    let search = send(
        &app,
        "POST",
        "/threads/search",
        "user1-token",
        json!({"metadata": {"topic": "x"}}),
    )
    .await;
    assert_eq!(search.json.as_array().unwrap().len(), 1);

    for (method, body) in [
        ("PATCH", json!({"metadata": {"owner": "user2"}})),
        ("DELETE", Value::Null),
    ] {
        let reply = send(&app, method, &format!("/threads/{id}"), "user2-token", body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
    }
    // The owner's patch merges; the handler stamps the owner back.
    let patched = send(
        &app,
        "PATCH",
        &format!("/threads/{id}"),
        "user1-token",
        json!({"metadata": {"owner": "user2", "more": 1}}),
    )
    .await;
    assert_eq!(
        patched.json["metadata"],
        json!({"owner": "user1", "topic": "x", "more": 1})
    );

    // An existing id the caller may not see is a conflict, even with do_nothing.
    let clash = send(
        &app,
        "POST",
        "/threads",
        "user2-token",
        json!({"thread_id": id, "if_exists": "do_nothing"}),
    )
    .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    let again = send(
        &app,
        "POST",
        "/threads",
        "user1-token",
        json!({"thread_id": id, "if_exists": "do_nothing"}),
    )
    .await;
    assert_eq!(
        (again.status, &again.json["thread_id"]),
        (StatusCode::OK, &json!(id))
    );
    let raise = send(
        &app,
        "POST",
        "/threads",
        "user1-token",
        json!({"thread_id": id}),
    )
    .await;
    assert_eq!(
        raise.json,
        json!({"detail": format!("Thread with ID {id} already exists")})
    );

    // Copy of someone else's thread is a conflict; the owner's copy keeps the metadata.
    let copy = send(
        &app,
        "POST",
        &format!("/threads/{id}/copy"),
        "user2-token",
        Value::Null,
    )
    .await;
    assert_eq!(copy.status, StatusCode::CONFLICT);
    let copy = send(
        &app,
        "POST",
        &format!("/threads/{id}/copy"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(copy.json["metadata"], patched.json["metadata"]);
    assert_ne!(copy.json["thread_id"], json!(id));

    // The reader may not create threads.
    let reader = send(&app, "POST", "/threads", "reader-token", json!({})).await;
    assert_eq!(
        (reader.status, reader.json),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Missing permission: threads:create"})
        )
    );

    let deleted = send(
        &app,
        "DELETE",
        &format!("/threads/{id}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(
        (deleted.status, deleted.text.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    let gone = send(
        &app,
        "GET",
        &format!("/threads/{id}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_pages_with_headers_select_and_sort() {
    let app = app(Some(plugin("reference_auth")));
    for i in 0..5 {
        send(
            &app,
            "POST",
            "/threads",
            "user2-token",
            json!({"metadata": {"i": i}}),
        )
        .await;
    }
    let page = send(&app, "POST", "/threads/search", "user2-token",
        json!({"limit": 2, "offset": 1, "sort_by": "created_at", "sort_order": "asc", "select": ["thread_id", "metadata"]})).await;
    assert_eq!(page.headers["x-pagination-total"], "5");
    assert_eq!(page.headers["x-pagination-next"], "3");
    let items = page.json.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["metadata"]["i"], 1);
    assert_eq!(items[0].as_object().unwrap().len(), 2);
    let last = send(
        &app,
        "POST",
        "/threads/search",
        "user2-token",
        json!({"limit": 2, "offset": 4}),
    )
    .await;
    assert!(last.headers.get("x-pagination-next").is_none());
    for bad in [
        json!({"sort_by": "owner"}),
        json!({"select": ["nope"]}),
        json!({"limit": 0}),
        json!({"status": "odd"}),
    ] {
        let reply = send(&app, "POST", "/threads/search", "user2-token", bad.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn assistants_are_admin_written_and_system_assistants_exist() {
    let app = app(Some(plugin("reference_auth")));
    let system = send(
        &app,
        "GET",
        &format!("/assistants/{AGENT}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(system.status, StatusCode::OK);
    assert_eq!(system.json["metadata"], json!({"created_by": "system"}));
    assert_eq!(system.json["graph_id"], "agent");

    let denied = send(
        &app,
        "POST",
        "/assistants",
        "user1-token",
        json!({"graph_id": "agent"}),
    )
    .await;
    assert_eq!(
        (denied.status, denied.json),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Only admin may modify assistants"})
        )
    );
    let unknown = send(
        &app,
        "POST",
        "/assistants",
        "admin-token",
        json!({"graph_id": "nope"}),
    )
    .await;
    assert_eq!(
        unknown.json,
        json!({"detail": "Graph 'nope' not found. Expected one of: ['agent']"})
    );
    let missing = send(&app, "POST", "/assistants", "admin-token", json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);

    let made = send(
        &app,
        "POST",
        "/assistants",
        "admin-token",
        json!({"graph_id": "agent", "name": "Helper", "config": {"configurable": {"x": 1}}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    assert_eq!(made.json["metadata"], json!({"owner": "admin"}));
    assert_eq!(made.json["context"], json!({"x": 1}));
    assert_eq!(made.json["version"], 1);
    let id = made.json["assistant_id"].as_str().unwrap().to_owned();

    let found = send(
        &app,
        "POST",
        "/assistants/search",
        "user1-token",
        json!({"name": "help"}),
    )
    .await;
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    let count = send(
        &app,
        "POST",
        "/assistants/count",
        "user1-token",
        json!({"graph_id": "agent"}),
    )
    .await;
    assert_eq!(count.json, json!(2));
    // The server's configurable keys cannot be set by a client.
    let spoof = send(
        &app,
        "POST",
        "/assistants",
        "admin-token",
        json!({"graph_id": "agent",
               "context": {"langgraph_auth_user_id": "root", "__after_seconds__": 1, "k": 1}}),
    )
    .await;
    assert_eq!(spoof.json["context"], json!({"k": 1}));
    assert_eq!(spoof.json["config"]["configurable"], json!({"k": 1}));

    let patched = send(
        &app,
        "PATCH",
        &format!("/assistants/{id}"),
        "admin-token",
        json!({"metadata": {"tier": "gold"}}),
    )
    .await;
    assert_eq!(patched.json["version"], 2);
    assert_eq!(patched.json["metadata"]["tier"], "gold");
    let refused = send(
        &app,
        "PATCH",
        &format!("/assistants/{id}"),
        "user1-token",
        json!({"name": "mine"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let by_name = send(&app, "GET", "/assistants/agent", "user1-token", Value::Null).await;
    assert_eq!(
        by_name.json,
        json!({"detail": "Invalid assistant ID: must be a UUID"})
    );

    let deleted = send(
        &app,
        "DELETE",
        &format!("/assistants/{id}"),
        "admin-token",
        Value::Null,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = send(
        &app,
        "GET",
        &format!("/assistants/{id}"),
        "admin-token",
        Value::Null,
    )
    .await;
    assert_eq!(
        (gone.status, gone.json),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
}

#[tokio::test]
async fn assistant_versions_are_listed_and_any_can_become_the_latest() {
    let app = app(Some(plugin("reference_auth")));
    let made = send(
        &app,
        "POST",
        "/assistants",
        "admin-token",
        json!({"graph_id": "agent", "name": "first", "context": {"model": "small"}}),
    )
    .await;
    let id = made.json["assistant_id"].as_str().unwrap().to_owned();
    let versions = format!("/assistants/{id}/versions");
    let latest = format!("/assistants/{id}/latest");
    send(
        &app,
        "PATCH",
        &format!("/assistants/{id}"),
        "admin-token",
        json!({"name": "second", "context": {"model": "large"}, "metadata": {"stage": "two"}}),
    )
    .await;

    // Newest first, each a snapshot; readable by anyone the policy lets read.
    let listed = send(&app, "POST", &versions, "user1-token", json!({})).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let summary: Vec<_> = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].clone(),
                v["name"].clone(),
                v["context"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(2), json!("second"), json!({"model": "large"})),
            (json!(1), json!("first"), json!({"model": "small"})),
        ]
    );
    assert_eq!(listed.json[0].get("updated_at"), None);
    let staged = send(
        &app,
        "POST",
        &versions,
        "user1-token",
        json!({"metadata": {"stage": "two"}}),
    )
    .await;
    assert_eq!(staged.json.as_array().unwrap().len(), 1);
    let second_page = send(
        &app,
        "POST",
        &versions,
        "user1-token",
        json!({"limit": 1, "offset": 1}),
    )
    .await;
    assert_eq!(second_page.json[0]["version"], 1);

    // Back to version 1: the assistant is that snapshot again.
    let refused = send(&app, "POST", &latest, "user1-token", json!({"version": 1})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let back = send(&app, "POST", &latest, "admin-token", json!({"version": 1})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert_eq!(
        (
            back.json["version"].clone(),
            back.json["name"].clone(),
            back.json["context"].clone(),
            back.json["metadata"].clone()
        ),
        (
            json!(1),
            json!("first"),
            json!({"model": "small"}),
            json!({"owner": "admin"})
        )
    );
    let read = send(
        &app,
        "GET",
        &format!("/assistants/{id}"),
        "admin-token",
        Value::Null,
    )
    .await;
    assert_eq!(read.json, back.json);
    // The next update is a new version after every existing one.
    let third = send(
        &app,
        "PATCH",
        &format!("/assistants/{id}"),
        "admin-token",
        json!({"name": "third"}),
    )
    .await;
    assert_eq!(third.json["version"], 3);

    let missing = send(&app, "POST", &latest, "admin-token", json!({"version": 9})).await;
    assert_eq!(
        (missing.status, missing.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Version 9 not found for assistant {id}")})
        )
    );
    let unknown = Uuid::new_v4();
    for path in [
        format!("/assistants/{unknown}/versions"),
        format!("/assistants/{unknown}/latest"),
    ] {
        let gone = send(&app, "POST", &path, "admin-token", json!({"version": 1})).await;
        assert_eq!(
            (gone.status, gone.json),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": format!("Assistant {unknown} not found")})
            )
        );
    }
    let no_version = send(&app, "POST", &latest, "admin-token", json!({})).await;
    assert_eq!(no_version.status, StatusCode::UNPROCESSABLE_ENTITY);
    let by_name = send(
        &app,
        "POST",
        "/assistants/agent/versions",
        "user1-token",
        json!({}),
    )
    .await;
    assert_eq!(
        by_name.json,
        json!({"detail": "Invalid assistant ID: must be a UUID"})
    );
}

#[tokio::test]
async fn prune_deletes_only_threads_the_caller_may_delete() {
    let app = app(Some(plugin("reference_auth")));
    let mut mine = Vec::new();
    for _ in 0..2 {
        let t = send(&app, "POST", "/threads", "user1-token", json!({})).await;
        mine.push(t.json["thread_id"].as_str().unwrap().to_owned());
    }
    let theirs = send(&app, "POST", "/threads", "user2-token", json!({})).await;
    let theirs = theirs.json["thread_id"].as_str().unwrap().to_owned();
    let exists = |id: String, token: &'static str| {
        let app = app.clone();
        async move {
            send(&app, "GET", &format!("/threads/{id}"), token, Value::Null)
                .await
                .status
                == StatusCode::OK
        }
    };

    // One thread outside the caller's scope refuses the whole batch.
    let refused = send(
        &app,
        "POST",
        "/threads/prune",
        "user1-token",
        json!({"thread_ids": [mine[0], theirs]}),
    )
    .await;
    assert_eq!(
        (refused.status, refused.json),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "At least one thread not found or not authorized"})
        )
    );
    assert!(exists(mine[0].clone(), "user1-token").await);
    assert!(exists(theirs.clone(), "user2-token").await);

    let pruned = send(
        &app,
        "POST",
        "/threads/prune",
        "user1-token",
        json!({"thread_ids": mine}),
    )
    .await;
    assert_eq!(pruned.json, json!({"pruned_count": 2}));
    assert!(!exists(mine[0].clone(), "user1-token").await);
    assert!(!exists(mine[1].clone(), "user1-token").await);
    assert!(exists(theirs.clone(), "user2-token").await);

    let cases = [
        (
            json!({"thread_ids": []}),
            StatusCode::OK,
            json!({"pruned_count": 0}),
        ),
        (
            json!({"thread_ids": ["nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "Invalid thread ID: must be a UUID"}),
        ),
        (
            json!({"thread_ids": [theirs], "strategy": "all"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "\"all\" is not one of \"delete\" or \"keep_latest\"\n\n\
                Failed validating \"enum\" in schema[\"properties\"][\"strategy\"]\n\n\
                On instance[\"strategy\"]:\n    \"all\""}),
        ),
    ];
    for (body, status, reply) in cases {
        let got = send(&app, "POST", "/threads/prune", "user2-token", body).await;
        assert_eq!((got.status, got.json), (status, reply));
    }
    assert!(exists(theirs, "user2-token").await);
}

#[tokio::test]
async fn store_namespaces_start_with_the_caller() {
    let app = app(Some(plugin("reference_auth")));
    let put = send(
        &app,
        "PUT",
        "/store/items",
        "user1-token",
        json!({"namespace": ["user1", "prefs"], "key": "theme", "value": {"dark": true}}),
    )
    .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT, "{}", put.text);
    let item = send(
        &app,
        "GET",
        "/store/items?namespace=user1.prefs&key=theme",
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(item.json["value"], json!({"dark": true}));
    assert_eq!(item.json["namespace"], json!(["user1", "prefs"]));
    let foreign = send(
        &app,
        "GET",
        "/store/items?namespace=user1.prefs&key=theme",
        "user2-token",
        Value::Null,
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let missing = send(
        &app,
        "GET",
        "/store/items?namespace=user1.prefs&key=nope",
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (StatusCode::OK, "null")
    );
    let no_key = send(
        &app,
        "GET",
        "/store/items?namespace=user1.prefs",
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(
        (no_key.status, no_key.json),
        (StatusCode::BAD_REQUEST, json!({"error": "Key is required"}))
    );
    let dotted = send(
        &app,
        "PUT",
        "/store/items",
        "user1-token",
        json!({"namespace": ["user1", "a.b"], "key": "k", "value": {}}),
    )
    .await;
    assert_eq!(dotted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        dotted.text,
        "Namespace label 'a.b' must be a non-empty string without periods"
    );
    let not_object = send(
        &app,
        "PUT",
        "/store/items",
        "user1-token",
        json!({"namespace": ["user1"], "key": "k", "value": [1]}),
    )
    .await;
    assert_eq!(not_object.status, StatusCode::UNPROCESSABLE_ENTITY);

    send(
        &app,
        "PUT",
        "/store/items",
        "user1-token",
        json!({"namespace": ["user1", "notes"], "key": "n1", "value": {"tag": "a"}}),
    )
    .await;
    let found = send(
        &app,
        "POST",
        "/store/items/search",
        "user1-token",
        json!({"namespace_prefix": ["user1"], "filter": {"tag": "a"}}),
    )
    .await;
    let items = found.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["key"], "n1");
    assert_eq!(items[0]["score"], Value::Null);
    let spaces = send(
        &app,
        "POST",
        "/store/namespaces",
        "user1-token",
        json!({"prefix": ["user1"]}),
    )
    .await;
    assert_eq!(
        spaces.json,
        json!({"namespaces": [["user1", "notes"], ["user1", "prefs"]]})
    );
    let shallow = send(
        &app,
        "POST",
        "/store/namespaces",
        "user1-token",
        json!({"prefix": ["user1"], "max_depth": 1}),
    )
    .await;
    assert_eq!(shallow.json, json!({"namespaces": [["user1"]]}));
    let no_prefix = send(&app, "POST", "/store/namespaces", "user1-token", json!({})).await;
    assert_eq!(
        no_prefix.status,
        StatusCode::FORBIDDEN,
        "the handler sees namespace None"
    );

    let deleted = send(
        &app,
        "DELETE",
        "/store/items",
        "user1-token",
        json!({"namespace": ["user1", "prefs"], "key": "theme"}),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = send(
        &app,
        "GET",
        "/store/items?namespace=user1.prefs&key=theme",
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(gone.text, "null");
}

/// A cron's `next_run_date` as UTC (hour, minute), checked to fall within
/// the next day.
fn next_firing(cron: &Value) -> (u32, u32) {
    use chrono::Timelike;
    let text = cron["next_run_date"].as_str().expect("a next_run_date");
    let next = chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    let ahead = next.to_utc() - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::zero() && ahead <= chrono::TimeDelta::days(1),
        "{text}"
    );
    (next.hour(), next.minute())
}

#[tokio::test]
async fn crons_read_their_schedule_in_their_timezone() {
    let app = app(Some(plugin("reference_auth")));
    // 09:30 in Kolkata (UTC+5:30, no daylight saving) is 04:00 UTC.
    let cron = send(
        &app,
        "POST",
        "/runs/crons",
        "user1-token",
        json!({"assistant_id": "agent", "schedule": "30 9 * * *", "timezone": "Asia/Kolkata"}),
    )
    .await;
    assert_eq!(cron.status, StatusCode::OK, "{}", cron.text);
    assert_eq!(cron.json["timezone"], "Asia/Kolkata");
    assert_eq!(next_firing(&cron.json), (4, 0));
    let path = format!("/runs/crons/{}", cron.json["cron_id"].as_str().unwrap());

    // A new timezone alone moves the next firing; it is not run payload.
    let utc = send(
        &app,
        "PATCH",
        &path,
        "user1-token",
        json!({"timezone": "UTC"}),
    )
    .await;
    assert_eq!(utc.status, StatusCode::OK, "{}", utc.text);
    assert_eq!(utc.json["timezone"], "UTC");
    assert_eq!(next_firing(&utc.json), (9, 30));
    assert_eq!(utc.json["payload"].get("timezone"), None);

    // A new schedule alone is read in the cron's timezone.
    let kolkata = send(
        &app,
        "PATCH",
        &path,
        "user1-token",
        json!({"timezone": "Asia/Kolkata"}),
    )
    .await;
    assert_eq!(next_firing(&kolkata.json), (4, 0));
    let noon = send(
        &app,
        "PATCH",
        &path,
        "user1-token",
        json!({"schedule": "0 12 * * *"}),
    )
    .await;
    assert_eq!(next_firing(&noon.json), (6, 30));
    let stored = send(&app, "GET", &path, "user1-token", Value::Null).await;
    assert_eq!(
        (stored.json["timezone"].clone(), next_firing(&stored.json)),
        (json!("Asia/Kolkata"), (6, 30))
    );

    // Unknown zones are the reference's 422, and change nothing.
    let detail = json!(
        "Invalid timezone: 'Mars/Olympus_Mons'. Use IANA timezone format (e.g. 'America/New_York')."
    );
    let bad = send(
        &app,
        "POST",
        "/runs/crons",
        "user1-token",
        json!({"assistant_id": "agent", "schedule": "* * * * *", "timezone": "Mars/Olympus_Mons"}),
    )
    .await;
    assert_eq!(
        (bad.status, bad.json["detail"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, detail.clone())
    );
    let bad = send(
        &app,
        "PATCH",
        &path,
        "user1-token",
        json!({"timezone": "Mars/Olympus_Mons", "schedule": "* * * * *"}),
    )
    .await;
    assert_eq!(
        (bad.status, bad.json["detail"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, detail)
    );
    let after = send(&app, "GET", &path, "user1-token", Value::Null).await;
    assert_eq!(after.json, stored.json);
}

#[tokio::test]
async fn crons_are_owned_and_filtered_on_cron_and_thread() {
    let app = app(Some(plugin("reference_auth")));
    let cron = send(
        &app,
        "POST",
        "/runs/crons",
        "user1-token",
        json!({"assistant_id": "agent", "schedule": "*/5 * * * *", "input": {"messages": []}}),
    )
    .await;
    assert_eq!(cron.status, StatusCode::OK, "{}", cron.text);
    assert_eq!(cron.json["assistant_id"], AGENT);
    assert_eq!(cron.json["metadata"], json!({"owner": "user1"}));
    assert_eq!(cron.json["user_id"], "user1");
    assert_eq!(cron.json["on_run_completed"], "delete");
    let id = cron.json["cron_id"].as_str().unwrap().to_owned();

    let thread = send(&app, "POST", "/threads", "user1-token", json!({})).await;
    let tid = thread.json["thread_id"].as_str().unwrap().to_owned();
    let on_thread = send(
        &app,
        "POST",
        &format!("/threads/{tid}/runs/crons"),
        "user1-token",
        json!({"assistant_id": AGENT, "schedule": "0 9 * * 1"}),
    )
    .await;
    assert_eq!(on_thread.json["thread_id"], json!(tid));
    assert_eq!(on_thread.json["on_run_completed"], Value::Null);
    let foreign = send(
        &app,
        "POST",
        &format!("/threads/{tid}/runs/crons"),
        "user2-token",
        json!({"assistant_id": AGENT, "schedule": "0 9 * * 1"}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    let mine = send(&app, "POST", "/runs/crons/search", "user1-token", json!({})).await;
    assert_eq!(mine.json.as_array().unwrap().len(), 2);
    let theirs = send(&app, "POST", "/runs/crons/search", "user2-token", json!({})).await;
    assert_eq!(theirs.json, json!([]));
    assert_eq!(
        send(&app, "POST", "/runs/crons/count", "user2-token", json!({}))
            .await
            .json,
        json!(0)
    );
    assert_eq!(
        send(&app, "POST", "/runs/crons/count", "user1-token", json!({}))
            .await
            .json,
        json!(2)
    );

    let bad = send(
        &app,
        "POST",
        "/runs/crons",
        "user1-token",
        json!({"assistant_id": "agent", "schedule": "bad"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid cron schedule: 'bad'.")
    );
    let bad = send(
        &app,
        "POST",
        "/runs/crons",
        "user1-token",
        json!({"assistant_id": "nope", "schedule": "* * * * *"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(
        send(
            &app,
            "GET",
            &format!("/runs/crons/{id}"),
            "user2-token",
            Value::Null
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let patched = send(
        &app,
        "PATCH",
        &format!("/runs/crons/{id}"),
        "user1-token",
        json!({"enabled": false, "schedule": "0 * * * *"}),
    )
    .await;
    assert_eq!(
        (
            patched.json["enabled"].clone(),
            patched.json["schedule"].clone()
        ),
        (json!(false), json!("0 * * * *"))
    );
    let empty = send(
        &app,
        "PATCH",
        &format!("/runs/crons/{id}"),
        "user1-token",
        json!({}),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("/runs/crons/{id}"),
            "user2-token",
            Value::Null
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("/runs/crons/{id}"),
            "user1-token",
            Value::Null
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    // Deleting the thread deletes its crons.
    send(
        &app,
        "DELETE",
        &format!("/threads/{tid}"),
        "user1-token",
        Value::Null,
    )
    .await;
    assert_eq!(
        send(&app, "POST", "/runs/crons/count", "user1-token", json!({}))
            .await
            .json,
        json!(0)
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let app = app(Some(plugin("reference_auth")));
    let cases = [
        (
            "GET",
            "/threads/not-a-uuid",
            Value::Null,
            422,
            json!({"detail": "Invalid thread ID: must be a UUID"}),
        ),
        (
            "PATCH",
            "/runs/crons/42",
            json!({"enabled": true}),
            422,
            json!({"detail": "Invalid cron ID: must be a UUID"}),
        ),
        (
            "POST",
            "/threads",
            json!({"thread_id": "nope"}),
            422,
            Value::Null,
        ),
        ("POST", "/threads", json!({"metadata": 5}), 422, Value::Null),
        (
            "POST",
            "/threads",
            json!({"if_exists": "sometimes"}),
            422,
            Value::Null,
        ),
    ];
    for (method, path, body, status, expected) in cases {
        let reply = send(&app, method, path, "user1-token", body.clone()).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path} {body}: {}",
            reply.text
        );
        assert!(
            reply.json["detail"].is_string(),
            "{method} {path}: {}",
            reply.text
        );
        if !expected.is_null() {
            assert_eq!(reply.json, expected);
        }
    }
    let both = send(
        &app,
        "POST",
        "/assistants",
        "admin-token",
        json!({"graph_id": "agent", "config": {"configurable": {"a": 1}}, "context": {"a": 1}}),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    // Malformed JSON.
    let reply = send_raw(
        &app,
        "POST",
        "/threads",
        &[("authorization", "Bearer user1-token")],
        Some("{oops".into()),
    )
    .await;
    assert_eq!(
        reply.json,
        json!({"detail": "Invalid JSON in request body"})
    );
    // A body past its route's limit is refused before it is parsed.
    let huge = json!({"metadata": {"blob": "y".repeat(12 << 20)}});
    let reply = send(&app, "POST", "/threads", "user1-token", huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("limits.body_kib"),
        "{}",
        reply.text
    );
    // A value the plugin could only choke on (a run's input, within its
    // route's larger limit) is refused as too large, not a 500.
    let huge = json!({"assistant_id": "agent", "input": {"blob": "y".repeat(12 << 20)}});
    let path = format!("/threads/{}/runs", Uuid::now_v7());
    let reply = send(&app, "POST", &path, "user1-token", huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply.json["detail"].as_str().unwrap().contains("32 MiB"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn without_a_plugin_everything_is_allowed_unscoped() {
    let app = app(None);
    let made = send(&app, "POST", "/threads", "", json!({"metadata": {"a": 1}})).await;
    assert_eq!(made.status, StatusCode::OK);
    assert_eq!(made.json["metadata"], json!({"a": 1}));
    let found = send(&app, "POST", "/threads/count", "", json!({})).await;
    assert_eq!(found.json, json!(1));
}

#[tokio::test]
async fn studio_requests_become_the_studio_user_unless_disabled() {
    let studio = [("x-auth-scheme", "langsmith")];
    let app = app_with(Some(plugin("reference_auth")), false);
    let made = send_with(&app, "POST", "/threads/search", &studio, json!({})).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    // Handlers still run for the Studio user: the reader rule refuses it.
    let store = send_with(
        &app,
        "PUT",
        "/store/items",
        &studio,
        json!({"namespace": ["langgraph-studio-user"], "key": "k", "value": {}}),
    )
    .await;
    assert_eq!(store.status, StatusCode::NO_CONTENT);
    let disabled = app_with(Some(plugin("reference_auth")), true);
    let refused = send_with(&disabled, "POST", "/threads/search", &studio, json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_documents_every_route_and_merges_the_auth_security() {
    let app = app(Some(plugin("reference_auth")));
    let doc = send(&app, "GET", "/openapi.json", "", Value::Null).await;
    assert_eq!(doc.status, StatusCode::OK);
    for endpoint in warden::server::routes::endpoints() {
        let method = endpoint.method.as_str().to_ascii_lowercase();
        assert!(
            doc.json["paths"][endpoint.path][&method].is_object(),
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
    let docs = send(&app, "GET", "/docs", "", Value::Null).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("\"/threads/search\""));

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
