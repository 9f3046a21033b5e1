//! Running the GraphQL requests that come over HTTP (a `POST` body, a `GET` query string, a
//! batch) and shaping their answers (GraphQL over HTTP): the negotiated media type, the
//! status code, and a `data` entry only once execution began.
//!
//! | what happened | `application/json` | `application/graphql-response+json` |
//! | --- | --- | --- |
//! | executed (with or without errors) | 200, `data` | 200, `data` |
//! | refused before execution: syntax, validation, variables, limits, a subscription | 200, no `data` | 400, no `data` |
//! | a token is missing or wrong | 401 | 401 |
//! | a mutation or subscription over `GET` | 405, `Allow: POST` | 405, `Allow: POST` |
//!
//! Every request goes through the schema, whose request gate applies the limits, the
//! deadline, the token rules, the answer budget and the metrics, exactly as for
//! `POST /graphql`. An operation refused for want of room in the answer budget
//! (`OVERLOADED`, before it ran) answers **503** with `Retry-After`. Each answer is written
//! to JSON as soon as its operation is done and its tree of values dropped there; the body
//! ([`AnswerBody`]) holds the answer's reservation until it is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{ServerError, Value};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::accept::MediaType;
use super::answer_body::{AnswerBody, Chunks};
use super::errors::{errors, unauthorized};
use crate::adapters::inbound::graphql::{
    Access, AnswerAttempt, AnswerTicket, Batch, ErrorCode, OverHttp, RETRY_AFTER_SECONDS, Reservation,
    RosterSchema, SocketUrl,
};
use crate::domain::{ChangeSource, Credential};

/// One HTTP request's GraphQL context: how to answer, who asks, how it came.
pub struct Exchange {
    pub media: MediaType,
    access: Access,
    get: bool,
    socket: SocketUrl,
}

/// What running one operation gave, and what the gate saw of it.
pub struct Outcome {
    response: async_graphql::Response,
    executed: bool,
    wrong_method: bool,
    /// The answer's share of the answer budget.
    ticket: Arc<AnswerTicket>,
}

/// An answer written to JSON, its tree of values dropped, holding its reservation.
pub struct Written {
    chunks: Chunks,
    reservation: Option<Reservation>,
}

/// A GraphQL response on the wire: `data` only when execution began (GraphQL spec,
/// "Response": a request error has no `data` entry).
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

impl Outcome {
    /// The message of a refusal for want of a token, if the operation got one.
    pub fn unauthenticated(&self) -> Option<&str> {
        self.refusal(ErrorCode::Unauthenticated)
    }

    /// Whether the operation was refused, before it ran, for want of room in the budget.
    fn overloaded(&self) -> bool {
        !self.executed && self.refusal(ErrorCode::Overloaded).is_some()
    }

    /// The message of the first error coded `code`.
    fn refusal(&self, code: ErrorCode) -> Option<&str> {
        let code = Value::from(code.as_str());
        self.response
            .errors
            .iter()
            .find(|error| {
                error
                    .extensions
                    .as_ref()
                    .and_then(|ext| ext.get("code"))
                    .is_some_and(|found| *found == code)
            })
            .map(|error| error.message.as_str())
    }

    fn answer(&self) -> Answer<'_> {
        Answer {
            data: self.executed.then_some(&self.response.data),
            errors: &self.response.errors,
            extensions: &self.response.extensions,
        }
    }

    /// [`Outcome::write`], for a big answer on a blocking thread: writing 100,000 users
    /// takes tens of milliseconds the runtime's workers owe to other requests.
    pub async fn written(self) -> Written {
        if !self.ticket.is_big() {
            return self.write();
        }
        match tokio::task::spawn_blocking(move || self.write()).await {
            Ok(written) => written,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// The answer as JSON within its bound, its tree dropped and its reservation shrunk to
    /// the text; an answer over its bound is replaced by the error that says so.
    fn write(self) -> Written {
        let limit = self.ticket.bound().unwrap_or(u64::MAX);
        let chunks = Chunks::of(&self.answer(), limit);
        let ticket = Arc::clone(&self.ticket);
        drop(self);
        let chunks = chunks.unwrap_or_else(|_| {
            let refused = ErrorCode::AnswerTooLarge.server_error(format!(
                "The answer's JSON grew past {limit} bytes, what one answer may take (four times \
                 its estimate, at most --max-answer-memory-mib). Ask for fewer users or fields."
            ));
            let answer = Answer {
                data: None,
                errors: &[refused],
                extensions: &BTreeMap::new(),
            };
            Chunks::of(&answer, u64::MAX).unwrap_or_else(|_| Chunks::empty())
        });
        let mut reservation = ticket.take();
        if let Some(reservation) = reservation.as_mut() {
            reservation.shrink_to(chunks.len());
        }
        Written { chunks, reservation }
    }
}

impl Exchange {
    /// The context of a request with these headers, made by `access`, over `GET` or `POST`.
    pub fn new(headers: &HeaderMap, access: Access, get: bool) -> Self {
        Self {
            media: MediaType::negotiate(headers),
            access,
            get,
            socket: socket_url(headers),
        }
    }

    /// Runs one operation and answers it.
    pub async fn run(&self, schema: &RosterSchema, request: async_graphql::Request) -> Response {
        // A read answered before on the same snapshot is answered again (graphql::AnswerCache).
        let cached = AnswerAttempt::begin(schema, &request, self.access, self.get).await;
        if let Some(body) = cached.hit() {
            return self.relabel((StatusCode::OK, body).into_response());
        }
        let outcome = self.execute(schema, cached.watch(request), None).await;
        if let Some(message) = outcome.unauthenticated() {
            return self.relabel(unauthorized(message, false));
        }
        if outcome.overloaded() {
            let message = outcome
                .refusal(ErrorCode::Overloaded)
                .unwrap_or_default()
                .to_owned();
            let mut response = errors(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded, message);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            return self.relabel(response);
        }
        let status = if outcome.wrong_method {
            StatusCode::METHOD_NOT_ALLOWED
        } else if !outcome.executed && self.media == MediaType::GraphqlResponse {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let wrong_method = outcome.wrong_method;
        let keep =
            status == StatusCode::OK && !wrong_method && cached.wants(outcome.executed, &outcome.response);
        // A read estimated small is serialised once into what is kept; one that reserved from
        // the memory budget is written in chunks as always, and kept when it came out small.
        if keep
            && !outcome.ticket.is_big()
            && let Some(body) = cached.keep(outcome.executed, &outcome.response, &outcome.answer())
        {
            return self.relabel((status, body).into_response());
        }
        let written = outcome.written().await;
        if keep && written.chunks.len() <= cached.entry_limit() as u64 {
            cached.store(written.chunks.to_bytes());
        }
        let mut response = self.body(status, written.chunks, written.reservation.into_iter().collect());
        if wrong_method {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }

    /// Runs one operation, as part of `batch` if given.
    pub async fn execute(
        &self,
        schema: &RosterSchema,
        request: async_graphql::Request,
        batch: Option<&Arc<Batch>>,
    ) -> Outcome {
        let mut over_http = OverHttp::new(self.get, self.socket.clone());
        if let Some(batch) = batch {
            over_http = over_http.in_batch(Arc::clone(batch));
        }
        let over_http = Arc::new(over_http);
        let ticket = Arc::new(AnswerTicket::default());
        let request = request
            .data(self.access)
            .data(Arc::clone(&over_http))
            .data(Arc::clone(&ticket));
        let response = crate::ports::with_change_source(self.source(), schema.execute(request)).await;
        Outcome {
            response,
            executed: over_http.executed(),
            wrong_method: over_http.refused_for_its_method(),
            ticket,
        }
    }

    /// Who the operation's changes are recorded as: the request's id, and the credential.
    fn source(&self) -> ChangeSource {
        let credential = match self.access {
            Access::Write => Credential::Write,
            Access::Read => Credential::Read,
            Access::Anonymous => Credential::None,
        };
        let request_id = crate::ports::change_source().request_id().map(str::to_owned);
        ChangeSource::Api {
            request_id,
            credential,
        }
    }

    /// A batch's answer: 200 and one response per operation, in order.
    pub fn batch_answer(&self, answers: Vec<Written>) -> Response {
        let mut chunks = Chunks::empty();
        let mut reservations = Vec::with_capacity(answers.len());
        chunks.push_static(b"[");
        for (index, written) in answers.into_iter().enumerate() {
            if index > 0 {
                chunks.push_static(b",");
            }
            chunks.append(written.chunks);
            reservations.extend(written.reservation);
        }
        chunks.push_static(b"]");
        self.body(StatusCode::OK, chunks, reservations)
    }

    /// JSON `chunks` with this status, in the negotiated media type, holding `reservations`
    /// until written.
    fn body(&self, status: StatusCode, chunks: Chunks, reservations: Vec<Reservation>) -> Response {
        let length = chunks.len();
        let mut response = Response::new(Body::new(AnswerBody::new(chunks, reservations)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        self.relabel(response)
    }

    /// Gives an answer (one of the HTTP layer's own errors too) the negotiated media type;
    /// since the type depends on `Accept`, caches must key on it.
    pub fn relabel(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.media.content_type());
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
        response
    }
}

/// Reads a GraphQL-over-HTTP request from its members: a string `query` (absent only when
/// `extensions` holds a persisted query's hash), and optionally an object `variables`, a
/// string `operationName` and an object `extensions` (any of them may be null).
///
/// # Errors
/// A message saying which member is wrong.
pub fn request_from_object(
    mut members: serde_json::Map<String, serde_json::Value>,
) -> Result<async_graphql::Request, String> {
    use serde_json::Value as Json;
    let extensions = match members.remove("extensions") {
        None | Some(Json::Null) => async_graphql::Extensions::default(),
        Some(Json::Object(extensions)) => {
            let mut converted = async_graphql::Extensions::default();
            for (name, value) in extensions {
                let value = Value::from_json(value)
                    .map_err(|_| "\"extensions\" holds a value that is not JSON.".to_owned())?;
                converted.insert(name, value);
            }
            converted
        }
        Some(_) => return Err("\"extensions\" must be a JSON object.".into()),
    };
    let query = match members.remove("query") {
        Some(Json::String(query)) => query,
        None | Some(Json::Null) if extensions.contains_key("persistedQuery") => String::new(),
        None | Some(Json::Null) => return Err("The request must have a \"query\" string.".into()),
        Some(_) => return Err("\"query\" must be a string.".into()),
    };
    let mut request = async_graphql::Request::new(query);
    request.extensions = extensions;
    match members.remove("variables") {
        None | Some(Json::Null) => {}
        Some(variables @ Json::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        Some(_) => return Err("\"variables\" must be a JSON object.".into()),
    }
    match members.remove("operationName") {
        None | Some(Json::Null) => {}
        Some(Json::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("\"operationName\" must be a string.".into()),
    }
    Ok(request)
}

static FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The WebSocket's address as this client reached the service (its `Host`), for the error a
/// subscription over HTTP gets; `wss` behind a proxy that says it terminated TLS.
fn socket_url(headers: &HeaderMap) -> SocketUrl {
    let secure = headers
        .get(&FORWARDED_PROTO)
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    SocketUrl::new(headers.get(header::HOST).cloned(), secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_request_needs_a_string_query_unless_it_names_a_persisted_one() {
        assert!(request_from_object(members(json!({ "query": "{ a }" }))).is_ok());
        assert!(request_from_object(members(json!({}))).is_err());
        assert!(request_from_object(members(json!({ "query": 1 }))).is_err());
        let persisted = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "ab" } } });
        let request = request_from_object(members(persisted)).unwrap();
        assert!(request.query.is_empty());
        assert!(request.extensions.contains_key("persistedQuery"));
    }

    #[test]
    fn variables_and_extensions_are_maps_and_the_operation_name_a_string_or_null() {
        for ok in [
            json!({ "query": "{ a }", "variables": null, "operationName": null, "extensions": null }),
            json!({ "query": "{ a }", "variables": {"x": 1}, "operationName": "A", "extensions": {"a": [1]} }),
        ] {
            assert!(request_from_object(members(ok.clone())).is_ok(), "{ok}");
        }
        for bad in [
            json!({ "query": "{ a }", "variables": "{}" }),
            json!({ "query": "{ a }", "variables": [1] }),
            json!({ "query": "{ a }", "operationName": 0 }),
            json!({ "query": "{ a }", "extensions": "x" }),
            json!({ "query": "{ a }", "extensions": false }),
        ] {
            assert!(request_from_object(members(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_socket_url_uses_the_host_the_client_reached() {
        let mut headers = HeaderMap::new();
        assert_eq!(socket_url(&headers).to_string(), "/graphql");
        headers.insert(header::HOST, HeaderValue::from_static("roster.example:8080"));
        assert_eq!(
            socket_url(&headers).to_string(),
            "ws://roster.example:8080/graphql"
        );
        headers.insert(&FORWARDED_PROTO, HeaderValue::from_static("https"));
        assert_eq!(
            socket_url(&headers).to_string(),
            "wss://roster.example:8080/graphql"
        );
    }
}
