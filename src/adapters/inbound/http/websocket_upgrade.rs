//! The WebSocket handshake (RFC 6455 §4.2) and the upgraded connection it leaves.
//!
//! The socket is a tungstenite stream over [`Connection`], a handle on the upgraded
//! connection that the session keeps a second copy of: tungstenite writes the socket's own
//! messages through one, and the session writes live events through the other as frames it
//! formats itself, many to a write (`websocket_event_frames.rs`). Both are used from the
//! socket's one task, one after the other, never in the middle of each other's writes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_graphql::http::WebSocketProtocols;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

/// An open socket: tungstenite over the upgraded connection.
pub type Socket = WebSocketStream<Connection>;

/// The upgraded connection, shared by the socket and the session's own frame writer.
#[derive(Clone)]
pub struct Connection(Arc<Mutex<TokioIo<Upgraded>>>);

impl Connection {
    fn io(&self) -> MutexGuard<'_, TokioIo<Upgraded>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io()).poll_shutdown(cx)
    }
}

/// A request that asks for a WebSocket, checked, waiting to be answered.
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|byte| *byte == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl Handshake {
    /// The handshake `parts` ask for, or what is wrong with it (a client mistake: a 400).
    pub fn read(parts: &mut Parts) -> Result<Self, &'static str> {
        if parts.method != Method::GET {
            return Err("A WebSocket upgrade must be a GET request.");
        }
        if !has_token(&parts.headers, &header::CONNECTION, "upgrade") {
            return Err("A WebSocket upgrade needs the header `Connection: upgrade`.");
        }
        if !has_token(&parts.headers, &header::UPGRADE, "websocket") {
            return Err("A WebSocket upgrade needs the header `Upgrade: websocket`.");
        }
        let version = parts.headers.get(header::SEC_WEBSOCKET_VERSION);
        if version.is_none_or(|version| version.as_bytes() != b"13") {
            return Err("A WebSocket upgrade needs the header `Sec-WebSocket-Version: 13`.");
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err("A WebSocket upgrade needs a `Sec-WebSocket-Key` header.");
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err("This connection cannot be upgraded to a WebSocket.");
        };
        Ok(Self { key, on_upgrade })
    }

    /// Answers 101 with `protocol` and, once the client has the answer, runs `serve` on the
    /// socket and a second handle on its connection. A connection lost before that is logged.
    pub fn accept<F, Fut>(self, protocol: WebSocketProtocols, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket, Connection) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let connection = Connection(Arc::new(Mutex::new(TokioIo::new(upgraded))));
                    let socket =
                        WebSocketStream::from_raw_socket(connection.clone(), Role::Server, Some(config))
                            .await;
                    serve(socket, connection).await;
                }
                Err(err) => tracing::debug!(error = %err, "WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol.sec_websocket_protocol()),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::get("/graphql");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn each_missing_header_is_named() {
        for (left_out, named) in [
            ("connection", "Connection: upgrade"),
            ("upgrade", "Upgrade: websocket"),
            ("sec-websocket-version", "Sec-WebSocket-Version: 13"),
            ("sec-websocket-key", "Sec-WebSocket-Key"),
        ] {
            let headers: Vec<_> = GOOD.into_iter().filter(|(name, _)| *name != left_out).collect();
            let refusal = Handshake::read(&mut parts(&headers)).err().unwrap();
            assert!(refusal.contains(named), "{left_out}: {refusal}");
        }
        let mut old = GOOD;
        old[2].1 = "8";
        assert!(Handshake::read(&mut parts(&old)).is_err());
    }

    #[test]
    fn a_request_with_every_header_still_needs_an_upgradable_connection() {
        // Built by hand, so no server put its upgrade in the request: the last check refuses it.
        let refusal = Handshake::read(&mut parts(&GOOD)).err().unwrap();
        assert!(refusal.contains("cannot be upgraded"), "{refusal}");
    }
}
