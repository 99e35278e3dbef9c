//! Which handler runs for an event (most specific wins, at most one), what
//! authenticate sees, and how plugin answers map to results.

use serde_json::json;
use warden::types::{Action, Event, Filter, On, Outcome, Request, Resource, ThreadAction, User};

use crate::support::{bearer, login, plugin};

fn filter_for(resource: Resource, action: Action) -> (Option<On>, Outcome) {
    let levels = plugin("fixture_levels");
    let event = Event::new(resource, action).unwrap();
    let verdict = levels
        .session()
        .unwrap()
        .authorize(&User::new("u"), event, &json!({}))
        .unwrap()
        .unwrap();
    (verdict.handler, verdict.outcome)
}

#[test]
fn the_most_specific_handler_wins() {
    let cases = [
        (
            Resource::Threads,
            Action::Create,
            On::Event(Resource::Threads, Action::Create),
            "exact",
        ),
        (
            Resource::Threads,
            Action::Read,
            On::Resource(Resource::Threads),
            "resource",
        ),
        (
            Resource::Threads,
            Action::CreateRun,
            On::Resource(Resource::Threads),
            "resource",
        ),
        (
            Resource::Crons,
            Action::Create,
            On::Action(Action::Create),
            "action",
        ),
        (
            Resource::Assistants,
            Action::Create,
            On::Action(Action::Create),
            "action",
        ),
        (Resource::Store, Action::Put, On::All, "global"),
        (Resource::Crons, Action::Search, On::All, "global"),
    ];
    for (resource, action, key, by) in cases {
        let (handler, outcome) = filter_for(resource, action);
        assert_eq!(handler, Some(key), "{resource}.{action}");
        assert_eq!(
            outcome,
            Outcome::Filter(Filter::eq("by", by)),
            "{resource}.{action}"
        );
    }
}

#[test]
fn no_handler_allows_without_calling_the_plugin() {
    // The tutorial plugin registers nothing; calling its `authorize` would
    // trap (the SDK has no handler to run), so an Allow proves no call.
    let tutorial = plugin("tutorial_auth");
    assert!(tutorial.registered().is_empty());
    let user = login(&tutorial, &bearer("user1-token"));
    for resource in Resource::ALL {
        for action in resource.actions() {
            let event = Event::new(*resource, *action).unwrap();
            let verdict = tutorial
                .session()
                .unwrap()
                .authorize(&user, event, &json!({"metadata": {}}))
                .unwrap()
                .unwrap();
            assert_eq!((verdict.handler, verdict.outcome), (None, Outcome::Allow));
        }
    }
}

#[test]
fn authenticate_sees_the_request_as_sent() {
    let request = Request::new("POST", "/threads/search")
        .with_query("a", "1")
        .with_query("b", "2")
        .with_query("a", "3")
        .with_header("X-Dup", "one")
        .with_header("x-dup", "two")
        .with_header("Authorization", "Bearer t");
    let user = login(&plugin("fixture_levels"), &request);
    assert_eq!(user.extra["method"], "POST");
    assert_eq!(user.extra["path"], "/threads/search");
    assert_eq!(
        user.extra["query"],
        json!([["a", "1"], ["b", "2"], ["a", "3"]])
    );
    assert_eq!(
        user.extra["headers"],
        json!([
            ["x-dup", "one"],
            ["x-dup", "two"],
            ["authorization", "Bearer t"]
        ])
    );
}

#[test]
fn http_errors_keep_status_detail_and_headers() {
    let levels = plugin("fixture_levels");
    let answer = |request: Request| levels.session().unwrap().authenticate(&request);
    let error = answer(
        Request::new("GET", "/")
            .with_header("x-status", "401")
            .with_header("x-detail", "Invalid token")
            .with_header("x-header", "Bearer realm=\"warden\""),
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(error.status, 401);
    assert_eq!(error.detail.as_deref(), Some("Invalid token"));
    assert_eq!(
        error.headers,
        [(
            "www-authenticate".to_owned(),
            "Bearer realm=\"warden\"".to_owned()
        )]
    );
    let teapot = answer(Request::new("GET", "/").with_header("x-status", "418"))
        .unwrap()
        .unwrap_err();
    assert_eq!((teapot.status, teapot.detail), (418, None));
    assert!(answer(Request::new("GET", "/").with_header("x-status", "200")).is_err());
}

#[test]
fn the_reference_policy_runs_in_the_sandbox() {
    let reference = plugin("reference_auth");
    let user = login(&reference, &bearer("user1-token"));
    assert_eq!((user.identity.as_str(), user.name()), ("user1", "Alice"));

    let verdict = reference
        .session()
        .unwrap()
        .authorize(
            &user,
            ThreadAction::Create,
            &json!({"thread_id": "t", "metadata": {"owner": "user2"}}),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        verdict.outcome,
        Outcome::Filter(Filter::eq("owner", "user1"))
    );
    assert_eq!(verdict.value.unwrap()["metadata"]["owner"], "user1");

    let reader = login(&reference, &bearer("reader-token"));
    let denied = reference
        .session()
        .unwrap()
        .authorize(&reader, ThreadAction::Create, &json!({}))
        .unwrap();
    assert_eq!(denied.unwrap_err().status, 403);

    let error = reference
        .session()
        .unwrap()
        .authenticate(&bearer("nope"))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (error.status, error.detail.as_deref()),
        (401, Some("Invalid token"))
    );
}
