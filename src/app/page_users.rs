//! PageUsers: the `users` connection, filtered like `allUsers`, ordered, cut by cursors.

use std::sync::Arc;

use super::list_users::{FilterError, user_filter};
use crate::domain::pagination::{Page, PageError, PageRequest, paginate};
use crate::ports::{RepositoryError, UserRepository};

/// Why a page was refused.
#[derive(Debug, thiserror::Error)]
pub enum PageUsersError {
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    #[error(transparent)]
    InvalidPage(#[from] PageError),
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
    /// Invalid search or page arguments, or a storage failure.
    pub async fn execute(&self, filter: PageFilter, request: PageRequest) -> Result<Page, PageUsersError> {
        let filter = user_filter(filter.search, filter.fuzzy, filter.max_distance)?;
        let snapshot = self.repo.snapshot().await?;
        Ok(paginate(&snapshot, &filter, &request)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;
    use crate::domain::pagination::{Direction, OrderField, UserOrder};

    #[tokio::test]
    async fn page_users_filters_then_orders_and_cuts() {
        let (repo, _) = in_memory_repo(&[
            ("1", "Bobby", "bobby@x.com"),
            ("2", "Ann", "ann@x.com"),
            ("3", "Bob", "bob@x.com"),
        ]);
        let request = PageRequest {
            first: Some(1),
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
    async fn page_users_refuses_bad_arguments() {
        let (repo, _) = in_memory_repo(&[]);
        let use_case = PageUsers::new(repo);
        let too_many = PageRequest {
            last: Some(5000),
            ..PageRequest::default()
        };
        let err = use_case
            .execute(PageFilter::default(), too_many)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "last must be at most 1000.");
        let fuzzy = PageFilter {
            fuzzy: Some("x".into()),
            max_distance: Some(99),
            ..PageFilter::default()
        };
        let err = use_case.execute(fuzzy, PageRequest::default()).await.unwrap_err();
        assert!(matches!(err, PageUsersError::InvalidFilter(_)));
    }
}
