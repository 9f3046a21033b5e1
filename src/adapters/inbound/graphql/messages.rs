//! What a GraphQL client reads: the message and code for every outcome of a use case.
//!
//! The use cases and the domain say what happened (typed errors carrying their data, with a
//! `Display` for logs); which words a client sees, and whether a refusal is an `ok: false`
//! payload or a coded error, is this adapter's choice, made here and nowhere else.

use async_graphql::Error;

use super::errors::{self, ErrorCode};
use super::page::PageArgumentError;
use crate::app::{
    CreateUserError, DeleteUserError, FeedError, FilterError, ListUsersError, PageUsersError, PatchUserError,
    UpdateUserError,
};
use crate::app::{HistoryError, MAX_HISTORY_PAGE, PurgeUserError, RestoreUserError};
use crate::app::{MAX_FUZZY_CHARS, MAX_FUZZY_DISTANCE};
use crate::domain::pagination::MAX_PAGE;
use crate::domain::user::{MAX_EMAIL_CHARS, MAX_NAME_CHARS};
use crate::domain::{BulkFailureReason, BulkMode, BulkReport, EmailError, NameError, User};

pub const USER_CREATED: &str = "User created.";
pub const USER_RESTORED: &str = "User restored.";
pub const USER_PURGED: &str = "User purged.";
pub const USER_UPDATED: &str = "User updated.";

pub fn user_deleted(user: &User) -> String {
    format!("Deleted {}", user.name())
}

pub fn name(err: &NameError) -> String {
    match err {
        NameError::Empty => "Invalid name: it must not be empty.".to_owned(),
        NameError::TooLong => format!("Invalid name: it must be at most {MAX_NAME_CHARS} characters."),
        NameError::Control => "Invalid name: it must not contain control characters.".to_owned(),
        NameError::Invisible => {
            "Invalid name: it must contain a visible character, not only invisible or zero-width ones."
                .to_owned()
        }
    }
}

pub fn email(err: &EmailError) -> String {
    match err {
        EmailError::Empty => "Invalid email: it must not be empty.".to_owned(),
        EmailError::TooLong => format!("Invalid email: it must be at most {MAX_EMAIL_CHARS} characters."),
        EmailError::Whitespace => "Invalid email: it must not contain whitespace.".to_owned(),
        EmailError::Control => "Invalid email: it must not contain control characters.".to_owned(),
        EmailError::Invisible => {
            "Invalid email: it must not contain invisible or zero-width characters.".to_owned()
        }
        EmailError::Shape => {
            "Invalid email: it must contain exactly one '@' between a local part and a domain.".to_owned()
        }
    }
}

/// What is wrong with a document that parses but cannot be one; `None` for a syntax error,
/// which the gate quotes (`limits::shorten_syntax_error`).
pub fn document(err: &async_graphql::parser::Error) -> Option<String> {
    use async_graphql::parser::Error;
    Some(match err {
        Error::OperationDuplicated { operation, .. } => {
            format!("There can be only one operation named \"{operation}\": rename one of them.")
        }
        Error::FragmentDuplicated { fragment, .. } => {
            format!("There can be only one fragment named \"{fragment}\": rename one of them.")
        }
        Error::MultipleOperations { .. } => "This anonymous operation must be the only operation of the \
             document: name it, or send the others in requests of their own."
            .to_owned(),
        Error::MissingOperation => {
            "The document holds no operation: send a query, a mutation or a subscription.".to_owned()
        }
        Error::RecursionLimitExceeded => "The document nests too deep to be read.".to_owned(),
        _ => return None,
    })
}

/// What a processed `bulkUpdateEmails` of `items` items answers: `ok`, the users updated
/// (or that would be, in a dry run) and its one-line summary. Not ok when nothing applied:
/// an atomic batch with a failure, or one whose every item failed; the summary then says so
/// and counts the failures by cause.
pub fn bulk_update_emails(report: &BulkReport, mode: BulkMode, items: usize) -> (bool, usize, String) {
    let failed = report.failures.len();
    if items == 0 {
        return (true, 0, "Nothing to update: no items were given.".to_owned());
    }
    let why = failure_counts(report);
    let refused = mode.atomic && failed > 0;
    if refused || report.applied == 0 {
        let message = match (mode.dry_run, refused) {
            (true, true) => format!(
                "Dry run: nothing would be updated: {failed} of {items} items would fail ({why}) and the batch is atomic."
            ),
            (false, true) => {
                format!("Nothing updated: {failed} of {items} items failed ({why}) and the batch is atomic.")
            }
            (true, false) => {
                format!("Dry run: nothing would be updated: none of the {items} items would apply ({why}).")
            }
            (false, false) => format!("Nothing updated: none of the {items} items could be applied ({why})."),
        };
        return (false, 0, message);
    }
    let applied = report.applied;
    let users = if applied == 1 { "user" } else { "users" };
    let message = match (mode.dry_run, failed) {
        (true, 0) => {
            format!("Dry run: {applied} {users} would be updated by {items} items; nothing was written.")
        }
        (true, _) => format!(
            "Dry run: {applied} {users} would be updated by {items} items, {failed} would fail ({why}); nothing was written."
        ),
        (false, 0) => format!("Updated {applied} {users} by {items} items."),
        (false, _) => format!("Updated {applied} {users} by {items} items; {failed} failed ({why})."),
    };
    (true, applied, message)
}

/// The failures of a bulk by cause: `40 unknown ids, 2 invalid emails`.
fn failure_counts(report: &BulkReport) -> String {
    let count = |reason| report.failures.iter().filter(|f| f.reason == reason).count();
    [
        (count(BulkFailureReason::NotFound), "unknown id", "unknown ids"),
        (
            count(BulkFailureReason::InvalidEmail),
            "invalid email",
            "invalid emails",
        ),
        (
            count(BulkFailureReason::EmailInUse),
            "email in use",
            "emails in use",
        ),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
    .collect::<Vec<_>>()
    .join(", ")
}

const NOT_FOUND: &str = "Not found.";
const EMAIL_IN_USE: &str = "Email in use.";

/// A refused create: the payload's message, or the error for a storage failure.
pub fn create_user(err: &CreateUserError) -> Result<String, Error> {
    Ok(match err {
        CreateUserError::InvalidName(err) => name(err),
        CreateUserError::InvalidEmail(err) => email(err),
        CreateUserError::EmailExists => "Email exists.".to_owned(),
        CreateUserError::Storage(err) => return Err(errors::storage(err)),
    })
}

/// A refused update: the payload's message, or the error for a storage failure.
pub fn update_user(err: &UpdateUserError) -> Result<String, Error> {
    Ok(match err {
        UpdateUserError::MissingId => "An id is required to update a user.".to_owned(),
        UpdateUserError::InvalidName(err) => name(err),
        UpdateUserError::InvalidEmail(err) => email(err),
        UpdateUserError::NotFound => NOT_FOUND.to_owned(),
        UpdateUserError::EmailInUse => EMAIL_IN_USE.to_owned(),
        UpdateUserError::Storage(err) => return Err(errors::storage(err)),
    })
}

/// A refused patch: the payload's message, or the error for a storage failure.
pub fn patch_user(err: &PatchUserError) -> Result<String, Error> {
    Ok(match err {
        PatchUserError::NothingToChange => "Nothing to change: give a name or an email.".to_owned(),
        PatchUserError::InvalidName(err) => name(err),
        PatchUserError::InvalidEmail(err) => email(err),
        PatchUserError::InvalidExpectedUpdatedAt => {
            "Invalid expectedUpdatedAt: use an RFC 3339 timestamp such as 2024-05-01T10:00:00.123456Z."
                .to_owned()
        }
        PatchUserError::NotFound => NOT_FOUND.to_owned(),
        PatchUserError::EmailInUse => EMAIL_IN_USE.to_owned(),
        PatchUserError::Conflict(_) => "Conflict: the user changed since it was read.".to_owned(),
        PatchUserError::Storage(err) => return Err(errors::storage(err)),
    })
}

/// A refused delete: the payload's message, or the error for a storage failure.
pub fn delete_user(err: &DeleteUserError) -> Result<String, Error> {
    match err {
        DeleteUserError::NotFound => Ok(NOT_FOUND.to_owned()),
        DeleteUserError::Storage(err) => Err(errors::storage(err)),
    }
}

fn filter(err: &FilterError) -> String {
    match err {
        FilterError::MaxDistanceOutOfRange(got) => {
            format!("maxDistance must be between 0 and {MAX_FUZZY_DISTANCE} (got {got}).")
        }
        FilterError::FuzzyTooLong(got) => {
            format!("fuzzy must be at most {MAX_FUZZY_CHARS} characters (got {got}).")
        }
    }
}

fn bad_input(message: String) -> Error {
    ErrorCode::BadUserInput.error(message)
}

/// The error for a refused `allUsers`.
pub fn list_users(err: &ListUsersError) -> Error {
    match err {
        ListUsersError::NegativeLimit(got) => bad_input(format!("limit must not be negative (got {got}).")),
        ListUsersError::NegativeOffset(got) => bad_input(format!("offset must not be negative (got {got}).")),
        ListUsersError::InvalidFilter(err) => bad_input(filter(err)),
        ListUsersError::Storage(err) => errors::storage(err),
    }
}

/// The error for a refused `users` page.
pub fn page_users(err: &PageUsersError) -> Error {
    match err {
        PageUsersError::InvalidFilter(err) => bad_input(filter(err)),
        PageUsersError::Storage(err) => errors::storage(err),
    }
}

/// The error for page arguments the adapter could not turn into a page request.
pub fn page_argument(err: &PageArgumentError) -> Error {
    bad_input(match err {
        PageArgumentError::Negative(argument) => format!("{argument} must not be negative."),
        PageArgumentError::TooLarge(argument) => format!("{argument} must be at most {MAX_PAGE}."),
        PageArgumentError::BadCursor(argument) => format!("{argument} is not a cursor this service made."),
        PageArgumentError::OtherOrder(argument) => format!("{argument} was made for a different orderBy."),
        PageArgumentError::FirstAndLast => "Give first or last, not both.".to_owned(),
    })
}

/// The error that ends a subscription.
pub fn feed(err: &FeedError) -> Error {
    match err {
        FeedError::Lagged(missed) => ErrorCode::SubscriptionLagged.error(format!(
            "This subscription fell {missed} events behind and was closed; subscribe again."
        )),
    }
}

/// A refused history page: the error a client reads.
pub fn history(err: &HistoryError) -> Error {
    match err {
        HistoryError::InvalidFirst => {
            ErrorCode::BadUserInput.error(format!("`first` must be between 0 and {MAX_HISTORY_PAGE}."))
        }
        HistoryError::InvalidRevision => {
            ErrorCode::BadUserInput.error("`after` must be a revision: a string of decimal digits.")
        }
        HistoryError::Storage(err) => errors::storage(err),
    }
}

/// A refused restore: the payload's message, or the error for a storage failure.
pub fn restore_user(err: &RestoreUserError) -> Result<String, Error> {
    Ok(match err {
        RestoreUserError::UnknownRevision => {
            "Unknown revision: it was never made or is no longer kept.".to_owned()
        }
        RestoreUserError::OtherUser => "That revision is not a change of this user.".to_owned(),
        RestoreUserError::NothingToRestore => "That revision left no user to restore.".to_owned(),
        RestoreUserError::EmailInUse(email) => format!("The email {email} now belongs to someone else."),
        RestoreUserError::Invalid(why) => format!("The user as they were cannot be stored again: {why}"),
        RestoreUserError::Storage(err) => return Err(errors::storage(err)),
    })
}

/// A refused purge: the payload's message, or the error for a storage failure.
pub fn purge_user(err: &PurgeUserError) -> Result<String, Error> {
    match err {
        PurgeUserError::NotFound => Ok(NOT_FOUND.to_owned()),
        PurgeUserError::Storage(err) => Err(errors::storage(err)),
    }
}
