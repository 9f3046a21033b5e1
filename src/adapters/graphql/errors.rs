//! GraphQL errors with a machine-readable `extensions.code`.
//!
//! Client mistakes are `BAD_USER_INPUT`; a store that cannot be read or written is
//! `STORAGE_UNAVAILABLE` with a message naming the cause, which is the operator's to fix
//! and leaks nothing internal. Business refusals are payloads, not errors (SPEC §4.1).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Error, ErrorExtensionValues, ErrorExtensions, Response};

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
        }
    }

    /// An error with this code and `message`.
    pub fn error(self, message: impl Into<String>) -> Error {
        Error::new(message).extend_with(|_, ext| ext.set("code", self.as_str()))
    }
}

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
/// bug, logged with its cause and shown only as `internal error` (`INTERNAL`).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
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
