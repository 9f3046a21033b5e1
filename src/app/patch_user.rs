//! PatchUser: change only the fields given, optionally only if nobody changed the user
//! since the client read it (optimistic concurrency), so two editors cannot silently
//! overwrite each other.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{Change, ChangeOutcome, Email, EmailError, NameError, Rejection, User, UserId, UserName};
use crate::ports::{Clock, RepositoryError, UserRepository};

/// What a client asks to change; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The `updatedAt` the client last saw (RFC 3339); when given, it must still be current.
    pub expected_updated_at: Option<String>,
}

/// Why a patch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchUserError {
    #[error("neither a name nor an email given")]
    NothingToChange,
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error("the expected updatedAt is not an RFC 3339 timestamp")]
    InvalidExpectedUpdatedAt,
    #[error("no user has this id")]
    NotFound,
    #[error("another user has this email")]
    EmailInUse,
    /// The user as it is now rides along so the client can show it and retry.
    #[error("the user changed since it was read")]
    Conflict(Arc<User>),
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

#[derive(Clone)]
pub struct PatchUser {
    repo: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl PatchUser {
    pub fn new(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
    }

    /// Applies the patch and returns the user as stored.
    ///
    /// # Errors
    /// Nothing to change, invalid fields, an unknown id, a taken email, a conflict, or a
    /// storage failure.
    pub async fn execute(&self, patch: UserPatch) -> Result<Arc<User>, PatchUserError> {
        if patch.name.is_none() && patch.email.is_none() {
            return Err(PatchUserError::NothingToChange);
        }
        let name = patch.name.as_deref().map(UserName::parse).transpose()?;
        let email = patch.email.as_deref().map(Email::parse).transpose()?;
        let expected_updated_at = patch
            .expected_updated_at
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|at| Some(at.with_timezone(&Utc)))
                    .map_err(|_| PatchUserError::InvalidExpectedUpdatedAt)
            })
            .transpose()?;
        let change = Change::Patch {
            id: UserId::new(patch.id),
            name,
            email,
            expected_updated_at,
            at: self.clock.now(),
        };
        match self.repo.apply(change).await? {
            ChangeOutcome::Updated(user) | ChangeOutcome::Unchanged(user) => Ok(user),
            ChangeOutcome::Conflict(current) => Err(PatchUserError::Conflict(current)),
            ChangeOutcome::Rejected(Rejection::NotFound) => Err(PatchUserError::NotFound),
            ChangeOutcome::Rejected(Rejection::EmailInUse) => Err(PatchUserError::EmailInUse),
            other => Err(super::unexpected("patch", &other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::{fixed_clock, in_memory_repo};

    fn patch(name: Option<&str>, email: Option<&str>, expected: Option<&str>) -> UserPatch {
        UserPatch {
            id: "a".into(),
            name: name.map(str::to_owned),
            email: email.map(str::to_owned),
            expected_updated_at: expected.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn patch_user_changes_only_the_given_fields() {
        let (repo, _) = in_memory_repo(&[("a", "Ann", "ann@x.com")]);
        let user = PatchUser::new(repo, fixed_clock())
            .execute(patch(None, Some("ANN@y.com"), None))
            .await
            .unwrap();
        assert_eq!((user.name(), user.email()), ("Ann", "ANN@y.com"));
    }

    #[tokio::test]
    async fn patch_user_refuses_a_stale_expected_updated_at_and_shows_the_current_user() {
        let (repo, set) = in_memory_repo(&[("a", "Ann", "ann@x.com")]);
        let use_case = PatchUser::new(repo, fixed_clock());
        // The stored user has no updatedAt, so any expected time is stale.
        let err = use_case
            .execute(patch(Some("Anne"), None, Some("2024-05-01T10:00:00Z")))
            .await
            .unwrap_err();
        assert!(matches!(err, PatchUserError::Conflict(ref u) if u.name() == "Ann"));
        assert_eq!(set.lock().unwrap().iter().next().unwrap().name(), "Ann");
        let updated = use_case.execute(patch(Some("Anne"), None, None)).await.unwrap();
        let seen = updated.updated_at().unwrap().to_rfc3339();
        let again = use_case
            .execute(patch(Some("Annie"), None, Some(&seen)))
            .await
            .unwrap();
        assert_eq!(again.name(), "Annie");
    }

    #[tokio::test]
    async fn patch_user_reports_bad_input() {
        let (repo, _) = in_memory_repo(&[("a", "Ann", "ann@x.com"), ("b", "Bob", "bob@x.com")]);
        let use_case = PatchUser::new(repo, fixed_clock());
        let err = use_case.execute(patch(None, None, None)).await.unwrap_err();
        assert!(matches!(err, PatchUserError::NothingToChange));
        let err = use_case
            .execute(patch(Some("x"), None, Some("yesterday")))
            .await
            .unwrap_err();
        assert!(matches!(err, PatchUserError::InvalidExpectedUpdatedAt));
        let err = use_case
            .execute(patch(None, Some("BOB@x.com"), None))
            .await
            .unwrap_err();
        assert!(matches!(err, PatchUserError::EmailInUse), "{err}");
    }
}
