//! HTTP (SPEC §2): `POST /graphql` (JSON only), `GET /graphql` (the console, or the
//! WebSocket upgrade), `GET /health`, JSON 404/405, request logging.
//!
//! One file per route or concern: `graphql_post`, `graphql_get`, `websocket`, `health`,
//! `errors` (the JSON error answers) and `request_log`.

mod errors;
mod graphql_get;
mod graphql_post;
mod health;
mod request_log;
mod websocket;

use axum::Router;
use axum::middleware;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;

use super::graphql::RosterSchema;
use crate::app::AppServices;

/// The largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct AppState {
    schema: RosterSchema,
    services: AppServices,
}

/// The whole HTTP surface.
pub fn router(schema: RosterSchema, services: AppServices) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql_get::console_or_websocket).post(graphql_post::graphql),
        )
        .route("/health", get(health::health))
        .merge(super::console::routes())
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .with_state(AppState { schema, services })
        .layer(CatchPanicLayer::custom(errors::panic_response))
        .layer(middleware::from_fn(request_log::log_request))
}
