//! GraphQL request metrics (docs/src/operations.md, Metrics): operations by name and outcome, their
//! latency, errors by code, and the subscriptions open right now.
//!
//! An operation is named by its operation name or, when anonymous, by its first top-level
//! field (`{ allUsers { id } }` counts as `allUsers`), read from the parsed document.
//! Operation names are the client's choice and every label value is a series, so a schema
//! keeps at most [`MAX_OPERATION_LABELS`] of them at once. A name earns a label slot only by
//! running: answered without any error, or executed from a persisted query; until then it
//! counts as `(other)`, so names that only ever fail never take a slot from a real operation.
//! A slot holds for as long as its operation keeps coming; one not seen for
//! [`OPERATION_LABEL_IDLE`] is released when a new name needs room, and the exporter drops
//! series unchanged that long (`http::metrics`), so the released label's series goes too. A
//! request that does not parse, validate or name an operation of its document is counted as
//! `(invalid)`, so junk never becomes a label.
//!
//! The outcome is `ok` (no errors), `error` (executed, with errors) or `invalid` (refused
//! before execution). Over HTTP a request is counted when its answer is ready; over the
//! WebSocket when its stream ends, and a subscription's lifetime is not a latency, so only
//! queries and mutations there feed the histogram.
//!
//! Every error gets its code here (`errors::code_errors`), before counting, so the counts
//! see the codes clients see. The schema's one extension (`pipeline`) calls these hooks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::errors::code_errors;
use super::operation::{Chosen, chosen};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError, ValidationResult, Value};

/// How many distinct operation labels a schema records before counting the rest as `(other)`.
pub const MAX_OPERATION_LABELS: usize = 200;
/// How long an operation's label slot is kept without the operation being seen, and how long
/// the exporter keeps a series that does not change.
pub const OPERATION_LABEL_IDLE: Duration = Duration::from_secs(3600);
/// How deeply fragments are followed to find an anonymous operation's first field. The
/// document is not validated yet at that point, so a fragment cycle must not loop.
const MAX_FRAGMENT_DEPTH: usize = 8;
/// The longest error code recorded as it is; codes are ours, this only guards the label.
const MAX_CODE_LEN: usize = 40;

const REQUESTS: &str = "roster_graphql_requests_total";
const DURATION: &str = "roster_graphql_request_duration_seconds";
const ERRORS: &str = "roster_graphql_errors_total";
const SUBSCRIBERS: &str = "roster_graphql_subscribers";

const OTHER: &str = "(other)";
const INVALID: &str = "(invalid)";

/// Describes this module's metrics (their HELP lines).
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "GraphQL operations answered, by operation (its name, or its first field when anonymous) and outcome (ok, error, invalid)."
    );
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time to answer a GraphQL query or mutation, by operation."
    );
    metrics::describe_counter!(ERRORS, "GraphQL errors sent to clients, by extensions.code.");
    super::answer_cache::describe_metrics();
    metrics::describe_gauge!(SUBSCRIBERS, "Subscriptions open right now.");
    // Shown as 0 from the start rather than missing until the first subscription.
    metrics::gauge!(SUBSCRIBERS).increment(0.0);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands each request its [`Measured`]; the operation labels are shared by all of them.
pub struct RequestMetrics {
    labels: Arc<Labels>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::with_idle(OPERATION_LABEL_IDLE)
    }
}

impl RequestMetrics {
    /// Metrics whose label slots are released after `idle` without their operation.
    pub fn with_idle(idle: Duration) -> Self {
        Self {
            labels: Arc::new(Labels {
                known: Mutex::default(),
                idle,
            }),
        }
    }

    /// The measurements of one request.
    pub fn for_request(&self) -> Measured {
        Measured {
            labels: Arc::clone(&self.labels),
            state: Arc::default(),
        }
    }
}

/// The operation labels handed out, each with when its operation was last seen.
struct Labels {
    known: Mutex<HashMap<String, Instant>>,
    idle: Duration,
}

impl Labels {
    /// `name` when it holds a slot, or earns one (`earns`: it ran cleanly or was persisted)
    /// while there is room, slots idle for `idle` being released to make it; else `(other)`.
    fn label(&self, name: &str, earns: bool, now: Instant) -> String {
        let mut known = lock(&self.known);
        if let Some(seen) = known.get_mut(name) {
            *seen = now;
            return name.to_owned();
        }
        if !earns {
            return OTHER.to_owned();
        }
        if known.len() >= MAX_OPERATION_LABELS {
            known.retain(|_, seen| now.saturating_duration_since(*seen) < self.idle);
        }
        if known.len() < MAX_OPERATION_LABELS {
            known.insert(name.to_owned(), now);
            return name.to_owned();
        }
        OTHER.to_owned()
    }
}

/// What one request has shown of itself so far.
#[derive(Default)]
struct State {
    /// The `operationName` the request asked for.
    requested: Option<String>,
    /// The chosen operation's label candidate and type, once the document parsed.
    operation: Option<(String, OperationType)>,
    /// The document validated and names an operation it holds.
    valid: bool,
    /// The executor runs an operation: the document validated and holds the operation
    /// the request names (`operation::chosen`).
    runs: bool,
    /// The document holds the operation the request names.
    chosen: bool,
    /// A streamed answer carried an error.
    failed: bool,
    /// The request came with a persisted query's hash.
    persisted: bool,
}

impl State {
    /// The operation's label, given whether its answer carried an error.
    fn operation_label(&self, labels: &Labels, failed: bool) -> String {
        match &self.operation {
            Some((name, _)) if self.valid => labels.label(name, !failed || self.persisted, Instant::now()),
            _ => INVALID.to_owned(),
        }
    }

    fn outcome(&self, failed: bool) -> &'static str {
        match (self.valid, failed) {
            (false, _) => "invalid",
            (true, true) => "error",
            (true, false) => "ok",
        }
    }

    fn is_subscription(&self) -> bool {
        matches!(self.operation, Some((_, OperationType::Subscription)))
    }
}

/// One request's measurements, taken by the schema's one extension (`pipeline`).
pub struct Measured {
    labels: Arc<Labels>,
    state: Arc<Mutex<State>>,
}

/// The label candidate of the operation a request runs: its name, or its first field.
fn label(document: &ExecutableDocument, chosen: Chosen<'_>) -> Option<(String, OperationType)> {
    let label = match chosen.name {
        Some(name) => name,
        None => first_field(document, &chosen.operation.node.selection_set.node, 0)?,
    };
    Some((label.to_owned(), chosen.ty()))
}

fn first_field<'d>(document: &'d ExecutableDocument, set: &'d SelectionSet, depth: usize) -> Option<&'d str> {
    if depth > MAX_FRAGMENT_DEPTH {
        return None;
    }
    set.items.iter().find_map(|selection| match &selection.node {
        Selection::Field(field) => Some(field.node.name.node.as_str()),
        Selection::InlineFragment(inline) => {
            first_field(document, &inline.node.selection_set.node, depth + 1)
        }
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .and_then(|fragment| first_field(document, &fragment.node.selection_set.node, depth + 1)),
    })
}

/// An error's `extensions.code` as a label.
fn code_label(error: &ServerError) -> String {
    match error.extensions.as_ref().and_then(|ext| ext.get("code")) {
        Some(Value::String(code))
            if !code.is_empty()
                && code.len() <= MAX_CODE_LEN
                && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            code.clone()
        }
        Some(_) => OTHER.to_owned(),
        None => "(none)".to_owned(),
    }
}

fn count_errors(errors: &[ServerError]) {
    for error in errors {
        metrics::counter!(ERRORS, "code" => code_label(error)).increment(1);
    }
}

fn count_request(operation: String, outcome: &'static str) {
    metrics::counter!(REQUESTS, "operation" => operation, "outcome" => outcome).increment(1);
}

/// Counts an answer the answer cache gave again: an `ok` operation under the `operation`
/// label its first answer was counted under, with its latency.
pub fn count_cached(operation: &str, elapsed: std::time::Duration) {
    metrics::histogram!(DURATION, "operation" => operation.to_owned()).record(elapsed);
    count_request(operation.to_owned(), "ok");
}

/// Records a streamed operation (the WebSocket) when its stream ends or is dropped.
struct StreamTally {
    labels: Arc<Labels>,
    state: Arc<Mutex<State>>,
    started: Instant,
}

impl StreamTally {
    fn saw(&self, response: &Response) {
        count_errors(&response.errors);
        if response.is_err() {
            lock(&self.state).failed = true;
        }
    }
}

impl Drop for StreamTally {
    fn drop(&mut self) {
        let state = lock(&self.state);
        let operation = state.operation_label(&self.labels, state.failed);
        if state.valid && !state.is_subscription() {
            metrics::histogram!(DURATION, "operation" => operation.clone()).record(self.started.elapsed());
        }
        count_request(operation, state.outcome(state.failed));
    }
}

impl Measured {
    /// Codes every error of the answer `run` gives (`errors::code_errors`), then counts it.
    pub async fn request(&self, run: impl Future<Output = Response>) -> Response {
        let started = Instant::now();
        let response = run.await;
        let response = code_errors(response, lock(&self.state).runs);
        let elapsed = started.elapsed();
        count_errors(&response.errors);
        let (operation, outcome) = {
            let state = lock(&self.state);
            (
                state.operation_label(&self.labels, response.is_err()),
                state.outcome(response.is_err()),
            )
        };
        metrics::histogram!(DURATION, "operation" => operation.clone()).record(elapsed);
        count_request(operation, outcome);
        response
    }

    /// The same for a streamed operation: the WebSocket transport runs every operation as a
    /// stream and never calls `request`, so its answers are coded and counted here.
    pub fn stream<'s>(&self, stream: BoxStream<'s, Response>) -> BoxStream<'s, Response> {
        let tally = StreamTally {
            labels: Arc::clone(&self.labels),
            state: Arc::clone(&self.state),
            started: Instant::now(),
        };
        stream
            .map(move |response| {
                let ran = lock(&tally.state).runs;
                let response = code_errors(response, ran);
                tally.saw(&response);
                response
            })
            .boxed()
    }

    /// The operation label this request is counted under (the answer cache keeps it).
    pub fn label(&self) -> String {
        lock(&self.state).operation_label(&self.labels, false)
    }

    /// Notes the operation name the request asked for, and whether it came persisted.
    pub fn requested(&self, request: &Request) {
        let mut state = lock(&self.state);
        state.requested.clone_from(&request.operation_name);
        state.persisted = request.extensions.contains_key("persistedQuery");
    }

    /// Notes the operation the parsed document will run.
    pub fn parsed(&self, document: &ExecutableDocument) {
        let mut state = lock(&self.state);
        let chosen = chosen(document, state.requested.as_deref());
        state.chosen = chosen.is_some();
        state.operation = chosen.and_then(|chosen| label(document, chosen));
    }

    /// Notes whether the document validated.
    pub fn validated(&self, result: &Result<ValidationResult, Vec<ServerError>>) {
        let mut state = lock(&self.state);
        state.runs = result.is_ok() && state.chosen;
        state.valid = state.runs && state.operation.is_some();
    }
}

/// Counts one open subscription in `roster_graphql_subscribers` for as long as it lives.
pub struct SubscriberGuard(());

impl SubscriberGuard {
    pub fn new() -> Self {
        metrics::gauge!(SUBSCRIBERS).increment(1.0);
        Self(())
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        metrics::gauge!(SUBSCRIBERS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_earned_by_a_clean_run_and_released_after_its_idle_period_when_room_is_needed() {
        let labels = RequestMetrics::with_idle(Duration::from_secs(60)).labels;
        let start = Instant::now();
        assert_eq!(
            labels.label("Failing", false, start),
            OTHER,
            "a failure earns nothing"
        );
        for n in 0..MAX_OPERATION_LABELS {
            assert_eq!(labels.label(&format!("Op{n}"), true, start), format!("Op{n}"));
        }
        let soon = start + Duration::from_secs(30);
        assert_eq!(
            labels.label("Op0", false, soon),
            "Op0",
            "a slot keeps its failures"
        );
        assert_eq!(labels.label("New", true, soon), OTHER, "no slot is idle yet");
        let later = start + Duration::from_secs(61);
        assert_eq!(
            labels.label("New", true, later),
            "New",
            "idle slots were released"
        );
        assert_eq!(
            labels.label("Op0", true, later),
            "Op0",
            "a slot seen since kept its place"
        );
        assert_eq!(
            labels.label("Op1", false, later),
            OTHER,
            "a released slot is earned again"
        );
        assert!(lock(&labels.known).len() <= MAX_OPERATION_LABELS);
    }
}
