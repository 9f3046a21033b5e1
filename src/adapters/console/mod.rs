//! The console: the page a browser gets at `GET /graphql`.
//!
//! For now it is async-graphql's GraphiQL page, which loads its scripts from a CDN.

use axum::response::{Html, IntoResponse, Response};

use async_graphql::http::GraphiQLSource;

/// The console page, talking to `/graphql` over HTTP and the WebSocket.
pub fn page() -> Response {
    let page = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql")
        .title("Roster")
        .finish();
    Html(page).into_response()
}
