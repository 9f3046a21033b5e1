//! The schema's contract (docs/src/graphql.md): names, limits, payloads and coded errors.

use serde_json::{Value, json};

use super::{run, schema};
use crate::adapters::inbound::graphql::schema_sdl;

/// The query GraphiQL sends to learn the schema.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_passes_the_limits() {
    let (schema, _dir) = schema();
    let answer = run(&schema, INTROSPECTION).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn queries_nested_deeper_than_twenty_levels_are_refused() {
    let (schema, _dir) = schema();
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } } } } } } } } } }";
    let answer = run(&schema, deep).await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("nested too deep"), "{answer}");
}

#[tokio::test]
async fn business_failures_are_payloads_and_bad_arguments_are_coded_errors() {
    let (schema, _dir) = schema();
    let create = r#"mutation { createUser(userData: {name: "Ann", email: "ann@x.com"}) { ok message } }"#;
    assert_eq!(
        run(&schema, create).await["data"]["createUser"],
        json!({"ok": true, "message": "User created."})
    );
    assert_eq!(
        run(&schema, create).await["data"]["createUser"],
        json!({"ok": false, "message": "Email exists."})
    );
    let answer = run(&schema, "{ allUsers(fuzzy: \"ann\", maxDistance: 11) { id } }").await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let answer = run(&schema, "{ userById(id: \"nobody\") { id } }").await;
    assert_eq!(answer["data"]["userById"], Value::Null);
}

#[test]
fn the_sdl_has_the_names_and_shapes_of_the_contract() {
    let sdl = schema_sdl();
    for line in [
        "allUsers(limit: Int, offset: Int, search: String, fuzzy: String, maxDistance: Int = 2): [User!]!",
        "userById(id: ID!): User",
        "createUser(userData: UserInput!): CreateUserPayload!",
        "updateUser(userData: UserInput!): UpdateUserPayload!",
        "deleteUser(id: ID!): DeleteUserPayload!",
        "bulkUpdateEmails(updates: [EmailUpdateInput!]!, atomic: Boolean! = false, dryRun: Boolean! = false): BulkUpdateEmailsPayload!",
        "createdAt: String",
        "updatedAt: String",
        "query: Query",
        "mutation: Mutation",
    ] {
        assert!(sdl.contains(line), "missing `{line}` in\n{sdl}");
    }
}

#[test]
fn the_checked_in_schema_file_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let file = std::fs::read_to_string(path).expect("schema.graphql is checked in");
    assert!(
        file == schema_sdl(),
        "schema.graphql is out of date: run `cargo run -- --print-schema > schema.graphql`"
    );
}

#[tokio::test]
async fn an_argument_async_graphql_cannot_read_is_the_clients_mistake_and_says_so() {
    let (schema, _dir) = schema();
    for (query, variables) in [
        ("{ allUsers(limit: 1, offset: 3000000000) { id } }", json!({})),
        (
            "query($n: Int) { allUsers(limit: 1, offset: $n) { id } }",
            json!({ "n": 3_000_000_000_u64 }),
        ),
        (
            "query($n: Int) { users(first: $n) { totalCount } }",
            json!({ "n": 1.5 }),
        ),
    ] {
        let answer = super::run_with(&schema, query, variables).await;
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{query}: {answer}");
        assert_ne!(error["message"], "internal error", "{query}: {answer}");
    }
}
