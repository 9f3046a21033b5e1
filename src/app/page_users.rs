//! PageUsers: the `users` connection, filtered like `allUsers`, ordered, cut by cursors.

use std::sync::Arc;

use super::list_users::{FilterError, user_filter};
use crate::domain::pagination::{Page, PageRequest, paginate};
use crate::ports::{RepositoryError, UserRepository};

/// Why a page was refused.
#[derive(Debug, thiserror::Error)]
pub enum PageUsersError {
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// The search arguments of a page request.
#[derive(Clone, Debug, Default)]
pub struct PageFilter {
    pub search: Option<String>,
    pub fuzzy: Option<String>,
    pub max_distance: Option<i32>,
}

#[derive(Clone)]
pub struct PageUsers {
    repo: Arc<dyn UserRepository>,
}

impl PageUsers {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// The page of matching users that `request` asks for.
    ///
    /// # Errors
    /// Invalid search arguments, or a storage failure.
    pub async fn execute(&self, filter: PageFilter, request: PageRequest) -> Result<Page, PageUsersError> {
        let filter = user_filter(filter.search, filter.fuzzy, filter.max_distance)?;
        let mut snapshot = self.repo.snapshot().await?;
        if filter.is_empty() && !snapshot.set().is_indexed() {
            // The store is building its indexes: waiting for them costs nothing, where
            // sorting every user for this page would.
            snapshot = self.repo.indexed().await?;
        }
        Ok(paginate(&snapshot, &filter, &request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;
    use crate::domain::pagination::{Direction, OrderField, Take, UserOrder};
    use crate::domain::user::stored_users;
    use crate::domain::{UserSet, UserSnapshot};
    use crate::ports::MockUserRepository;

    #[tokio::test]
    async fn page_users_filters_then_orders_and_cuts() {
        let (repo, _) = in_memory_repo(&[
            ("1", "Bobby", "bobby@x.com"),
            ("2", "Ann", "ann@x.com"),
            ("3", "Bob", "bob@x.com"),
        ]);
        let request = PageRequest {
            take: Some(Take::First(1)),
            order: UserOrder {
                field: OrderField::Name,
                direction: Direction::Desc,
            },
            ..PageRequest::default()
        };
        let filter = PageFilter {
            search: Some("bob".into()),
            ..PageFilter::default()
        };
        let page = PageUsers::new(repo).execute(filter, request).await.unwrap();
        assert_eq!(page.total_count, 2);
        assert_eq!(page.edges[0].1.name(), "Bobby");
        assert!(page.has_next_page);
    }

    #[tokio::test]
    async fn a_page_asked_while_the_store_builds_its_indexes_waits_for_them() {
        let listed = Arc::new(UserSnapshot::from_users(stored_users(&[
            ("1", "Bob", "bob@x.com"),
            ("2", "Ann", "ann@x.com"),
        ])));
        let mut indexed = UserSet::new(listed.users().cloned().collect());
        indexed.index();
        let indexed = Arc::new(indexed.snapshot());
        let mut repo = MockUserRepository::new();
        repo.expect_snapshot().returning(move || Ok(Arc::clone(&listed)));
        repo.expect_indexed()
            .times(1)
            .returning(move || Ok(Arc::clone(&indexed)));
        let request = PageRequest {
            order: UserOrder {
                field: OrderField::Name,
                direction: Direction::Asc,
            },
            ..PageRequest::default()
        };
        let page = PageUsers::new(Arc::new(repo))
            .execute(PageFilter::default(), request)
            .await
            .unwrap();
        let names: Vec<&str> = page.edges.iter().map(|(_, user)| user.name()).collect();
        assert_eq!(names, ["Ann", "Bob"]);
    }

    #[tokio::test]
    async fn page_users_refuses_bad_search_arguments() {
        let (repo, _) = in_memory_repo(&[]);
        let fuzzy = PageFilter {
            fuzzy: Some("x".into()),
            max_distance: Some(99),
            ..PageFilter::default()
        };
        let err = PageUsers::new(repo)
            .execute(fuzzy, PageRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, PageUsersError::InvalidFilter(_)));
    }
}
