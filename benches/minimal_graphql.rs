//! The other limit for list reads: the smallest async-graphql server that answers
//! `{ allUsers(limit: N) { id name email } }`: one resolver over ten users in memory, an
//! axum handler that hands the body to `Schema::execute` and returns its answer as JSON, no
//! extensions, limits, logging or metrics. `bench/run.sh --reads` starts it beside Roster
//! and the bare route (`bare_route.rs`).
//!
//! `minimal_graphql USERS_FILE` serves the first ten users of the file on a free port of
//! 127.0.0.1 and prints its URL on stdout; it serves until killed.

use std::sync::Arc;

use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use axum::extract::State;

#[path = "support/servers.rs"]
mod servers;

#[derive(SimpleObject, Clone)]
struct User {
    id: ID,
    name: String,
    email: String,
}

struct Query;

#[Object]
impl Query {
    async fn all_users(&self, ctx: &Context<'_>, limit: Option<i32>) -> Vec<User> {
        let users = ctx.data_unchecked::<Arc<Vec<User>>>();
        let limit = limit.map_or(users.len(), |limit| usize::try_from(limit).unwrap_or(0));
        users.iter().take(limit).cloned().collect()
    }
}

type MinimalSchema = Schema<Query, EmptyMutation, EmptySubscription>;

async fn graphql(
    State(schema): State<MinimalSchema>,
    axum::Json(request): axum::Json<async_graphql::Request>,
) -> axum::Json<async_graphql::Response> {
    axum::Json(schema.execute(request).await)
}

fn main() {
    let users: Vec<User> = servers::first_users_from_args()
        .iter()
        .map(|user| User {
            id: ID(user["id"].as_str().unwrap_or_default().to_owned()),
            name: user["name"].as_str().unwrap_or_default().to_owned(),
            email: user["email"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(Arc::new(users))
        .finish();
    let router = axum::Router::new()
        .route("/graphql", axum::routing::post(graphql))
        .with_state(schema);
    servers::serve(router);
}
