//! How many operations one WebSocket has running, followed from the messages each way.
//!
//! Each subscription holds memory for as long as it runs (about 7 KB) and every store event
//! wakes all of a socket's subscriptions, so without a cap a client could send 20,000
//! `subscribe` messages of a hundred bytes each and hold 150 MB and seconds of CPU per event.
//! An operation starts with the client's `subscribe` (graphql-transport-ws) or `start`
//! (graphql-ws) and ends with the client's `complete` or `stop`, or the server's `complete`
//! or `error`. One past the cap is answered with an `error` for its id and never runs.
//!
//! Beside each socket's cap, one counts the operations of every socket together
//! ([`AllOperations`], `--max-subscriptions`), so that many sockets cannot hold more memory
//! than the service planned for: one past it is refused the same way, coded UNAVAILABLE (the
//! client may try again later, or elsewhere). A place frees when its operation ends, on either
//! side, or its socket closes.
//!
//! Refusals are logged as HTTP refusals are (in the upgrade request's span, so with its
//! request id): one past the cap, and every answer that carries errors and no data (an
//! operation refused before it ran: a missing token, a limit, a syntax error).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::http::WebSocketProtocols;
use serde::Deserialize;
use serde_json::json;

use crate::adapters::inbound::graphql::ErrorCode;

/// The parts of a protocol message that say what it does to an operation.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

/// A message to the client, as far as the cap and the log look at it.
#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
}

/// The codes of an answer (a `next` or `data` payload) with errors and no data,
/// comma-separated.
fn refusal_codes(payload: &serde_json::Value) -> Option<String> {
    let errors = payload.get("errors")?.as_array()?;
    if errors.is_empty() || !payload.get("data").is_none_or(serde_json::Value::is_null) {
        return None;
    }
    let codes: Vec<&str> = errors
        .iter()
        .map(|error| error["extensions"]["code"].as_str().unwrap_or("(none)"))
        .collect();
    Some(codes.join(","))
}

/// The operations every socket of the process has running, against their cap.
pub struct AllOperations {
    max: usize,
    open: AtomicUsize,
}

impl AllOperations {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: AtomicUsize::new(0),
        }
    }

    /// Takes a place, unless all are taken.
    fn take(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok()
    }

    fn give_back(&self, places: usize) {
        self.open.fetch_sub(places, Ordering::AcqRel);
    }
}

/// The operations running on one socket.
pub struct Operations {
    max: usize,
    protocol: WebSocketProtocols,
    running: Mutex<HashSet<String>>,
    all: Arc<AllOperations>,
}

impl Operations {
    pub fn new(max: usize, protocol: WebSocketProtocols, all: Arc<AllOperations>) -> Self {
        Self {
            max,
            protocol,
            running: Mutex::new(HashSet::new()),
            all,
        }
    }

    fn end(&self, running: &mut HashSet<String>, id: &str) {
        if running.remove(id) {
            self.all.give_back(1);
        }
    }

    /// Looks at a message from the client: `None` lets it through, `Some` is the refusal to
    /// send instead. Messages that are not well-formed pass, for the protocol to answer.
    pub fn admit(&self, message: &[u8]) -> Option<String> {
        let envelope: Envelope = serde_json::from_slice(message).ok()?;
        let id = envelope.id?;
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match envelope.kind.as_str() {
            "subscribe" | "start" if running.contains(&id) => None,
            "subscribe" | "start" if running.len() >= self.max => {
                let message = format!(
                    "A WebSocket may run at most {} operations at once; end one (send `complete`) or open another socket.",
                    self.max
                );
                Some(self.refusal(&id, ErrorCode::BadUserInput, message))
            }
            "subscribe" | "start" if !self.all.take() => {
                let message = format!(
                    "The service runs at most {} WebSocket operations at once (see --max-subscriptions); try again later.",
                    self.all.max
                );
                Some(self.refusal(&id, ErrorCode::Unavailable, message))
            }
            "subscribe" | "start" => {
                running.insert(id);
                None
            }
            "complete" | "stop" => {
                self.end(&mut running, &id);
                None
            }
            _ => None,
        }
    }

    /// Notes a message to the client; `complete` and `error` end their operation, and an
    /// answer with errors and no data is logged as a refusal.
    pub fn sent(&self, text: &str) {
        // Most messages are `next` events: look closer only when one of the words appears.
        let ends = text.contains("\"complete\"") || text.contains("\"error\"");
        let has_errors = text.contains("\"errors\"");
        if !(ends || has_errors) {
            return;
        }
        let Ok(Sent {
            kind,
            id: Some(id),
            payload,
        }) = serde_json::from_str(text)
        else {
            return;
        };
        if kind == "complete" || kind == "error" {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.end(&mut running, &id);
        }
        if let Some(codes) = refusal_codes(&payload) {
            tracing::info!(
                operation_id = %crate::adapters::inbound::graphql::loggable(&id),
                code = %codes,
                "websocket operation refused"
            );
        }
    }

    /// The `error` message refusing operation `id`, logged.
    fn refusal(&self, id: &str, code: ErrorCode, message: String) -> String {
        tracing::info!(
            operation_id = %crate::adapters::inbound::graphql::loggable(id),
            code = code.as_str(),
            "websocket operation refused"
        );
        let error = json!({
            "message": message,
            "extensions": { "code": code.as_str() },
        });
        // graphql-transport-ws carries a list of errors, graphql-ws a single one.
        let payload = match self.protocol {
            WebSocketProtocols::GraphQLWS => json!([error]),
            WebSocketProtocols::SubscriptionsTransportWS => error,
        };
        json!({ "id": id, "type": "error", "payload": payload }).to_string()
    }
}

impl Drop for Operations {
    fn drop(&mut self) {
        let running = self
            .running
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.all.give_back(running.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Arc<AllOperations> {
        Arc::new(AllOperations::new(usize::MAX))
    }

    fn subscribe(id: &str) -> Vec<u8> {
        json!({ "id": id, "type": "subscribe", "payload": { "query": "subscription { userEvents { kind } }" } })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_cap_counts_running_operations_whichever_side_ends_them() {
        let operations = Operations::new(2, WebSocketProtocols::GraphQLWS, all());
        assert_eq!(operations.admit(&subscribe("a")), None);
        assert_eq!(operations.admit(&subscribe("b")), None);
        let refusal: serde_json::Value =
            serde_json::from_str(&operations.admit(&subscribe("c")).expect("refused")).unwrap();
        assert_eq!(refusal["id"], "c");
        assert_eq!(refusal["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
        // A repeated id is the protocol's to refuse (4409), not a new operation.
        assert_eq!(operations.admit(&subscribe("a")), None);

        operations.sent(r#"{"type":"next","id":"a","payload":{"data":{"error":"complete"}}}"#);
        assert!(operations.admit(&subscribe("c")).is_some(), "a next ends nothing");
        operations.sent(r#"{"type":"complete","id":"a"}"#);
        assert_eq!(operations.admit(&subscribe("c")), None);
        operations.admit(br#"{"type":"complete","id":"b"}"#);
        operations.sent(r#"{"type":"error","id":"c","payload":[]}"#);
        assert_eq!(operations.admit(&subscribe("d")), None);
        assert_eq!(operations.admit(&subscribe("e")), None);
        assert!(operations.admit(&subscribe("f")).is_some());
        assert_eq!(operations.admit(b"not json"), None);
    }

    #[test]
    fn answers_with_errors_and_no_data_are_refusals() {
        let refused = json!({ "data": null, "errors": [{ "message": "m", "extensions": { "code": "UNAUTHENTICATED" } }, { "message": "n" }] });
        assert_eq!(refusal_codes(&refused).as_deref(), Some("UNAUTHENTICATED,(none)"));
        let partial = json!({ "data": { "a": 1 }, "errors": [{ "message": "m" }] });
        assert_eq!(refusal_codes(&partial), None);
        assert_eq!(refusal_codes(&json!({ "data": { "a": 1 } })), None);
        assert_eq!(refusal_codes(&json!([{ "message": "m" }])), None);
    }

    #[test]
    fn the_legacy_protocol_starts_and_stops_and_gets_a_single_error() {
        let operations = Operations::new(1, WebSocketProtocols::SubscriptionsTransportWS, all());
        assert_eq!(
            operations.admit(br#"{"type":"start","id":"1","payload":{}}"#),
            None
        );
        let refusal: serde_json::Value = serde_json::from_str(
            &operations
                .admit(br#"{"type":"start","id":"2","payload":{}}"#)
                .expect("refused"),
        )
        .unwrap();
        assert_eq!(refusal["payload"]["extensions"]["code"], "BAD_USER_INPUT");
        operations.admit(br#"{"type":"stop","id":"1"}"#);
        assert_eq!(
            operations.admit(br#"{"type":"start","id":"2","payload":{}}"#),
            None
        );
    }

    #[test]
    fn the_cap_of_all_sockets_refuses_with_unavailable_and_frees_on_end_and_close() {
        let all = Arc::new(AllOperations::new(2));
        let first = Operations::new(5, WebSocketProtocols::GraphQLWS, Arc::clone(&all));
        let second = Operations::new(5, WebSocketProtocols::GraphQLWS, Arc::clone(&all));
        assert_eq!(first.admit(&subscribe("a")), None);
        assert_eq!(second.admit(&subscribe("a")), None);
        let refusal: serde_json::Value =
            serde_json::from_str(&second.admit(&subscribe("b")).expect("refused")).unwrap();
        assert_eq!(refusal["id"], "b");
        assert_eq!(refusal["payload"][0]["extensions"]["code"], "UNAVAILABLE");
        // Only an operation that ran gives its place back.
        second.admit(br#"{"type":"complete","id":"b"}"#);
        assert!(first.admit(&subscribe("b")).is_some());
        second.sent(r#"{"type":"complete","id":"a"}"#);
        assert_eq!(first.admit(&subscribe("b")), None);
        assert!(second.admit(&subscribe("c")).is_some());
        drop(first);
        assert_eq!(second.admit(&subscribe("c")), None);
        assert_eq!(second.admit(&subscribe("d")), None);
        assert!(second.admit(&subscribe("e")).is_some());
    }
}
