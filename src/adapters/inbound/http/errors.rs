//! JSON error answers for the HTTP layer (docs/src/http.md): every client error, whatever
//! refused it, is a GraphQL-style body whose every error has `extensions.code`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::adapters::inbound::graphql::ErrorCode;

/// A GraphQL-style error body with one coded message.
pub fn errors(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}

pub fn too_large(limit: usize) -> Response {
    errors(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("The request body is larger than {limit} bytes."),
    )
}

pub fn bad_request(message: impl Into<String>) -> Response {
    errors(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
}

/// 401 with `WWW-Authenticate: Bearer` (RFC 6750); `invalid` says a token was given but
/// is wrong.
pub fn unauthorized(message: &str, invalid: bool) -> Response {
    let mut response = errors(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message);
    let challenge = if invalid {
        HeaderValue::from_static(r#"Bearer realm="roster", error="invalid_token""#)
    } else {
        HeaderValue::from_static(r#"Bearer realm="roster""#)
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// 408 for a body that did not arrive in time; the connection is closed after it, since
/// the rest of the body may still be on its way.
pub fn body_timeout(seconds: f64) -> Response {
    let mut response = errors(
        StatusCode::REQUEST_TIMEOUT,
        ErrorCode::RequestTimeout,
        format!("The request body did not arrive within {seconds} s."),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A bug must not drop the connection or leak a backtrace: log it, answer a coded 500.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "a request handler panicked");
    errors(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

pub async fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "Not found. Roster serves /graphql, /health and /metrics.",
    )
}

pub async fn method_not_allowed() -> Response {
    errors(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "Method not allowed.",
    )
}
