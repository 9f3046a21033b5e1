//! The innermost ring of the hexagon: what a user is, the rules a change to the
//! user list must obey, and the search algorithms.
//!
//! Nothing here performs I/O, spawns tasks or knows about JSON or GraphQL, so every
//! rule can be tested with plain values and reused by any storage or transport.

pub mod change;
pub mod events;
pub mod history;
pub mod pagination;
pub mod search;
pub mod snapshot;
pub mod user;
pub mod user_set;

pub use change::{
    BulkFailure, BulkFailureReason, BulkMode, BulkReport, Change, ChangeOutcome, EmailUpdate, Rejection,
};
pub use events::{UserEvent, UserEventKind};
pub use history::{ChangeKind, ChangeSource, Credential, UserChange};
pub use search::{FuzzyQuery, levenshtein, typo_distance};
pub use snapshot::{UserFilter, UserSnapshot};
pub use user::{Email, EmailError, NameError, User, UserId, UserName, email_key, timestamp_text, to_micros};
pub use user_set::{UserSet, settled_without_write};
