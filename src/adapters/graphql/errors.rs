//! GraphQL errors with a machine-readable `extensions.code`.
//!
//! Client mistakes are `BAD_USER_INPUT`; a store that cannot be read or written is
//! `STORAGE_UNAVAILABLE` with a message naming the cause, which is the operator's to fix
//! and leaks nothing internal. Business refusals are payloads, not errors (SPEC §4.1).

use async_graphql::{Error, ErrorExtensions};

use crate::ports::RepositoryError;

/// The codes clients can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    StorageUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
        }
    }

    /// An error with this code and `message`.
    pub fn error(self, message: impl Into<String>) -> Error {
        Error::new(message).extend_with(|_, ext| ext.set("code", self.as_str()))
    }
}

/// The GraphQL error for a storage failure.
pub fn storage(err: &RepositoryError) -> Error {
    tracing::error!(error = %err, "storage failure");
    ErrorCode::StorageUnavailable.error(err.to_string())
}
