//! DeleteUser: remove a user by id.

use std::sync::Arc;

use crate::domain::{Change, ChangeOutcome, Rejection, User, UserId};
use crate::ports::{RepositoryError, UserRepository};

/// Why a user was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteUserError {
    #[error("no user has this id")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

#[derive(Clone)]
pub struct DeleteUser {
    repo: Arc<dyn UserRepository>,
}

impl DeleteUser {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// Deletes the user and returns it as it was.
    ///
    /// # Errors
    /// [`DeleteUserError::NotFound`] for an unknown id, or a storage failure.
    pub async fn execute(&self, id: &str) -> Result<Arc<User>, DeleteUserError> {
        let change = Change::Delete { id: UserId::new(id) };
        match self.repo.apply(change).await? {
            ChangeOutcome::Deleted(user) => Ok(user),
            ChangeOutcome::Rejected(Rejection::NotFound) => Err(DeleteUserError::NotFound),
            other => Err(super::unexpected("delete", &other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;

    #[tokio::test]
    async fn delete_user_removes_the_user_once() {
        let (repo, set) = in_memory_repo(&[("a", "Dave", "dave@x.com")]);
        let use_case = DeleteUser::new(repo);
        let user = use_case.execute("a").await.unwrap();
        assert_eq!(user.name(), "Dave");
        assert!(set.lock().unwrap().is_empty());
        let err = use_case.execute("a").await.unwrap_err();
        assert!(matches!(err, DeleteUserError::NotFound), "{err}");
    }
}
