//! Validation over real HTTP (docs/src/graphql.md, Errors): `__typename` is checked like any
//! other field, a document naming two operations or fragments alike says so, and the cost
//! refusal of an introspection query speaks of introspection.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_no_errors, error_codes, spawn_app, spawn_app_with_flags};

/// Asserts the answer is refused before execution (no data) with `BAD_USER_INPUT` only, and
/// answers its messages.
fn refused(answer: &Value) -> Vec<String> {
    let codes = error_codes(answer);
    assert!(
        !codes.is_empty() && codes.iter().all(|code| code == "BAD_USER_INPUT"),
        "{answer}"
    );
    assert_eq!(answer["data"], Value::Null, "{answer}");
    answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|error| error["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts one of `messages` contains every word of `words`.
fn says(messages: &[String], words: &[&str]) {
    assert!(
        messages
            .iter()
            .any(|message| words.iter().all(|word| message.contains(word))),
        "no message says {words:?}: {messages:?}"
    );
}

async fn refused_query(app: &TestApp, query: &str, variables: Value) -> Vec<String> {
    refused(&app.gql(query, variables).await)
}

#[tokio::test]
async fn typename_directives_arguments_and_variables_are_validated_like_any_fields() {
    let app = spawn_app().await;
    let cases: &[(&str, Value, &[&str])] = &[
        ("{ __typename @aa }", json!({}), &["Unknown directive", "aa"]),
        (
            "{ __typename(x: 1) }",
            json!({}),
            &["Unknown argument", "x", "__typename"],
        ),
        ("{ __typename @skip }", json!({}), &["skip", "if", "required"]),
        ("{ __typename @skip(if: $x) }", json!({}), &["$x", "not defined"]),
        (
            "{ __typename @include(if: \"x\") }",
            json!({}),
            &["Invalid value", "if"],
        ),
        (
            "{ __typename @skip(if: true, if: false) }",
            json!({}),
            &["only be one argument", "if"],
        ),
        (
            "{ __typename @skip(if: true) @skip(if: true) }",
            json!({}),
            &["Duplicate directive", "skip"],
        ),
        ("{ __typename @deprecated }", json!({}), &["deprecated", "FIELD"]),
        (
            "{ __typename { id } }",
            json!({}),
            &["__typename", "must not have a selection"],
        ),
        (
            "{ allUsers { __typename @aa } }",
            json!({}),
            &["Unknown directive", "aa"],
        ),
        (
            "{ allUsers { t: __typename(y: 2) } }",
            json!({}),
            &["Unknown argument", "y"],
        ),
        (
            "query($x: String) { __typename @skip(if: $x) }",
            json!({ "x": "yes" }),
            &["if", "Boolean"],
        ),
        (
            "fragment F on User { __typename @aa } { allUsers { ...F } }",
            json!({}),
            &["Unknown directive", "aa"],
        ),
    ];
    for (query, variables, words) in cases {
        let messages = refused_query(&app, query, variables.clone()).await;
        says(&messages, words);
    }
}

#[tokio::test]
async fn thirty_thousand_unknown_directives_on_typename_are_refused() {
    let app = spawn_app().await;
    let query = format!("{{ __typename {} }}", "@aa ".repeat(30_000));
    let answer = app.gql(&query, json!({})).await;
    let messages = refused(&answer);
    says(&messages, &["Unknown directive", "aa"]);
    assert!(messages.len() <= 100, "{} errors", messages.len());
}

#[tokio::test]
async fn a_skipped_typename_leaves_an_empty_answer_and_a_variable_in_its_directive_is_used() {
    let app = spawn_app().await;
    let skipped = app.gql("{ __typename @skip(if: true) }", json!({})).await;
    assert_eq!(skipped, json!({ "data": {} }));
    let query = "query($x: Boolean!) { __typename @skip(if: $x) }";
    let kept = app.gql(query, json!({ "x": false })).await;
    assert_eq!(kept, json!({ "data": { "__typename": "Query" } }));
    let dropped = app.gql(query, json!({ "x": true })).await;
    assert_eq!(dropped, json!({ "data": {} }));
    let aliased = app
        .gql(
            "query($x: Boolean!) { a: __typename @include(if: $x) b: __typename }",
            json!({ "x": true }),
        )
        .await;
    assert_eq!(
        aliased,
        json!({ "data": { "a": "Query", "b": "Query" } }),
        "the order and aliases are kept"
    );
    app.create_ok("Ann", "ann@x.com").await;
    let nested = app
        .gql(
            "query($x: Boolean!) { allUsers { name __typename @include(if: $x) } }",
            json!({ "x": true }),
        )
        .await;
    assert_no_errors(&nested);
    assert_eq!(
        nested["data"]["allUsers"],
        json!([{ "name": "Ann", "__typename": "User" }])
    );
}

#[tokio::test]
async fn two_operations_or_fragments_of_one_name_are_refused_as_such() {
    let app = spawn_app().await;
    let operations = refused_query(&app, "query A { __typename } query A { __typename }", json!({})).await;
    says(&operations, &["operation", "\"A\""]);
    assert!(!operations[0].contains("Syntax"), "{operations:?}");
    let fragments = refused_query(
        &app,
        "fragment F on User { id } fragment F on User { id } { allUsers { ...F } }",
        json!({}),
    )
    .await;
    says(&fragments, &["fragment", "\"F\""]);
    assert!(!fragments[0].contains("Syntax"), "{fragments:?}");
    let anonymous = refused_query(&app, "{ __typename } query B { __typename }", json!({})).await;
    says(&anonymous, &["anonymous"]);
    assert!(!anonymous[0].contains("Syntax"), "{anonymous:?}");
}

#[tokio::test]
async fn an_introspection_query_over_the_cost_limit_is_told_about_introspection() {
    let app = spawn_app_with_flags(&json!([]), &["--max-query-cost", "1000"]).await;
    let messages = refused_query(
        &app,
        "{ __schema { types { name fields { name args { name } } } } }",
        json!({}),
    )
    .await;
    assert!(
        !messages[0].contains("user"),
        "an introspection query is told about users: {messages:?}"
    );
    says(&messages, &["introspection", "1000"]);
}
