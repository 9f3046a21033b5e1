//! GetUser: one user by id, or nothing.

use std::sync::Arc;

use crate::domain::{User, UserId};
use crate::ports::{RepositoryError, UserRepository};

#[derive(Clone)]
pub struct GetUser {
    repo: Arc<dyn UserRepository>,
}

impl GetUser {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// The user with `id`, or `None` when there is none.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn execute(&self, id: &str) -> Result<Option<Arc<User>>, RepositoryError> {
        let snapshot = self.repo.snapshot().await?;
        Ok(snapshot.get(&UserId::new(id)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;

    #[tokio::test]
    async fn get_user_finds_known_ids_and_misses_unknown_ones() {
        let (repo, _) = in_memory_repo(&[("a", "Ada", "ada@x.com")]);
        let get = GetUser::new(repo);
        assert_eq!(get.execute("a").await.unwrap().unwrap().name(), "Ada");
        assert!(get.execute("nope").await.unwrap().is_none());
    }
}
