//! JSON error answers for the HTTP layer: 404, 405, 413, panics, and the shared shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::MAX_BODY_BYTES;

/// A GraphQL-style error body with one message.
pub fn errors(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [{ "message": message.into() }] }))).into_response()
}

pub fn too_large() -> Response {
    errors(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
    )
}

/// A bug must not drop the connection or leak a backtrace: log it, answer a coded 500.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
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

pub async fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "Not found. Roster serves /graphql and /health.",
    )
}

pub async fn method_not_allowed() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
}
