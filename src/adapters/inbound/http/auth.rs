//! Bearer tokens (docs/src/operations.md, Tokens): who is calling, checked once at the edge.
//!
//! [`Tokens`] compares a presented token with the configured read and write tokens in
//! constant time (`subtle`), so the comparison's duration does not reveal how much of a guess
//! was right. [`require_read`] is the middleware for every route that reads data (`POST
//! /graphql`, and `/metrics` once it exists: `.route_layer(axum::middleware::from_fn_with_state(
//! tokens, auth::require_read))`): a wrong token, or none where a read token is set, answers
//! 401 before the body is read; otherwise the [`Access`] granted is put in the request's
//! extensions for the handler. Whether a mutation may run is decided by the schema's guard
//! once the document is parsed. Tokens never appear in a log line or an answer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::errors::unauthorized;
use crate::adapters::inbound::graphql::{Access, AccessPolicy, NEEDS_A_TOKEN};

/// The message for a token that matches neither configured token.
pub const INVALID_TOKEN: &str = "The token is not valid.";

/// The configured tokens, if any.
#[derive(Default)]
pub struct Tokens {
    read: Option<Vec<u8>>,
    write: Option<Vec<u8>>,
}

/// Why a presented credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidToken;

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("read", &self.read.as_ref().map(|_| "[redacted]"))
            .field("write", &self.write.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Tokens {
    /// Tokens from the configuration; `None` leaves that kind of access open.
    pub fn new(read: Option<&str>, write: Option<&str>) -> Self {
        Self {
            read: read.map(|token| token.as_bytes().to_vec()),
            write: write.map(|token| token.as_bytes().to_vec()),
        }
    }

    /// Which tokens are set, for the schema's guard.
    pub fn policy(&self) -> AccessPolicy {
        AccessPolicy {
            read_token: self.read.is_some(),
            write_token: self.write.is_some(),
        }
    }

    /// The access the request's `Authorization` header grants.
    ///
    /// # Errors
    /// [`InvalidToken`] when a token is given, tokens are configured, and it matches none.
    pub fn access(&self, headers: &HeaderMap) -> Result<Access, InvalidToken> {
        match headers.get(header::AUTHORIZATION) {
            None => Ok(Access::Anonymous),
            Some(value) => self.access_for(value.to_str().map_err(|_| InvalidToken)?),
        }
    }

    /// The access an `Authorization` value (`Bearer <token>`) grants; the WebSocket's
    /// `connection_init` payload carries the same text.
    ///
    /// # Errors
    /// [`InvalidToken`] when tokens are configured and the value matches none.
    pub fn access_for(&self, authorization: &str) -> Result<Access, InvalidToken> {
        if self.read.is_none() && self.write.is_none() {
            return Ok(Access::Anonymous);
        }
        let token = bearer_token(authorization).ok_or(InvalidToken)?;
        let matches = |expected: &Option<Vec<u8>>| {
            expected
                .as_deref()
                .is_some_and(|expected| bool::from(expected.ct_eq(token.as_bytes())))
        };
        if matches(&self.write) {
            Ok(Access::Write)
        } else if matches(&self.read) {
            Ok(Access::Read)
        } else {
            Err(InvalidToken)
        }
    }
}

/// The token of a `Bearer` credential (the scheme in any case, RFC 7235).
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a caller may not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoReader {
    /// The token given matches neither configured token.
    Invalid,
    /// A read token is set and none was given.
    Missing,
}

impl IntoResponse for NoReader {
    /// The 401 answer.
    fn into_response(self) -> Response {
        match self {
            Self::Invalid => unauthorized(INVALID_TOKEN, true),
            Self::Missing => unauthorized(NEEDS_A_TOKEN, false),
        }
    }
}

/// The access of a caller who may read.
///
/// # Errors
/// [`NoReader`] for a wrong token, or a missing one where a read token is set.
pub fn reader(tokens: &Tokens, headers: &HeaderMap) -> Result<Access, NoReader> {
    match tokens.access(headers) {
        Err(InvalidToken) => Err(NoReader::Invalid),
        Ok(access) if !tokens.policy().can_read(access) => Err(NoReader::Missing),
        Ok(access) => Ok(access),
    }
}

/// Middleware: refuses (401) a wrong token, or a missing one where a read token is set;
/// otherwise records the caller's [`Access`] in the request's extensions.
pub async fn require_read(State(tokens): State<Arc<Tokens>>, mut request: Request, next: Next) -> Response {
    match reader(&tokens, request.headers()) {
        Err(refused) => refused.into_response(),
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_grants_the_access_of_the_token_it_matches() {
        let tokens = Tokens::new(Some("reader"), Some("writer"));
        assert_eq!(tokens.access_for("Bearer writer"), Ok(Access::Write));
        assert_eq!(tokens.access_for("bearer  reader "), Ok(Access::Read));
        assert_eq!(tokens.access_for("Bearer writer2"), Err(InvalidToken));
        assert_eq!(tokens.access_for("Basic writer"), Err(InvalidToken));
        assert_eq!(tokens.access_for("writer"), Err(InvalidToken));
        assert_eq!(tokens.access_for("Bearer "), Err(InvalidToken));
    }

    #[test]
    fn without_tokens_any_credential_is_ignored() {
        let tokens = Tokens::default();
        assert_eq!(tokens.access_for("Bearer anything"), Ok(Access::Anonymous));
        assert_eq!(tokens.policy(), AccessPolicy::default());
    }

    #[test]
    fn tokens_do_not_show_in_debug_output() {
        let text = format!("{:?}", Tokens::new(Some("s3cret-read"), Some("s3cret-write")));
        assert!(!text.contains("s3cret"), "{text}");
    }
}
