//! The WebSocket upgrade: subscriptions (and queries and mutations) over the
//! graphql-transport-ws protocol, or the legacy graphql-ws one, with the limits HTTP has.
//!
//! Before the upgrade: a browser `Origin` must be this service's own or on the CORS
//! allow-list (else 403: a page on another site must not drive the API with the user's
//! network position), a token in the `Authorization` header must be valid (else 401), and
//! a slot must be free under the WebSocket cap and under the cap for the client's address
//! (else 503, so one client cannot take every slot); a malformed upgrade is a coded 400.
//! After it: messages are at most the body limit (1 MiB by default), `connection_init` must come within the deadline
//! (else close 4408, as graphql-transport-ws says) and may carry the token as
//! `{"Authorization": "Bearer …"}` (a wrong or missing required one closes with 4403), and
//! the socket closes with 1001 when the service shuts down. At most `max_operations` run
//! at once on one socket, and `--max-subscriptions` on all of them (`websocket_operations.rs`);
//! one more is answered with an error. Every operation goes through the schema, so the cost
//! limits, the deadline and the write-token guard apply as on HTTP; each runs in a task of its
//! own (`websocket_runner.rs`), and subscribers of the same `userEvents` request share one
//! rendering of each event, which arrives as one delivery for all of the socket's operations
//! on it and is written with one flush.
//!
//! A socket must also show it is alive and not stall the server: one silent for the ping
//! interval (15 s by default) is sent a WebSocket ping, which clients answer on their own;
//! if nothing at all (a pong, a protocol `ping`, any frame) arrives within the pong deadline
//! (15 s more), it is closed with 1008. A message must arrive whole within the message
//! deadline (10 s) of its first byte, and more than a hundred empty or tiny frames in a row
//! close it with 1008 too (`websocket_frames.rs` reads the frames).
//!
//! Every close the server makes is logged with its code and reason (`websocket closed`),
//! and every operation refused over the socket with its id and code (`websocket operation
//! refused`), in the upgrade request's span, so with its request id.
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::futures_util::stream::SplitSink;
use async_graphql::futures_util::{SinkExt, StreamExt, future};
use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::auth::{INVALID_TOKEN, InvalidToken, Tokens};
use super::errors::{errors, unauthorized};
use super::server::ClientAddress;
use super::websocket_event_frames::EventFrames;
use super::websocket_frames::FrameWatch;
use super::websocket_operations::{AllOperations, Operations};
use super::websocket_runner::{ClientOperation, Runner};
use super::websocket_upgrade::{Connection, Handshake, Socket};
use super::{AppState, HttpSettings};
use crate::adapters::inbound::graphql::{Access, ErrorCode, NEEDS_A_TOKEN, RosterSchema, SocketShares};

/// graphql-transport-ws: no `connection_init` in time.
const INIT_TIMEOUT_CODE: u16 = 4408;
/// graphql-transport-ws: the connection is refused (a missing or wrong token).
const FORBIDDEN_CODE: u16 = 4403;
/// RFC 6455: the server is going away.
const GOING_AWAY_CODE: u16 = 1001;
/// RFC 6455: a message is too big to process.
const TOO_BIG_CODE: u16 = 1009;
/// RFC 6455: the client broke a rule (no answer to a ping, a message too slow, empty frames).
const POLICY_CODE: u16 = 1008;
/// What the server's pings carry.
const PING_PAYLOAD: &[u8] = b"roster";
/// Refusals waiting to be sent before the socket's further messages wait too.
const REFUSALS_QUEUED: usize = 64;
/// Operations' messages waiting to be sent before the operations wait too.
const OUTPUTS_QUEUED: usize = 64;
/// The most messages (or shared deliveries) gathered into one write and flush.
const BATCH: usize = 64;
/// What a socket reads from the connection at a time. The WebSocket library zeroes this
/// much of its buffer on every read attempt, and a socket's task tries to read each time it
/// wakes, for an event as much as for a message: at its default (128 KiB) that zeroing was an
/// eighth of the CPU a live event cost, and kept 128 KiB per socket resident. Client
/// messages are small; a larger one is read in several steps.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// How long a close frame may take to leave before the socket is simply dropped.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long, after its close frame, the server reads and drops what the client still sends
/// while waiting for its close: dropping the connection with unread bytes would reset it,
/// and the reset can destroy the close frame (its code and reason) before the client reads it.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What every WebSocket shares: the cap, the `connection_init` deadline, the origins a
/// browser may connect from, and the shutdown signal.
#[derive(Clone)]
pub struct WebSockets {
    slots: Arc<Semaphore>,
    max: usize,
    /// Open sockets by client address, and how many one address may have.
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_client: usize,
    keepalive: KeepaliveSettings,
    /// Operations one socket may have running at once.
    max_operations: usize,
    /// The operations of every socket, against their cap.
    all_operations: Arc<AllOperations>,
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
            per_client: Arc::default(),
            max_per_client: settings.max_websockets_per_client,
            keepalive: KeepaliveSettings {
                ping_interval: settings.ws_ping_interval,
                pong_timeout: settings.ws_pong_timeout,
                message_timeout: settings.ws_message_timeout,
            },
            max_operations: settings.max_websocket_operations,
            all_operations: Arc::new(AllOperations::new(settings.max_subscriptions)),
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

impl WebSockets {
    /// A place for one more socket from `client`, unless it has as many as it may.
    fn place_for(&self, client: IpAddr) -> Option<ClientPlace> {
        let mut open = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(client).or_default();
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(ClientPlace {
            open: Arc::clone(&self.per_client),
            client,
        })
    }
}

/// One socket's place under its client address's cap, freed when dropped.
struct ClientPlace {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// 503 with `Retry-After`: no place for one more socket.
fn unavailable(message: String) -> Response {
    let mut response = errors(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
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
    let frames = parts.extensions.get::<Arc<FrameWatch>>().cloned();
    // The request log's id of the upgrade, for the changes its operations make.
    let request_id = crate::ports::change_source().request_id().map(str::to_owned);
    let client = parts.extensions.get::<ClientAddress>().copied();
    let handshake = match Handshake::read(&mut parts) {
        Ok(handshake) => handshake,
        Err(refusal) => return errors(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, refusal),
    };
    let place = match client {
        Some(ClientAddress(client)) => match sockets.place_for(client) {
            Some(place) => Some(place),
            None => {
                return unavailable(format!(
                    "Too many WebSockets are open from this address (at most {}); try again later.",
                    sockets.max_per_client
                ));
            }
        },
        None => None,
    };
    let Ok(slot) = Arc::clone(&sockets.slots).try_acquire_owned() else {
        return unavailable(format!(
            "Too many WebSockets are open (at most {}); try again later.",
            sockets.max
        ));
    };
    let session = Session {
        schema: state.schema.clone(),
        tokens: Arc::clone(&state.edge.tokens),
        header_access,
        protocol,
        max_operations: sockets.max_operations,
        all_operations: Arc::clone(&sockets.all_operations),
        request_id,
        init_timeout: sockets.init_timeout,
        max_message_bytes: sockets.max_message_bytes,
        closing: sockets.closing.clone(),
        keepalive: sockets.keepalive,
        frames,
        _slot: slot,
        _place: place,
    };
    // The connection outlives this handler; keep the upgrade request's span (its id) on it.
    let span = tracing::Span::current();
    let config = WebSocketConfig::default()
        .max_message_size(Some(sockets.max_message_bytes))
        .max_frame_size(Some(sockets.max_message_bytes))
        .read_buffer_size(READ_BUFFER_BYTES);
    handshake.accept(protocol, config, move |socket, connection| {
        session.serve(socket, connection).instrument(span)
    })
}

/// One open socket.
struct Session {
    schema: RosterSchema,
    tokens: Arc<Tokens>,
    header_access: Access,
    protocol: WebSocketProtocols,
    max_operations: usize,
    all_operations: Arc<AllOperations>,
    /// The upgrade request's id.
    request_id: Option<String>,
    init_timeout: Duration,
    max_message_bytes: usize,
    closing: watch::Receiver<bool>,
    keepalive: KeepaliveSettings,
    /// The socket's frames as the connection reads them (absent when served without the
    /// connection-level server).
    frames: Option<Arc<FrameWatch>>,
    /// Holds a place under the WebSocket cap for as long as the socket is open.
    _slot: OwnedSemaphorePermit,
    /// And one under its client address's cap.
    _place: Option<ClientPlace>,
}

/// How a socket ended.
enum End {
    /// The server closes it with this code and reason.
    Close(u16, String),
    /// The client closed it, with this code if it said one.
    ByClient(Option<u16>),
    /// An answer could not be written: the client is gone or stopped reading.
    WriteFailed,
}

impl Session {
    async fn serve(mut self, socket: Socket, mut connection: Connection) {
        let (mut sink, stream) = socket.split();
        let too_big = Arc::new(AtomicBool::new(false));
        let initialised = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicBool::new(false));
        // The access `connection_init` settled on.
        let access = Arc::new(Mutex::new(self.header_access));
        let operations = Arc::new(Operations::new(
            self.max_operations,
            self.protocol,
            Arc::clone(&self.all_operations),
        ));
        // Refusals of operations past the cap, on their way to the client.
        let (refuse, mut refusals) = mpsc::channel::<String>(REFUSALS_QUEUED);
        // Operations started and ended by the client, once initialised, for the runner.
        let (route, mut routed) = mpsc::channel::<ClientOperation>(REFUSALS_QUEUED);
        let (outputs, mut answers) = mpsc::channel(OUTPUTS_QUEUED);
        let (shares, mut deliveries) = SocketShares::new();
        let mut runner = Runner::new(
            self.schema.clone(),
            self.protocol,
            self.request_id.clone(),
            shares.clone(),
            outputs,
        );

        let started = Instant::now();
        // When the client last sent a whole frame, in nanoseconds since `started`.
        let last_seen = Arc::new(AtomicU64::new(0));
        // The code of the client's close frame, when it sends one (0: none yet).
        let client_close = Arc::new(AtomicU64::new(0));
        // Set once the server has sent its close: messages are then read and dropped.
        let draining = Arc::new(AtomicBool::new(false));
        let input = {
            let draining = Arc::clone(&draining);
            let too_big = Arc::clone(&too_big);
            let operations = Arc::clone(&operations);
            let last_seen = Arc::clone(&last_seen);
            let client_close = Arc::clone(&client_close);
            let initialised = Arc::clone(&initialised);
            stream
                .inspect(move |message| {
                    last_seen.store(nanos_since(started), Ordering::Relaxed);
                    if let Ok(Message::Close(frame)) = message {
                        let code = frame.as_ref().map_or(1005, |frame| u16::from(frame.code));
                        client_close.store(u64::from(code), Ordering::Relaxed);
                    }
                })
                .take_while(move |message| {
                    if let Err(err) = message {
                        too_big.store(is_capacity_error(err), Ordering::Relaxed);
                    }
                    future::ready(message.is_ok())
                })
                .filter_map(move |message| {
                    let bytes = match message {
                        _ if draining.load(Ordering::Relaxed) => None,
                        Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
                        Ok(Message::Binary(bytes)) => Some(bytes),
                        _ => None,
                    };
                    let refusal = bytes.as_ref().and_then(|bytes| operations.admit(bytes));
                    // Once initialised, operations are the runner's; before, the machine
                    // refuses them.
                    let operation = match (&refusal, &bytes) {
                        (None, Some(bytes)) if initialised.load(Ordering::Relaxed) => {
                            ClientOperation::read(bytes)
                        }
                        _ => None,
                    };
                    let refuse = refuse.clone();
                    let route = route.clone();
                    async move {
                        // Both wait while the client is slow to read, so it cannot pile
                        // them up; the loop below sends the refusals and runs the operations.
                        if let Some(refusal) = refusal {
                            let _ = refuse.send(refusal).await;
                            return None;
                        }
                        if let Some(operation) = operation {
                            let _ = route.send(operation).await;
                            return None;
                        }
                        bytes
                    }
                })
        };
        let on_init = {
            let tokens = Arc::clone(&self.tokens);
            let header_access = self.header_access;
            let initialised = Arc::clone(&initialised);
            let refused = Arc::clone(&refused);
            let settled = Arc::clone(&access);
            move |payload: serde_json::Value| async move {
                let access = match payload_authorization(&payload) {
                    None => Ok(header_access),
                    Some(Some(value)) => tokens.access_for(value).map(|access| access.max(header_access)),
                    Some(None) => Err(InvalidToken),
                };
                match access {
                    Ok(access) if tokens.policy().can_read(access) => {
                        *settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = access;
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
        let mut keepalive = Keepalive::new(self.keepalive);
        let check = tokio::time::sleep_until(started + self.keepalive.ping_interval);
        tokio::pin!(check);

        let deadlines = || {
            let seen = started + Duration::from_nanos(last_seen.load(Ordering::Relaxed));
            let unfinished = self.frames.as_ref().and_then(|frames| frames.unfinished_since());
            (seen, unfinished.map(Instant::from_std))
        };
        let end = loop {
            let (seen, unfinished) = deadlines();
            let next_check = keepalive.next_check(seen, unfinished);
            if check.deadline() != next_check {
                check.as_mut().reset(next_check);
            }
            tokio::select! {
                message = machine.next() => match message {
                    Some(WsMessage::Text(text)) => {
                        operations.sent(&text);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break End::WriteFailed;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        break if refused.load(Ordering::Relaxed) {
                            End::Close(FORBIDDEN_CODE, "Forbidden".to_owned())
                        } else {
                            End::Close(code, reason)
                        };
                    }
                    None if too_big.load(Ordering::Relaxed) => {
                        break End::Close(TOO_BIG_CODE, format!("A message is over {} bytes.", self.max_message_bytes));
                    }
                    None => {
                        let code = client_close.load(Ordering::Relaxed);
                        break End::ByClient(u16::try_from(code).ok().filter(|code| *code != 0));
                    }
                },
                Some(refusal) = refusals.recv() => {
                    if sink.send(Message::Text(refusal.into())).await.is_err() {
                        break End::WriteFailed;
                    }
                }
                Some(operation) = routed.recv() => match operation {
                    ClientOperation::Start { id, request } => {
                        let access = *access.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        runner.start(id, *request, access);
                    }
                    ClientOperation::Stop { id } => {
                        if let Some(text) = runner.stop(&id) {
                            operations.sent(&text);
                            if sink.send(Message::Text(text.into())).await.is_err() {
                                break End::WriteFailed;
                            }
                        }
                    }
                },
                Some(answer) = answers.recv() => {
                    let mut texts = Vec::new();
                    texts.extend(runner.output(answer));
                    while texts.len() < BATCH {
                        let Ok(answer) = answers.try_recv() else { break };
                        texts.extend(runner.output(answer));
                    }
                    for text in &texts {
                        operations.sent(text);
                    }
                    if !write_all(&mut sink, texts).await {
                        break End::WriteFailed;
                    }
                }
                Some(delivery) = deliveries.recv() => {
                    // One delivery per stream and event, for all the socket's operations on it.
                    let mut frames = EventFrames::default();
                    let mut push = |head: &str, payload: &str| frames.push(head, payload);
                    shares.receive(delivery, &mut push);
                    for _ in 1..BATCH {
                        let Ok(delivery) = deliveries.try_recv() else { break };
                        shares.receive(delivery, &mut push);
                    }
                    if !frames.write(&mut sink, &mut connection).await {
                        break End::WriteFailed;
                    }
                }
                () = &mut init_deadline, if !initialised.load(Ordering::Relaxed) => {
                    break End::Close(INIT_TIMEOUT_CODE, "Connection initialisation timeout".to_owned());
                }
                () = &mut check => {
                    // Read again: the message may have finished, the pong come, meanwhile.
                    let (seen, unfinished) = deadlines();
                    match keepalive.due(Instant::now(), seen, unfinished) {
                    Due::Nothing => {}
                    Due::Ping => {
                        if let Some(frames) = &self.frames {
                            frames.pinged();
                        }
                        let ping = Message::Ping(axum::body::Bytes::from_static(PING_PAYLOAD));
                        if sink.send(ping).await.is_err() {
                            break End::WriteFailed;
                        }
                    }
                    Due::Close(reason) => break End::Close(POLICY_CODE, reason),
                    }
                }
                () = idle_frames(self.frames.as_deref()) => {
                    break End::Close(POLICY_CODE, "Too many empty or tiny frames.".to_owned());
                }
                () = closing(&mut self.closing) => {
                    break End::Close(GOING_AWAY_CODE, "The server is shutting down.".to_owned());
                }
            }
        };
        // Ends every operation, and the socket's places on shared streams with them.
        drop(runner);
        match end {
            End::Close(code, reason) => {
                tracing::info!(close_code = code, %reason, "websocket closed");
                let frame = Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                }));
                let _ = tokio::time::timeout(CLOSE_SEND_TIMEOUT, sink.send(frame)).await;
                draining.store(true, Ordering::Relaxed);
                let drain = async { while machine.next().await.is_some() {} };
                let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
            }
            End::ByClient(code) => tracing::info!(close_code = code, "websocket closed by the client"),
            End::WriteFailed => tracing::info!("websocket dropped: an answer could not be written"),
        }
    }
}

/// Sends `texts` with one flush; whether they all went.
async fn write_all(sink: &mut SplitSink<Socket, Message>, texts: Vec<String>) -> bool {
    if texts.is_empty() {
        return true;
    }
    for text in texts {
        if sink.feed(Message::Text(text.into())).await.is_err() {
            return false;
        }
    }
    sink.flush().await.is_ok()
}

/// The keep-alive and message deadlines of every socket.
#[derive(Clone, Copy)]
struct KeepaliveSettings {
    /// Silence after which the socket is pinged.
    ping_interval: Duration,
    /// How long a pinged socket has to send anything.
    pong_timeout: Duration,
    /// How long a message may take from its first byte to its last.
    message_timeout: Duration,
}

/// One socket's keep-alive: when to ping it, when to give up on it.
struct Keepalive {
    settings: KeepaliveSettings,
    /// When the unanswered ping was sent.
    pinged_at: Option<Instant>,
}

/// What a socket's deadlines call for now.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Ping,
    Close(String),
}

impl Keepalive {
    fn new(settings: KeepaliveSettings) -> Self {
        Self {
            settings,
            pinged_at: None,
        }
    }

    /// When to look again, given when the client last sent a frame and since when a
    /// message of its has been unfinished.
    fn next_check(&self, seen: Instant, unfinished: Option<Instant>) -> Instant {
        let alive = match self.pinged_at {
            Some(at) => at + self.settings.pong_timeout,
            None => seen + self.settings.ping_interval,
        };
        unfinished.map_or(alive, |since| alive.min(since + self.settings.message_timeout))
    }

    fn due(&mut self, now: Instant, seen: Instant, unfinished: Option<Instant>) -> Due {
        let settings = self.settings;
        if unfinished.is_some_and(|since| now >= since + settings.message_timeout) {
            return Due::Close(format!(
                "A message did not arrive whole within {} s.",
                settings.message_timeout.as_secs_f64()
            ));
        }
        if let Some(at) = self.pinged_at {
            if seen >= at {
                self.pinged_at = None;
            } else if now >= at + settings.pong_timeout {
                return Due::Close(format!(
                    "No answer to a ping within {} s.",
                    settings.pong_timeout.as_secs_f64()
                ));
            }
        }
        if self.pinged_at.is_none() && now >= seen + settings.ping_interval {
            self.pinged_at = Some(now);
            return Due::Ping;
        }
        Due::Nothing
    }
}

/// Nanoseconds from `started` to now.
fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Completes when the client has sent too many frames without progress; never without a
/// watch over its frames.
async fn idle_frames(frames: Option<&FrameWatch>) {
    match frames {
        Some(frames) => frames.broken().await,
        None => future::pending().await,
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
fn is_capacity_error(err: &tungstenite::Error) -> bool {
    matches!(err, tungstenite::Error::Capacity(_))
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
