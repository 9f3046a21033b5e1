//! Request metrics, counted exactly: each test records into its own Prometheus recorder
//! (the process-wide one is shared by every test running at once).

use std::time::Duration;

use async_graphql::futures_util::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use super::{RosterSchema, run, schema};
use crate::adapters::inbound::graphql::MAX_OPERATION_LABELS;

/// Runs `work` on a current-thread runtime with `recorder` as this thread's recorder, so
/// everything the schema records on the way lands there.
fn recorded<F>(recorder: &PrometheusRecorder, work: impl FnOnce(RosterSchema) -> F)
where
    F: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (schema, _dir) = schema();
    metrics::with_local_recorder(recorder, || runtime.block_on(work(schema)));
}

/// The value of the sample `line` (a metric name with its labels), or 0 when absent.
fn sample(text: &str, line: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn requests(text: &str, operation: &str, outcome: &str) -> f64 {
    sample(
        text,
        &format!("roster_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}"),
    )
}

#[test]
fn operations_are_counted_by_name_or_first_field_with_their_outcome_and_latency() {
    let recorder = PrometheusBuilder::new().build_recorder();
    recorded(&recorder, |schema| async move {
        run(&schema, "query ListProbe { allUsers { id } }").await;
        run(&schema, "query ListProbe { allUsers { id } }").await;
        run(&schema, "{ userById(id: \"nobody\") { id } }").await;
        run(
            &schema,
            "{ ...F } fragment F on Query { userByEmail(email: \"a@b\") { id } }",
        )
        .await;
        // A failure counts under a name that ran cleanly once, and as `(other)` before.
        run(&schema, "query NeverClean { allUsers(limit: -1) { id } }").await;
        run(&schema, "{ allUsers { id } }").await;
        run(&schema, "{ allUsers(limit: -1) { id } }").await;
    });
    let text = recorder.handle().render();
    assert_eq!(requests(&text, "ListProbe", "ok"), 2.0, "{text}");
    assert_eq!(requests(&text, "userById", "ok"), 1.0, "{text}");
    assert_eq!(requests(&text, "userByEmail", "ok"), 1.0, "{text}");
    assert_eq!(requests(&text, "allUsers", "error"), 1.0, "{text}");
    assert_eq!(requests(&text, "(other)", "error"), 1.0, "{text}");
    assert!(!text.contains("NeverClean"), "{text}");
    assert_eq!(
        sample(
            &text,
            "roster_graphql_request_duration_seconds_count{operation=\"ListProbe\"}"
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "roster_graphql_errors_total{code=\"BAD_USER_INPUT\"}"),
        2.0,
        "{text}"
    );
}

#[test]
fn requests_refused_before_execution_are_counted_as_invalid_without_their_junk_names() {
    let recorder = PrometheusBuilder::new().build_recorder();
    recorded(&recorder, |schema| async move {
        run(&schema, "{ allUsers {").await;
        run(&schema, "query Junk123 { noSuchField }").await;
        let unknown = async_graphql::Request::new("query A { allUsers { id } }").operation_name("B");
        schema.execute(unknown).await;
    });
    let text = recorder.handle().render();
    assert_eq!(requests(&text, "(invalid)", "invalid"), 3.0, "{text}");
    assert!(!text.contains("Junk123"), "{text}");
    assert!(!text.contains("noSuchField"), "{text}");
    assert_eq!(
        sample(&text, "roster_graphql_errors_total{code=\"BAD_USER_INPUT\"}"),
        3.0,
        "{text}"
    );
}

#[test]
fn operation_names_beyond_the_limit_share_one_label_and_known_ones_keep_theirs() {
    let recorder = PrometheusBuilder::new().build_recorder();
    recorded(&recorder, |schema| async move {
        for n in 0..MAX_OPERATION_LABELS {
            run(&schema, &format!("query Op{n} {{ __typename }}")).await;
        }
        run(&schema, "query OneTooMany { __typename }").await;
        run(&schema, "query AnotherOne { __typename }").await;
        run(&schema, "query Op0 { __typename }").await;
    });
    let text = recorder.handle().render();
    assert_eq!(requests(&text, "Op0", "ok"), 2.0, "{text}");
    assert_eq!(requests(&text, "(other)", "ok"), 2.0, "{text}");
    assert!(!text.contains("OneTooMany"), "{text}");
}

#[test]
fn an_open_subscription_is_counted_until_its_stream_is_dropped() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let during = std::sync::Mutex::new(String::new());
    let (watching, seen) = (&recorder, &during);
    recorded(&recorder, |schema| async move {
        let mut stream = schema.execute_stream("subscription { userEvents { kind } }");
        // One poll runs the resolver, which opens the feed; no event is coming.
        let polled = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
        assert!(polled.is_err(), "an event arrived: {polled:?}");
        *seen.lock().unwrap() = watching.handle().render();
        drop(stream);
    });
    let during = during.into_inner().unwrap();
    assert_eq!(sample(&during, "roster_graphql_subscribers"), 1.0, "{during}");
    let after = recorder.handle().render();
    assert_eq!(sample(&after, "roster_graphql_subscribers"), 0.0, "{after}");
    assert_eq!(requests(&after, "userEvents", "ok"), 1.0, "{after}");
    assert!(
        !after.contains("roster_graphql_request_duration_seconds_count{operation=\"userEvents\"}"),
        "a subscription's lifetime was taken for a latency:\n{after}"
    );
}
