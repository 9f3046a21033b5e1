//! Schema tests: the schema executed directly, without HTTP, over a real store in a
//! temporary folder.

mod beyond;
mod contract;
mod limits;
mod metrics;

use std::sync::Arc;

use serde_json::Value;

use super::{RosterSchema, build_schema};
use crate::adapters::outbound::json_file::JsonFileUserRepository;
use crate::adapters::outbound::system::{SystemClock, UuidV4Generator};
use crate::app::AppServices;

fn schema() -> (RosterSchema, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(JsonFileUserRepository::open(dir.path().join("users.json")).unwrap());
    let services = AppServices::new(store, Arc::new(SystemClock), Arc::new(UuidV4Generator));
    (build_schema(services), dir)
}

async fn run(schema: &RosterSchema, query: &str) -> Value {
    serde_json::to_value(schema.execute(query).await).unwrap()
}

async fn run_with(schema: &RosterSchema, query: &str, variables: Value) -> Value {
    let request =
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
    serde_json::to_value(schema.execute(request).await).unwrap()
}

/// Creates a user and returns its id.
async fn create(schema: &RosterSchema, name: &str, email: &str) -> String {
    let answer = run_with(
        schema,
        "mutation($u: UserInput!) { createUser(userData: $u) { ok user { id } } }",
        serde_json::json!({ "u": { "name": name, "email": email } }),
    )
    .await;
    answer["data"]["createUser"]["user"]["id"]
        .as_str()
        .expect("created")
        .to_owned()
}
