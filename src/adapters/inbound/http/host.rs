//! One `Host` header per request (RFC 9112 §3.2: a request with more than one is answered
//! 400). The first would otherwise win here while a proxy in front may have routed by the
//! last, and the WebSocket origin check compares the origin with the host.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::errors::bad_request;

/// The middleware: a request with two or more `Host` headers is a coded 400.
pub async fn one_host(request: Request, next: Next) -> Response {
    if request.headers().get_all(header::HOST).iter().nth(1).is_some() {
        return bad_request("The request has more than one Host header.");
    }
    next.run(request).await
}
