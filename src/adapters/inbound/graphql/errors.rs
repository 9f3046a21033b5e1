//! GraphQL errors with a machine-readable `extensions.code`.
//!
//! Client mistakes are `BAD_USER_INPUT`; a store that cannot be read or written is
//! `STORAGE_UNAVAILABLE` with a message naming the cause, which is the operator's to fix
//! and leaks nothing internal. Business refusals are payloads, not errors (docs/src/graphql.md).
//! The HTTP layer answers its own refusals (400, 401, 413, …) with the same shape and codes
//! from [`ErrorCode`], so a client matches on one list.

use async_graphql::{Error, ErrorExtensionValues, ErrorExtensions, Response, ServerError};

use crate::ports::RepositoryError;

/// The codes clients can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    NotFound,
    Conflict,
    StorageUnavailable,
    Internal,
    /// A subscriber fell too far behind the events and was dropped.
    SubscriptionLagged,
    /// A token is needed and was missing or wrong.
    Unauthenticated,
    /// The operation ran past its deadline and was stopped.
    RequestTimeout,
    /// The HTTP request itself is malformed (not a GraphQL request, a broken body).
    BadRequest,
    /// A browser page from an origin that is not allowed.
    Forbidden,
    /// The method is not served on this route.
    MethodNotAllowed,
    /// The body (or a WebSocket message) is over the size limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// Too many connections or WebSockets are open; try again later.
    Unavailable,
    /// An automatic persisted query's hash is not known (any more): send the query with it.
    PersistedQueryNotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::SubscriptionLagged => "SUBSCRIPTION_LAGGED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::BadRequest => "BAD_REQUEST",
            Self::Forbidden => "FORBIDDEN",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Unavailable => "UNAVAILABLE",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
        }
    }

    /// An error with this code and `message`.
    pub fn error(self, message: impl Into<String>) -> Error {
        Error::new(message).extend_with(|_, ext| ext.set("code", self.as_str()))
    }

    /// A request-level error (no path) with this code and `message`.
    pub fn server_error(self, message: impl Into<String>) -> ServerError {
        let mut error = ServerError::new(message, None);
        error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default)
            .set("code", self.as_str());
        error
    }
}

/// The most errors one answer lists; a document with thousands of mistakes would otherwise
/// answer megabytes of them.
pub const MAX_ERRORS: usize = 100;

/// The GraphQL error for a storage failure. The store has already logged a failed write
/// once, with its cause; a bug (an outcome a use case cannot receive) is logged here with
/// its cause and shown only as `internal error`.
pub fn storage(err: &RepositoryError) -> Error {
    match err {
        RepositoryError::Internal(cause) => {
            tracing::error!(cause = %cause, "internal error");
            ErrorCode::Internal.error("internal error")
        }
        RepositoryError::Unavailable(_) | RepositoryError::Closed => {
            ErrorCode::StorageUnavailable.error(err.to_string())
        }
    }
}

/// Gives every error of a response a code: request-level errors (syntax, validation,
/// argument types) are the client's (`BAD_USER_INPUT`); a field error without a code is a
/// bug, logged with its cause and shown only as `internal error` (`INTERNAL`). At most
/// [`MAX_ERRORS`] are kept. The schema's extension (`pipeline`) applies it to every answer.
pub fn code_errors(mut response: Response) -> Response {
    if response.errors.len() > MAX_ERRORS {
        let hidden = response.errors.len() - (MAX_ERRORS - 1);
        response.errors.truncate(MAX_ERRORS - 1);
        response
            .errors
            .push(ErrorCode::BadUserInput.server_error(format!("{hidden} more errors are not shown.")));
    }
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        let client_mistake = error.path.is_empty()
            || error.message.starts_with("Failed to parse")
            || error.message.starts_with("Invalid value for argument");
        let code = if client_mistake {
            ErrorCode::BadUserInput
        } else {
            tracing::error!(error = %error.message, path = ?error.path, "internal error in a resolver");
            error.message = "internal error".to_owned();
            ErrorCode::Internal
        };
        error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default)
            .set("code", code.as_str());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_reaches_the_client_as_internal_without_its_cause() {
        let error = storage(&RepositoryError::Internal(
            "answered with Deleted for ann@x.com".into(),
        ));
        assert_eq!(error.message, "internal error");
        let code = error.extensions.as_ref().and_then(|ext| ext.get("code").cloned());
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
        let error = storage(&RepositoryError::Unavailable(
            "cannot write users.json: disk full".into(),
        ));
        assert!(error.message.contains("disk full"));
    }
}
