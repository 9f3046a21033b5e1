//! FindUserByEmail: one user by address, ignoring case, or nothing.

use std::sync::Arc;

use crate::domain::User;
use crate::ports::{RepositoryError, UserRepository};

#[derive(Clone)]
pub struct FindUserByEmail {
    repo: Arc<dyn UserRepository>,
}

impl FindUserByEmail {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// The user whose email equals `email` ignoring case and surrounding spaces.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn execute(&self, email: &str) -> Result<Option<Arc<User>>, RepositoryError> {
        let snapshot = self.repo.snapshot().await?;
        Ok(snapshot.by_email(email).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;

    #[tokio::test]
    async fn find_user_by_email_ignores_case_and_misses_unknown_addresses() {
        let (repo, _) = in_memory_repo(&[("a", "Ada", "Ada@Example.com")]);
        let find = FindUserByEmail::new(repo);
        assert_eq!(
            find.execute(" ada@EXAMPLE.com ").await.unwrap().unwrap().name(),
            "Ada"
        );
        assert!(find.execute("nobody@example.com").await.unwrap().is_none());
    }
}
