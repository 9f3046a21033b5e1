//! `POST /graphql`: the JSON-only guard, the body limit and the GraphQL request itself.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::errors::{errors, too_large};
use super::{AppState, MAX_BODY_BYTES};

/// The exact body of the 415 answer, which clients of the reference already know.
const ONLY_JSON: &str = "Only 'application/json' supported.";

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

pub async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
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
