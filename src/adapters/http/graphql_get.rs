//! `GET /graphql`: the console for a browser, or the WebSocket upgrade. A plain GET never
//! executes anything, whatever its query string says.

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;

use super::{AppState, websocket};
use crate::adapters::console;

pub async fn console_or_websocket(State(state): State<AppState>, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        websocket::upgrade(state, request).await
    } else {
        console::page()
    }
}
