//! CheckHealth: can the service read and write its users right now?

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ports::{Clock, StorageHealth, UserRepository};

/// What `/health` reports.
#[derive(Clone, Debug)]
pub struct HealthReport {
    /// Whether reads and writes are expected to work.
    pub healthy: bool,
    pub checked_at: DateTime<Utc>,
    /// How many users are visible, when they could be read.
    pub users: Option<usize>,
    /// Why reading failed, when it did.
    pub read_error: Option<String>,
    pub storage: StorageHealth,
}

#[derive(Clone)]
pub struct CheckHealth {
    repo: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl CheckHealth {
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
    }

    /// Reads the users (through any cache) and asks the store about its writes.
    pub async fn execute(&self) -> HealthReport {
        let (users, read_error) = match self.repo.snapshot().await {
            Ok(snapshot) => (Some(snapshot.len()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let storage = self.repo.health();
        HealthReport {
            healthy: read_error.is_none() && storage.is_healthy(),
            checked_at: self.clock.now(),
            users,
            read_error,
            storage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::fixed_clock;
    use crate::ports::{MockUserRepository, RepositoryError};

    #[tokio::test]
    async fn health_is_bad_while_writes_fail_and_good_otherwise() {
        let mut repo = MockUserRepository::new();
        repo.expect_snapshot().returning(|| Ok(Arc::default()));
        repo.expect_health().returning(|| StorageHealth {
            write_error: Some("read-only folder".into()),
            ..StorageHealth::default()
        });
        let report = CheckHealth::new(Arc::new(repo), fixed_clock()).execute().await;
        assert!(!report.healthy);
        assert_eq!(report.users, Some(0));

        let mut repo = MockUserRepository::new();
        repo.expect_snapshot()
            .returning(|| Err(RepositoryError::Unavailable("gone".into())));
        repo.expect_health().returning(StorageHealth::default);
        let report = CheckHealth::new(Arc::new(repo), fixed_clock()).execute().await;
        assert!(!report.healthy);
        assert!(report.read_error.unwrap().contains("gone"));

        let mut repo = MockUserRepository::new();
        repo.expect_snapshot().returning(|| Ok(Arc::default()));
        repo.expect_health().returning(StorageHealth::default);
        assert!(
            CheckHealth::new(Arc::new(repo), fixed_clock())
                .execute()
                .await
                .healthy
        );
    }
}
