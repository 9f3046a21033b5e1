//! Each [`Change`] as SQL: one transaction per change, with the database's unique index
//! on the normalised email as the judge of uniqueness across every replica (and anyone
//! writing with SQL). Business refusals come back as the same [`ChangeOutcome`]s the
//! domain's `UserSet` gives the file store; a unique-index violation is a refusal, never an
//! error.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::rows::{RowChange, StoredRow, USER_COLUMNS};
use crate::domain::{
    BulkFailure, BulkFailureReason, BulkMode, BulkReport, Change, ChangeOutcome, EmailUpdate, Rejection,
    UserId, settled_without_write,
};

/// The unique index that keeps emails unique (see the migration).
const EMAIL_INDEX: &str = "users_email_key";

/// How many times a bulk update is tried when a concurrent writer takes an address
/// between its check and its write.
const BULK_ATTEMPTS: usize = 3;

/// A change as the database applied it.
pub struct Applied {
    pub outcome: ChangeOutcome,
    /// The committing transaction, when rows changed.
    pub tx: Option<u64>,
    /// The rows it changed, for the replica to apply at once.
    pub changes: Vec<RowChange>,
}

impl Applied {
    fn refused(outcome: ChangeOutcome) -> Self {
        Self {
            outcome,
            tx: None,
            changes: Vec::new(),
        }
    }
}

/// Applies `change` in one transaction on `client`.
///
/// # Errors
/// The driver's error for anything but a business refusal.
pub async fn apply(client: &mut Client, change: Change) -> Result<Applied, tokio_postgres::Error> {
    match change {
        Change::Create(user) => {
            let sql = format!(
                "INSERT INTO users (id, name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT ((roster_email_key(email))) DO NOTHING RETURNING {USER_COLUMNS}, pg_current_xact_id()::text"
            );
            let statement = client.prepare_cached(&sql).await?;
            let row = client
                .query_opt(
                    &statement,
                    &[
                        &user.id().as_str(),
                        &user.name(),
                        &user.email(),
                        &user.created_at(),
                        &user.updated_at(),
                    ],
                )
                .await?;
            match row {
                None => Ok(Applied::refused(ChangeOutcome::Rejected(Rejection::EmailExists))),
                Some(row) => written(&row, ChangeOutcome::Created),
            }
        }
        Change::Update { id, name, email, at } => {
            patch(client, &id, Some(name.as_str()), Some(email.as_str()), None, at).await
        }
        Change::Delete { id } => {
            let sql = format!(
                "DELETE FROM users WHERE id = $1 RETURNING {USER_COLUMNS}, pg_current_xact_id()::text"
            );
            let statement = client.prepare_cached(&sql).await?;
            match client.query_opt(&statement, &[&id.as_str()]).await? {
                None => Ok(Applied::refused(ChangeOutcome::Rejected(Rejection::NotFound))),
                Some(row) => {
                    let stored = StoredRow::from_row(&row)?;
                    Ok(Applied {
                        tx: Some(tx_of(&row)?),
                        changes: vec![RowChange::Delete {
                            id: stored.user.id().clone(),
                            revision: stored.revision,
                        }],
                        outcome: ChangeOutcome::Deleted(stored.user),
                    })
                }
            }
        }
        Change::Patch {
            id,
            name,
            email,
            expected_updated_at,
            at,
        } => {
            patch(
                client,
                &id,
                name.as_ref().map(|n| n.as_str()),
                email.as_ref().map(|e| e.as_str()),
                expected_updated_at,
                at,
            )
            .await
        }
        Change::BulkUpdateEmails { items, at, mode } => {
            let mut attempt = 1;
            loop {
                match bulk(client, &items, at, mode).await {
                    Err(err) if is_email_clash(&err) && attempt < BULK_ATTEMPTS => attempt += 1,
                    done => return done,
                }
            }
        }
    }
}

async fn patch(
    client: &mut Client,
    id: &UserId,
    name: Option<&str>,
    email: Option<&str>,
    expected_updated_at: Option<Option<DateTime<Utc>>>,
    at: DateTime<Utc>,
) -> Result<Applied, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    let select = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE");
    let statement = transaction.prepare_cached(&select).await?;
    let Some(current) = transaction.query_opt(&statement, &[&id.as_str()]).await? else {
        return Ok(Applied::refused(ChangeOutcome::Rejected(Rejection::NotFound)));
    };
    let current = StoredRow::from_row(&current)?;
    if let Some(settled) = settled_without_write(&current.user, name, email, expected_updated_at) {
        return Ok(Applied::refused(settled));
    }
    let update = format!(
        "UPDATE users SET name = coalesce($2, name), email = coalesce($3, email), updated_at = $4 \
         WHERE id = $1 RETURNING {USER_COLUMNS}, pg_current_xact_id()::text"
    );
    let statement = transaction.prepare_cached(&update).await?;
    let row = match transaction
        .query_opt(&statement, &[&id.as_str(), &name, &email, &at])
        .await
    {
        Err(err) if is_email_clash(&err) => {
            return Ok(Applied::refused(ChangeOutcome::Rejected(Rejection::EmailInUse)));
        }
        row => row?,
    };
    match row {
        // The row is held `FOR UPDATE`, so it is still there; kept as a refusal all the same.
        None => Ok(Applied::refused(ChangeOutcome::Rejected(Rejection::NotFound))),
        Some(row) => {
            let applied = written(&row, ChangeOutcome::Updated)?;
            transaction.commit().await?;
            Ok(applied)
        }
    }
}

async fn bulk(
    client: &mut Client,
    items: &[EmailUpdate],
    at: DateTime<Utc>,
    mode: BulkMode,
) -> Result<Applied, tokio_postgres::Error> {
    let (ids, emails): (Vec<&str>, Vec<Option<&str>>) = items
        .iter()
        .map(|item| match item {
            EmailUpdate::Valid { id, email } => (id.as_str(), Some(email.as_str())),
            EmailUpdate::Invalid { id, .. } => (id.as_str(), None),
        })
        .unzip();
    let transaction = client.transaction().await?;
    let statement = transaction
        .prepare_cached("SELECT item, outcome FROM roster_bulk_update_emails($1, $2, $3) ORDER BY item")
        .await?;
    let outcomes = transaction.query(&statement, &[&ids, &emails, &at]).await?;
    let mut report = BulkReport::default();
    let mut updated: Vec<&str> = Vec::new();
    for row in &outcomes {
        let at_item: i32 = row.try_get(0)?;
        let outcome: String = row.try_get(1)?;
        let Some(item) = usize::try_from(at_item - 1).ok().and_then(|at| items.get(at)) else {
            continue;
        };
        let (id, asked) = match item {
            EmailUpdate::Valid { id, email } => (id, email.as_str()),
            EmailUpdate::Invalid { id, email } => (id, email.as_str()),
        };
        let reason = match outcome.as_str() {
            "updated" => {
                // A user updated twice is reported once, in its final state.
                updated.retain(|u| *u != id.as_str());
                updated.push(id.as_str());
                report.applied += 1;
                continue;
            }
            "unchanged" => {
                // Already so: it counts as applied and changes nothing.
                report.applied += 1;
                continue;
            }
            "not_found" => BulkFailureReason::NotFound,
            "email_in_use" => BulkFailureReason::EmailInUse,
            _ => BulkFailureReason::InvalidEmail,
        };
        report.failures.push(BulkFailure {
            id: id.clone(),
            email: asked.to_owned(),
            reason,
        });
    }
    let mut rows: HashMap<String, (StoredRow, u64)> = HashMap::new();
    if !updated.is_empty() {
        let select =
            format!("SELECT {USER_COLUMNS}, pg_current_xact_id()::text FROM users WHERE id = ANY($1)");
        let statement = transaction.prepare_cached(&select).await?;
        for row in transaction.query(&statement, &[&updated]).await? {
            let stored = StoredRow::from_row(&row)?;
            rows.insert(stored.user.id().as_str().to_owned(), (stored, tx_of(&row)?));
        }
    }
    let mut tx = None;
    let mut changes = Vec::new();
    for id in updated {
        if let Some((stored, row_tx)) = rows.remove(id) {
            report.updated.push(std::sync::Arc::clone(&stored.user));
            tx = Some(row_tx);
            changes.push(RowChange::Upsert(stored));
        }
    }
    report.committed = !mode.dry_run && (!mode.atomic || report.failures.is_empty());
    if report.committed {
        transaction.commit().await?;
    } else {
        transaction.rollback().await?;
        tx = None;
        changes.clear();
    }
    Ok(Applied {
        outcome: ChangeOutcome::BulkUpdated(report),
        tx,
        changes,
    })
}

/// A row written with `RETURNING {USER_COLUMNS}, pg_current_xact_id()`.
fn written(
    row: &Row,
    outcome: fn(std::sync::Arc<crate::domain::User>) -> ChangeOutcome,
) -> Result<Applied, tokio_postgres::Error> {
    let stored = StoredRow::from_row(row)?;
    Ok(Applied {
        outcome: outcome(std::sync::Arc::clone(&stored.user)),
        tx: Some(tx_of(row)?),
        changes: vec![RowChange::Upsert(stored)],
    })
}

/// The transaction id in the column after [`USER_COLUMNS`].
fn tx_of(row: &Row) -> Result<u64, tokio_postgres::Error> {
    let text: String = row.try_get(7)?;
    // The server's own number in its own text form: it always parses.
    Ok(text.parse().unwrap_or_default())
}

fn is_email_clash(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_some_and(|db| *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(EMAIL_INDEX))
}
