//! Each [`Change`] as SQL: one transaction per change, with the database's unique index
//! on the normalised email as the judge of uniqueness across every replica (and anyone
//! writing with SQL). Business refusals come back as the same [`ChangeOutcome`]s the
//! domain's `UserSet` gives the file store; a unique-index violation is a refusal, never an
//! error.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::rows::{RowChange, StoredRow, USER_COLUMNS};
use crate::domain::{
    BulkFailure, BulkFailureReason, BulkMode, BulkReport, Change, ChangeOutcome, EmailUpdate, Rejection,
    User, UserId, settled_without_write,
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

/// Applies a bulk email update in time linear in its items: one locked read of every user
/// an item names and of every holder of an address an item asks for, the items worked out
/// here one after another against the state the earlier ones left (exactly the rules of
/// the domain's `UserSet`), then one statement that writes each changed user once. (Updating
/// a row once per item made each update walk the row's growing chain of versions: 10,000
/// items on one user kept the database busy for half a minute.)
async fn bulk(
    client: &mut Client,
    items: &[EmailUpdate],
    at: DateTime<Utc>,
    mode: BulkMode,
) -> Result<Applied, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    let asked: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            EmailUpdate::Valid { email, .. } => Some(email.as_str()),
            EmailUpdate::Invalid { .. } => None,
        })
        .collect();
    // The database's own key of each address asked for: its unique index is the judge.
    let statement = transaction
        .prepare_cached(
            "SELECT roster_email_key(e) FROM unnest($1::text[]) WITH ORDINALITY AS a(e, n) ORDER BY n",
        )
        .await?;
    let asked_keys: Vec<String> = transaction
        .query(&statement, &[&asked])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = {
        let mut seen = HashSet::new();
        items
            .iter()
            .map(|item| match item {
                EmailUpdate::Valid { id, .. } | EmailUpdate::Invalid { id, .. } => id.as_str(),
            })
            .filter(|id| seen.insert(*id))
            .collect()
    };
    let mut distinct_keys: Vec<&str> = asked_keys.iter().map(String::as_str).collect();
    distinct_keys.sort_unstable();
    distinct_keys.dedup();
    // Locked in id order, so two bulks over the same users wait for each other instead of
    // deadlocking.
    let select = format!(
        "SELECT {USER_COLUMNS}, roster_email_key(email) FROM users \
         WHERE id = ANY($1) OR roster_email_key(email) = ANY($2) ORDER BY id FOR UPDATE"
    );
    let statement = transaction.prepare_cached(&select).await?;
    let rows = transaction.query(&statement, &[&ids, &distinct_keys]).await?;
    let mut plan = BulkPlan::default();
    for row in &rows {
        plan.hold(StoredRow::from_row(row)?, row.try_get(7)?);
    }
    let mut keys = asked_keys.into_iter();
    let mut report = BulkReport::default();
    for item in items {
        let key = match item {
            EmailUpdate::Valid { .. } => keys.next(),
            EmailUpdate::Invalid { .. } => None,
        };
        if let Err(reason) = plan.apply(item, key) {
            let (id, email) = match item {
                EmailUpdate::Valid { id, email } => (id, email.as_str()),
                EmailUpdate::Invalid { id, email } => (id, email.as_str()),
            };
            report.failures.push(BulkFailure {
                id: id.clone(),
                email: email.to_owned(),
                reason,
            });
        }
    }
    report.applied = plan.applied();
    report.committed = !mode.dry_run && (!mode.atomic || report.failures.is_empty());
    let changed = plan.changed();
    if !report.committed || changed.is_empty() {
        report.updated = changed.iter().map(|user| user.as_user(at)).collect();
        transaction.rollback().await?;
        return Ok(Applied::refused(ChangeOutcome::BulkUpdated(report)));
    }
    let (changed_ids, emails): (Vec<&str>, Vec<&str>) = changed
        .iter()
        .map(|user| (user.row.user.id().as_str(), user.email.as_str()))
        .unzip();
    if BulkPlan::reuses_an_address(&changed) {
        // One statement checks the unique index row by row, in an order of its own: a user
        // taking the address another changed user gives up could be checked first. Parking
        // every changed user on an address of its own first (unannounced: replicas only
        // hear of the final rows) makes any order right.
        transaction
            .execute("SELECT set_config('roster.quiet', 'on', true)", &[])
            .await?;
        let park = transaction
            .prepare_cached(
                "UPDATE users SET email = chr(1) || 'roster bulk ' || position::text WHERE id = ANY($1)",
            )
            .await?;
        transaction.execute(&park, &[&changed_ids]).await?;
        transaction
            .execute("SELECT set_config('roster.quiet', 'off', true)", &[])
            .await?;
    }
    let update = format!(
        "UPDATE users SET email = v.new_email, updated_at = $3 \
         FROM unnest($1::text[], $2::text[]) AS v(changed_id, new_email) WHERE id = v.changed_id \
         RETURNING {USER_COLUMNS}, pg_current_xact_id()::text"
    );
    let statement = transaction.prepare_cached(&update).await?;
    let mut written: HashMap<String, (StoredRow, u64)> = HashMap::new();
    for row in transaction
        .query(&statement, &[&changed_ids, &emails, &at])
        .await?
    {
        let stored = StoredRow::from_row(&row)?;
        written.insert(stored.user.id().as_str().to_owned(), (stored, tx_of(&row)?));
    }
    let mut tx = None;
    let mut changes = Vec::with_capacity(written.len());
    for id in changed_ids {
        if let Some((stored, row_tx)) = written.remove(id) {
            report.updated.push(Arc::clone(&stored.user));
            tx = Some(row_tx);
            changes.push(RowChange::Upsert(stored));
        }
    }
    transaction.commit().await?;
    Ok(Applied {
        outcome: ChangeOutcome::BulkUpdated(report),
        tx,
        changes,
    })
}

/// The users a bulk touches, as its items leave them, and who holds each address involved.
#[derive(Default)]
struct BulkPlan {
    users: HashMap<String, PlannedUser>,
    /// Email key → id, for every locked user (the unique index allows one holder).
    holders: HashMap<String, String>,
    /// Counts changes, to list changed users by their last one.
    changes: u64,
    /// The users an applied item named, each once (as the domain counts them).
    applied: HashSet<String>,
}

/// One locked user and what the items so far made of it.
struct PlannedUser {
    row: StoredRow,
    /// Its key when read, which it gives up if it changes.
    original_key: String,
    email: String,
    key: String,
    /// The number of its last change, if it changed.
    changed: Option<u64>,
}

impl PlannedUser {
    /// The user as the plan leaves it: its new address, updated at `at`.
    fn as_user(&self, at: DateTime<Utc>) -> Arc<User> {
        let user = &self.row.user;
        Arc::new(User::restore(
            user.id().clone(),
            user.name().to_owned(),
            self.email.clone(),
            user.created_at(),
            Some(at),
        ))
    }
}

impl BulkPlan {
    fn hold(&mut self, row: StoredRow, key: String) {
        let id = row.user.id().as_str().to_owned();
        self.holders.insert(key.clone(), id.clone());
        let email = row.user.email().to_owned();
        self.users.insert(
            id,
            PlannedUser {
                row,
                original_key: key.clone(),
                email,
                key,
                changed: None,
            },
        );
    }

    /// Applies one item (`key`: the database's key of its address, when valid) against the
    /// state the earlier items left, by the domain's rules: an unknown user, then an invalid
    /// address, fail; the address the user already has (exactly) is applied and changes
    /// nothing; an address another user holds fails.
    fn apply(&mut self, item: &EmailUpdate, key: Option<String>) -> Result<(), BulkFailureReason> {
        let (id, email) = match item {
            EmailUpdate::Valid { id, email } => (id.as_str(), Some(email.as_str())),
            EmailUpdate::Invalid { id, .. } => (id.as_str(), None),
        };
        let Some(user) = self.users.get_mut(id) else {
            return Err(BulkFailureReason::NotFound);
        };
        let (Some(email), Some(key)) = (email, key) else {
            return Err(BulkFailureReason::InvalidEmail);
        };
        if user.email == email {
            self.applied.insert(id.to_owned());
            return Ok(());
        }
        if self.holders.get(&key).is_some_and(|holder| holder != id) {
            return Err(BulkFailureReason::EmailInUse);
        }
        if self.holders.get(&user.key).is_some_and(|holder| holder == id) {
            self.holders.remove(&user.key);
        }
        self.holders.insert(key.clone(), id.to_owned());
        self.changes += 1;
        user.email = email.to_owned();
        user.key = key;
        user.changed = Some(self.changes);
        self.applied.insert(id.to_owned());
        Ok(())
    }

    /// How many users the applied items named, each once.
    fn applied(&self) -> usize {
        self.applied.len()
    }

    /// The changed users, in the order of their last change (as the domain reports them).
    fn changed(&self) -> Vec<&PlannedUser> {
        let mut changed: Vec<&PlannedUser> = self.users.values().filter(|u| u.changed.is_some()).collect();
        changed.sort_unstable_by_key(|user| user.changed);
        changed
    }

    /// Whether a changed user ends with an address another changed user held before.
    fn reuses_an_address(changed: &[&PlannedUser]) -> bool {
        let given_up: HashMap<&str, &UserId> = changed
            .iter()
            .map(|user| (user.original_key.as_str(), user.row.user.id()))
            .collect();
        changed.iter().any(|user| {
            given_up
                .get(user.key.as_str())
                .is_some_and(|holder| *holder != user.row.user.id())
        })
    }
}

/// A row written with `RETURNING {USER_COLUMNS}, pg_current_xact_id()`.
fn written(row: &Row, outcome: fn(Arc<User>) -> ChangeOutcome) -> Result<Applied, tokio_postgres::Error> {
    let stored = StoredRow::from_row(row)?;
    Ok(Applied {
        outcome: outcome(Arc::clone(&stored.user)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, UserSet, email_key};

    /// A small deterministic generator: the same cases on every run.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    fn stored(id: &str, email: &str, position: i64) -> StoredRow {
        StoredRow {
            user: Arc::new(User::restore(
                UserId::new(id),
                id.to_uppercase(),
                email.into(),
                None,
                None,
            )),
            position,
            revision: position,
        }
    }

    /// The plan's report for `items` over `users`, worked out as `bulk` does.
    fn planned(users: &[StoredRow], items: &[EmailUpdate], at: DateTime<Utc>) -> BulkReport {
        let mut plan = BulkPlan::default();
        for row in users {
            plan.hold(row.clone(), email_key(row.user.email()));
        }
        let mut report = BulkReport {
            committed: true,
            ..BulkReport::default()
        };
        for item in items {
            let key = match item {
                EmailUpdate::Valid { email, .. } => Some(email.key()),
                EmailUpdate::Invalid { .. } => None,
            };
            match plan.apply(item, key) {
                Ok(()) => {}
                Err(reason) => {
                    let (id, email) = match item {
                        EmailUpdate::Valid { id, email } => (id, email.as_str()),
                        EmailUpdate::Invalid { id, email } => (id, email.as_str()),
                    };
                    report.failures.push(BulkFailure {
                        id: id.clone(),
                        email: email.to_owned(),
                        reason,
                    });
                }
            }
        }
        report.applied = plan.applied();
        report.updated = plan.changed().iter().map(|user| user.as_user(at)).collect();
        report
    }

    #[test]
    fn a_planned_bulk_reports_exactly_what_the_domain_does_item_after_item() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 5, 1, 10, 0, 0).unwrap();
        let ids = ["a", "b", "c", "d", "nobody"];
        let addresses = [
            "a@x.com",
            "B@x.com",
            "b@x.com",
            " c@x.com",
            "z@x.com",
            "y@x.com",
            "no at sign",
        ];
        let mut random = Lcg(7);
        let mut reuses = 0;
        for case in 0..2_000 {
            let users: Vec<StoredRow> = ["a", "b", "c", "d"]
                .iter()
                .enumerate()
                .map(|(at, id)| stored(id, &format!("{id}@x.com"), at as i64 + 1))
                .collect();
            let items: Vec<EmailUpdate> = (0..1 + random.below(8))
                .map(|_| {
                    let id = UserId::new(ids[random.below(ids.len())]);
                    let asked = addresses[random.below(addresses.len())];
                    match Email::parse(asked) {
                        Ok(email) => EmailUpdate::Valid { id, email },
                        Err(_) => EmailUpdate::Invalid {
                            id,
                            email: asked.to_owned(),
                        },
                    }
                })
                .collect();
            let mut set = UserSet::new(users.iter().map(|row| Arc::clone(&row.user)).collect());
            let ChangeOutcome::BulkUpdated(expected) = set.apply(Change::BulkUpdateEmails {
                items: items.clone(),
                at,
                mode: BulkMode::default(),
            }) else {
                panic!("a bulk answers a report")
            };
            let got = planned(&users, &items, at);
            assert_eq!(got.applied, expected.applied, "case {case}: {items:?}");
            assert_eq!(got.failures, expected.failures, "case {case}: {items:?}");
            assert_eq!(got.updated, expected.updated, "case {case}: {items:?}");
            let mut plan = BulkPlan::default();
            for row in &users {
                plan.hold(row.clone(), email_key(row.user.email()));
            }
            for item in &items {
                let key = match item {
                    EmailUpdate::Valid { email, .. } => Some(email.key()),
                    EmailUpdate::Invalid { .. } => None,
                };
                let _ = plan.apply(item, key);
            }
            reuses += usize::from(BulkPlan::reuses_an_address(&plan.changed()));
        }
        assert!(
            reuses > 0,
            "some cases hand an address from one changed user to another"
        );
    }

    #[test]
    fn a_bulk_that_hands_an_address_on_is_recognised() {
        let mut plan = BulkPlan::default();
        plan.hold(stored("a", "x@x.com", 1), "x@x.com".into());
        plan.hold(stored("b", "y@x.com", 2), "y@x.com".into());
        let to = |id: &str, email: &str| EmailUpdate::Valid {
            id: UserId::new(id),
            email: Email::parse(email).unwrap(),
        };
        plan.apply(&to("a", "t@x.com"), Some("t@x.com".into())).unwrap();
        assert!(!BulkPlan::reuses_an_address(&plan.changed()));
        plan.apply(&to("b", "x@x.com"), Some("x@x.com".into())).unwrap();
        assert!(BulkPlan::reuses_an_address(&plan.changed()));
    }
}
