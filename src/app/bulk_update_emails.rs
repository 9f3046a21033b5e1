//! BulkUpdateEmails: change many users' emails in one durable write.

use std::sync::Arc;

use crate::domain::{BulkMode, BulkReport, Change, ChangeOutcome, Email, EmailUpdate, UserId};
use crate::ports::{Clock, RepositoryError, UserRepository};

/// One requested email change.
#[derive(Clone, Debug)]
pub struct EmailChange {
    pub id: String,
    pub email: String,
}

#[derive(Clone)]
pub struct BulkUpdateEmails {
    repo: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl BulkUpdateEmails {
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
    }

    /// Applies every item in order against the state the items before it left and reports
    /// which were applied and why the others were not. Per-item failures are part of the
    /// report, not errors. With `mode.atomic`, one failure keeps every item from applying;
    /// with `mode.dry_run`, nothing is written and the report says what would happen.
    ///
    /// # Errors
    /// A storage failure; then no item was applied.
    pub async fn execute(
        &self,
        changes: Vec<EmailChange>,
        mode: BulkMode,
    ) -> Result<BulkReport, RepositoryError> {
        if changes.is_empty() {
            return Ok(BulkReport {
                committed: !mode.dry_run,
                ..BulkReport::default()
            });
        }
        let items = changes
            .into_iter()
            .map(|item| {
                let id = UserId::new(item.id);
                match Email::parse(&item.email) {
                    Ok(email) => EmailUpdate::Valid { id, email },
                    Err(_) => EmailUpdate::Invalid {
                        id,
                        email: item.email,
                    },
                }
            })
            .collect();
        let change = Change::BulkUpdateEmails {
            items,
            at: self.clock.now(),
            mode,
        };
        match self.repo.apply(change).await? {
            ChangeOutcome::BulkUpdated(report) => Ok(report),
            other => Err(super::unexpected("bulk email update", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::{fixed_clock, in_memory_repo};

    fn item(id: &str, email: &str) -> EmailChange {
        EmailChange {
            id: id.into(),
            email: email.into(),
        }
    }

    fn failures(report: &BulkReport) -> Vec<String> {
        report.failures.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn bulk_update_applies_valid_items_and_reports_the_rest() {
        let (repo, set) = in_memory_repo(&[("e1", "E1", "e1@x.com"), ("e2", "E2", "e2@x.com")]);
        let report = BulkUpdateEmails::new(repo, fixed_clock())
            .execute(
                vec![
                    item("e1", "n1@x.com"),
                    item("e2", "n2@x.com"),
                    item("bad", "z@z.com"),
                ],
                BulkMode::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.updated.len(), 2);
        assert_eq!(failures(&report), ["bad not found"]);
        let set = set.lock().unwrap();
        assert_eq!(set.iter().next().unwrap().email(), "n1@x.com");
        assert_eq!(set.iter().nth(1).unwrap().email(), "n2@x.com");
    }

    #[tokio::test]
    async fn bulk_update_catches_a_duplicate_inside_the_batch_and_invalid_emails() {
        let (repo, set) = in_memory_repo(&[("a", "A", "a@x.com"), ("b", "B", "b@x.com")]);
        let report = BulkUpdateEmails::new(repo, fixed_clock())
            .execute(
                vec![
                    item("a", "same@x.com"),
                    item("b", "SAME@x.com"),
                    item("b", "no at sign"),
                ],
                BulkMode::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.updated.len(), 1);
        assert_eq!(failures(&report), ["b email in use", "b invalid email"]);
        assert_eq!(set.lock().unwrap().iter().nth(1).unwrap().email(), "b@x.com");
    }

    #[tokio::test]
    async fn an_empty_bulk_update_writes_nothing() {
        let mut repo = crate::ports::MockUserRepository::new();
        repo.expect_apply().never();
        let report = BulkUpdateEmails::new(Arc::new(repo), fixed_clock())
            .execute(vec![], BulkMode::default())
            .await
            .unwrap();
        assert_eq!(report.applied, 0);
        assert!(report.failures.is_empty());
    }

    #[tokio::test]
    async fn bulk_update_passes_storage_failures_on() {
        let mut repo = crate::ports::MockUserRepository::new();
        repo.expect_apply()
            .returning(|_| Err(RepositoryError::Unavailable("read-only folder".into())));
        let err = BulkUpdateEmails::new(Arc::new(repo), fixed_clock())
            .execute(vec![item("a", "a@x.com")], BulkMode::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only folder"));
    }
}
