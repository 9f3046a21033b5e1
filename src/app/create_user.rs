//! CreateUser: validate, give the user an id and timestamps, store it unless the email is taken.

use std::sync::Arc;

use crate::domain::{Change, ChangeOutcome, Email, EmailError, NameError, Rejection, User, UserName};
use crate::ports::{Clock, IdGenerator, RepositoryError, UserRepository};

/// What a client asks to create. Any id the client sends is ignored: ids are ours to give.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub name: String,
    pub email: String,
}

/// Why a user was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error("another user has this email")]
    EmailExists,
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

#[derive(Clone)]
pub struct CreateUser {
    repo: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl CreateUser {
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { repo, clock, ids }
    }

    /// Creates the user and returns it as stored.
    ///
    /// # Errors
    /// A validation failure, [`CreateUserError::EmailExists`], or a storage failure.
    pub async fn execute(&self, input: NewUser) -> Result<Arc<User>, CreateUserError> {
        let name = UserName::parse(&input.name)?;
        let email = Email::parse(&input.email)?;
        let user = User::new(self.ids.next_id(), name, email, self.clock.now());
        match self.repo.apply(Change::Create(user)).await? {
            ChangeOutcome::Created(user) => Ok(user),
            ChangeOutcome::Rejected(Rejection::EmailExists) => Err(CreateUserError::EmailExists),
            other => Err(super::unexpected("create", &other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::{fixed_clock, in_memory_repo, sequential_ids, start};

    fn create_user(repo: Arc<dyn UserRepository>) -> CreateUser {
        CreateUser::new(repo, fixed_clock(), sequential_ids())
    }

    fn input(name: &str, email: &str) -> NewUser {
        NewUser {
            name: name.into(),
            email: email.into(),
        }
    }

    #[tokio::test]
    async fn create_user_trims_and_stamps_the_new_user() {
        let (repo, _) = in_memory_repo(&[]);
        let user = create_user(repo)
            .execute(input("  Ada ", " ada@x.com "))
            .await
            .unwrap();
        assert_eq!(user.id().as_str(), "id-1");
        assert_eq!((user.name(), user.email()), ("Ada", "ada@x.com"));
        assert_eq!(user.created_at(), Some(start()));
        assert_eq!(user.updated_at(), Some(start()));
    }

    #[tokio::test]
    async fn create_user_rejects_a_duplicate_email_in_any_case() {
        let (repo, set) = in_memory_repo(&[("a", "Ada", "ada@x.com")]);
        let err = create_user(repo)
            .execute(input("Other", "ADA@X.COM"))
            .await
            .unwrap_err();
        assert!(matches!(err, CreateUserError::EmailExists));
        assert_eq!(set.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn create_user_rejects_invalid_input_without_touching_storage() {
        let mut repo = crate::ports::MockUserRepository::new();
        repo.expect_apply().never();
        let create = create_user(Arc::new(repo));
        let err = create.execute(input(" ", "a@x.com")).await.unwrap_err();
        assert!(matches!(err, CreateUserError::InvalidName(NameError::Empty)));
        let err = create.execute(input("Ada", "not-an-email")).await.unwrap_err();
        assert!(matches!(err, CreateUserError::InvalidEmail(EmailError::Shape)));
    }

    #[tokio::test]
    async fn create_user_passes_storage_failures_on() {
        let mut repo = crate::ports::MockUserRepository::new();
        repo.expect_apply()
            .returning(|_| Err(RepositoryError::Unavailable("disk full".into())));
        let err = create_user(Arc::new(repo))
            .execute(input("Ada", "a@x.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, CreateUserError::Storage(_)));
        assert!(err.to_string().contains("disk full"));
    }
}
