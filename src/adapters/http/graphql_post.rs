//! `POST /graphql`: the JSON-only guard, the body's size and time limits, the caller's
//! access, and the GraphQL request itself.

use std::time::Duration;

use async_graphql::futures_util::StreamExt;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::errors::{bad_request, body_timeout, errors, too_large, unauthorized};
use crate::adapters::graphql::{Access, ErrorCode};

/// The exact message of the 415 answer, which clients of the reference already know.
const ONLY_JSON: &str = "Only 'application/json' supported.";

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

pub async fn graphql(
    State(state): State<AppState>,
    access: Option<axum::Extension<Access>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json(&headers) {
        return errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            ONLY_JSON,
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = state.edge.max_body_bytes;
    if declared.is_some_and(|len| len > limit) {
        return too_large(limit);
    }
    let bytes = match tokio::time::timeout(state.edge.body_timeout, read_body(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge)) => return too_large(limit),
        Ok(Err(BodyError::Broken)) => return bad_request("The request body could not be read."),
        Err(_) => return body_timeout(state.edge.body_timeout.as_secs_f64()),
    };
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(why) => return bad_request(why),
    };
    let access = access.map(|axum::Extension(access)| access).unwrap_or_default();
    let response = state.schema.execute(request.data(access)).await;
    let refused = response.errors.iter().find(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from(ErrorCode::Unauthenticated.as_str()))
    });
    if let Some(refused) = refused {
        return unauthorized(&refused.message, false);
    }
    Json(response).into_response()
}

/// Why a body could not be read.
enum BodyError {
    /// Over the limit, whatever its `Content-Length` said.
    TooLarge,
    /// The connection broke or the chunked encoding was malformed: the client's fault.
    Broken,
}

async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut chunks = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads a GraphQL-over-HTTP body: an object with a string `query`, and optionally an
/// object `variables` and a string `operationName` (either may be null).
fn parse_request(bytes: &[u8]) -> Result<async_graphql::Request, String> {
    let body: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        // serde_json's message names a line and column, never the body's text.
        format!("The body is not valid JSON: {err}")
    })?;
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

/// How long a request body may take to arrive by default.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
