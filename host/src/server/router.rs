//! The application's router: the public system routes, and every entry of
//! the route table ([`super::routes::endpoints`]) behind authentication,
//! which runs before routing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method};
use axum::middleware;
use axum::routing::MethodRouter;
use axum::{Extension, Router};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use super::{AppState, Pending, api, auth, metrics, openapi, routes};

/// The application's router. Its runs' nodes reach the store through it
/// ([`super::graph_store`]).
pub fn router(state: Arc<AppState>) -> Router {
    state
        .runs
        .serve_store(Arc::new(super::graph_store::ServerStore::new(&state)));
    // One method router per path, whose unknown methods are a 405 answered
    // after authentication (credentials come before routing).
    let mut paths: BTreeMap<String, (MethodRouter<Arc<AppState>>, Vec<String>)> = BTreeMap::new();
    for endpoint in routes::endpoints() {
        let (methods, allow) = paths.entry(endpoint.path).or_default();
        *methods = std::mem::take(methods).merge(endpoint.handler);
        allow.push(endpoint.method.to_string());
    }
    let protected = paths
        .into_iter()
        .fold(Router::new(), |router, (path, (methods, allow))| {
            let allow = allow.join(", ");
            router.route(
                &path,
                methods.fallback(move |pending: Pending| {
                    api::system::method_not_allowed(pending, allow)
                }),
            )
        })
        .fallback(api::system::not_found)
        // A body is read only once its sender is authenticated, within its
        // route's limit (`limits`); the public routes read none.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::head_first,
        ));
    api::system::router()
        .merge(protected)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .layer(middleware::from_fn(crate::telemetry::request_id::assign))
        .layer(Extension(api::system::Document(Arc::new(
            openapi::document(state.auth_openapi.as_ref()),
        ))))
        .layer(cors())
        .with_state(state)
}

/// LangGraph's default CORS: any origin, method and header; the pagination
/// and location headers exposed; preflights answered before auth.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-pagination-total"),
            HeaderName::from_static("x-pagination-next"),
            HeaderName::from_static("content-location"),
            HeaderName::from_static(crate::telemetry::request_id::HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
