//! The use cases: what Roster does, written against the ports only.
//!
//! Each file holds one use case and its error enum. Errors say what happened, with their
//! data; what a client reads of them (the words, `ok: false` payload or coded error) is the
//! driving adapter's choice.

mod bulk_update_emails;
mod check_health;
mod create_user;
mod delete_user;
mod find_user_by_email;
mod get_user;
mod history;
mod list_users;
mod page_users;
mod patch_user;
mod update_user;
mod watch_user_events;

#[cfg(test)]
mod test_support;

use std::sync::Arc;

pub use bulk_update_emails::{BulkUpdateEmails, EmailChange};
pub use check_health::{CheckHealth, HealthReport};
pub use create_user::{CreateUser, CreateUserError, NewUser};
pub use delete_user::{DeleteUser, DeleteUserError};
pub use find_user_by_email::FindUserByEmail;
pub use get_user::GetUser;
pub use history::{
    CatchUpFeed, ChangePage, HistoryError, HistoryServices, MAX_HISTORY_PAGE, PurgeUser, PurgeUserError,
    ReadHistory, RestoreUser, RestoreUserError, WatchChanges, parse_revision,
};
pub use list_users::{
    FilterError, ListUsers, ListUsersError, MAX_FUZZY_CHARS, MAX_FUZZY_DISTANCE, UserQuery,
};
pub use page_users::{PageFilter, PageUsers, PageUsersError};
pub use patch_user::{PatchUser, PatchUserError, UserPatch};
pub use update_user::{UpdateUser, UpdateUserError, UserUpdate};
pub use watch_user_events::{EventFeed, FeedError, WatchUserEvents};

use crate::ports::{ChangeJournal, Clock, IdGenerator, RepositoryError, UserRepository};

/// Every use case, wired to the same ports. Cloning is cheap (a few `Arc`s).
#[derive(Clone)]
pub struct AppServices {
    pub create_user: CreateUser,
    pub update_user: UpdateUser,
    pub delete_user: DeleteUser,
    pub bulk_update_emails: BulkUpdateEmails,
    pub list_users: ListUsers,
    pub get_user: GetUser,
    pub check_health: CheckHealth,
    pub patch_user: PatchUser,
    pub find_user_by_email: FindUserByEmail,
    pub page_users: PageUsers,
    pub watch_user_events: WatchUserEvents,
    /// The change history: empty until [`AppServices::with_journal`] gives it a journal.
    pub history: HistoryServices,
}

impl AppServices {
    /// Builds every use case over one repository, clock and id source.
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self {
            create_user: CreateUser::new(repo.clone(), clock.clone(), ids),
            update_user: UpdateUser::new(repo.clone(), clock.clone()),
            delete_user: DeleteUser::new(repo.clone()),
            bulk_update_emails: BulkUpdateEmails::new(repo.clone(), clock.clone()),
            list_users: ListUsers::new(repo.clone()),
            get_user: GetUser::new(repo.clone()),
            check_health: CheckHealth::new(repo.clone(), clock.clone()),
            patch_user: PatchUser::new(repo.clone(), clock.clone()),
            find_user_by_email: FindUserByEmail::new(repo.clone()),
            page_users: PageUsers::new(repo.clone()),
            history: HistoryServices::without_journal(repo.clone(), clock.clone()),
            watch_user_events: WatchUserEvents::new(repo),
        }
    }

    /// The same services, with the store's change history read from `journal`.
    pub fn with_journal(mut self, journal: Arc<dyn ChangeJournal>) -> Self {
        let repo = self.history.watch_repo();
        self.history = HistoryServices::new(repo, journal, self.history.restore_clock());
        self
    }
}

/// An outcome a repository should never give for the change it was handed: a bug, which
/// the edge reports as `INTERNAL` and logs. Only the outcome's kind is named, never the
/// user data it carries.
fn unexpected(change: &'static str, outcome: &crate::domain::ChangeOutcome) -> RepositoryError {
    use crate::domain::ChangeOutcome;
    let kind = match outcome {
        ChangeOutcome::Created(_) => "Created",
        ChangeOutcome::Updated(_) => "Updated",
        ChangeOutcome::Deleted(_) => "Deleted",
        ChangeOutcome::BulkUpdated(_) => "BulkUpdated",
        ChangeOutcome::Rejected(_) => "Rejected",
        ChangeOutcome::Conflict(_) => "Conflict",
        ChangeOutcome::Unchanged(_) => "Unchanged",
    };
    RepositoryError::Internal(format!(
        "storage answered a {change} with an unrelated outcome ({kind})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChangeOutcome, User, UserId};

    #[test]
    fn an_unexpected_outcome_is_an_internal_error_that_names_no_user_data() {
        let user = Arc::new(User::restore(
            UserId::new("secret-id"),
            "Secret Name".into(),
            "secret@x.com".into(),
            None,
            None,
        ));
        let err = unexpected("create", &ChangeOutcome::Deleted(user));
        assert!(matches!(err, RepositoryError::Internal(_)), "{err:?}");
        let text = err.to_string();
        assert!(!text.contains("secret") && !text.contains("Secret"), "{text}");
        assert!(text.contains("Deleted"), "{text}");
    }
}
