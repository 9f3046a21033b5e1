//! Every request's span, request id, log line and HTTP metrics (docs/src/http.md,
//! docs/src/operations.md).
//!
//! Each request gets an id: the client's `X-Request-Id` when it is a plausible id (at most
//! [`MAX_REQUEST_ID_LEN`] characters from a small safe set, since it lands in every log
//! line), otherwise a new UUID. The request runs inside a span carrying that id, so every
//! line it logs (this module's request line, the GraphQL field lines, resolver errors)
//! can be found together; the id is returned in `X-Request-Id`.
//!
//! A query's top-level fields are on the request line (`fields=allUsers{limit: 10}`), so a
//! read logs one line (`graphql::logging`). What a line costs is most of what logging costs
//! a read, so the line is built without allocating for a short path, and new ids come from
//! a counter scrambled under a random key drawn once ([`new_id`]) rather than from a system
//! call for fresh randomness per request.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::adapters::inbound::graphql::noting_fields;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming request id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// How much of a request's path the request line shows; the rest is counted, not printed.
const MAX_LOGGED_PATH: usize = 256;

const REQUESTS: &str = "roster_http_requests_total";
const DURATION: &str = "roster_http_request_duration_seconds";

/// Describes this module's metrics (their HELP lines).
pub fn describe_metrics() {
    metrics::describe_counter!(REQUESTS, "HTTP requests answered, by method, route and status.");
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer's head, by route."
    );
}

/// The client's request id, when it is one we can safely log and echo.
fn incoming_id(headers: &HeaderMap) -> Option<&str> {
    let id = headers.get(&REQUEST_ID)?.to_str().ok()?;
    let plausible = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
    plausible.then_some(id)
}

/// `path`, cut at [`MAX_LOGGED_PATH`] bytes with the full length noted.
fn loggable_path(path: &str) -> Cow<'_, str> {
    if path.len() <= MAX_LOGGED_PATH {
        return Cow::Borrowed(path);
    }
    let mut cut = MAX_LOGGED_PATH;
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &path[..cut], path.len()))
}

/// A new request id: a version 4 UUID made of a process-wide counter scrambled under a key
/// drawn from the system once. Ids never repeat within a process (the scrambling is a
/// bijection of the counter) and differ between processes (the key); they are labels for
/// finding a request's lines, not secrets, so they need no fresh randomness each.
fn new_id() -> String {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (high, low) = *KEY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().as_u64_pair();
        (random.0, random.1 | 1)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser: a bijection of u64, so distinct counters give distinct ids.
    let mut z = n.wrapping_mul(low).wrapping_add(high);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_le_bytes());
    bytes[8..].copy_from_slice(&z.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A method as a metric label: the standard ones by name, anything a client invents as
/// `OTHER`, so labels stay few.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "PATCH", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("OTHER")
}

fn record(method: &Method, route: Option<&str>, status: StatusCode, elapsed: Duration) {
    // Routes are the router's own patterns; any other path is one label, not one each.
    let route = route.unwrap_or("(unmatched)").to_owned();
    metrics::counter!(
        REQUESTS,
        "method" => method_label(method),
        "route" => route.clone(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!(DURATION, "route" => route).record(elapsed);
}

/// The middleware: id, span, the request line, metrics and the `X-Request-Id` answer header.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = match incoming_id(request.headers()) {
        Some(id) => id.to_owned(),
        None => new_id(),
    };
    let method = request.method().clone();
    // A `Uri` shares its bytes: cloning it copies no text.
    let uri = request.uri().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    // `error_span!` so the id is there at every level that prints anything: a span's level
    // decides when it exists, and a `warn` line without its request id is hard to place.
    let span = tracing::error_span!("request", request_id = %id);
    // Changes the request makes are recorded with its id (the credential is added where
    // the GraphQL operation runs).
    let source = crate::domain::ChangeSource::Api {
        request_id: Some(id.clone()),
        credential: crate::domain::Credential::None,
    };
    let run = crate::ports::with_change_source(source, next.run(request).instrument(span.clone()));
    let (mut response, fields) = noting_fields(run).await;
    let status = response.status();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        // To the microsecond: a short number, cheap to write (`telemetry::plain_text`).
        let latency_ms = elapsed.as_micros() as f64 / 1000.0;
        let path = loggable_path(uri.path());
        if fields.is_empty() {
            tracing::info!(%method, %path, status = status.as_u16(), latency_ms, "request");
        } else {
            tracing::info!(%method, %path, status = status.as_u16(), latency_ms, %fields, "request");
        }
    });
    record(&method, route.as_deref(), status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&REQUEST_ID, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn a_plausible_incoming_id_is_kept_and_anything_else_is_not() {
        let kept = with_id(b"7f3e-ab_c.1:2/3+4=5@x");
        assert_eq!(incoming_id(&kept), Some("7f3e-ab_c.1:2/3+4=5@x"));
        let longest = "a".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(incoming_id(&with_id(longest.as_bytes())), Some(longest.as_str()));
        for refused in [
            "a".repeat(MAX_REQUEST_ID_LEN + 1).into_bytes(),
            b"two words".to_vec(),
            b"quote\"d".to_vec(),
            b"".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
        ] {
            assert_eq!(incoming_id(&with_id(&refused)), None, "{refused:?}");
        }
        assert_eq!(incoming_id(&HeaderMap::new()), None);
    }

    #[test]
    fn long_paths_are_cut_in_the_log_with_their_length() {
        assert_eq!(loggable_path("/graphql"), "/graphql");
        let long = format!("/{}", "é".repeat(300));
        let logged = loggable_path(&long);
        assert!(logged.ends_with(&format!("… ({} bytes)", long.len())), "{logged}");
        assert!(logged.len() < MAX_LOGGED_PATH + 20, "{logged}");
    }

    #[test]
    fn new_ids_are_version_4_uuids_that_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(20) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert!(incoming_id(&with_id(id.as_bytes())).is_some(), "{id}");
        }
    }

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
