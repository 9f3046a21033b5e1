//! A WebSocket's operations, each run in a task of its own once the connection is
//! initialised (async-graphql's protocol machine keeps `connection_init`, pings and
//! malformed messages).
//!
//! Running them here rather than in the machine, which polled every operation of the
//! socket each time any of them woke, does three things: an operation parked on a shared
//! stream (`graphql::SharedEvents`) costs nothing per event, its changes are recorded with
//! their source ([`with_change_source`] around its task: the upgrade request's id, `/`, the
//! operation id, and the socket's credential), and its request carries a [`ShareTicket`] so
//! that `userEvents` subscribers of the same request share one rendering of each event.
//!
//! The messages are the machine's: `next` (`data` on graphql-ws) for each answer, then
//! `complete`; a `complete` (`stop`) from the client ends the operation and is confirmed with
//! a `complete`; a `subscribe` with the id of a running operation replaces it.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::futures_util::StreamExt;
use async_graphql::http::WebSocketProtocols;
use async_graphql::{Data, Request, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::adapters::inbound::graphql::{Access, RosterSchema, ShareKey, ShareTicket, SocketShares};
use crate::domain::{ChangeSource, Credential};
use crate::ports::with_change_source;

/// The longest client operation id kept in a change's request id; a longer one (or one with
/// other characters than a request id may have) is recorded by its number on the socket.
const MAX_ID_IN_REQUEST_ID: usize = 64;

/// A client message that starts or ends an operation.
pub enum ClientOperation {
    Start { id: String, request: Box<Request> },
    Stop { id: String },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    #[serde(alias = "subscribe")]
    Start { id: String, payload: Box<Request> },
    #[serde(alias = "complete")]
    Stop { id: String },
}

impl ClientOperation {
    /// `message` when it starts or ends an operation; anything else (including a malformed
    /// `subscribe`) is the machine's to answer.
    pub fn read(message: &[u8]) -> Option<Self> {
        match serde_json::from_slice(message).ok()? {
            Incoming::Start { id, payload } => Some(Self::Start { id, request: payload }),
            Incoming::Stop { id } => Some(Self::Stop { id }),
        }
    }
}

/// What an operation's task hands the socket.
pub struct Output {
    seq: u64,
    id: String,
    /// A message to send, or `None`: the operation is over.
    text: Option<String>,
}

struct Running {
    seq: u64,
    task: AbortHandle,
}

/// The operations of one socket.
pub struct Runner {
    schema: RosterSchema,
    protocol: WebSocketProtocols,
    /// The upgrade request's id.
    request_id: Option<String>,
    shares: Arc<SocketShares>,
    outputs: mpsc::Sender<Output>,
    running: HashMap<String, Running>,
    /// The session's data, once the connection is initialised with this access.
    data: Option<(Access, Arc<Data>)>,
    started: u64,
}

impl Runner {
    pub fn new(
        schema: RosterSchema,
        protocol: WebSocketProtocols,
        request_id: Option<String>,
        shares: Arc<SocketShares>,
        outputs: mpsc::Sender<Output>,
    ) -> Self {
        Self {
            schema,
            protocol,
            request_id,
            shares,
            outputs,
            running: HashMap::new(),
            data: None,
            started: 0,
        }
    }

    /// Starts operation `id` with the socket's `access`.
    pub fn start(&mut self, id: String, request: Request, access: Access) {
        self.started += 1;
        let seq = self.started;
        if let Some(replaced) = self.running.remove(&id) {
            replaced.task.abort();
        }
        let data = match &self.data {
            Some((known, data)) if *known == access => Arc::clone(data),
            _ => {
                let mut data = Data::default();
                data.insert(access);
                let data = Arc::new(data);
                self.data = Some((access, Arc::clone(&data)));
                data
            }
        };
        let source = ChangeSource::Api {
            request_id: self.operation_request_id(&id, seq),
            credential: match access {
                Access::Write => Credential::Write,
                Access::Read => Credential::Read,
                Access::Anonymous => Credential::None,
            },
        };
        let mut request = request;
        if let Some(key) = ShareKey::of(&request, access) {
            let head = shared_head(self.protocol, &id);
            let ticket = ShareTicket::new(Arc::clone(&self.shares), key, head, &id);
            request = request.data(Arc::new(ticket));
        }
        let mut answers = self.schema.execute_stream_with_session_data(request, data);
        let outputs = self.outputs.clone();
        let protocol = self.protocol;
        let task_id = id.clone();
        let run = async move {
            while let Some(answer) = answers.next().await {
                let text = Some(next_message(protocol, &task_id, &answer));
                let output = Output {
                    seq,
                    id: task_id.clone(),
                    text,
                };
                if outputs.send(output).await.is_err() {
                    return;
                }
            }
            let done = Output {
                seq,
                id: task_id,
                text: None,
            };
            let _ = outputs.send(done).await;
        };
        let task = tokio::spawn(with_change_source(source, run).in_current_span());
        self.running.insert(
            id,
            Running {
                seq,
                task: task.abort_handle(),
            },
        );
    }

    /// The client ended operation `id`: the `complete` confirming it, if it was running.
    pub fn stop(&mut self, id: &str) -> Option<String> {
        let running = self.running.remove(id)?;
        running.task.abort();
        Some(complete_message(id))
    }

    /// What to send for an operation's output: its message, or `complete` when it ended;
    /// nothing for an operation that was ended or replaced meanwhile.
    pub fn output(&mut self, output: Output) -> Option<String> {
        let running = self.running.get(&output.id)?;
        if running.seq != output.seq {
            return None;
        }
        match output.text {
            Some(text) => Some(text),
            None => {
                self.running.remove(&output.id);
                Some(complete_message(&output.id))
            }
        }
    }

    /// The request id an operation's changes are recorded with.
    fn operation_request_id(&self, id: &str, seq: u64) -> Option<String> {
        let socket = self.request_id.as_deref()?;
        let plausible = !id.is_empty()
            && id.len() <= MAX_ID_IN_REQUEST_ID
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:+=@".contains(&b));
        Some(if plausible {
            format!("{socket}/{id}")
        } else {
            format!("{socket}/#{seq}")
        })
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
    }
}

fn next_type(protocol: WebSocketProtocols) -> &'static str {
    match protocol {
        WebSocketProtocols::GraphQLWS => "next",
        WebSocketProtocols::SubscriptionsTransportWS => "data",
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn next_message(protocol: WebSocketProtocols, id: &str, answer: &Response) -> String {
    let payload = serde_json::to_string(answer).unwrap_or_else(|_| "null".to_owned());
    format!(
        "{{\"type\":\"{}\",\"id\":{},\"payload\":{payload}}}",
        next_type(protocol),
        json_string(id)
    )
}

fn complete_message(id: &str) -> String {
    format!("{{\"type\":\"complete\",\"id\":{}}}", json_string(id))
}

/// What a shared stream's frames for operation `id` hold before the payload; the closing
/// brace follows it (`websocket_event_frames.rs`).
fn shared_head(protocol: WebSocketProtocols, id: &str) -> String {
    format!(
        "{{\"type\":\"{}\",\"id\":{},\"payload\":",
        next_type(protocol),
        json_string(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_messages_are_read_and_others_left_to_the_machine() {
        let start = br#"{"type":"subscribe","id":"1","payload":{"query":"{ allUsers { id } }"}}"#;
        assert!(matches!(
            ClientOperation::read(start),
            Some(ClientOperation::Start { id, request }) if id == "1" && request.query == "{ allUsers { id } }"
        ));
        let legacy = br#"{"type":"start","id":"2","payload":{"query":"{ a }"}}"#;
        assert!(matches!(
            ClientOperation::read(legacy),
            Some(ClientOperation::Start { .. })
        ));
        assert!(matches!(
            ClientOperation::read(br#"{"type":"complete","id":"1"}"#),
            Some(ClientOperation::Stop { id }) if id == "1"
        ));
        assert!(matches!(
            ClientOperation::read(br#"{"type":"stop","id":"1"}"#),
            Some(ClientOperation::Stop { .. })
        ));
        for other in [
            &br#"{"type":"ping"}"#[..],
            br#"{"type":"connection_init"}"#,
            br#"{"type":"subscribe","id":"1","payload":7}"#,
            br#"{"type":"subscribe","payload":{"query":"{ a }"}}"#,
            b"not json",
        ] {
            assert!(ClientOperation::read(other).is_none());
        }
    }

    #[test]
    fn frames_are_the_protocols_messages() {
        let answer = Response::new(async_graphql::Value::Null);
        let next: serde_json::Value =
            serde_json::from_str(&next_message(WebSocketProtocols::GraphQLWS, "a\"b", &answer)).unwrap();
        assert_eq!(
            next,
            serde_json::json!({ "type": "next", "id": "a\"b", "payload": { "data": null } })
        );
        let data: serde_json::Value = serde_json::from_str(&next_message(
            WebSocketProtocols::SubscriptionsTransportWS,
            "1",
            &answer,
        ))
        .unwrap();
        assert_eq!(data["type"], "data");
        for (protocol, kind) in [
            (WebSocketProtocols::GraphQLWS, "next"),
            (WebSocketProtocols::SubscriptionsTransportWS, "data"),
        ] {
            let frame = format!("{}{}}}", shared_head(protocol, "x\"y"), r#"{"data":{}}"#);
            let shared: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(
                shared,
                serde_json::json!({ "type": kind, "id": "x\"y", "payload": { "data": {} } })
            );
        }
        let complete: serde_json::Value = serde_json::from_str(&complete_message("1")).unwrap();
        assert_eq!(complete, serde_json::json!({ "type": "complete", "id": "1" }));
    }
}
