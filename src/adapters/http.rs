//! HTTP (SPEC §2): `POST /graphql` (JSON only), `GET /graphql` (GraphiQL, never executes;
//! or the WebSocket upgrade for subscriptions),
//! `GET /health`, JSON 404/405, request logging.

use std::time::Instant;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use super::graphql::RosterSchema;
use crate::app::AppServices;
use crate::domain::timestamp_text;

/// The largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The exact body of the 415 answer, which clients of the reference already know.
const ONLY_JSON: &str = "Only 'application/json' supported.";

#[derive(Clone)]
struct AppState {
    schema: RosterSchema,
    services: AppServices,
}

/// The whole HTTP surface.
pub fn router(schema: RosterSchema, services: AppServices) -> Router {
    Router::new()
        .route("/graphql", get(graphiql_or_websocket).post(graphql))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(AppState { schema, services })
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(log_request))
}

fn errors(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [{ "message": message.into() }] }))).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if !is_json(&headers) {
        return errors(StatusCode::UNSUPPORTED_MEDIA_TYPE, ONLY_JSON);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return too_large();
    }
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return too_large(),
    };
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(why) => return errors(StatusCode::BAD_REQUEST, why),
    };
    let response = state.schema.execute(request).await;
    Json(response).into_response()
}

/// Reads a GraphQL-over-HTTP body: an object with a string `query`, and optionally an
/// object `variables` and a string `operationName` (either may be null).
fn parse_request(bytes: &[u8]) -> Result<async_graphql::Request, String> {
    let body: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| format!("The body is not valid JSON: {err}"))?;
    let serde_json::Value::Object(mut body) = body else {
        return Err("The body must be a JSON object with a \"query\" string.".into());
    };
    let Some(serde_json::Value::String(query)) = body.remove("query") else {
        return Err("The body must have a \"query\" string.".into());
    };
    let mut request = async_graphql::Request::new(query);
    match body.remove("variables") {
        None | Some(serde_json::Value::Null) => {}
        Some(variables @ serde_json::Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        Some(_) => return Err("\"variables\" must be a JSON object.".into()),
    }
    match body.remove("operationName") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("\"operationName\" must be a string.".into()),
    }
    Ok(request)
}

fn too_large() -> Response {
    errors(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
    )
}

/// GraphiQL for a browser; for a WebSocket upgrade, subscriptions over the
/// graphql-transport-ws (or legacy graphql-ws) protocol. A plain GET never executes
/// anything, whatever its query string says.
async fn graphiql_or_websocket(State(state): State<AppState>, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        let page = GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Roster")
            .finish();
        return Html(page).into_response();
    }
    let (mut parts, _body) = request.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| GraphQLWebSocket::new(socket, schema, protocol).serve())
}

async fn health(State(state): State<AppState>) -> Response {
    let report = state.services.check_health.execute().await;
    let storage = &report.storage;
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(timestamp_text);
    let body = json!({
        "status": if report.healthy { "ok" } else { "unavailable" },
        "timestamp": time(Some(report.checked_at)),
        "users": report.users,
        "dataFile": storage.location,
        "lastReload": time(storage.last_reload),
        "lastWrite": time(storage.last_write),
        "corrupt": storage.corrupt,
        "writeError": storage.write_error,
        "readError": report.read_error,
    });
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// A bug must not drop the connection or leak a backtrace: log it, answer a coded 500.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }] })),
    )
        .into_response()
}

async fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "Not found. Roster serves /graphql and /health.",
    )
}

async fn method_not_allowed() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
}

/// One `info` line per request: method, path, status and latency.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
