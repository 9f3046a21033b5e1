//! The one WebSocket test client: graphql-transport-ws sockets to a running Roster, raw
//! frames for the tests that attack the protocol, and a `userEvents` [`Subscriber`].

use std::time::Duration;

use async_graphql::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single wait for a frame may last before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Opens a graphql-transport-ws socket to `/graphql` of the server at `base`
/// (`http://host:port`) with extra request headers; answers the upgrade response too.
pub async fn connect(base: &str, headers: &[(&str, &str)]) -> Result<(Socket, Response), Error> {
    connect_speaking(base, "graphql-transport-ws", headers).await
}

/// [`connect`] offering another subprotocol (`graphql-ws`, the legacy one).
pub async fn connect_speaking(
    base: &str,
    protocol: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, Response), Error> {
    let url = base.replace("http://", "ws://") + "/graphql";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    tokio_tungstenite::connect_async(request).await
}

/// Opens a graphql-transport-ws socket to `app` with extra request headers.
pub async fn open_socket(app: &TestApp, headers: &[(&str, &str)]) -> Result<Socket, Error> {
    connect(&app.base, headers).await.map(|(socket, _)| socket)
}

/// The next text frame as JSON, or the close frame's code; `None` when the socket ends.
/// Fails after [`PATIENCE`].
pub async fn next_frame(socket: &mut Socket) -> Option<Result<Value, u16>> {
    // One deadline for the whole wait: pings and pongs arrive in between and must not
    // restart it, or a socket that only pings would be waited on for ever.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a frame in time")?;
        match frame {
            Ok(Message::Text(text)) => return Some(Ok(serde_json::from_str(&text).unwrap())),
            Ok(Message::Close(frame)) => return Some(Err(frame.map_or(1005, |f| u16::from(f.code)))),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// The next text frame as JSON, failing on a close or the end of the socket.
pub async fn next_json(socket: &mut Socket) -> Value {
    match next_frame(socket).await {
        Some(Ok(message)) => message,
        Some(Err(code)) => panic!("the socket closed with {code}"),
        None => panic!("the socket ended"),
    }
}

pub async fn send_json(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).await.expect("send");
}

/// Opens a socket to `base` and completes `connection_init` / `connection_ack`.
pub async fn connect_acked(base: &str, headers: &[(&str, &str)]) -> (Socket, Response) {
    let (mut socket, response) = connect(base, headers).await.expect("websocket upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    (socket, response)
}

/// The messages that arrive on `socket` until none has for `quiet`.
pub async fn messages_until_quiet(socket: &mut Socket, quiet: Duration) -> Vec<Value> {
    let mut messages = Vec::new();
    while let Ok(frame) = tokio::time::timeout(quiet, next_frame(socket)).await {
        match frame {
            Some(Ok(message)) => messages.push(message),
            Some(Err(code)) => panic!("the socket closed with {code}"),
            None => panic!("the socket ended"),
        }
    }
    messages
}

const EVENTS: &str =
    "subscription($kinds: [UserEventKind!]) { userEvents(kinds: $kinds) { kind at user { id name email } } }";

/// A graphql-transport-ws subscription to `userEvents`.
pub struct Subscriber {
    socket: Socket,
}

impl Subscriber {
    pub async fn open(app: &TestApp, kinds: Value) -> Self {
        Self::open_query(app, EVENTS, json!({ "kinds": kinds })).await
    }

    /// A subscription with any `userEvents` document and variables.
    pub async fn open_query(app: &TestApp, query: &str, variables: Value) -> Self {
        let (mut socket, _) = connect_acked(&app.base, &[]).await;
        let subscribe = json!({
            "id": "1",
            "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        });
        send_json(&mut socket, subscribe).await;
        Self { socket }
    }

    /// The next event as `(kind, name, event)`, or `None` if none comes within `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(String, String, Value)> {
        let message = tokio::time::timeout(wait, next_json(&mut self.socket))
            .await
            .ok()?;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["userEvents"];
        let kind = event["kind"].as_str().unwrap_or_default().to_owned();
        let name = event["user"]["name"].as_str().unwrap_or_default().to_owned();
        Some((kind, name, event.clone()))
    }

    /// Waits until the subscription is live: the server registers it asynchronously, so
    /// probe with a create until its event arrives, then drain the probes.
    pub async fn sync(&mut self, app: &TestApp, probe: &str) {
        for attempt in 0..50 {
            app.create_ok(probe, &format!("{probe}-{attempt}@probe.test"))
                .await;
            if self.next_event(Duration::from_millis(200)).await.is_some() {
                while self.next_event(Duration::from_millis(150)).await.is_some() {}
                return;
            }
        }
        panic!("the subscription never delivered an event");
    }
}

/// Opens one more socket that must be refused: the refusal's status and its JSON body.
pub async fn refused_socket(app: &TestApp) -> (u16, Value) {
    match open_socket(app, &[]).await {
        Err(Error::Http(response)) => {
            let body = serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                .expect("a refused upgrade answers JSON");
            (response.status().as_u16(), body)
        }
        other => panic!("the socket was not refused: {:?}", other.map(|_| ())),
    }
}
