//! UpdateUser: replace a user's name and email, keeping emails unique.

use std::sync::Arc;

use crate::domain::{Change, ChangeOutcome, Email, EmailError, NameError, Rejection, User, UserId, UserName};
use crate::ports::{Clock, RepositoryError, UserRepository};

/// What a client asks to change. The schema's `UserInput` makes the id optional, so its
/// absence is a business failure here rather than a schema error.
#[derive(Clone, Debug)]
pub struct UserUpdate {
    pub id: Option<String>,
    pub name: String,
    pub email: String,
}

/// Why a user was not updated.
#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    #[error("no id given")]
    MissingId,
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error("no user has this id")]
    NotFound,
    #[error("another user has this email")]
    EmailInUse,
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

#[derive(Clone)]
pub struct UpdateUser {
    repo: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl UpdateUser {
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
    }

    /// Updates the user and returns it as stored.
    ///
    /// # Errors
    /// A missing id, a validation failure, an unknown id, a taken email, or a storage failure.
    pub async fn execute(&self, input: UserUpdate) -> Result<Arc<User>, UpdateUserError> {
        let id = input.id.ok_or(UpdateUserError::MissingId)?;
        let name = UserName::parse(&input.name)?;
        let email = Email::parse(&input.email)?;
        let change = Change::Update {
            id: UserId::new(id),
            name,
            email,
            at: self.clock.now(),
        };
        match self.repo.apply(change).await? {
            ChangeOutcome::Updated(user) | ChangeOutcome::Unchanged(user) => Ok(user),
            ChangeOutcome::Rejected(Rejection::NotFound) => Err(UpdateUserError::NotFound),
            ChangeOutcome::Rejected(Rejection::EmailInUse) => Err(UpdateUserError::EmailInUse),
            other => Err(super::unexpected("update", &other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::{fixed_clock, in_memory_repo, start};

    fn update(id: Option<&str>, name: &str, email: &str) -> UserUpdate {
        UserUpdate {
            id: id.map(str::to_owned),
            name: name.into(),
            email: email.into(),
        }
    }

    #[tokio::test]
    async fn update_user_changes_name_email_and_updated_at() {
        let (repo, _) = in_memory_repo(&[("a", "Carol", "carol@x.com")]);
        let user = UpdateUser::new(repo, fixed_clock())
            .execute(update(Some("a"), "Caroline ", "caroline@x.com"))
            .await
            .unwrap();
        assert_eq!((user.name(), user.email()), ("Caroline", "caroline@x.com"));
        assert_eq!(user.updated_at(), Some(start()));
        assert_eq!(user.created_at(), None, "created_at stays as stored");
    }

    #[tokio::test]
    async fn update_user_reports_unknown_ids_and_taken_emails() {
        let (repo, set) = in_memory_repo(&[("a", "A", "a@x.com"), ("b", "B", "b@x.com")]);
        let use_case = UpdateUser::new(repo, fixed_clock());
        let err = use_case
            .execute(update(Some("zz"), "X", "x@x.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, UpdateUserError::NotFound), "{err}");
        let err = use_case
            .execute(update(Some("a"), "A", "B@x.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, UpdateUserError::EmailInUse), "{err}");
        assert_eq!(set.lock().unwrap().iter().next().unwrap().email(), "a@x.com");
    }

    #[tokio::test]
    async fn update_user_needs_an_id_and_valid_fields() {
        let mut repo = crate::ports::MockUserRepository::new();
        repo.expect_apply().never();
        let use_case = UpdateUser::new(Arc::new(repo), fixed_clock());
        let err = use_case.execute(update(None, "A", "a@x.com")).await.unwrap_err();
        assert!(matches!(err, UpdateUserError::MissingId));
        let err = use_case
            .execute(update(Some("a"), "", "a@x.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, UpdateUserError::InvalidName(_)));
        let err = use_case
            .execute(update(Some("a"), "A", "a @x.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, UpdateUserError::InvalidEmail(_)));
    }
}
