//! The one table of protected routes: each names the authorization events
//! it may fire (in order), so no endpoint escapes authorization and no
//! route fires an event it does not declare ([`super::Caller::authorize`]
//! refuses an undeclared one).

use std::sync::Arc;

use axum::Extension;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use super::AppState;
use super::api::{assistants, crons, graphs, run_access, runs, state, store, threads};
use super::auth::{Event, Events};
use crate::types::Action::{self, *};
use crate::types::Resource::{self, *};

/// A protected route.
pub struct Endpoint {
    /// Its method.
    pub method: Method,
    /// Its path, in axum's syntax (`/threads/{thread_id}`).
    pub path: &'static str,
    /// The events it fires, in order.
    pub events: &'static [Event],
    /// The handler, with its events attached.
    pub handler: MethodRouter<Arc<AppState>>,
}

fn endpoint(
    method: Method,
    path: &'static str,
    events: &'static [(Resource, Action)],
    handler: MethodRouter<Arc<AppState>>,
) -> Endpoint {
    Endpoint {
        method,
        path,
        events,
        handler: handler.layer(Extension(Events(events))),
    }
}

/// The events of creating a run: `threads.create_run`, `assistants.read`
/// for a non-system assistant, `threads.update` when the multitask
/// strategy cancels the runs in flight.
pub const CREATE_RUN: &[Event] = &[(Threads, CreateRun), (Assistants, Read), (Threads, Update)];

/// The events of joining a run: `threads.read`, and `threads.update` when
/// the join cancels the run on disconnect (`cancel_on_disconnect`).
pub const JOIN: &[Event] = &[(Threads, Read), (Threads, Update)];

/// Every protected route.
pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        // threads
        endpoint(
            M::POST,
            "/threads",
            &[(Threads, Create)],
            post(threads::create),
        ),
        endpoint(
            M::POST,
            "/threads/search",
            &[(Threads, Search)],
            post(threads::search),
        ),
        endpoint(
            M::POST,
            "/threads/count",
            &[(Threads, Search)],
            post(threads::count),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}",
            &[(Threads, Read)],
            get(threads::get),
        ),
        endpoint(
            M::PATCH,
            "/threads/{thread_id}",
            &[(Threads, Update)],
            patch(threads::patch),
        ),
        endpoint(
            M::DELETE,
            "/threads/{thread_id}",
            &[(Threads, Delete)],
            delete(threads::delete),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/stream",
            &[(Threads, Read)],
            get(threads::stream),
        ),
        endpoint(
            M::POST,
            "/threads/prune",
            &[(Threads, Delete)],
            post(threads::prune),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/copy",
            &[(Threads, Read), (Threads, Create)],
            post(threads::copy),
        ),
        // thread state
        endpoint(
            M::GET,
            "/threads/{thread_id}/state",
            &[(Threads, Read)],
            get(state::get),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/state",
            &[(Threads, Read), (Threads, Update)],
            post(state::update),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/state/{checkpoint_id}",
            &[(Threads, Read)],
            get(state::get_at),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/state/checkpoint",
            &[(Threads, Read)],
            post(state::post_checkpoint),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/history",
            &[(Threads, Read)],
            get(state::get_history),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/history",
            &[(Threads, Read)],
            post(state::post_history),
        ),
        // runs on a thread
        endpoint(
            M::POST,
            "/threads/{thread_id}/runs",
            CREATE_RUN,
            post(runs::create_stateful),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/runs/stream",
            CREATE_RUN,
            post(runs::stream_stateful),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/runs/wait",
            CREATE_RUN,
            post(runs::wait_stateful),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/runs",
            &[(Threads, Read)],
            get(run_access::list),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/runs/{run_id}",
            &[(Threads, Read)],
            get(run_access::get),
        ),
        endpoint(
            M::DELETE,
            "/threads/{thread_id}/runs/{run_id}",
            &[(Threads, Delete)],
            delete(run_access::delete),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/runs/{run_id}/join",
            JOIN,
            get(run_access::join),
        ),
        endpoint(
            M::GET,
            "/threads/{thread_id}/runs/{run_id}/stream",
            JOIN,
            get(run_access::join_stream),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/runs/{run_id}/cancel",
            &[(Threads, Update)],
            post(run_access::cancel),
        ),
        // stateless runs
        endpoint(M::POST, "/runs", CREATE_RUN, post(runs::create_stateless)),
        endpoint(
            M::POST,
            "/runs/stream",
            CREATE_RUN,
            post(runs::stream_stateless),
        ),
        endpoint(
            M::POST,
            "/runs/wait",
            CREATE_RUN,
            post(runs::wait_stateless),
        ),
        endpoint(M::POST, "/runs/batch", CREATE_RUN, post(runs::batch)),
        endpoint(
            M::POST,
            "/runs/cancel",
            &[(Threads, Update)],
            post(run_access::cancel_many),
        ),
        // assistants
        endpoint(
            M::POST,
            "/assistants",
            &[(Assistants, Create)],
            post(assistants::create),
        ),
        endpoint(
            M::POST,
            "/assistants/search",
            &[(Assistants, Search)],
            post(assistants::search),
        ),
        endpoint(
            M::POST,
            "/assistants/count",
            &[(Assistants, Search)],
            post(assistants::count),
        ),
        endpoint(
            M::GET,
            "/assistants/{assistant_id}",
            &[(Assistants, Read)],
            get(assistants::get),
        ),
        endpoint(
            M::GET,
            "/assistants/{assistant_id}/graph",
            &[(Assistants, Read)],
            get(graphs::graph),
        ),
        endpoint(
            M::GET,
            "/assistants/{assistant_id}/schemas",
            &[(Assistants, Read)],
            get(graphs::schemas),
        ),
        endpoint(
            M::GET,
            "/assistants/{assistant_id}/subgraphs",
            &[(Assistants, Read)],
            get(graphs::subgraphs),
        ),
        endpoint(
            M::GET,
            "/assistants/{assistant_id}/subgraphs/{namespace}",
            &[(Assistants, Read)],
            get(graphs::subgraphs_in_namespace),
        ),
        endpoint(
            M::PATCH,
            "/assistants/{assistant_id}",
            &[(Assistants, Update)],
            patch(assistants::patch),
        ),
        endpoint(
            M::POST,
            "/assistants/{assistant_id}/versions",
            &[(Assistants, Read)],
            post(assistants::versions),
        ),
        endpoint(
            M::POST,
            "/assistants/{assistant_id}/latest",
            &[(Assistants, Update)],
            post(assistants::set_latest),
        ),
        endpoint(
            M::DELETE,
            "/assistants/{assistant_id}",
            &[(Assistants, Delete), (Threads, Update)],
            delete(assistants::delete),
        ),
        // crons
        endpoint(
            M::POST,
            "/runs/crons",
            &[(Assistants, Read), (Crons, Create)],
            post(crons::create_stateless),
        ),
        endpoint(
            M::POST,
            "/threads/{thread_id}/runs/crons",
            &[(Assistants, Read), (Threads, Read), (Crons, Create)],
            post(crons::create_for_thread),
        ),
        endpoint(
            M::POST,
            "/runs/crons/search",
            &[(Crons, Search), (Threads, Search)],
            post(crons::search),
        ),
        endpoint(
            M::POST,
            "/runs/crons/count",
            &[(Crons, Search), (Threads, Search)],
            post(crons::count),
        ),
        endpoint(
            M::GET,
            "/runs/crons/{cron_id}",
            &[(Crons, Read)],
            get(crons::get),
        ),
        endpoint(
            M::PATCH,
            "/runs/crons/{cron_id}",
            &[(Crons, Update)],
            patch(crons::patch),
        ),
        endpoint(
            M::DELETE,
            "/runs/crons/{cron_id}",
            &[(Crons, Delete)],
            delete(crons::delete),
        ),
        // store
        endpoint(M::PUT, "/store/items", &[(Store, Put)], put(store::put)),
        endpoint(M::GET, "/store/items", &[(Store, Get)], get(store::get)),
        endpoint(
            M::DELETE,
            "/store/items",
            &[(Store, Delete)],
            delete(store::delete),
        ),
        endpoint(
            M::POST,
            "/store/items/search",
            &[(Store, Search)],
            post(store::search),
        ),
        endpoint(
            M::POST,
            "/store/namespaces",
            &[(Store, ListNamespaces)],
            post(store::namespaces),
        ),
    ]
}
