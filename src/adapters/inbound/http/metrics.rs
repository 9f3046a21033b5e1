//! `GET /metrics` (docs/src/operations.md, Metrics): everything recorded through the `metrics`
//! facade, in the Prometheus text format, rendered by metrics-exporter-prometheus.
//!
//! The `metrics` facade has one recorder per process, so the exporter is installed once
//! ([`install`]) and every server in the process (the tests start many) reports into it
//! and renders it. Recording is cheap and never waits for a scrape; histograms are kept as
//! fixed buckets (not summaries) so Prometheus can aggregate them across replicas.
//!
//! A counter or histogram left unchanged for [`OPERATION_LABEL_IDLE`] is dropped from the
//! output (and comes back, from zero, with its next count): that is how the series of an
//! operation whose label slot was released (`graphql::metrics`) leave, so the series shown
//! stay bounded however many names clients cycle through. Gauges are kept.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use super::errors::errors;
use crate::adapters::inbound::graphql::{ErrorCode, OPERATION_LABEL_IDLE};

/// The installed exporter, or `None` when another recorder was installed first.
static EXPORTER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets for every duration histogram, in seconds: a cached read answers in well under a
/// millisecond, a durable write of a large file takes hundreds; the request deadline is 30 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for the number of mutations one group commit carries.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// How often histograms are folded into their buckets when nobody scrapes (a scrape does it
/// too); it bounds the memory samples take between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The store's metrics, which the stores record themselves; described here because their
/// buckets are set here.
const STORE_METRICS: &[(&str, Kind, &str)] = &[
    (
        "roster_store_reloads_total",
        Kind::Counter,
        "Reloads of the user list from the store, by cause.",
    ),
    (
        "roster_store_write_batches_total",
        Kind::Counter,
        "Writes made durable (each a group commit of one or more mutations).",
    ),
    (
        "roster_store_write_batch_size",
        Kind::Histogram,
        "How many mutations each durable write carried.",
    ),
    (
        "roster_store_write_duration_seconds",
        Kind::Histogram,
        "How long each durable write took, from taking the file lock to the new file in place.",
    ),
    (
        "roster_store_write_failures_total",
        Kind::Counter,
        "Writes that failed and were reported to their callers.",
    ),
    (
        "roster_cache_hits_total",
        Kind::Counter,
        "Reads answered from the in-memory snapshot without looking at the store.",
    ),
    (
        "roster_cache_misses_total",
        Kind::Counter,
        "Reads that had to revalidate or reload the snapshot.",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Histogram,
}

/// The exporter's configuration: bucketed histograms for every duration and the batch size,
/// and counters and histograms unchanged for `idle` dropped.
fn builder(idle: Duration) -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM, Some(idle))
        .set_buckets(SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("roster_store_write_batch_size".to_owned()),
            BATCH_SIZE_BUCKETS,
        )
}

/// Installs the Prometheus recorder as the process's `metrics` recorder, once; later calls
/// do nothing. Call it before anything records, or those records are lost.
pub fn install() {
    EXPORTER.get_or_init(|| match builder(OPERATION_LABEL_IDLE).and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => {
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "cannot start the metrics upkeep thread; histograms are folded at each scrape only");
            }
            Some(handle)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot install the metrics recorder; /metrics answers 503");
            None
        }
    });
}

/// The HELP lines of every metric Roster records.
fn describe() {
    super::request_log::describe_metrics();
    crate::adapters::inbound::graphql::describe_metrics();
    for &(name, kind, help) in STORE_METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// `GET /metrics`.
pub async fn metrics() -> Response {
    match EXPORTER.get().and_then(Option::as_ref) {
        Some(handle) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response(),
        None => errors(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "Metrics are not recorded: another metrics recorder was installed in this process.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_as_buckets_with_the_batch_size_on_its_own_scale() {
        let recorder = builder(OPERATION_LABEL_IDLE).unwrap().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("roster_store_write_batch_size").record(20.0);
            metrics::histogram!("roster_store_write_duration_seconds").record(0.003);
        });
        let text = recorder.handle().render();
        assert!(
            text.contains("roster_store_write_batch_size_bucket{le=\"16\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("roster_store_write_batch_size_bucket{le=\"32\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("roster_store_write_duration_seconds_bucket{le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("roster_store_write_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(!text.contains("quantile"), "a summary was rendered:\n{text}");
    }

    #[test]
    fn a_series_left_unchanged_for_the_idle_period_is_dropped_and_a_gauge_is_kept() {
        let recorder = builder(Duration::from_millis(50)).unwrap().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("roster_graphql_requests_total", "operation" => "Gone").increment(1);
            metrics::histogram!("roster_graphql_request_duration_seconds", "operation" => "Gone")
                .record(0.01);
            metrics::gauge!("roster_graphql_subscribers").set(0.0);
        });
        let handle = recorder.handle();
        assert!(handle.render().contains("operation=\"Gone\""));
        // Well past the idle period; only a lower bound on the wait matters.
        std::thread::sleep(Duration::from_millis(400));
        let text = handle.render();
        assert!(!text.contains("Gone"), "an idle series is still shown:\n{text}");
        assert!(text.contains("roster_graphql_subscribers 0"), "{text}");
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("roster_graphql_requests_total", "operation" => "Gone").increment(1);
        });
        assert!(
            handle.render().contains("operation=\"Gone\""),
            "it comes back with its next count"
        );
    }
}
