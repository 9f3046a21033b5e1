//! Which operation of a request runs, as access control, the transport rules and the
//! metrics see it: always the one the executor runs. An `operationName` names an operation
//! of the document; a document whose only operation is anonymous holds no operation of that
//! name, so nothing runs and the request is refused, whatever that operation would do.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with_flags};

const ANONYMOUS_CREATE: &str =
    r#"mutation { createUser(userData: {name: "Ghost", email: "ghost@x.com"}) { ok } }"#;

/// `POST /graphql` with an `operationName`; the status and the JSON answer.
async fn post_named(app: &TestApp, query: &str, operation: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "operationName": operation }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

async fn invalid_count(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let line = "roster_graphql_requests_total{operation=\"(invalid)\",outcome=\"invalid\"}";
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn unknown_operation(operation: &str) -> String {
    format!(r#"Unknown operation named "{operation}""#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_name_the_document_does_not_hold_runs_nothing_for_every_part_of_the_server() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "w-secret"]).await;
    let name = format!("Ghost{}", uuid::Uuid::new_v4().simple());
    for token in [None, Some("w-secret")] {
        let before = invalid_count(&app).await;
        let (status, answer) = post_named(&app, ANONYMOUS_CREATE, &name, token).await;
        // Access control judges the operation that would run: none, so it has nothing to
        // refuse, and the executor's refusal is the answer.
        assert_eq!(status, 200, "{token:?}: {answer}");
        assert_eq!(
            answer["errors"][0]["message"],
            unknown_operation(&name),
            "{answer}"
        );
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{answer}"
        );
        assert!(answer.get("data").is_none_or(Value::is_null), "{answer}");
        // The metrics count what the executor did: no operation.
        let after = invalid_count(&app).await;
        assert!(after >= before + 1.0, "{token:?}: {before} -> {after}");
    }
    assert!(app.all_users().await.is_empty(), "the anonymous mutation ran");

    // Over plain HTTP a subscription is refused only when it would run.
    let (status, answer) = post_named(&app, "subscription { userEvents { kind } }", &name, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["errors"][0]["message"],
        unknown_operation(&name),
        "{answer}"
    );

    // The operation that is named still decides.
    let named = "query Q { allUsers { id } } mutation M { createUser(userData: {name: \"M\", email: \"m@x.com\"}) { ok } }";
    let (status, answer) = post_named(&app, named, "M", None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = post_named(&app, named, "Q", None).await;
    assert_eq!(
        (status, &answer["data"]["allUsers"]),
        (200, &json!([])),
        "{answer}"
    );
}
