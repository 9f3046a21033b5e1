//! `POST /graphql`: the JSON-only guard, the body's size and time limits, and the GraphQL
//! request (or batch) it holds, run through [`Exchange`] like every GraphQL request over HTTP.

use async_graphql::futures_util::StreamExt;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::batch;
use super::errors::{bad_request, body_timeout, errors, too_large};
use super::exchange::{Exchange, request_from_object};
use crate::adapters::inbound::graphql::{Access, ErrorCode};

/// The exact message of the 415 answer, which existing clients match on: it never changes.
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
    let access = access.map(|axum::Extension(access)| access).unwrap_or_default();
    let exchange = Exchange::new(&headers, access, false);
    if !is_json(&headers) {
        return exchange.relabel(errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            ONLY_JSON,
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = state.edge.max_body_bytes;
    if declared.is_some_and(|len| len > limit) {
        return exchange.relabel(too_large(limit));
    }
    let bytes = match tokio::time::timeout(state.edge.body_timeout, read_body(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge)) => return exchange.relabel(too_large(limit)),
        Ok(Err(BodyError::Broken)) => {
            return exchange.relabel(bad_request("The request body could not be read."));
        }
        Err(_) => return exchange.relabel(body_timeout(state.edge.body_timeout.as_secs_f64())),
    };
    // serde_json's message names a line and column, never the body's text.
    let body = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(err) => return exchange.relabel(bad_request(format!("The body is not valid JSON: {err}"))),
    };
    match body {
        serde_json::Value::Object(members) => match request_from_object(members) {
            Ok(request) => exchange.run(&state.schema, request).await,
            Err(why) => exchange.relabel(bad_request(why)),
        },
        serde_json::Value::Array(items) => {
            batch::run(&exchange, &state.schema, items, state.edge.max_batch_size).await
        }
        _ => exchange.relabel(bad_request(
            "The body must be a JSON object with a \"query\" string, or an array of them (a batch).",
        )),
    }
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
