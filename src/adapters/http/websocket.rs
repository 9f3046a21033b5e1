//! The WebSocket upgrade: subscriptions (and queries and mutations) over the
//! graphql-transport-ws protocol, or the legacy graphql-ws one.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;

pub async fn upgrade(state: AppState, request: Request) -> Response {
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
    // The connection outlives this handler; keep the upgrade request's span (its id) on it.
    let span = tracing::Span::current();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .serve()
                .instrument(span)
        })
}
