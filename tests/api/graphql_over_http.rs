//! GraphQL over HTTP (docs/src/http.md) over real HTTP: `Accept` negotiation and the status
//! codes of `application/graphql-response+json`, GET queries, batches, automatic persisted
//! queries, and subscriptions sent over HTTP.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, spawn_app, spawn_app_with_flags, spawn_app_with_users};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// An answer: status, `Content-Type`, `Allow`, and the JSON body.
struct Reply {
    status: u16,
    content_type: String,
    allow: Option<String>,
    request_id: Option<String>,
    body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let allow = header("allow");
        let request_id = header("x-request-id");
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text}"));
        Self {
            status,
            content_type,
            allow,
            request_id,
            body,
        }
    }

    fn code(&self, error: usize) -> &str {
        self.body["errors"][error]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code on error {error}: {}", self.body))
    }

    fn message(&self, error: usize) -> &str {
        self.body["errors"][error]["message"].as_str().unwrap_or_default()
    }

    fn has_data(&self) -> bool {
        self.body.get("data").is_some()
    }
}

async fn post(app: &TestApp, body: &Value, accept: Option<&str>) -> Reply {
    post_with(app, body, accept, &[]).await
}

async fn post_with(app: &TestApp, body: &Value, accept: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    post_text(app, body.to_string(), accept, headers).await
}

/// `POST /graphql` of `body` as it is (it need not be JSON), labelled `application/json`.
async fn post_text(app: &TestApp, body: String, accept: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, parameters: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), parameters).unwrap();
    let mut request = app.client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.unwrap()).await
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

fn seed() -> Value {
    json!([
        { "id": "1", "name": "Ann", "email": "ann@x.com" },
        { "id": "2", "name": "Bob", "email": "bob@x.com" },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_comes_in_the_media_type_the_client_prefers() {
    let app = spawn_app().await;
    let query = json!({ "query": "{ __typename }" });
    for (accept, expected) in [
        (None, "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/json"), "application/json"),
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
        (
            Some("application/graphql-response+json;q=0.5, application/json"),
            "application/json",
        ),
        (Some("text/plain"), "application/json"),
    ] {
        let reply = post(&app, &query, accept).await;
        assert_eq!(reply.status, 200, "{accept:?}: {}", reply.body);
        assert!(
            reply.content_type.starts_with(expected),
            "{accept:?}: {}",
            reply.content_type
        );
        assert_eq!(reply.body["data"]["__typename"], "Query");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_graphql_response_json_request_errors_are_400_without_data_and_executed_errors_200() {
    let app = spawn_app_with_flags(&seed(), &["--max-query-depth", "3"]).await;
    for (what, request) in [
        ("a syntax error", json!({ "query": "{" })),
        ("an unknown field", json!({ "query": "{ nope }" })),
        (
            "a variable that does not coerce",
            json!({ "query": "query($id: ID!) { userById(id: $id) { id } }", "variables": { "id": null } }),
        ),
        (
            "a query over the limits",
            json!({ "query": "{ users { edges { node { id } } pageInfo { hasNextPage } } }" }),
        ),
        (
            "an unknown operation name",
            json!({ "query": "query A { __typename }", "operationName": "B" }),
        ),
    ] {
        let strict = post(&app, &request, Some(GRAPHQL_RESPONSE)).await;
        assert_eq!(strict.status, 400, "{what}: {}", strict.body);
        assert!(!strict.has_data(), "{what}: {}", strict.body);
        assert!(strict.content_type.starts_with(GRAPHQL_RESPONSE), "{what}");
        assert_eq!(strict.code(0), "BAD_USER_INPUT", "{what}");

        let legacy = post(&app, &request, Some("application/json")).await;
        assert_eq!(legacy.status, 200, "{what}: {}", legacy.body);
        assert!(!legacy.has_data(), "{what}: {}", legacy.body);
        assert_eq!(legacy.code(0), "BAD_USER_INPUT", "{what}");
    }
    // Execution began: a field error leaves `data` (null where the field failed), and 200.
    let executed = post(
        &app,
        &json!({ "query": "{ a: allUsers(limit: -1) { id } b: userById(id: \"1\") { name } }" }),
        Some(GRAPHQL_RESPONSE),
    )
    .await;
    assert_eq!(executed.status, 200, "{}", executed.body);
    assert!(executed.has_data(), "{}", executed.body);
    assert_eq!(executed.code(0), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_a_coded_400_whatever_the_client_accepts() {
    let app = spawn_app().await;
    let create = "mutation { createUser(userData: {name: \"Eve\", email: \"eve@x.com\"}) { ok } }";
    for accept in [None, Some("application/json"), Some(GRAPHQL_RESPONSE)] {
        for body in [
            r#"{ "not a JSON"#.to_owned(),
            json!({ "qeury": "{ __typename }" }).to_string(),
            json!({ "query": ["{ __typename }"] }).to_string(),
            json!({ "query": create, "variables": "{}" }).to_string(),
            json!({ "query": create, "operationName": 0 }).to_string(),
            json!({ "query": create, "extensions": "x" }).to_string(),
            json!({ "query": create, "extensions": [] }).to_string(),
            "42".to_owned(),
        ] {
            let reply = post_text(&app, body.clone(), accept, &[]).await;
            assert_eq!(reply.status, 400, "{accept:?} {body}: {}", reply.body);
            assert_eq!(reply.code(0), "BAD_REQUEST", "{accept:?} {body}");
            assert!(!reply.has_data());
            let expected = accept.unwrap_or("application/json");
            let expected = if expected == GRAPHQL_RESPONSE {
                GRAPHQL_RESPONSE
            } else {
                "application/json"
            };
            assert!(
                reply.content_type.starts_with(expected),
                "{accept:?}: {}",
                reply.content_type
            );
        }
    }
    assert!(app.all_users().await.is_empty(), "a malformed request ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_queries_with_variables_an_operation_name_and_either_media_type() {
    let app = spawn_app_with_users(&seed()).await;
    let query = "query One($id: ID!) { userById(id: $id) { name } } query All { allUsers { name } }";
    let reply = get(
        &app,
        &[
            ("query", query),
            ("variables", r#"{"id":"2"}"#),
            ("operationName", "One"),
        ],
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.content_type.starts_with("application/json"));
    assert_eq!(reply.body, json!({ "data": { "userById": { "name": "Bob" } } }));

    let reply = get(&app, &[("query", "{ nope }")], &[("accept", GRAPHQL_RESPONSE)]).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.content_type.starts_with(GRAPHQL_RESPONSE));
    let reply = get(
        &app,
        &[("query", "{ allUsers(limit: 1) { name } }")],
        &[("accept", GRAPHQL_RESPONSE)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["allUsers"], json!([{ "name": "Ann" }]));

    let reply = get(&app, &[("query", "{ a }"), ("query", "{ b }")], &[]).await;
    assert_eq!((reply.status, reply.code(0)), (400, "BAD_REQUEST"));
    let reply = get(&app, &[("query", "{ a }"), ("variables", "{")], &[]).await;
    assert_eq!((reply.status, reply.code(0)), (400, "BAD_REQUEST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_refuses_mutations_and_subscriptions_with_405_and_allow_post() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "w"]).await;
    let create = "mutation { createUser(userData: {name: \"Eve\", email: \"eve@x.com\"}) { ok } }";
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let headers = [("accept", accept), ("authorization", "Bearer w")];
        let reply = get(&app, &[("query", create)], &headers).await;
        assert_eq!(reply.status, 405, "{}", reply.body);
        assert_eq!(reply.allow.as_deref(), Some("POST"));
        assert_eq!(reply.code(0), "METHOD_NOT_ALLOWED");
        assert!(!reply.has_data());

        let named = "query Q { __typename } mutation M { createUser(userData: {name: \"E\", email: \"e@x.com\"}) { ok } }";
        let reply = get(&app, &[("query", named), ("operationName", "M")], &headers).await;
        assert_eq!((reply.status, reply.allow.as_deref()), (405, Some("POST")));

        let reply = get(
            &app,
            &[("query", "subscription { userEvents { kind } }")],
            &headers,
        )
        .await;
        assert_eq!((reply.status, reply.allow.as_deref()), (405, Some("POST")));
        assert_eq!(reply.code(0), "BAD_USER_INPUT");
        assert!(reply.message(0).contains("/graphql"), "{}", reply.body);
    }
    assert!(app.all_users().await.is_empty(), "GET changed data");
    assert!(app.file_records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_without_a_query_serves_the_console_to_a_browser_and_a_coded_400_to_others() {
    let app = spawn_app().await;
    let response = app.get_as_browser("/graphql").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<title>Roster console</title>")
    );

    for accept in ["*/*", "application/json", GRAPHQL_RESPONSE] {
        let reply = get(&app, &[("operationName", "A")], &[("accept", accept)]).await;
        assert_eq!(reply.status, 400, "{accept}: {}", reply.body);
        assert_eq!(reply.code(0), "BAD_REQUEST");
        assert!(reply.message(0).contains("?query="), "{}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_needs_the_read_token_like_post() {
    let app = spawn_app_with_flags(&seed(), &["--read-token", "r"]).await;
    let query = [("query", "{ allUsers { name } }")];
    let reply = get(&app, &query, &[]).await;
    assert_eq!((reply.status, reply.code(0)), (401, "UNAUTHENTICATED"));
    let reply = get(&app, &query, &[("authorization", "Bearer wrong")]).await;
    assert_eq!((reply.status, reply.code(0)), (401, "UNAUTHENTICATED"));
    let reply = get(&app, &query, &[("authorization", "Bearer r")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["allUsers"][1]["name"], "Bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_http_are_told_to_use_the_websocket_at_the_host_the_client_used() {
    let app = spawn_app().await;
    for query in [
        "subscription { userEvents { kind } }",
        "subscription Follow { userEvents { kind user { name } } }",
    ] {
        let reply = post(&app, &json!({ "query": query }), None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.code(0), "BAD_USER_INPUT");
        let expected = format!("ws://{}/graphql", app.base.trim_start_matches("http://"));
        assert!(reply.message(0).contains(&expected), "{}", reply.body);

        let reply = post_with(
            &app,
            &json!({ "query": query }),
            Some(GRAPHQL_RESPONSE),
            &[("host", "roster.example:8080")],
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply.message(0).contains("ws://roster.example:8080/graphql"),
            "{}",
            reply.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_answered_in_order_and_its_mutations_apply_in_order() {
    let app = spawn_app_with_users(&seed()).await;
    let batch = json!([
        { "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok user { name } } }",
          "variables": { "u": { "name": "Cy", "email": "cy@x.com" } } },
        { "query": "mutation { createUser(userData: {name: \"Dup\", email: \"CY@x.com\"}) { ok message } }" },
        { "query": "query Names { allUsers { name } }", "operationName": "Names" },
        { "query": "{ nope }" },
    ]);
    for accept in [None, Some(GRAPHQL_RESPONSE)] {
        let reply = post(&app, &batch, accept).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let answers = reply.body.as_array().expect("an array");
        assert_eq!(answers.len(), 4);
        if accept.is_none() {
            assert_eq!(answers[0]["data"]["createUser"]["user"]["name"], "Cy");
            assert_eq!(answers[1]["data"]["createUser"]["message"], "Email exists.");
            assert_eq!(
                answers[2]["data"]["allUsers"],
                json!([{ "name": "Ann" }, { "name": "Bob" }, { "name": "Cy" }])
            );
        }
        assert!(answers[3].get("data").is_none(), "{}", answers[3]);
        assert_eq!(answers[3]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_is_empty_too_long_or_malformed_runs_nothing_and_answers_400() {
    let app = spawn_app_with_flags(&json!([]), &["--max-batch-size", "3"]).await;
    let create = |n: usize| json!({ "query": format!("mutation {{ createUser(userData: {{name: \"U{n}\", email: \"u{n}@x.com\"}}) {{ ok }} }}") });
    let too_long: Vec<Value> = (0..4).map(create).collect();
    for (what, batch) in [
        ("empty", json!([])),
        ("too long", Value::Array(too_long)),
        ("an item that is not an object", json!([create(1), 5])),
        ("an item without a query", json!([create(1), { "variables": {} }])),
    ] {
        let reply = post(&app, &batch, None).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.code(0), "BAD_REQUEST", "{what}");
    }
    assert!(app.all_users().await.is_empty(), "a refused batch ran something");
    let three: Vec<Value> = (0..3).map(create).collect();
    let reply = post(&app, &Value::Array(three), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.all_users().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_operations_make_a_batch_by_default_and_seventeen_do_not() {
    let app = spawn_app().await;
    let ops = |n: usize| Value::Array(vec![json!({ "query": "{ __typename }" }); n]);
    let reply = post(&app, &ops(16), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body.as_array().unwrap().len(), 16);
    let reply = post(&app, &ops(17), None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.message(0).contains("at most 16"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_shares_one_budget_of_fields_and_cost() {
    // `{ allUsers(limit: 1) { id name email } }` selects 4 fields: two fit under 10, not three.
    let app = spawn_app_with_flags(&seed(), &["--max-query-fields", "10"]).await;
    let op = json!({ "query": "{ allUsers(limit: 1) { id name email } }" });
    let alone = post(&app, &op, None).await;
    assert!(alone.body.get("errors").is_none(), "{}", alone.body);
    let reply = post(&app, &json!([op, op, op]), None).await;
    let answers = reply.body.as_array().expect("an array").clone();
    assert_eq!(answers[0]["data"]["allUsers"][0]["name"], "Ann");
    assert_eq!(answers[1]["data"]["allUsers"][0]["name"], "Ann");
    assert_eq!(answers[2]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let message = answers[2]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("batch") && message.contains("12 fields"),
        "{message}"
    );

    // `{ allUsers(limit: 2) { id name } }` can hold 6 values: one fits under 10, two do not.
    let app = spawn_app_with_flags(&seed(), &["--max-query-cost", "10"]).await;
    let op = json!({ "query": "{ allUsers(limit: 2) { id name } }" });
    let alone = post(&app, &op, None).await;
    assert!(alone.body.get("errors").is_none(), "{}", alone.body);
    let reply = post(&app, &json!([op, op]), None).await;
    let answers = reply.body.as_array().expect("an array");
    assert!(answers[0].get("errors").is_none(), "{}", reply.body);
    let message = answers[1]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("batch's answers could hold 12 values"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_in_a_batch_needs_the_write_token() {
    let app = spawn_app_with_flags(&seed(), &["--write-token", "w"]).await;
    let batch = json!([
        { "query": "{ allUsers { name } }" },
        { "query": "mutation { deleteUser(id: \"1\") { ok } }" },
    ]);
    let reply = post(&app, &batch, None).await;
    assert_eq!(
        (reply.status, reply.code(0)),
        (401, "UNAUTHENTICATED"),
        "{}",
        reply.body
    );
    assert_eq!(app.all_users().await.len(), 2, "the mutation ran");
    let reply = post_with(&app, &batch, None, &[("authorization", "Bearer w")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body[1]["data"]["deleteUser"]["ok"], true);
    assert_eq!(app.all_users().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_are_registered_once_then_run_by_hash_over_post_and_get() {
    let app = spawn_app_with_users(&seed()).await;
    let query = "query Names($n: Int) { allUsers(limit: $n) { name } }";
    let hash = sha256(query);
    let by_hash = json!({ "extensions": persisted(&hash), "variables": { "n": 1 } });

    let reply = post(&app, &by_hash, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.message(0), "PersistedQueryNotFound");
    assert_eq!(reply.code(0), "PERSISTED_QUERY_NOT_FOUND");
    let reply = post(&app, &by_hash, Some(GRAPHQL_RESPONSE)).await;
    assert_eq!((reply.status, reply.code(0)), (400, "PERSISTED_QUERY_NOT_FOUND"));

    let full = json!({ "query": query, "extensions": persisted(&hash), "variables": { "n": 2 } });
    let reply = post(&app, &full, None).await;
    assert_eq!(
        reply.body["data"]["allUsers"],
        json!([{ "name": "Ann" }, { "name": "Bob" }])
    );

    let reply = post(&app, &by_hash, None).await;
    assert_eq!(reply.body, json!({ "data": { "allUsers": [{ "name": "Ann" }] } }));
    let extensions = persisted(&hash).to_string();
    let reply = get(
        &app,
        &[("extensions", &extensions), ("variables", r#"{"n":2}"#)],
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["allUsers"][1]["name"], "Bob");

    let wrong = json!({ "query": "{ allUsers { id } }", "extensions": persisted(&hash) });
    let reply = post(&app, &wrong, None).await;
    assert_eq!(reply.code(0), "BAD_USER_INPUT");
    assert!(reply.message(0).contains("does not match"), "{}", reply.body);
    let old = json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } });
    assert_eq!(post(&app, &old, None).await.code(0), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_query_goes_through_the_same_limits_and_token_checks() {
    let app = spawn_app_with_flags(&seed(), &["--write-token", "w", "--max-query-depth", "2"]).await;
    let delete = "mutation { deleteUser(id: \"1\") { ok } }";
    let hash = sha256(delete);
    let register = json!({ "query": delete, "extensions": persisted(&hash) });
    let reply = post(&app, &register, None).await;
    assert_eq!((reply.status, reply.code(0)), (401, "UNAUTHENTICATED"));
    // It was not run, but it is known now: by hash alone it is still refused without the token.
    let by_hash = json!({ "extensions": persisted(&hash) });
    let reply = post(&app, &by_hash, None).await;
    assert_eq!(
        (reply.status, reply.code(0)),
        (401, "UNAUTHENTICATED"),
        "{}",
        reply.body
    );
    assert_eq!(app.all_users().await.len(), 2);
    let extensions = persisted(&hash).to_string();
    let reply = get(
        &app,
        &[("extensions", &extensions)],
        &[("authorization", "Bearer w")],
    )
    .await;
    assert_eq!(
        (reply.status, reply.allow.as_deref()),
        (405, Some("POST")),
        "{}",
        reply.body
    );
    let reply = post_with(&app, &by_hash, None, &[("authorization", "Bearer w")]).await;
    assert_eq!(reply.body["data"]["deleteUser"]["ok"], true, "{}", reply.body);

    let deep = "{ users { edges { node { id } } } }";
    let hash = sha256(deep);
    let reply = post(
        &app,
        &json!({ "query": deep, "extensions": persisted(&hash) }),
        None,
    )
    .await;
    assert!(reply.message(0).contains("nested too deep"), "{}", reply.body);
    let reply = post(&app, &json!({ "extensions": persisted(&hash) }), None).await;
    assert!(reply.message(0).contains("nested too deep"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_batch_requests_carry_a_request_id_and_are_counted_in_the_metrics() {
    let app = spawn_app().await;
    let name = format!("OverHttpProbe{}", uuid::Uuid::new_v4().simple());
    let query = format!("query {name} {{ __typename }}");
    let reply = get(&app, &[("query", &query)], &[("x-request-id", "get-probe-1")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.request_id.as_deref(), Some("get-probe-1"));
    let batch = json!([{ "query": query }, { "query": query }]);
    let reply = post(&app, &batch, None).await;
    assert!(reply.request_id.is_some());

    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = format!("roster_graphql_requests_total{{operation=\"{name}\",outcome=\"ok\"}} 3");
    assert!(metrics.lines().any(|l| l == line), "no {line} in the metrics");
}
