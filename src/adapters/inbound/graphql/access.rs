//! Who may run what (docs/src/operations.md, Tokens): the effect of the optional read and write
//! tokens on GraphQL operations, on every transport.
//!
//! The HTTP layer checks the `Authorization` header (and the WebSocket layer the upgrade's
//! header or `connection_init`'s payload) and attaches the [`Access`] it grants to the
//! request or the socket's session. Whether an operation is a mutation is only known once the
//! document is parsed, so the check runs on the schema (in the request gate): it refuses,
//! with `UNAUTHENTICATED`, before validation or execution. The HTTP layer turns that code into
//! a 401.

use async_graphql::ServerResult;
use async_graphql::parser::types::OperationType;

use super::errors::ErrorCode;

/// What a request's credentials allow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// No token was given.
    #[default]
    Anonymous,
    /// The read token was given.
    Read,
    /// The write token was given (it also reads).
    Write,
}

/// Which tokens the service was started with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// A read token is set: every operation needs a token.
    pub read_token: bool,
    /// A write token is set: every mutation needs it.
    pub write_token: bool,
}

/// The message of a refusal for want of a token.
pub const NEEDS_A_TOKEN: &str = "A valid token is required: send `Authorization: Bearer <token>`.";
/// The message of a mutation refused for want of the write token.
pub const NEEDS_THE_WRITE_TOKEN: &str =
    "This operation changes data and needs the write token: send `Authorization: Bearer <write token>`.";

impl AccessPolicy {
    /// Whether `access` may run queries and subscriptions.
    pub fn can_read(self, access: Access) -> bool {
        !self.read_token || access >= Access::Read
    }

    /// Whether `access` may run mutations.
    pub fn can_write(self, access: Access) -> bool {
        if self.write_token {
            access == Access::Write
        } else {
            self.can_read(access)
        }
    }
}

impl AccessPolicy {
    /// Refuses, before parsing, a caller who may not run anything.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` when a read token is needed and missing.
    pub fn check_caller(self, access: Access) -> ServerResult<()> {
        if self.can_read(access) {
            Ok(())
        } else {
            Err(ErrorCode::Unauthenticated.server_error(NEEDS_A_TOKEN))
        }
    }

    /// Refuses the operation that would run (of type `ty`, `None` when none runs: see
    /// [`super::operation::chosen`]) when it
    /// is a mutation the caller may not run.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` when the write token is needed and missing.
    pub fn check_operation(self, access: Access, ty: Option<OperationType>) -> ServerResult<()> {
        if ty == Some(OperationType::Mutation) && !self.can_write(access) {
            return Err(ErrorCode::Unauthenticated.server_error(NEEDS_THE_WRITE_TOKEN));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_token_reads_and_writes_and_the_read_token_only_reads() {
        let both = AccessPolicy {
            read_token: true,
            write_token: true,
        };
        assert!(!both.can_read(Access::Anonymous));
        assert!(both.can_read(Access::Read) && !both.can_write(Access::Read));
        assert!(both.can_read(Access::Write) && both.can_write(Access::Write));

        let write_only = AccessPolicy {
            read_token: false,
            write_token: true,
        };
        assert!(write_only.can_read(Access::Anonymous) && !write_only.can_write(Access::Anonymous));

        let read_only = AccessPolicy {
            read_token: true,
            write_token: false,
        };
        assert!(!read_only.can_write(Access::Anonymous) && read_only.can_write(Access::Read));

        let open = AccessPolicy::default();
        assert!(open.can_read(Access::Anonymous) && open.can_write(Access::Anonymous));
    }
}
