//! The limit for list reads: a bare axum route answering `POST /graphql` with the same ten
//! users' JSON a `{ allUsers(limit: 10) { id name email } }` gets from Roster, without
//! reading the request. `bench/run.sh --reads` starts it beside Roster and the minimal
//! async-graphql server (`minimal_graphql.rs`).
//!
//! `bare_route USERS_FILE` serves the first ten users of the file on a free port of
//! 127.0.0.1 and prints its URL on stdout; it serves until killed.

use std::sync::Arc;

use serde_json::{Value, json};

#[path = "support/servers.rs"]
mod servers;

fn main() {
    let users = servers::first_users_from_args();
    let users: Arc<Vec<Value>> = Arc::new(users);
    let route = axum::routing::post(move || {
        let users = Arc::clone(&users);
        async move { axum::Json(json!({ "data": { "allUsers": *users } })) }
    });
    servers::serve(axum::Router::new().route("/graphql", route));
}
