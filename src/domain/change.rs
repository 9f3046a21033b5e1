//! Changes to the user list and what came of them.
//!
//! A use case describes a mutation as a [`Change`] value; a repository applies it to its
//! [`crate::domain::UserSet`] (the rules live there) and reports a [`ChangeOutcome`]. Keeping
//! the change as data is what lets a storage adapter queue many of them and make them
//! durable with one write (group commit) while each caller still gets its own answer.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::user::{Email, User, UserId, UserName};

/// One mutation of the user list, already validated where the input allowed it.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Add a new user unless its email is taken.
    Create(User),
    /// Replace a user's name and email.
    Update {
        id: UserId,
        name: UserName,
        email: Email,
        at: DateTime<Utc>,
    },
    /// Remove a user.
    Delete { id: UserId },
    /// Change many users' emails, item by item, in order.
    BulkUpdateEmails {
        items: Vec<EmailUpdate>,
        at: DateTime<Utc>,
    },
}

/// One item of a bulk email update.
#[derive(Clone, Debug, PartialEq)]
pub enum EmailUpdate {
    /// An item whose address passed validation.
    Valid { id: UserId, email: Email },
    /// An item whose address did not; it fails without touching anything.
    Invalid { id: UserId },
}

/// Why a change was refused. Refusals are business outcomes, not errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A create used an email another user already has.
    EmailExists,
    /// An update used an email another user already has.
    EmailInUse,
    /// No user has the given id.
    NotFound,
}

/// What applying a [`Change`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeOutcome {
    Created(Arc<User>),
    Updated(Arc<User>),
    Deleted(Arc<User>),
    BulkUpdated(BulkReport),
    Rejected(Rejection),
}

impl ChangeOutcome {
    /// Whether the outcome altered the list, so that storage has something to write.
    pub fn changed(&self) -> bool {
        match self {
            Self::Created(_) | Self::Updated(_) | Self::Deleted(_) => true,
            Self::BulkUpdated(report) => !report.updated.is_empty(),
            Self::Rejected(_) => false,
        }
    }
}

/// The result of a bulk email update: the users it changed and the items it could not apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkReport {
    /// The users changed, each once, in their final state.
    pub updated: Vec<Arc<User>>,
    /// How many items were applied (a user changed twice counts twice).
    pub applied: usize,
    pub failures: Vec<BulkFailure>,
}

/// One item of a bulk update that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkFailure {
    pub id: UserId,
    pub reason: BulkFailureReason,
}

/// Why a bulk item was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkFailureReason {
    NotFound,
    EmailInUse,
    InvalidEmail,
}

impl std::fmt::Display for BulkFailure {
    /// The wire form clients already match on: `"<id> not found"` and so on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.reason {
            BulkFailureReason::NotFound => "not found",
            BulkFailureReason::EmailInUse => "email in use",
            BulkFailureReason::InvalidEmail => "invalid email",
        };
        write!(f, "{} {why}", self.id)
    }
}
