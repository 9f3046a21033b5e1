//! HTTP (docs/src/http.md): `POST /graphql` (JSON only, one operation or a batch),
//! `GET /graphql` (a query in the query string, the console, or the WebSocket upgrade),
//! `GET /health`, `GET /metrics`, JSON 404/405, request logging; and the connection-level
//! server under them (`server`: caps and timeouts, graceful shutdown with a deadline).
//!
//! One file per route or concern: `graphql_post`, `graphql_get`, `exchange` (running a
//! GraphQL request that came over HTTP and choosing its status and media type), `accept`
//! (content negotiation), `answer_body` (an answer's JSON in chunks, holding its share of the
//! answer budget until written), `batch`, `websocket` (with `websocket_upgrade`, the
//! handshake and the upgraded connection, `websocket_operations`, the cap on operations,
//! `websocket_frames`, what the client's frames say, and `websocket_event_frames`, live
//! events written many to a write), `health`, `metrics`,
//! `auth` (bearer tokens), `errors` (the JSON error answers), `host` (one `Host` header),
//! `request_log` (span, request id, log line and HTTP metrics of every request) and `server`.

mod accept;
mod answer_body;
pub mod auth;
mod batch;
mod errors;
mod exchange;
mod graphql_get;
mod graphql_post;
mod health;
mod host;
mod metrics;
mod request_log;
pub mod server;
mod websocket;
mod websocket_event_frames;
mod websocket_frames;
mod websocket_operations;
mod websocket_runner;
mod websocket_upgrade;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::middleware;
use axum::routing::{get, post};
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::Tokens;
pub use websocket::normalise_origin;

use super::graphql::{AccessPolicy, RosterSchema};
use crate::app::AppServices;
use websocket::WebSockets;

pub use metrics::install as install_metrics;

/// The largest accepted request body, and WebSocket message, by default.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the routes guard themselves: tokens, CORS, the body deadline, the WebSocket cap.
pub struct HttpSettings {
    pub tokens: Arc<Tokens>,
    /// Origins allowed by CORS and on the WebSocket upgrade; CORS is off when empty.
    pub cors_origins: Vec<String>,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// The largest request body, and WebSocket message.
    pub max_body_bytes: usize,
    /// How many WebSockets may be open at once.
    pub max_websockets: usize,
    /// How many operations one WebSocket may have running at once.
    pub max_websocket_operations: usize,
    /// How many operations all WebSockets together may have running at once.
    pub max_subscriptions: usize,
    /// How long a WebSocket may take to send `connection_init`.
    pub ws_init_timeout: Duration,
    /// How many WebSockets one client address may have open at once.
    pub max_websockets_per_client: usize,
    /// How long a WebSocket may stay silent before it is pinged.
    pub ws_ping_interval: Duration,
    /// How long a pinged WebSocket has to send anything before it is closed.
    pub ws_pong_timeout: Duration,
    /// How long one WebSocket message may take from its first byte to its last.
    pub ws_message_timeout: Duration,
    /// The most operations one batch (a JSON array in one `POST`) may hold.
    pub max_batch_size: usize,
    /// Turns true when the service shuts down; open WebSockets then close.
    pub closing: watch::Receiver<bool>,
}

/// What every handler shares; axum clones it per request, so everything but the schema
/// (itself one `Arc`) sits behind one `Arc`: cloning the use cases cost about 2% of a small
/// read's CPU in a profile.
#[derive(Clone)]
struct AppState {
    schema: RosterSchema,
    edge: Arc<Edge>,
}

/// The guards at the edge (tokens, the WebSockets' cap and rules, the body deadline and
/// size, the batch size) and the use cases the routes call beside the schema.
struct Edge {
    services: AppServices,
    tokens: Arc<Tokens>,
    sockets: WebSockets,
    body_timeout: Duration,
    max_body_bytes: usize,
    max_batch_size: usize,
}

/// The whole HTTP surface with these settings.
pub fn router_with(schema: RosterSchema, services: AppServices, settings: HttpSettings) -> Router {
    let tokens = Arc::clone(&settings.tokens);
    let state = AppState {
        schema,
        edge: Arc::new(Edge {
            services,
            tokens: Arc::clone(&tokens),
            sockets: WebSockets::new(&settings),
            body_timeout: settings.body_timeout,
            max_body_bytes: settings.max_body_bytes,
            max_batch_size: settings.max_batch_size,
        }),
    };
    // Without tokens every caller is anonymous and may do everything: the middleware
    // would only cost time on every request.
    let (execute, metrics) = if tokens.policy() == AccessPolicy::default() {
        (post(graphql_post::graphql), get(metrics::metrics))
    } else {
        let guard = middleware::from_fn_with_state(tokens, auth::require_read);
        (
            post(graphql_post::graphql).route_layer(guard.clone()),
            get(metrics::metrics).route_layer(guard),
        )
    };
    let router = Router::new()
        .route("/graphql", get(graphql_get::graphql).merge(execute))
        .route("/health", get(health::health))
        .route("/metrics", metrics)
        .merge(super::console::routes())
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(errors::panic_response));
    let router = match cors(&settings.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(middleware::from_fn(host::one_host))
        .layer(middleware::from_fn(request_log::log_request))
}

/// CORS for exactly the allowed origins, preflights included; `None` when there are none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(&normalise_origin(origin)).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .max_age(Duration::from_secs(600)),
    )
}
