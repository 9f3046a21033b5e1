//! The HTTP surface (docs/src/http.md): the JSON-only guard, 400 and 413 answers, GET that runs
//! queries only and serves browsers the console, `/health`, and JSON 404/405 answers.

use serde_json::{Value, json};

use crate::helpers::{assert_utc_micros, spawn_app};

const ONLY_JSON: &str = r#"{"errors":[{"message":"Only 'application/json' supported.","extensions":{"code":"UNSUPPORTED_MEDIA_TYPE"}}]}"#;
const CREATE_MALLORY: &str =
    r#"mutation { createUser(userData: {name: "Mallory", email: "mallory@x.com"}) { ok } }"#;

async fn json_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{status}: body is not JSON ({err}): {text:?}"));
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content-type {content_type:?} for {text}"
    );
    (status, body)
}

fn assert_has_error_messages(body: &Value) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(!errors.is_empty(), "empty errors: {body}");
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_graphql_accepts_json_with_a_charset_parameter() {
    let app = spawn_app().await;
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
    ] {
        let response = app
            .post_raw(r#"{"query":"{ allUsers { id } }"}"#, Some(content_type))
            .await;
        let (status, body) = json_body(response).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert_eq!(body["data"]["allUsers"], json!([]), "{content_type}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_graphql_answers_415_with_the_reference_message_to_any_other_content_type() {
    let app = spawn_app().await;
    let expected: Value = serde_json::from_str(ONLY_JSON).unwrap();
    let body = json!({ "query": CREATE_MALLORY }).to_string();
    for content_type in [
        Some("text/plain"),
        None,
        Some("application/jsonx"),
        Some("application/x-www-form-urlencoded"),
        Some("application/graphql"),
        Some("text/json"),
    ] {
        let response = app.post_raw(body.clone(), content_type).await;
        let (status, answer) = json_body(response).await;
        assert_eq!(status, 415, "{content_type:?}: {answer}");
        assert_eq!(answer, expected, "{content_type:?}");
    }
    assert!(
        app.all_users().await.is_empty(),
        "a refused request created a user"
    );
    assert_eq!(app.file_records(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_graphql_answers_400_to_malformed_json_or_a_body_that_is_not_a_graphql_request() {
    let app = spawn_app().await;
    for body in [
        r#"{"query": "#,
        "not json at all",
        "",
        "[1,2]",
        r#"{"nope":1}"#,
        r#""{ allUsers { id } }""#,
        r#"{"query": 42}"#,
        "null",
    ] {
        let response = app.post_raw(body, Some("application/json")).await;
        let (status, answer) = json_body(response).await;
        assert_eq!(status, 400, "{body:?}: {answer}");
        assert_has_error_messages(&answer);
    }
}

/// `{"query":"{ allUsers { id } }"}` padded with JSON whitespace to exactly `len` bytes.
fn padded_request(len: usize) -> Vec<u8> {
    let mut body = br#"{"query":"{ allUsers { id } }""#.to_vec();
    body.resize(len - 1, b' ');
    body.push(b'}');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_graphql_accepts_one_mebibyte_and_answers_413_to_one_byte_more() {
    let app = spawn_app().await;
    let response = app
        .post_raw(padded_request(1_048_576), Some("application/json"))
        .await;
    let (status, body) = json_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["allUsers"], json!([]), "{body}");

    let response = app
        .post_raw(padded_request(1_048_577), Some("application/json"))
        .await;
    assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_graphql_runs_queries_never_mutations_and_serves_the_console_to_browsers() {
    let app = spawn_app().await;
    app.create_ok("Ann", "ann@x.com").await;
    let (status, body) = json_body(app.get("/graphql?query=%7BallUsers%7Bemail%7D%7D").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": { "allUsers": [{ "email": "ann@x.com" }] } })
    );

    let mutation = "mutation{createUser(userData:{name:\"Eve\",email:\"eve@x.com\"}){ok}}";
    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), [("query", mutation)]).unwrap();
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, body) = json_body(response).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED");
    let emails: Vec<Value> = app.all_users().await.iter().map(|u| u["email"].clone()).collect();
    assert_eq!(emails, [json!("ann@x.com")], "GET ran a mutation");
    assert_eq!(app.file_records().len(), 1);

    let response = app.get_as_browser("/graphql").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains("<title>Roster console</title>"), "{page}");
    assert!(!page.contains("ann@x.com"), "the console leaked a user: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_time_the_user_count_and_the_data_file() {
    let app = spawn_app().await;
    let before = chrono::Utc::now();
    let health = app.health().await;
    let after = chrono::Utc::now();
    assert_eq!(health["status"], "ok", "{health}");
    let at = chrono::DateTime::parse_from_rfc3339(health["timestamp"].as_str().unwrap())
        .unwrap_or_else(|err| panic!("timestamp is not RFC 3339 ({err}): {health}"));
    assert_eq!(at.offset().local_minus_utc(), 0, "{health}");
    let slack = chrono::Duration::seconds(2);
    assert!(at >= before - slack && at <= after + slack, "{health}");
    assert_eq!(health["users"], 0, "{health}");
    assert!(
        health["dataFile"]
            .as_str()
            .is_some_and(|p| p.ends_with("users.json")),
        "{health}"
    );
    for key in ["lastReload", "lastWrite", "corrupt", "writeError"] {
        assert!(health.get(key).is_some(), "no {key}: {health}");
    }
    assert_eq!(health["corrupt"], Value::Null, "{health}");
    assert_eq!(health["writeError"], Value::Null, "{health}");

    app.create_ok("Ann", "ann@x.com").await;
    app.create_ok("Bob", "bob@x.com").await;
    let health = app.health().await;
    assert_eq!(health["users"], 2, "{health}");
    let written = assert_utc_micros(&health["lastWrite"]);
    assert!(written >= before - slack, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_answers_404_with_a_json_body() {
    let app = spawn_app().await;
    let (status, body) = json_body(app.get("/nowhere").await).await;
    assert_eq!(status, 404, "{body}");
    assert_has_error_messages(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_on_graphql_answers_405_with_a_json_body() {
    let app = spawn_app().await;
    let response = app.client.delete(app.url("/graphql")).send().await.unwrap();
    let (status, body) = json_body(response).await;
    assert_eq!(status, 405, "{body}");
    assert_has_error_messages(&body);
}

// The HTTP surface over PostgreSQL too (the health test names the data file, so it stays file-only).
crate::helpers::also_on_postgres!(
    post_graphql_accepts_json_with_a_charset_parameter,
    post_graphql_answers_415_with_the_reference_message_to_any_other_content_type,
    post_graphql_answers_400_to_malformed_json_or_a_body_that_is_not_a_graphql_request,
    post_graphql_accepts_one_mebibyte_and_answers_413_to_one_byte_more,
    get_graphql_runs_queries_never_mutations_and_serves_the_console_to_browsers,
    an_unknown_route_answers_404_with_a_json_body,
    delete_on_graphql_answers_405_with_a_json_body,
);
