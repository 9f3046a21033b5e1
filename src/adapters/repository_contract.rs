//! The contract every [`UserRepository`] adapter must honour, run against each of them.
//!
//! A new storage adapter gets the same guarantees checked by adding one test that calls
//! [`run_contract`] with a way to open it over a folder.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use crate::domain::{BulkMode, Change, ChangeOutcome, Email, EmailUpdate, Rejection, User, UserId, UserName};
use crate::ports::UserRepository;

/// Opens the adapter under test over a store kept in `folder`. Opening twice over the same
/// folder must see the same data (that is how durability is checked).
pub type Open = dyn Fn(&Path) -> Arc<dyn UserRepository>;

fn user(id: &str, email: &str) -> User {
    User::new(
        UserId::new(id),
        UserName::parse(id).unwrap(),
        Email::parse(email).unwrap(),
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap(),
    )
}

async fn emails(repo: &dyn UserRepository) -> Vec<String> {
    let snapshot = repo.snapshot().await.unwrap();
    snapshot.users().iter().map(|u| u.email().to_owned()).collect()
}

/// Runs every clause of the contract against fresh stores made by `open`.
pub async fn run_contract(open: &Open) {
    starts_empty_and_shows_acknowledged_changes(open).await;
    enforces_email_uniqueness_in_any_case(open).await;
    updates_deletes_and_reports_unknown_ids(open).await;
    applies_bulk_items_in_order(open).await;
    keeps_acknowledged_changes_across_a_reopen(open).await;
    serialises_concurrent_changes(open).await;
    answers_a_change_that_changes_nothing_without_a_write_or_an_event(open).await;
    keeps_timestamps_to_the_microsecond(open).await;
}

async fn starts_empty_and_shows_acknowledged_changes(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    assert!(repo.snapshot().await.unwrap().is_empty());
    let outcome = repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    assert!(matches!(outcome, ChangeOutcome::Created(_)));
    assert_eq!(emails(repo.as_ref()).await, ["a@x.com"]);
    assert!(repo.health().is_healthy());
}

async fn enforces_email_uniqueness_in_any_case(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    let again = repo.apply(Change::Create(user("b", "A@X.COM"))).await.unwrap();
    assert_eq!(again, ChangeOutcome::Rejected(Rejection::EmailExists));
    assert_eq!(emails(repo.as_ref()).await, ["a@x.com"]);
}

async fn updates_deletes_and_reports_unknown_ids(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    let at = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let update = |id: &str| Change::Update {
        id: UserId::new(id),
        name: UserName::parse("Renamed").unwrap(),
        email: Email::parse("new@x.com").unwrap(),
        at,
    };
    assert!(
        matches!(repo.apply(update("a")).await.unwrap(), ChangeOutcome::Updated(u) if u.updated_at() == Some(at))
    );
    assert_eq!(
        repo.apply(update("zz")).await.unwrap(),
        ChangeOutcome::Rejected(Rejection::NotFound)
    );
    let delete = || Change::Delete { id: UserId::new("a") };
    assert!(
        matches!(repo.apply(delete()).await.unwrap(), ChangeOutcome::Deleted(u) if u.name() == "Renamed")
    );
    assert_eq!(
        repo.apply(delete()).await.unwrap(),
        ChangeOutcome::Rejected(Rejection::NotFound)
    );
    assert!(repo.snapshot().await.unwrap().is_empty());
}

async fn applies_bulk_items_in_order(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
    let item = |id: &str, email: &str| EmailUpdate::Valid {
        id: UserId::new(id),
        email: Email::parse(email).unwrap(),
    };
    let outcome = repo
        .apply(Change::BulkUpdateEmails {
            items: vec![item("a", "c@x.com"), item("b", "C@x.com"), item("b", "a@x.com")],
            at: Utc::now(),
            mode: BulkMode::default(),
        })
        .await
        .unwrap();
    let ChangeOutcome::BulkUpdated(report) = outcome else {
        panic!("expected a bulk report, got {outcome:?}")
    };
    assert_eq!(report.applied, 2);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(emails(repo.as_ref()).await, ["c@x.com", "a@x.com"]);
}

async fn keeps_acknowledged_changes_across_a_reopen(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let repo = open(dir.path());
        repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
        repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
        repo.apply(Change::Delete { id: UserId::new("a") }).await.unwrap();
    }
    let reopened = open(dir.path());
    assert_eq!(emails(reopened.as_ref()).await, ["b@x.com"]);
}

async fn serialises_concurrent_changes(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    let mut tasks = Vec::new();
    for n in 0..64 {
        let repo = Arc::clone(&repo);
        tasks.push(tokio::spawn(async move {
            let distinct = repo.apply(Change::Create(user(&format!("u{n}"), &format!("u{n}@x.com"))));
            let same = repo.apply(Change::Create(user(&format!("s{n}"), "same@x.com")));
            (distinct.await.unwrap(), same.await.unwrap())
        }));
    }
    let mut same_created = 0;
    for task in tasks {
        let (distinct, same) = task.await.unwrap();
        assert!(matches!(distinct, ChangeOutcome::Created(_)));
        same_created += usize::from(matches!(same, ChangeOutcome::Created(_)));
    }
    assert_eq!(same_created, 1);
    assert_eq!(repo.snapshot().await.unwrap().len(), 65);
}

async fn answers_a_change_that_changes_nothing_without_a_write_or_an_event(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    let ChangeOutcome::Created(created) = repo.apply(Change::Create(user("a", "A@x.com"))).await.unwrap()
    else {
        panic!("not created")
    };
    let mut events = repo.subscribe();
    let later = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let same = repo
        .apply(Change::Update {
            id: UserId::new("a"),
            name: UserName::parse(" a ").unwrap(),
            email: Email::parse("A@x.com").unwrap(),
            at: later,
        })
        .await
        .unwrap();
    assert!(
        matches!(same, ChangeOutcome::Unchanged(ref u) if u.updated_at() == created.updated_at()),
        "{same:?}"
    );
    let patched = repo
        .apply(Change::Patch {
            id: UserId::new("a"),
            name: None,
            email: Some(Email::parse("A@x.com").unwrap()),
            expected_updated_at: Some(created.updated_at()),
            at: later,
        })
        .await
        .unwrap();
    assert!(matches!(patched, ChangeOutcome::Unchanged(_)), "{patched:?}");
    assert!(
        events.try_recv().is_err(),
        "a change that changed nothing was announced"
    );
    let stored = repo.snapshot().await.unwrap();
    assert_eq!(stored.users()[0].updated_at(), created.updated_at());
}

async fn keeps_timestamps_to_the_microsecond(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path());
    let precise =
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_456_789);
    let fresh = User::new(
        UserId::new("a"),
        UserName::parse("A").unwrap(),
        Email::parse("a@x.com").unwrap(),
        precise,
    );
    let ChangeOutcome::Created(created) = repo.apply(Change::Create(fresh)).await.unwrap() else {
        panic!("not created")
    };
    let micros = created.updated_at().unwrap();
    assert_eq!(micros.timestamp_subsec_nanos(), 123_456_000);
    // What a client read compares equal to what is stored.
    let patched = repo
        .apply(Change::Patch {
            id: UserId::new("a"),
            name: Some(UserName::parse("B").unwrap()),
            email: None,
            expected_updated_at: Some(Some(precise)),
            at: precise,
        })
        .await
        .unwrap();
    assert!(matches!(patched, ChangeOutcome::Updated(_)), "{patched:?}");
}

mod against {
    use std::time::Duration;

    use super::*;
    use crate::adapters::cache::CachedUserRepository;
    use crate::adapters::json_file::JsonFileUserRepository;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_json_file_store_honours_the_contract() {
        run_contract(&|folder: &Path| {
            Arc::new(JsonFileUserRepository::open(folder.join("users.json")).unwrap())
                as Arc<dyn UserRepository>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cache_over_the_json_file_store_honours_the_contract() {
        run_contract(&|folder: &Path| {
            let store = Arc::new(JsonFileUserRepository::open(folder.join("users.json")).unwrap());
            Arc::new(CachedUserRepository::new(store, Duration::from_secs(5))) as Arc<dyn UserRepository>
        })
        .await;
    }
}
