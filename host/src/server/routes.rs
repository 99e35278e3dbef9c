//! The one table of protected routes: each names the authorization events
//! it may fire (in order), so no endpoint escapes authorization and no
//! route fires an event it does not declare ([`super::Caller::authorize`]
//! refuses an undeclared one).

use std::sync::Arc;

use axum::Extension;
use axum::http::Method;
use axum::routing::MethodRouter;
use utoipa::openapi::path::Paths;
use utoipa::openapi::{RefOr, Schema};
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use super::AppState;
use super::api::{assistants, crons, graphs, run_access, runs, state, store, threads};
use super::auth::{Event, Events};
use crate::types::Action::*;
use crate::types::Resource::*;

/// A protected route: its method and path are its handler's
/// `#[utoipa::path]`, declared once with its documentation.
pub struct Endpoint {
    /// Its method.
    pub method: Method,
    /// Its path, in axum's syntax (`/threads/{thread_id}`).
    pub path: String,
    /// The events it fires, in order.
    pub events: &'static [Event],
    /// The handler, with its events attached.
    pub handler: MethodRouter<Arc<AppState>>,
    /// Its OpenAPI description.
    pub doc: Paths,
    /// The schemas its description names (its bodies').
    pub schemas: Vec<(String, RefOr<Schema>)>,
}

/// The route of `handler` (from `routes!`), firing `events`.
fn endpoint(handler: UtoipaMethodRouter<Arc<AppState>>, events: &'static [Event]) -> Endpoint {
    let (schemas, doc, handler) = handler;
    let (path, item) = doc
        .paths
        .iter()
        .next()
        .expect("a handler documents its path");
    let method = [
        (Method::GET, item.get.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::PATCH, item.patch.is_some()),
        (Method::DELETE, item.delete.is_some()),
    ]
    .into_iter()
    .find_map(|(method, documented)| documented.then_some(method))
    .expect("a handler documents its method");
    Endpoint {
        method,
        path: path.clone(),
        events,
        handler: handler.layer(Extension(Events(events))),
        doc,
        schemas,
    }
}

/// The events of creating a run: `threads.create_run`, `assistants.read`
/// for a non-system assistant, `threads.update` when the multitask
/// strategy cancels the runs in flight.
pub const CREATE_RUN: &[Event] = &[(Threads, CreateRun), (Assistants, Read), (Threads, Update)];

/// The events of a run's nodes reaching the store.
pub const STORE: &[Event] = &[
    (Store, Put),
    (Store, Get),
    (Store, Delete),
    (Store, Search),
    (Store, ListNamespaces),
];

/// The events of joining a run: `threads.read`, and `threads.update` when
/// the join cancels the run on disconnect (`cancel_on_disconnect`).
pub const JOIN: &[Event] = &[(Threads, Read), (Threads, Update)];

/// Every protected route.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        // threads
        endpoint(routes!(threads::create), &[(Threads, Create)]),
        endpoint(routes!(threads::search), &[(Threads, Search)]),
        endpoint(routes!(threads::count), &[(Threads, Search)]),
        endpoint(routes!(threads::get), &[(Threads, Read)]),
        endpoint(routes!(threads::patch), &[(Threads, Update)]),
        endpoint(routes!(threads::delete), &[(Threads, Delete)]),
        endpoint(routes!(threads::stream), &[(Threads, Read)]),
        endpoint(routes!(threads::prune), &[(Threads, Delete)]),
        endpoint(
            routes!(threads::copy),
            &[(Threads, Read), (Threads, Create)],
        ),
        // thread state
        endpoint(routes!(state::get), &[(Threads, Read)]),
        endpoint(
            routes!(state::update),
            &[(Threads, Read), (Threads, Update)],
        ),
        endpoint(routes!(state::get_at), &[(Threads, Read)]),
        endpoint(routes!(state::post_checkpoint), &[(Threads, Read)]),
        endpoint(routes!(state::get_history), &[(Threads, Read)]),
        endpoint(routes!(state::post_history), &[(Threads, Read)]),
        // runs on a thread
        endpoint(routes!(runs::create_stateful), CREATE_RUN),
        endpoint(routes!(runs::stream_stateful), CREATE_RUN),
        endpoint(routes!(runs::wait_stateful), CREATE_RUN),
        endpoint(routes!(run_access::list), &[(Threads, Read)]),
        endpoint(routes!(run_access::get), &[(Threads, Read)]),
        endpoint(routes!(run_access::delete), &[(Threads, Delete)]),
        endpoint(routes!(run_access::join), JOIN),
        endpoint(routes!(run_access::join_stream), JOIN),
        endpoint(routes!(run_access::cancel), &[(Threads, Update)]),
        // stateless runs
        endpoint(routes!(runs::create_stateless), CREATE_RUN),
        endpoint(routes!(runs::stream_stateless), CREATE_RUN),
        endpoint(routes!(runs::wait_stateless), CREATE_RUN),
        endpoint(routes!(runs::batch), CREATE_RUN),
        endpoint(routes!(run_access::cancel_many), &[(Threads, Update)]),
        // assistants
        endpoint(routes!(assistants::create), &[(Assistants, Create)]),
        endpoint(routes!(assistants::search), &[(Assistants, Search)]),
        endpoint(routes!(assistants::count), &[(Assistants, Search)]),
        endpoint(routes!(assistants::get), &[(Assistants, Read)]),
        endpoint(routes!(graphs::graph), &[(Assistants, Read)]),
        endpoint(routes!(graphs::schemas), &[(Assistants, Read)]),
        endpoint(routes!(graphs::subgraphs), &[(Assistants, Read)]),
        endpoint(
            routes!(graphs::subgraphs_in_namespace),
            &[(Assistants, Read)],
        ),
        endpoint(routes!(assistants::patch), &[(Assistants, Update)]),
        endpoint(routes!(assistants::versions), &[(Assistants, Read)]),
        endpoint(routes!(assistants::set_latest), &[(Assistants, Update)]),
        endpoint(
            routes!(assistants::delete),
            &[(Assistants, Delete), (Threads, Update)],
        ),
        // crons
        endpoint(
            routes!(crons::create_stateless),
            &[(Assistants, Read), (Crons, Create)],
        ),
        endpoint(
            routes!(crons::create_for_thread),
            &[(Assistants, Read), (Threads, Read), (Crons, Create)],
        ),
        endpoint(
            routes!(crons::search),
            &[(Crons, Search), (Threads, Search)],
        ),
        endpoint(routes!(crons::count), &[(Crons, Search), (Threads, Search)]),
        endpoint(routes!(crons::get), &[(Crons, Read)]),
        endpoint(routes!(crons::patch), &[(Crons, Update)]),
        endpoint(routes!(crons::delete), &[(Crons, Delete)]),
        // store
        endpoint(routes!(store::put), &[(Store, Put)]),
        endpoint(routes!(store::get), &[(Store, Get)]),
        endpoint(routes!(store::delete), &[(Store, Delete)]),
        endpoint(routes!(store::search), &[(Store, Search)]),
        endpoint(routes!(store::namespaces), &[(Store, ListNamespaces)]),
    ]
}
