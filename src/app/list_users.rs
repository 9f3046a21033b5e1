//! ListUsers: filter, rank and page the user list (docs/src/graphql.md, Queries and Fuzzy search).

use std::sync::Arc;

use crate::domain::{FuzzyQuery, User, UserFilter};
use crate::ports::{RepositoryError, UserRepository};

/// Largest accepted `maxDistance`.
pub const MAX_FUZZY_DISTANCE: i32 = 10;
/// Longest accepted fuzzy query, in characters.
pub const MAX_FUZZY_CHARS: usize = 256;
/// The fuzzy threshold when none is given.
pub const DEFAULT_FUZZY_DISTANCE: i32 = 2;

/// A list request as the client sent it.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub limit: Option<i32>,
    pub offset: Option<i32>,
    pub search: Option<String>,
    pub fuzzy: Option<String>,
    pub max_distance: Option<i32>,
}

/// Why a list request was refused. These are client mistakes, reported as GraphQL errors.
#[derive(Debug, thiserror::Error)]
pub enum ListUsersError {
    #[error("negative limit {0}")]
    NegativeLimit(i32),
    #[error("negative offset {0}")]
    NegativeOffset(i32),
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// Why the search arguments shared by `allUsers` and `users` were refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("fuzzy distance {0} outside 0..={MAX_FUZZY_DISTANCE}")]
    MaxDistanceOutOfRange(i32),
    #[error("fuzzy query of {0} characters, over {MAX_FUZZY_CHARS}")]
    FuzzyTooLong(usize),
}

/// Validates the search arguments shared by `allUsers` and `users`.
///
/// # Errors
/// `maxDistance` outside `0..=10` or a fuzzy query over 256 characters.
pub fn user_filter(
    search: Option<String>,
    fuzzy: Option<String>,
    max_distance: Option<i32>,
) -> Result<UserFilter, FilterError> {
    let max_distance = max_distance.unwrap_or(DEFAULT_FUZZY_DISTANCE);
    if !(0..=MAX_FUZZY_DISTANCE).contains(&max_distance) {
        return Err(FilterError::MaxDistanceOutOfRange(max_distance));
    }
    let fuzzy = match fuzzy.filter(|q| !q.is_empty()) {
        Some(q) if q.chars().count() > MAX_FUZZY_CHARS => {
            return Err(FilterError::FuzzyTooLong(q.chars().count()));
        }
        Some(q) => Some(FuzzyQuery::new(&q, max_distance as usize)),
        None => None,
    };
    Ok(UserFilter {
        search: search.filter(|s| !s.is_empty()),
        fuzzy,
    })
}

#[derive(Clone)]
pub struct ListUsers {
    repo: Arc<dyn UserRepository>,
}

impl ListUsers {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// The users the query selects: filtered by `search` and `fuzzy` (both apply when both
    /// are given; an empty string filters nothing), best fuzzy match
    /// first, then `offset` skipped and at most `limit` kept (`None` keeps all).
    ///
    /// # Errors
    /// A negative `limit` or `offset`, `maxDistance` outside `0..=10`, a fuzzy query over 256
    /// characters, or a storage failure.
    pub async fn execute(&self, query: UserQuery) -> Result<Vec<Arc<User>>, ListUsersError> {
        let limit = match query.limit {
            Some(n) if n < 0 => return Err(ListUsersError::NegativeLimit(n)),
            Some(n) => Some(n as usize),
            None => None,
        };
        let offset = match query.offset {
            Some(n) if n < 0 => return Err(ListUsersError::NegativeOffset(n)),
            Some(n) => n as usize,
            None => 0,
        };
        let filter = user_filter(query.search, query.fuzzy, query.max_distance)?;
        let snapshot = self.repo.snapshot().await?;
        Ok(snapshot.select(&filter, offset, limit))
    }

    /// The list a read would see now, taken exactly as [`ListUsers::execute`] takes it (so
    /// a store that looks again when its view gets old still does): a new snapshot after
    /// every change, for a driving adapter to tell whether what it answered before still
    /// holds.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn snapshot(&self) -> Result<Arc<crate::domain::UserSnapshot>, RepositoryError> {
        self.repo.snapshot().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::in_memory_repo;

    async fn names(query: UserQuery) -> Result<Vec<String>, ListUsersError> {
        let (repo, _) = in_memory_repo(&[
            ("1", "Alice", "alice@example.com"),
            ("2", "Bob", "bob@example.com"),
            ("3", "Bobby", "bobby@example.com"),
            ("4", "Carol", "carol@example.com"),
        ]);
        let users = ListUsers::new(repo).execute(query).await?;
        Ok(users.iter().map(|u| u.name().to_owned()).collect())
    }

    #[tokio::test]
    async fn list_users_pages_with_offset_then_limit() {
        let page = |limit, offset| UserQuery {
            limit,
            offset,
            ..UserQuery::default()
        };
        assert_eq!(names(page(Some(2), Some(1))).await.unwrap(), ["Bob", "Bobby"]);
        assert_eq!(names(page(None, Some(3))).await.unwrap(), ["Carol"]);
        assert!(names(page(Some(0), None)).await.unwrap().is_empty());
        assert_eq!(names(page(None, None)).await.unwrap().len(), 4);
        assert!(names(page(Some(10), Some(10))).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn list_users_filters_by_search_and_fuzzy() {
        let search = UserQuery {
            search: Some("BOB".into()),
            ..UserQuery::default()
        };
        assert_eq!(names(search).await.unwrap(), ["Bob", "Bobby"]);
        let fuzzy = UserQuery {
            fuzzy: Some("Bbo".into()),
            max_distance: Some(1),
            ..UserQuery::default()
        };
        assert_eq!(names(fuzzy).await.unwrap(), ["Bob", "Bobby"]);
        let nothing = UserQuery {
            fuzzy: Some("zzzzzz".into()),
            ..UserQuery::default()
        };
        assert!(names(nothing).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn list_users_rejects_out_of_range_arguments() {
        let bad = [
            UserQuery {
                limit: Some(-1),
                ..UserQuery::default()
            },
            UserQuery {
                offset: Some(-5),
                ..UserQuery::default()
            },
            UserQuery {
                fuzzy: Some("bob".into()),
                max_distance: Some(11),
                ..UserQuery::default()
            },
            UserQuery {
                max_distance: Some(-1),
                ..UserQuery::default()
            },
            UserQuery {
                fuzzy: Some("x".repeat(257)),
                ..UserQuery::default()
            },
        ];
        for query in bad {
            let err = names(query.clone()).await.unwrap_err();
            assert!(!matches!(err, ListUsersError::Storage(_)), "{query:?}");
        }
    }
}
