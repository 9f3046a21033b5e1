//! GraphQL errors with a machine-readable `extensions.code`.
//!
//! Client mistakes are `BAD_USER_INPUT`; a store that cannot be read or written is
//! `STORAGE_UNAVAILABLE` with a message naming the cause, which is the operator's to fix
//! and leaks nothing internal. Business refusals are payloads, not errors (docs/src/graphql.md).
//! The HTTP layer answers its own refusals (400, 401, 413, …) with the same shape and codes
//! from [`ErrorCode`], so a client matches on one list.

use async_graphql::parser::types::Field;
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
    /// Answers already fill the memory they may use (`--max-answer-memory-mib`); try again.
    Overloaded,
    /// The answer would be, or grew, larger than one answer may be.
    AnswerTooLarge,
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
            Self::Overloaded => "OVERLOADED",
            Self::AnswerTooLarge => "ANSWER_TOO_LARGE",
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

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

fn set_code(error: &mut ServerError, code: ErrorCode) {
    error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code.as_str());
}

/// `error` with `code`, unless it has a code already.
pub fn coded(mut error: ServerError, code: ErrorCode) -> ServerError {
    if !has_code(&error) {
        set_code(&mut error, code);
    }
    error
}

/// A field's error, coded where it is made: our resolvers code every error they give; one
/// without a code located at one of the field's argument values is async-graphql's, about
/// that value (it reads the arguments before the resolver runs, and locates what it cannot
/// read, or a variable it cannot find, at the value): the client's, `BAD_USER_INPUT`. Any
/// other is a bug, logged with its cause and shown only as `internal error` (`INTERNAL`).
pub fn code_field_error(error: &mut ServerError, field: &Field) {
    if has_code(error) {
        return;
    }
    let about_an_argument = field
        .arguments
        .iter()
        .any(|(_, value)| error.locations.contains(&value.pos));
    if about_an_argument {
        set_code(error, ErrorCode::BadUserInput);
    } else {
        internal(error);
    }
}

fn internal(error: &mut ServerError) {
    tracing::error!(error = %error.message, path = ?error.path, "internal error in a resolver");
    error.message = "internal error".to_owned();
    set_code(error, ErrorCode::Internal);
}

/// Gives every error of a response a code, by the stage it came from, and keeps at most
/// [`MAX_ERRORS`]. When no operation ran (`ran` false), an error without a code is a
/// request error from async-graphql itself (its operation selection: an unknown
/// `operationName`, or none for a document of several operations): the client's
/// (`BAD_USER_INPUT`). Parse and validation errors are coded as they are made, in the
/// gate, and field errors as they leave their field (`code_field_error`); so when an
/// operation ran, an error still without a code is a bug (`INTERNAL`). The schema's
/// extension (`pipeline`, through `metrics`) applies it to every answer.
pub fn code_errors(mut response: Response, ran: bool) -> Response {
    if response.errors.len() > MAX_ERRORS {
        let hidden = response.errors.len() - (MAX_ERRORS - 1);
        response.errors.truncate(MAX_ERRORS - 1);
        response
            .errors
            .push(ErrorCode::BadUserInput.server_error(format!("{hidden} more errors are not shown.")));
    }
    for error in &mut response.errors {
        if has_code(error) {
            continue;
        }
        if ran {
            internal(error);
        } else {
            set_code(error, ErrorCode::BadUserInput);
        }
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

    #[test]
    fn a_field_error_without_a_code_is_the_clients_only_when_it_sits_at_an_argument() {
        use async_graphql::parser::types::{DocumentOperations, Selection};
        let document = async_graphql::parser::parse_query("{ allUsers(limit: 1) { id } }").unwrap();
        let DocumentOperations::Single(operation) = &document.operations else {
            unreachable!()
        };
        let Selection::Field(field) = &operation.node.selection_set.node.items[0].node else {
            unreachable!()
        };
        let code = |error: &ServerError| error.extensions.as_ref().and_then(|ext| ext.get("code").cloned());
        let at_argument = field.node.arguments[0].1.pos;
        let mut error = ServerError::new("Failed to read it", Some(at_argument));
        code_field_error(&mut error, &field.node);
        assert_eq!(code(&error), Some(async_graphql::Value::from("BAD_USER_INPUT")));
        assert_eq!(error.message, "Failed to read it");
        let mut error = ServerError::new("a secret cause", Some(field.pos));
        code_field_error(&mut error, &field.node);
        assert_eq!(code(&error), Some(async_graphql::Value::from("INTERNAL")));
        assert_eq!(error.message, "internal error");
        let mut error = ErrorCode::NotFound.error("gone").into_server_error(field.pos);
        code_field_error(&mut error, &field.node);
        assert_eq!(code(&error), Some(async_graphql::Value::from("NOT_FOUND")));
    }

    #[test]
    fn errors_without_a_code_are_the_clients_before_execution_and_bugs_after() {
        let response = || Response::from_errors(vec![ServerError::new("Unknown operation", None)]);
        let code = |response: &Response| {
            response.errors[0]
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code").cloned())
        };
        assert_eq!(
            code(&code_errors(response(), false)),
            Some(async_graphql::Value::from("BAD_USER_INPUT"))
        );
        let ran = code_errors(response(), true);
        assert_eq!(code(&ran), Some(async_graphql::Value::from("INTERNAL")));
        assert_eq!(ran.errors[0].message, "internal error");
    }
}
