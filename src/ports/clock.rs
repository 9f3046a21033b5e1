//! Time and identity, injected so that use cases are deterministic under test.

use chrono::{DateTime, Utc};

use crate::domain::UserId;

/// The current time.
#[cfg_attr(test, mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC. Implementations MUST NOT fail.
    fn now(&self) -> DateTime<Utc>;
}

/// A source of fresh user ids.
#[cfg_attr(test, mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new id that MUST NOT collide with any id handed out before.
    fn next_id(&self) -> UserId;
}
