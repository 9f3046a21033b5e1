//! What the request gate must know of an operation that came over plain HTTP rather than the
//! WebSocket (docs/src/http.md): GET runs queries only, subscriptions belong on the WebSocket,
//! and the operations of one batch share one set of limits and one deadline.
//!
//! The HTTP layer puts an `Arc<OverHttp>` in each request's data and keeps a clone; the gate
//! reads it and records what the HTTP layer needs to choose a status code: whether execution
//! began (if not, the errors are request errors: 400 under
//! `application/graphql-response+json`) and whether the operation was refused for its method
//! (405 with `Allow: POST`). A request without it (the WebSocket) is not affected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, ServerResult};
use axum::http::HeaderValue;

use super::cost::Measure;
use super::errors::ErrorCode;
use super::limits::{MAX_TOKENS, QueryLimits};

/// One operation received over HTTP.
pub struct OverHttp {
    /// It came as `GET`: only queries run.
    get: bool,
    /// Where subscriptions are served, as the client reached this service.
    socket: SocketUrl,
    /// The batch it belongs to, if any.
    batch: Option<Arc<Batch>>,
    executed: AtomicBool,
    wrong_method: AtomicBool,
}

impl OverHttp {
    /// An operation sent with `GET` (`get`) or `POST`; `socket` is the WebSocket's address
    /// as the client would reach it, for the error a subscription gets.
    pub fn new(get: bool, socket: SocketUrl) -> Self {
        Self {
            get,
            socket,
            batch: None,
            executed: AtomicBool::new(false),
            wrong_method: AtomicBool::new(false),
        }
    }

    /// The same, as one operation of `batch`.
    #[must_use]
    pub fn in_batch(mut self, batch: Arc<Batch>) -> Self {
        self.batch = Some(batch);
        self
    }

    /// Whether execution began: if not, every error of the answer is a request error (the
    /// document, its variables, the limits or the transport refused it).
    pub fn executed(&self) -> bool {
        self.executed.load(Ordering::Relaxed)
    }

    /// Whether the operation was refused because GET runs queries only.
    pub fn refused_for_its_method(&self) -> bool {
        self.wrong_method.load(Ordering::Relaxed)
    }

    pub(super) fn mark_executed(&self) {
        self.executed.store(true, Ordering::Relaxed);
    }

    pub(super) fn batch(&self) -> Option<&Batch> {
        self.batch.as_deref()
    }

    /// Refuses what this transport does not run: subscriptions (they need a stream: the
    /// WebSocket), and over GET anything but a query (a link, a prefetch or a crawler must
    /// never change data).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the WebSocket for a subscription; `METHOD_NOT_ALLOWED` for a
    /// mutation over GET.
    pub(super) fn check_operation(&self, ty: Option<OperationType>) -> ServerResult<()> {
        let refused = match ty {
            Some(OperationType::Subscription) => ErrorCode::BadUserInput.server_error(format!(
                "Subscriptions are served over the WebSocket at {} (graphql-transport-ws), not \
                 over HTTP: connect a WebSocket client (such as graphql-ws, or the console at \
                 /graphql) there.",
                self.socket
            )),
            Some(OperationType::Mutation) if self.get => ErrorCode::MethodNotAllowed.server_error(
                "Mutations are not run over GET, which must never change data: send them with POST.",
            ),
            _ => return Ok(()),
        };
        if self.get {
            self.wrong_method.store(true, Ordering::Relaxed);
        }
        Err(refused)
    }
}

/// The WebSocket's address as a client reached the service: its `Host` header, and whether a
/// proxy in front terminated TLS. Kept as it came (cloning a header value shares it) and
/// written out only for the rare error that names it.
#[derive(Clone, Debug, Default)]
pub struct SocketUrl {
    host: Option<HeaderValue>,
    secure: bool,
}

impl SocketUrl {
    /// The address at `host` (the request's `Host` header), `wss` when `secure`.
    pub fn new(host: Option<HeaderValue>, secure: bool) -> Self {
        Self { host, secure }
    }
}

impl std::fmt::Display for SocketUrl {
    /// `ws://<host>/graphql`, or just `/graphql` when the host is missing or not a plausible
    /// host name (it is client input, echoed into a message).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self
            .host
            .as_ref()
            .and_then(|host| host.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host.len() <= 255
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
            });
        match host {
            Some(host) => write!(f, "{}://{host}/graphql", if self.secure { "wss" } else { "ws" }),
            None => f.write_str("/graphql"),
        }
    }
}

/// What the operations of one batch have spent so far of the limits they share: a batch
/// may not do more than one request could, nor run longer.
pub struct Batch {
    started: Instant,
    tokens: AtomicU64,
    fields: AtomicU64,
    cost: AtomicU64,
    scan: AtomicU64,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// A batch starting now: its deadline runs from here.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            tokens: AtomicU64::new(0),
            fields: AtomicU64::new(0),
            cost: AtomicU64::new(0),
            scan: AtomicU64::new(0),
        }
    }

    /// When the whole batch must be done.
    pub(super) fn deadline(&self, timeout: Duration) -> Instant {
        self.started + timeout
    }

    /// Counts an operation's query tokens against the batch's [`MAX_TOKENS`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` when the batch's queries together are over it.
    pub(super) fn charge_tokens(&self, tokens: usize) -> ServerResult<()> {
        let total = add(&self.tokens, tokens as u64);
        if total > MAX_TOKENS as u64 {
            return Err(refuse(format!(
                "The batch's queries have more than {MAX_TOKENS} tokens together; send fewer \
                 operations at once, or large inputs as variables."
            )));
        }
        Ok(())
    }

    /// Counts an operation's fields, cost and scan against the batch's share of `limits`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` when the batch's operations together are over a limit.
    pub(super) fn charge(&self, limits: &QueryLimits, measure: &Measure, scan: u64) -> ServerResult<()> {
        let fields = add(&self.fields, measure.fields);
        if fields > limits.max_fields {
            return Err(refuse(format!(
                "The batch's operations select {fields} fields together with their fragments \
                 expanded; at most {} are allowed in one request.",
                limits.max_fields
            )));
        }
        let cost = add(&self.cost, measure.cost);
        if cost > limits.max_cost {
            return Err(refuse(format!(
                "The batch's answers could hold {cost} values together (lists counted by what \
                 they can return); at most {} are allowed in one request. Use limit, first or \
                 fewer operations.",
                limits.max_cost
            )));
        }
        let scan = add(&self.scan, scan);
        if scan > limits.max_scan {
            return Err(refuse(format!(
                "The batch's operations would go over the users {scan} times together (searches, \
                 sorted pages and mutations); at most {} are allowed in one request \
                 (--max-query-scan). Send fewer of them at once.",
                limits.max_scan
            )));
        }
        Ok(())
    }
}

/// Adds `amount` and answers the new total.
fn add(counter: &AtomicU64, amount: u64) -> u64 {
    counter
        .fetch_add(amount, Ordering::Relaxed)
        .saturating_add(amount)
}

fn refuse(message: String) -> ServerError {
    ErrorCode::BadUserInput.server_error(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_refuses_the_operation_that_takes_it_over_a_shared_limit() {
        let limits = QueryLimits {
            max_fields: 10,
            max_cost: 100,
            max_scan: 1_000,
            ..QueryLimits::default()
        };
        let measure = |fields, cost| Measure {
            fields,
            cost,
            ..Measure::default()
        };
        let batch = Batch::new();
        assert!(batch.charge(&limits, &measure(6, 60), 0).is_ok());
        let over = batch.charge(&limits, &measure(6, 10), 0).unwrap_err();
        assert!(over.message.contains("12 fields"), "{}", over.message);
        let batch = Batch::new();
        assert!(batch.charge(&limits, &measure(1, 100), 0).is_ok());
        assert!(batch.charge(&limits, &measure(1, 1), 0).is_err());
        let batch = Batch::new();
        assert!(batch.charge(&limits, &measure(1, 1), 500).is_ok());
        let over = batch.charge(&limits, &measure(1, 1), 501).unwrap_err();
        assert!(over.message.contains("1001 times"), "{}", over.message);
        assert!(batch.charge_tokens(MAX_TOKENS).is_ok());
        assert!(batch.charge_tokens(1).is_err());
    }

    #[test]
    fn the_socket_url_names_the_host_the_client_reached_when_it_is_plausible() {
        let at = |host: &'static str, secure| SocketUrl::new(Some(HeaderValue::from_static(host)), secure);
        assert_eq!(SocketUrl::default().to_string(), "/graphql");
        assert_eq!(
            at("roster.example:8080", false).to_string(),
            "ws://roster.example:8080/graphql"
        );
        assert_eq!(at("[::1]:5000", true).to_string(), "wss://[::1]:5000/graphql");
        assert_eq!(at("evil\"><script>", false).to_string(), "/graphql");
    }

    #[test]
    fn get_runs_queries_only_and_no_http_request_subscribes() {
        let at = |host: &'static str| SocketUrl::new(Some(HeaderValue::from_static(host)), false);
        let get = OverHttp::new(true, at("h"));
        assert!(get.check_operation(Some(OperationType::Query)).is_ok());
        assert!(!get.refused_for_its_method());
        assert!(get.check_operation(Some(OperationType::Mutation)).is_err());
        assert!(get.refused_for_its_method());

        let post = OverHttp::new(false, at("h:5000"));
        assert!(post.check_operation(Some(OperationType::Mutation)).is_ok());
        assert!(post.check_operation(None).is_ok());
        let refused = post
            .check_operation(Some(OperationType::Subscription))
            .unwrap_err();
        assert!(
            refused.message.contains("ws://h:5000/graphql"),
            "{}",
            refused.message
        );
        assert!(!post.refused_for_its_method());
    }
}
