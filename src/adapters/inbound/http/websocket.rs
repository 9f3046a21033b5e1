//! The WebSocket upgrade: subscriptions (and queries and mutations) over the
//! graphql-transport-ws protocol, or the legacy graphql-ws one, with the limits HTTP has.
//!
//! Before the upgrade: a browser `Origin` must be this service's own or on the CORS
//! allow-list (else 403: a page on another site must not drive the API with the user's
//! network position), a token in the `Authorization` header must be valid (else 401), and
//! a slot must be free under the WebSocket cap (else 503); a malformed upgrade is a coded 400.
//! After it: messages are at most the body limit (1 MiB by default), `connection_init` must come within the deadline
//! (else close 4408, as graphql-transport-ws says) and may carry the token as
//! `{"Authorization": "Bearer …"}` (a wrong or missing required one closes with 4403), and
//! the socket closes with 1001 when the service shuts down. At most `max_operations` run
//! at once on one socket (`websocket_operations.rs`); one more is answered with an error. Every operation goes through the
//! schema, so the cost limits, the deadline and the write-token guard apply as on HTTP.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::futures_util::{SinkExt, StreamExt, future};
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::Instrument;

use super::auth::{INVALID_TOKEN, InvalidToken, Tokens};
use super::errors::{errors, unauthorized};
use super::websocket_operations::Operations;
use super::{AppState, HttpSettings};
use crate::adapters::inbound::graphql::{Access, ErrorCode, NEEDS_A_TOKEN, RosterSchema};

/// graphql-transport-ws: no `connection_init` in time.
const INIT_TIMEOUT_CODE: u16 = 4408;
/// graphql-transport-ws: the connection is refused (a missing or wrong token).
const FORBIDDEN_CODE: u16 = 4403;
/// RFC 6455: the server is going away.
const GOING_AWAY_CODE: u16 = 1001;
/// RFC 6455: a message is too big to process.
const TOO_BIG_CODE: u16 = 1009;
/// Refusals waiting to be sent before the socket's further messages wait too.
const REFUSALS_QUEUED: usize = 64;
/// How long a close frame may take to leave before the socket is simply dropped.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What every WebSocket shares: the cap, the `connection_init` deadline, the origins a
/// browser may connect from, and the shutdown signal.
#[derive(Clone)]
pub struct WebSockets {
    slots: Arc<Semaphore>,
    max: usize,
    /// Operations one socket may have running at once.
    max_operations: usize,
    init_timeout: Duration,
    /// The largest message a client may send.
    max_message_bytes: usize,
    /// Allowed browser origins, lowercased, without a trailing slash.
    origins: Arc<[String]>,
    closing: watch::Receiver<bool>,
}

impl WebSockets {
    /// The sockets `settings` allow: how many, how many operations each, their
    /// `connection_init` deadline, their largest message (the body limit), the browser
    /// origins; `settings.closing` turning true closes them all.
    pub fn new(settings: &HttpSettings) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(settings.max_websockets)),
            max: settings.max_websockets,
            max_operations: settings.max_websocket_operations,
            init_timeout: settings.ws_init_timeout,
            max_message_bytes: settings.max_body_bytes,
            origins: settings
                .cors_origins
                .iter()
                .map(|origin| normalise_origin(origin))
                .collect(),
            closing: settings.closing.clone(),
        }
    }
}

/// An origin as browsers send it: scheme, host and port, lowercased, no trailing slash.
pub fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether a browser page at this request's `Origin` may open a socket: no `Origin` (not a
/// browser), the service's own (the `Host` it was reached at), or an allowed one.
fn origin_allowed(parts: &Parts, allowed: &[String]) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = normalise_origin(origin);
    if allowed.contains(&origin) {
        return true;
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_ascii_lowercase);
    host.is_some_and(|host| origin == format!("http://{host}") || origin == format!("https://{host}"))
}

pub async fn upgrade(state: AppState, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let sockets = state.edge.sockets.clone();
    if !origin_allowed(&parts, &sockets.origins) {
        return errors(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "WebSocket connections from this origin are not allowed (see --cors-origin).",
        );
    }
    let header_access = match state.edge.tokens.access(&parts.headers) {
        Ok(access) => access,
        Err(InvalidToken) => return unauthorized(INVALID_TOKEN, true),
    };
    let protocol = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|name| WebSocketProtocols::from_str(name.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return errors(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "The WebSocket upgrade must offer the graphql-transport-ws (or graphql-ws) subprotocol.",
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let status = rejection.status();
            return errors(status, ErrorCode::BadRequest, rejection.body_text());
        }
    };
    let Ok(slot) = Arc::clone(&sockets.slots).try_acquire_owned() else {
        let mut response = errors(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!(
                "Too many WebSockets are open (at most {}); try again later.",
                sockets.max
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let session = Session {
        schema: state.schema.clone(),
        tokens: Arc::clone(&state.edge.tokens),
        header_access,
        protocol,
        max_operations: sockets.max_operations,
        init_timeout: sockets.init_timeout,
        max_message_bytes: sockets.max_message_bytes,
        closing: sockets.closing.clone(),
        _slot: slot,
    };
    // The connection outlives this handler; keep the upgrade request's span (its id) on it.
    let span = tracing::Span::current();
    upgrade
        .max_message_size(sockets.max_message_bytes)
        .max_frame_size(sockets.max_message_bytes)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_failed_upgrade(|err| tracing::debug!(error = %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| session.serve(socket).instrument(span))
        .into_response()
}

/// One open socket.
struct Session {
    schema: RosterSchema,
    tokens: Arc<Tokens>,
    header_access: Access,
    protocol: WebSocketProtocols,
    max_operations: usize,
    init_timeout: Duration,
    max_message_bytes: usize,
    closing: watch::Receiver<bool>,
    /// Holds a place under the WebSocket cap for as long as the socket is open.
    _slot: OwnedSemaphorePermit,
}

impl Session {
    async fn serve(mut self, socket: WebSocket) {
        let (mut sink, stream) = socket.split();
        let too_big = Arc::new(AtomicBool::new(false));
        let initialised = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicBool::new(false));
        let operations = Arc::new(Operations::new(self.max_operations, self.protocol));
        // Refusals of operations past the cap, on their way to the client.
        let (refuse, mut refusals) = mpsc::channel::<String>(REFUSALS_QUEUED);

        let input = {
            let too_big = Arc::clone(&too_big);
            let operations = Arc::clone(&operations);
            stream
                .take_while(move |message| {
                    if let Err(err) = message {
                        too_big.store(is_capacity_error(err), Ordering::Relaxed);
                    }
                    future::ready(message.is_ok())
                })
                .filter_map(move |message| {
                    let bytes = match message {
                        Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
                        Ok(Message::Binary(bytes)) => Some(bytes),
                        _ => None,
                    };
                    let refusal = bytes.as_ref().and_then(|bytes| operations.admit(bytes));
                    let refuse = refuse.clone();
                    async move {
                        match refusal {
                            None => bytes,
                            Some(refusal) => {
                                // Waits while the client is slow to read its refusals, so
                                // it cannot pile them up; the loop below sends them.
                                let _ = refuse.send(refusal).await;
                                None
                            }
                        }
                    }
                })
        };
        let on_init = {
            let tokens = Arc::clone(&self.tokens);
            let header_access = self.header_access;
            let initialised = Arc::clone(&initialised);
            let refused = Arc::clone(&refused);
            move |payload: serde_json::Value| async move {
                let access = match payload_authorization(&payload) {
                    None => Ok(header_access),
                    Some(Some(value)) => tokens.access_for(value).map(|access| access.max(header_access)),
                    Some(None) => Err(InvalidToken),
                };
                match access {
                    Ok(access) if tokens.policy().can_read(access) => {
                        initialised.store(true, Ordering::Relaxed);
                        let mut data = Data::default();
                        data.insert(access);
                        Ok(data)
                    }
                    Ok(_) => {
                        refused.store(true, Ordering::Relaxed);
                        Err(ErrorCode::Unauthenticated.error(NEEDS_A_TOKEN))
                    }
                    Err(InvalidToken) => {
                        refused.store(true, Ordering::Relaxed);
                        Err(ErrorCode::Unauthenticated.error(INVALID_TOKEN))
                    }
                }
            }
        };
        let mut session_data = Data::default();
        session_data.insert(self.header_access);
        let machine = async_graphql::http::WebSocket::new(self.schema.clone(), input, self.protocol)
            .connection_data(session_data)
            .on_connection_init(on_init);
        tokio::pin!(machine);
        let init_deadline = tokio::time::sleep(self.init_timeout);
        tokio::pin!(init_deadline);

        let close = loop {
            tokio::select! {
                message = machine.next() => match message {
                    Some(WsMessage::Text(text)) => {
                        operations.sent(&text);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        break if refused.load(Ordering::Relaxed) {
                            (FORBIDDEN_CODE, "Forbidden".to_owned())
                        } else {
                            (code, reason)
                        };
                    }
                    None if too_big.load(Ordering::Relaxed) => {
                        break (TOO_BIG_CODE, format!("A message is over {} bytes.", self.max_message_bytes));
                    }
                    None => return,
                },
                Some(refusal) = refusals.recv() => {
                    if sink.send(Message::Text(refusal.into())).await.is_err() {
                        return;
                    }
                }
                () = &mut init_deadline, if !initialised.load(Ordering::Relaxed) => {
                    break (INIT_TIMEOUT_CODE, "Connection initialisation timeout".to_owned());
                }
                () = closing(&mut self.closing) => {
                    break (GOING_AWAY_CODE, "The server is shutting down.".to_owned());
                }
            }
        };
        let (code, reason) = close;
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_SEND_TIMEOUT, sink.send(frame)).await;
    }
}

/// Completes once shutdown has begun.
async fn closing(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// The `Authorization` entry of a `connection_init` payload: absent (`None`), a string
/// (`Some(Some)`), or something else (`Some(None)`, refused). Its key may be in any case.
fn payload_authorization(payload: &serde_json::Value) -> Option<Option<&str>> {
    let object = payload.as_object()?;
    let (_, value) = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))?;
    Some(value.as_str())
}

/// Whether a read error is tungstenite's refusal of a message over the size limit.
fn is_capacity_error(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tungstenite) = current.downcast_ref::<tungstenite::Error>() {
            return matches!(tungstenite, tungstenite::Error::Capacity(_));
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(origin: Option<&str>, host: &str) -> Parts {
        let mut request = axum::http::Request::builder().header(header::HOST, host);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn origins_are_allowed_when_absent_same_or_listed() {
        let allowed = vec![normalise_origin("https://App.example/")];
        assert!(origin_allowed(&parts(None, "127.0.0.1:5000"), &allowed));
        assert!(origin_allowed(
            &parts(Some("http://127.0.0.1:5000"), "127.0.0.1:5000"),
            &allowed
        ));
        assert!(origin_allowed(
            &parts(Some("https://app.example"), "127.0.0.1:5000"),
            &allowed
        ));
        assert!(!origin_allowed(
            &parts(Some("https://evil.example"), "127.0.0.1:5000"),
            &allowed
        ));
        assert!(!origin_allowed(&parts(Some("null"), "127.0.0.1:5000"), &allowed));
        assert!(!origin_allowed(
            &parts(Some("http://127.0.0.1:5001"), "127.0.0.1:5000"),
            &allowed
        ));
    }

    #[test]
    fn the_init_payload_carries_the_authorization_in_any_case() {
        let payload = serde_json::json!({ "authorization": "Bearer x" });
        assert_eq!(payload_authorization(&payload), Some(Some("Bearer x")));
        assert_eq!(payload_authorization(&serde_json::json!({})), None);
        assert_eq!(
            payload_authorization(&serde_json::json!({ "Authorization": 5 })),
            Some(None)
        );
        assert_eq!(payload_authorization(&serde_json::Value::Null), None);
    }
}
