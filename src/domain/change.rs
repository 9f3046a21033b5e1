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
    /// Change only the given fields of a user, optionally only if it is unchanged since
    /// the client read it.
    Patch {
        id: UserId,
        name: Option<UserName>,
        email: Option<Email>,
        /// When given, the stored `updated_at` must equal it (`None` inside: the user must
        /// have no `updated_at`), or nothing changes.
        expected_updated_at: Option<Option<DateTime<Utc>>>,
        at: DateTime<Utc>,
    },
    /// Remove a user.
    Delete { id: UserId },
    /// Change many users' emails, item by item, in order.
    BulkUpdateEmails {
        items: Vec<EmailUpdate>,
        at: DateTime<Utc>,
        mode: BulkMode,
    },
}

/// How a bulk email update commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkMode {
    /// Apply every item or none.
    pub atomic: bool,
    /// Work out what would happen and change nothing.
    pub dry_run: bool,
}

/// One item of a bulk email update.
#[derive(Clone, Debug, PartialEq)]
pub enum EmailUpdate {
    /// An item whose address passed validation.
    Valid { id: UserId, email: Email },
    /// An item whose address did not; it fails without touching anything.
    Invalid { id: UserId, email: String },
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
    /// A patch expected another version of the user; nothing changed. Holds the user as
    /// it is now, so the client can show it and retry.
    Conflict(Arc<User>),
    /// An update or patch asked for what the user already is: it succeeds with the user as
    /// it is, and nothing is written or announced (its `updated_at` stays, so other
    /// clients' `expectedUpdatedAt` still holds).
    Unchanged(Arc<User>),
}

impl ChangeOutcome {
    /// Whether the outcome altered the list, so that storage has something to write.
    pub fn changed(&self) -> bool {
        match self {
            Self::Created(_) | Self::Updated(_) | Self::Deleted(_) => true,
            Self::BulkUpdated(report) => report.committed && !report.updated.is_empty(),
            Self::Rejected(_) | Self::Conflict(_) | Self::Unchanged(_) => false,
        }
    }
}

/// The result of a bulk email update: the users it changed and the items it could not apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkReport {
    /// The users changed, each once, in their final state.
    pub updated: Vec<Arc<User>>,
    /// How many users the applied items name, or would for a dry run: each user once,
    /// however many of its items applied (a user changed twice counts once; an item asking
    /// for the address the user already has counts, but changes nothing).
    pub applied: usize,
    /// Whether the updates were kept: false for a dry run and for an atomic batch with a
    /// failure.
    pub committed: bool,
    pub failures: Vec<BulkFailure>,
}

/// One item of a bulk update that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkFailure {
    pub id: UserId,
    /// The address the item asked for, as given.
    pub email: String,
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
