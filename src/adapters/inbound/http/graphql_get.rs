//! `GET /graphql`: the WebSocket upgrade; a GraphQL query in the query string
//! (`?query=…&variables=…&operationName=…&extensions=…`, GraphQL over HTTP), which runs query
//! operations only; or, with neither `query` nor `extensions`, the console for a browser and
//! a coded 400 for anything else.
//!
//! A mutation or subscription over GET answers 405 with `Allow: POST`: a link, a prefetch or
//! a crawler must never change data. Tokens are checked here as on `POST` (the route also
//! serves the console and the upgrade, which check their own way, so the read-token
//! middleware is not on it).

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use super::accept::accepts_html;
use super::auth::reader;
use super::errors::bad_request;
use super::exchange::{Exchange, request_from_object};
use super::{AppState, websocket};
use crate::adapters::inbound::console;

/// The query-string parameters of a GraphQL request.
const PARAMETERS: [&str; 4] = ["query", "operationName", "variables", "extensions"];

pub async fn graphql(State(state): State<AppState>, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        return websocket::upgrade(state, request).await;
    }
    let headers = request.headers();
    let parameters = match parameters(request.uri()) {
        Ok(parameters) => parameters,
        Err(why) => return Exchange::new(headers, Default::default(), true).relabel(bad_request(why)),
    };
    if !parameters.contains_key("query") && !parameters.contains_key("extensions") {
        return console_or_hint(headers);
    }
    let access = match reader(&state.edge.tokens, headers) {
        Ok(access) => access,
        Err(refused) => return refused.into_response(),
    };
    let exchange = Exchange::new(headers, access, true);
    match request_from_object(parameters) {
        Ok(request) => exchange.run(&state.schema, request).await,
        Err(why) => exchange.relabel(bad_request(why)),
    }
}

/// The console for a browser; for any other client, a 400 that says how to ask.
fn console_or_hint(headers: &HeaderMap) -> Response {
    if accepts_html(headers) {
        let mut page = console::page();
        // The same URL answers JSON to other clients.
        page.headers_mut()
            .insert(header::VARY, axum::http::HeaderValue::from_static("accept"));
        return page;
    }
    Exchange::new(headers, Default::default(), true).relabel(bad_request(
        "GET /graphql runs a query given in the query string (?query=…&variables=…); \
         POST runs any operation; a browser (Accept: text/html) gets the console here.",
    ))
}

/// The GraphQL parameters of the query string, as the members of a JSON request: `query` and
/// `operationName` as strings, `variables` and `extensions` decoded from their JSON text.
/// Other parameters are ignored.
fn parameters(uri: &Uri) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| "The query string is not valid URL encoding.".to_owned())?;
    let mut members = serde_json::Map::new();
    for (name, value) in pairs {
        if !PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        let value = match name.as_str() {
            "variables" | "extensions" => serde_json::from_str(&value)
                .map_err(|err| format!("The {name} parameter is not valid JSON: {err}"))?,
            _ => serde_json::Value::String(value),
        };
        if members.insert(name.clone(), value).is_some() {
            return Err(format!("The {name} parameter is given more than once."));
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_gives_the_requests_members() {
        let uri: Uri = "/graphql?query=%7B%20a%20%7D&variables=%7B%22x%22%3A1%7D&operationName=A&other=1"
            .parse()
            .unwrap();
        let members = parameters(&uri).unwrap();
        assert_eq!(members["query"], "{ a }");
        assert_eq!(members["variables"], serde_json::json!({ "x": 1 }));
        assert_eq!(members["operationName"], "A");
        assert!(!members.contains_key("other"));
    }

    #[test]
    fn a_parameter_given_twice_or_json_that_does_not_parse_is_refused() {
        for bad in [
            "/graphql?query=a&query=b",
            "/graphql?query=a&variables=%7B",
            "/graphql?extensions=nope",
        ] {
            assert!(parameters(&bad.parse().unwrap()).is_err(), "{bad}");
        }
        assert!(parameters(&"/graphql".parse().unwrap()).unwrap().is_empty());
    }
}
