//! GraphQL conventions over real HTTP: a schema that describes itself, `nodes` on connections,
//! `first` with `last` refused, bulk failure codes as an enum, and `deleteUser` answering with
//! the user it deleted, while the original operations keep their names and shapes.

use serde_json::{Value, json};

use crate::helpers::{assert_no_errors, error_codes, spawn_app};

#[tokio::test]
async fn the_schema_describes_itself_in_introspection_and_above_the_checked_in_schema_block() {
    let app = spawn_app().await;
    let answer = app
        .gql(
            "{ __schema { description queryType { description } mutationType { description } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&answer);
    let schema = &answer["data"]["__schema"];
    let description = schema["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("Roster: "), "{answer}");
    assert!(description.contains("userEvents"), "{description}");
    assert!(schema["queryType"]["description"].is_string(), "{answer}");
    assert!(schema["mutationType"]["description"].is_string(), "{answer}");
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    // As comments, which every SDL parser accepts (graphql-parser refuses a description
    // string on the schema block).
    let comment: String = description
        .lines()
        .map(|line| {
            if line.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {line}\n")
            }
        })
        .collect();
    assert!(
        sdl.contains(&format!("{comment}schema {{")),
        "the SDL's schema block lacks the description"
    );
}

#[tokio::test]
async fn a_connection_lists_its_nodes_in_the_order_of_its_edges() {
    let app = spawn_app().await;
    for (name, email) in [
        ("Cleo", "cleo@x.test"),
        ("Abe", "abe@x.test"),
        ("Bo", "bo@x.test"),
    ] {
        app.create_ok(name, email).await;
    }
    let answer = app
        .gql(
            "{ users(first: 2, orderBy: {field: NAME}) { edges { node { id name } } nodes { id name } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&answer);
    let page = &answer["data"]["users"];
    let from_edges: Vec<Value> = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    assert_eq!(page["nodes"], Value::Array(from_edges), "{answer}");
    assert_eq!(page["nodes"][0]["name"], "Abe");
    assert_eq!(page["nodes"][1]["name"], "Bo");
}

#[tokio::test]
async fn first_together_with_last_is_a_bad_user_input_error() {
    let app = spawn_app().await;
    app.create_ok("Ann", "ann@x.test").await;
    let answer = app
        .gql("{ users(first: 1, last: 1) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    assert_eq!(answer["errors"][0]["message"], "Give first or last, not both.");
    let answer = app.gql("{ users(last: 1) { nodes { name } } }", json!({})).await;
    assert_no_errors(&answer);
}

#[tokio::test]
async fn bulk_failure_codes_are_an_enum_sent_as_the_same_strings() {
    let app = spawn_app().await;
    let ann = app.create_ok("Ann", "ann@x.test").await;
    let bob = app.create_ok("Bob", "bob@x.test").await;
    let answer = app
        .gql(
            "mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { updatedCount failures { id code message } } }",
            json!({ "u": [
                { "id": "nobody", "email": "n@x.test" },
                { "id": ann, "email": "BOB@x.test" },
                { "id": bob, "email": "not an email" },
            ] }),
        )
        .await;
    assert_no_errors(&answer);
    let codes: Vec<&str> = answer["data"]["bulkUpdateEmails"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["NOT_FOUND", "CONFLICT", "BAD_USER_INPUT"], "{answer}");

    let answer = app
        .gql(
            r#"{ field: __type(name: "BulkFailure") { fields { name type { kind ofType { kind name } } } }
                 codes: __type(name: "BulkFailureCode") { kind enumValues { name } } }"#,
            json!({}),
        )
        .await;
    assert_no_errors(&answer);
    let code = answer["data"]["field"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["name"] == "code")
        .expect("BulkFailure.code")
        .clone();
    assert_eq!(
        code["type"],
        json!({ "kind": "NON_NULL", "ofType": { "kind": "ENUM", "name": "BulkFailureCode" } })
    );
    assert_eq!(
        answer["data"]["codes"]["enumValues"],
        json!([{ "name": "NOT_FOUND" }, { "name": "CONFLICT" }, { "name": "BAD_USER_INPUT" }])
    );
}

#[tokio::test]
async fn delete_user_answers_with_the_user_it_deleted_and_null_when_there_was_none() {
    let app = spawn_app().await;
    let created = app.create_user("Dora", "dora@x.test").await["user"].clone();
    let delete = "mutation($id: ID!) { deleteUser(id: $id) { ok message user { id name email createdAt updatedAt } } }";
    let answer = app.gql(delete, json!({ "id": created["id"] })).await;
    assert_no_errors(&answer);
    assert_eq!(
        answer["data"]["deleteUser"],
        json!({ "ok": true, "message": "Deleted Dora", "user": created })
    );
    let again = app.gql(delete, json!({ "id": created["id"] })).await;
    assert_eq!(
        again["data"]["deleteUser"],
        json!({ "ok": false, "message": "Not found.", "user": null })
    );
}
