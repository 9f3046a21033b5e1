//! `GET /metrics` over real HTTP (docs/src/operations.md, Metrics): the Prometheus text format,
//! GraphQL operations by name and outcome, errors by code, HTTP requests by route, open
//! subscriptions.
//!
//! The recorder is one per process and every test's server reports into it, so these
//! tests use operation names no other test uses, or check that a counter grew.

use std::time::Duration;

use serde_json::json;

use crate::helpers::ws::Subscriber;
use crate::helpers::{TestApp, eventually, metric_sample, spawn_app, spawn_app_with_flags};

/// The `/metrics` text, asserting 200 and the Prometheus content type.
async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.unwrap()
}

fn requests_of(operation: &str, outcome: &str) -> String {
    format!("roster_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}")
}

/// An operation name no other test uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn named_operations_are_counted_with_their_outcome_latency_and_error_codes() {
    let app = spawn_app().await;
    let name = unique("MetricsProbe");
    let failing = unique("MetricsFailing");
    let before = scrape(&app).await;
    let errors = "roster_graphql_errors_total{code=\"BAD_USER_INPUT\"}";
    for _ in 0..2 {
        let answer = app
            .gql(&format!("query {name} {{ allUsers {{ id }} }}"), json!({}))
            .await;
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    // An operation earns its label by running cleanly once; then its failures count under it.
    let query = format!("query {failing}($limit: Int) {{ allUsers(limit: $limit) {{ id }} }}");
    assert!(
        app.gql(&query, json!({ "limit": 1 }))
            .await
            .get("errors")
            .is_none()
    );
    let answer = app.gql(&query, json!({ "limit": -1 })).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let after = scrape(&app).await;
    assert_eq!(metric_sample(&after, &requests_of(&name, "ok")), 2.0, "{after}");
    assert_eq!(
        metric_sample(&after, &requests_of(&failing, "error")),
        1.0,
        "{after}"
    );
    let latency = format!("roster_graphql_request_duration_seconds_count{{operation=\"{name}\"}}");
    assert_eq!(metric_sample(&after, &latency), 2.0, "{after}");
    let bucket =
        format!("roster_graphql_request_duration_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}}");
    assert_eq!(metric_sample(&after, &bucket), 2.0, "{after}");
    assert!(
        metric_sample(&after, errors) >= metric_sample(&before, errors) + 1.0,
        "{before}\n---\n{after}"
    );
    assert!(
        after.contains("# TYPE roster_graphql_requests_total counter"),
        "{after}"
    );
    assert!(after.contains("# HELP roster_graphql_errors_total"), "{after}");
}

/// How many distinct operation labels a server keeps (`MAX_OPERATION_LABELS`).
const LABELS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_names_that_never_ran_cleanly_leave_the_label_slots_to_real_operations() {
    let app = spawn_app().await;
    let junk = unique("Junk");
    for n in 0..300 {
        // Some refused by validation, most executed with an error: neither earns a label.
        let query = if n % 6 == 0 {
            format!("query {junk}{n} {{ __typename @aa }}")
        } else {
            format!("query {junk}{n} {{ allUsers(limit: -1) {{ id }} }}")
        };
        let answer = app.gql(&query, json!({})).await;
        assert!(answer.get("errors").is_some(), "{answer}");
    }
    let real = unique("GetUsers");
    let answer = app
        .gql(&format!("query {real} {{ allUsers {{ id }} }}"), json!({}))
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let text = scrape(&app).await;
    assert_eq!(metric_sample(&text, &requests_of(&real, "ok")), 1.0, "{text}");
    assert!(!text.contains(&junk), "junk names became labels:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_slots_of_operations_not_seen_for_the_idle_period_are_released() {
    // The idle period is an hour; a hidden flag shortens it for this test.
    let app = spawn_app_with_flags(&json!([]), &["--metrics-label-idle", "1"]).await;
    let fill = unique("Fill");
    for n in 0..LABELS {
        let answer = app
            .gql(&format!("query {fill}{n} {{ __typename }}"), json!({}))
            .await;
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let real = unique("GetUsers");
    let answer = app
        .gql(&format!("query {real} {{ allUsers {{ id }} }}"), json!({}))
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let text = scrape(&app).await;
    assert_eq!(
        metric_sample(&text, &requests_of(&real, "ok")),
        1.0,
        "every slot was idle, yet the new operation got none:\n{text}"
    );
}

#[tokio::test]
async fn anonymous_operations_are_counted_by_their_first_field_and_junk_as_invalid() {
    let app = spawn_app().await;
    let by_email = requests_of("userByEmail", "ok");
    let invalid = requests_of("(invalid)", "invalid");
    let before = scrape(&app).await;
    app.gql("{ userByEmail(email: \"nobody@x.test\") { id } }", json!({}))
        .await;
    let junk = unique("Junk");
    let answer = app.gql(&format!("query {junk} {{ {junk} }}"), json!({})).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let after = scrape(&app).await;
    assert!(
        metric_sample(&after, &by_email) >= metric_sample(&before, &by_email) + 1.0,
        "{after}"
    );
    assert!(
        metric_sample(&after, &invalid) >= metric_sample(&before, &invalid) + 1.0,
        "{after}"
    );
    assert!(!after.contains(&junk), "a client's junk became a label:\n{after}");
}

#[tokio::test]
async fn http_requests_are_counted_by_route_and_status_with_unknown_paths_as_one_route() {
    let app = spawn_app().await;
    let health = "roster_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}";
    let unmatched = "roster_http_requests_total{method=\"GET\",route=\"(unmatched)\",status=\"404\"}";
    let before = scrape(&app).await;
    app.health().await;
    let path = format!("/{}", unique("nowhere"));
    assert_eq!(app.get(&path).await.status(), 404);
    let after = scrape(&app).await;
    assert!(
        metric_sample(&after, health) >= metric_sample(&before, health) + 1.0,
        "{after}"
    );
    assert!(
        metric_sample(&after, unmatched) >= metric_sample(&before, unmatched) + 1.0,
        "{after}"
    );
    assert!(!after.contains(&path), "a path became a label:\n{after}");
    assert!(
        after.contains("roster_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"}"),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_subscription_shows_in_the_subscriber_gauge_and_is_counted_when_it_ends() {
    let app = spawn_app().await;
    let name = unique("GaugeProbe");
    let query = format!("subscription {name} {{ userEvents {{ kind user {{ name }} }} }}");
    let mut subscriber = Subscriber::open_query(&app, &query, json!({})).await;
    subscriber.sync(&app, "Gauge").await;
    let open = scrape(&app).await;
    assert!(
        metric_sample(&open, "roster_graphql_subscribers") >= 1.0,
        "{open}"
    );
    assert_eq!(metric_sample(&open, &requests_of(&name, "ok")), 0.0, "{open}");
    drop(subscriber);
    let ended = requests_of(&name, "ok");
    eventually(
        Duration::from_secs(10),
        "the closed subscription counted",
        || async { metric_sample(&scrape(&app).await, &ended) == 1.0 },
    )
    .await;
}

/// The sum of every sample of `name`, whatever its labels.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_writes_reloads_and_cache_show_with_their_buckets() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    app.create_ok("Metered", "metered@x.test").await;
    app.all_users().await;
    let edited = json!([{ "id": "e1", "name": "Edited", "email": "edited@x.test" }]);
    std::fs::write(&app.data_file, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    app.wait_for_names("the hand edit", |names| names == ["Edited"])
        .await;
    let after = scrape(&app).await;
    let grew = |name: &str| total(&after, name) > total(&before, name);
    for name in [
        "roster_store_write_batches_total",
        "roster_store_write_batch_size_count",
        "roster_store_write_duration_seconds_count",
        "roster_store_reloads_total",
    ] {
        assert!(grew(name), "{name} did not grow:\n{after}");
    }
    assert!(
        total(&after, "roster_cache_hits_total") + total(&after, "roster_cache_misses_total")
            > total(&before, "roster_cache_hits_total") + total(&before, "roster_cache_misses_total"),
        "{after}"
    );
    assert!(
        after.contains("roster_store_write_batch_size_bucket{le=\"1\"}"),
        "{after}"
    );
    assert!(
        after.contains("roster_store_write_duration_seconds_bucket{le=\"0.005\"}"),
        "{after}"
    );
    assert!(after.contains("# HELP roster_store_reloads_total"), "{after}");
}
