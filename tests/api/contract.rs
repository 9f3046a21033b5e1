//! The contract every [`UserRepository`] adapter must honour, run against each of them.
//!
//! A new storage adapter gets the same guarantees checked by adding one test that calls
//! [`run_contract`] with a way to open it over a folder.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use roster::adapters::outbound::system::SystemClock;
use roster::app::HistoryServices;
use roster::domain::ChangeKind;
use roster::domain::{
    BulkMode, Change, ChangeOutcome, Email, EmailUpdate, Rejection, User, UserEventKind, UserId, UserName,
};
use roster::ports::{ChangeJournal, UserRepository};

/// A store being opened.
pub type Opening = Pin<Box<dyn Future<Output = Arc<dyn UserRepository>> + Send>>;

/// Opens the adapter under test over a store kept in `folder` (a database stands for it
/// in whatever way suits the adapter). Opening twice over the same folder must see the
/// same data (that is how durability is checked).
pub type Open = dyn Fn(&Path) -> Opening + Send + Sync;

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
    snapshot.users().map(|u| u.email().to_owned()).collect()
}

/// A store with a history being opened.
pub type OpeningJournaled =
    Pin<Box<dyn Future<Output = (Arc<dyn UserRepository>, Arc<dyn ChangeJournal>)> + Send>>;

/// Opens an adapter that keeps a history over a store kept in `folder`.
pub type OpenJournaled = dyn Fn(&Path) -> OpeningJournaled + Send + Sync;

/// Runs every clause of the history's contract against fresh stores made by `open`.
pub async fn run_journal_contract(open: &OpenJournaled) {
    let dir = tempfile::tempdir().unwrap();
    let (repo, journal) = open(dir.path()).await;
    let services = HistoryServices::new(Arc::clone(&repo), Arc::clone(&journal), Arc::new(SystemClock));
    let create = |id: &str, email: &str| Change::Create(user(id, email));
    repo.apply(create("a", "a@x.com")).await.unwrap();
    repo.apply(create("b", "b@x.com")).await.unwrap();
    repo.apply(Change::Update {
        id: UserId::new("a"),
        name: UserName::parse("A2").unwrap(),
        email: Email::parse("a2@x.com").unwrap(),
        at: Utc::now(),
    })
    .await
    .unwrap();
    repo.apply(Change::Delete { id: UserId::new("b") }).await.unwrap();

    // Changes after a revision: oldest first, each revision greater, from any point.
    let all = journal.changes(None, 100).await.unwrap();
    let kinds: Vec<(ChangeKind, &str)> = all.iter().map(|c| (c.kind, c.user_id.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Created, "a"),
            (ChangeKind::Created, "b"),
            (ChangeKind::Updated, "a"),
            (ChangeKind::Deleted, "b")
        ]
    );
    assert!(all.windows(2).all(|w| w[0].revision < w[1].revision));
    let after_second = journal.changes(Some(all[1].revision), 1).await.unwrap();
    assert_eq!(after_second.len(), 1);
    assert_eq!(after_second[0].revision, all[2].revision);
    assert!(
        journal
            .changes(Some(all[3].revision), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(journal.oldest_revision().await.unwrap(), Some(all[0].revision));

    // One user's history: newest first, before a revision.
    let a = journal.user_history(&UserId::new("a"), None, 10).await.unwrap();
    assert_eq!(
        a.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Updated, ChangeKind::Created]
    );
    assert_eq!(a[0].before.as_ref().unwrap().email(), "a@x.com");
    assert_eq!(a[0].after.as_ref().unwrap().email(), "a2@x.com");
    let older = journal
        .user_history(&UserId::new("a"), Some(a[0].revision), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].kind, ChangeKind::Created);

    // Restore after an update (rolled back) and after a delete (created again).
    let rolled_back = services
        .restore
        .execute("a", &a[1].revision.to_string())
        .await
        .unwrap();
    assert_eq!(rolled_back.email(), "a@x.com");
    let b_created = all[1].revision.to_string();
    let back = services.restore.execute("b", &b_created).await.unwrap();
    assert_eq!(back.email(), "b@x.com");
    assert_eq!(emails(repo.as_ref()).await.len(), 2);
    let latest = journal.changes(Some(all[3].revision), 10).await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|c| (c.kind, c.user_id.as_str()))
            .collect::<Vec<_>>(),
        [(ChangeKind::Updated, "a"), (ChangeKind::Created, "b")]
    );
    assert!(services.restore.execute("a", "999999").await.is_err());

    // Purge: the user goes and every change of theirs keeps only its number and time.
    assert!(journal.purge(&UserId::new("b")).await.unwrap());
    assert!(repo.snapshot().await.unwrap().get(&UserId::new("b")).is_none());
    let b = journal.user_history(&UserId::new("b"), None, 10).await.unwrap();
    assert!(b.len() >= 4, "{b:?}");
    for change in &b {
        assert_eq!(change.kind, ChangeKind::Purged);
        assert!(change.before.is_none() && change.after.is_none());
    }
    assert!(!journal.purge(&UserId::new("nobody")).await.unwrap());
    let a = journal.user_history(&UserId::new("a"), None, 10).await.unwrap();
    assert!(a.iter().all(|c| c.kind != ChangeKind::Purged));
}

/// Runs every clause of the contract against fresh stores made by `open`.
pub async fn run_contract(open: &Open) {
    starts_empty_and_shows_acknowledged_changes(open).await;
    enforces_email_uniqueness_in_any_case(open).await;
    updates_deletes_and_reports_unknown_ids(open).await;
    applies_bulk_items_in_order(open).await;
    counts_each_user_of_a_bulk_once(open).await;
    keeps_acknowledged_changes_across_a_reopen(open).await;
    serialises_concurrent_changes(open).await;
    patches_only_given_fields_and_refuses_a_stale_version(open).await;
    atomic_and_dry_run_bulk_updates_keep_nothing_on_failure(open).await;
    announces_each_change_to_subscribers_in_order(open).await;
    answers_a_change_that_changes_nothing_without_a_write_or_an_event(open).await;
    keeps_timestamps_to_the_microsecond(open).await;
    builds_its_indexes_right_after_reading_its_users(open).await;
}

async fn builds_its_indexes_right_after_reading_its_users(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    for n in 0..3 {
        repo.apply(Change::Create(user(&format!("u{n}"), &format!("u{n}@x.com"))))
            .await
            .unwrap();
    }
    drop(repo);
    // Reopened, the store reads its users and builds the indexes without being asked.
    let repo = open(dir.path()).await;
    let indexed = tokio::time::timeout(Duration::from_secs(10), repo.indexed())
        .await
        .expect("the indexes are built without a change or a read asking for them")
        .unwrap();
    assert!(indexed.set().is_indexed());
    assert_eq!(indexed.len(), 3);
    assert!(repo.latest().revision() >= indexed.revision());
}

async fn starts_empty_and_shows_acknowledged_changes(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    assert!(repo.snapshot().await.unwrap().is_empty());
    let outcome = repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    assert!(matches!(outcome, ChangeOutcome::Created(_)));
    assert_eq!(emails(repo.as_ref()).await, ["a@x.com"]);
    assert!(repo.health().is_healthy());
}

async fn enforces_email_uniqueness_in_any_case(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    let again = repo.apply(Change::Create(user("b", "A@X.COM"))).await.unwrap();
    assert_eq!(again, ChangeOutcome::Rejected(Rejection::EmailExists));
    assert_eq!(emails(repo.as_ref()).await, ["a@x.com"]);
}

async fn updates_deletes_and_reports_unknown_ids(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
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
    let repo = open(dir.path()).await;
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

async fn counts_each_user_of_a_bulk_once(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
    let item = |id: &str, email: &str| EmailUpdate::Valid {
        id: UserId::new(id),
        email: Email::parse(email).unwrap(),
    };
    let mut items: Vec<EmailUpdate> = (0..50).map(|n| item("a", &format!("a{n}@x.com"))).collect();
    items.extend([item("b", "b@x.com"), item("b", "b@x.com"), item("zz", "z@x.com")]);
    let outcome = repo
        .apply(Change::BulkUpdateEmails {
            items,
            at: Utc::now(),
            mode: BulkMode::default(),
        })
        .await
        .unwrap();
    let ChangeOutcome::BulkUpdated(report) = outcome else {
        panic!("expected a bulk report, got {outcome:?}")
    };
    assert_eq!(report.applied, 2, "a once, b (already so) once: {report:?}");
    assert_eq!(report.updated.len(), 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(emails(repo.as_ref()).await, ["a49@x.com", "b@x.com"]);
}

async fn keeps_acknowledged_changes_across_a_reopen(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let repo = open(dir.path()).await;
        repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
        repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
        repo.apply(Change::Delete { id: UserId::new("a") }).await.unwrap();
    }
    let reopened = open(dir.path()).await;
    assert_eq!(emails(reopened.as_ref()).await, ["b@x.com"]);
}

async fn serialises_concurrent_changes(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
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

async fn patches_only_given_fields_and_refuses_a_stale_version(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
    let read_at = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    let later = Utc.with_ymd_and_hms(2024, 7, 1, 0, 0, 0).unwrap();
    let patch = |name: Option<&str>, email: Option<&str>, expected| Change::Patch {
        id: UserId::new("a"),
        name: name.map(|n| UserName::parse(n).unwrap()),
        email: email.map(|e| Email::parse(e).unwrap()),
        expected_updated_at: expected,
        at: later,
    };
    let taken = repo.apply(patch(None, Some("B@x.com"), None)).await.unwrap();
    assert_eq!(taken, ChangeOutcome::Rejected(Rejection::EmailInUse));
    let renamed = repo
        .apply(patch(Some("Ann"), None, Some(Some(read_at))))
        .await
        .unwrap();
    let ChangeOutcome::Updated(renamed) = renamed else {
        panic!("expected an update, got {renamed:?}")
    };
    assert_eq!(
        (renamed.name(), renamed.email(), renamed.updated_at()),
        ("Ann", "a@x.com", Some(later))
    );
    let stale = repo
        .apply(patch(Some("Again"), None, Some(Some(read_at))))
        .await
        .unwrap();
    assert!(
        matches!(stale, ChangeOutcome::Conflict(ref now) if now.name() == "Ann"),
        "{stale:?}"
    );
    let unknown = Change::Patch {
        id: UserId::new("zz"),
        name: None,
        email: None,
        expected_updated_at: None,
        at: later,
    };
    assert_eq!(
        repo.apply(unknown).await.unwrap(),
        ChangeOutcome::Rejected(Rejection::NotFound)
    );
}

async fn atomic_and_dry_run_bulk_updates_keep_nothing_on_failure(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    repo.apply(Change::Create(user("b", "b@x.com"))).await.unwrap();
    let bulk = |atomic, dry_run| Change::BulkUpdateEmails {
        items: vec![
            EmailUpdate::Valid {
                id: UserId::new("a"),
                email: Email::parse("new@x.com").unwrap(),
            },
            EmailUpdate::Invalid {
                id: UserId::new("b"),
                email: "nope".into(),
            },
            EmailUpdate::Invalid {
                id: UserId::new("zz"),
                email: "nope".into(),
            },
        ],
        at: Utc::now(),
        mode: BulkMode { atomic, dry_run },
    };
    for (atomic, dry_run) in [(true, false), (false, true)] {
        let outcome = repo.apply(bulk(atomic, dry_run)).await.unwrap();
        let ChangeOutcome::BulkUpdated(report) = outcome else {
            panic!("expected a bulk report, got {outcome:?}")
        };
        assert!(!report.committed);
        assert_eq!(report.applied, 1, "it says what would apply");
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert_eq!(failures, ["b invalid email", "zz not found"]);
        assert_eq!(emails(repo.as_ref()).await, ["a@x.com", "b@x.com"]);
    }
    let ChangeOutcome::BulkUpdated(report) = repo.apply(bulk(false, false)).await.unwrap() else {
        panic!("expected a bulk report")
    };
    assert!(report.committed);
    assert_eq!(emails(repo.as_ref()).await, ["new@x.com", "b@x.com"]);
}

async fn announces_each_change_to_subscribers_in_order(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
    let mut feed = repo.subscribe();
    repo.apply(Change::Create(user("a", "a@x.com"))).await.unwrap();
    repo.apply(Change::Create(user("b", "A@x.com"))).await.unwrap();
    repo.apply(Change::Update {
        id: UserId::new("a"),
        name: UserName::parse("Ann").unwrap(),
        email: Email::parse("a@x.com").unwrap(),
        at: Utc::now(),
    })
    .await
    .unwrap();
    repo.apply(Change::Delete { id: UserId::new("a") }).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .expect("an event within 5 s")
            .expect("no lag");
        seen.push((event.kind, event.user.name().to_owned()));
    }
    assert_eq!(
        seen,
        [
            (UserEventKind::Created, "a".to_owned()),
            (UserEventKind::Updated, "Ann".to_owned()),
            (UserEventKind::Deleted, "Ann".to_owned()),
        ]
    );
    let extra = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await;
    assert!(
        extra.is_err(),
        "a refused change is no event, and none comes twice: {extra:?}"
    );
}

async fn answers_a_change_that_changes_nothing_without_a_write_or_an_event(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
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
    assert_eq!(stored.users().next().unwrap().updated_at(), created.updated_at());
}

async fn keeps_timestamps_to_the_microsecond(open: &Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path()).await;
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
    assert_eq!(
        created.updated_at().unwrap().timestamp_subsec_nanos(),
        123_456_000
    );
    // As stored: read back by a store opened afresh, not the user handed back.
    let reopened = open(dir.path()).await;
    let stored = reopened.snapshot().await.unwrap();
    let stored_at = stored.users().next().unwrap().updated_at().unwrap();
    assert_eq!(stored_at.timestamp_subsec_nanos(), 123_456_000);
    drop(reopened);
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
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::helpers::scratch::{ScratchDatabase, test_server};
    use roster::adapters::outbound::cache::CachedUserRepository;
    use roster::adapters::outbound::json_file::JsonFileUserRepository;
    use roster::adapters::outbound::postgres::{PostgresOptions, PostgresUserRepository};

    fn json_file(folder: &Path) -> Arc<JsonFileUserRepository> {
        Arc::new(JsonFileUserRepository::open(folder.join("users.json")).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_json_file_store_honours_the_contract() {
        run_contract(&|folder: &Path| -> Opening {
            let store = json_file(folder) as Arc<dyn UserRepository>;
            Box::pin(async move { store })
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_json_file_stores_history_honours_the_contract() {
        run_journal_contract(&|folder: &Path| -> OpeningJournaled {
            let store = json_file(folder);
            Box::pin(async move {
                (
                    Arc::clone(&store) as Arc<dyn UserRepository>,
                    store as Arc<dyn ChangeJournal>,
                )
            })
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL"]
    async fn the_postgres_stores_history_honours_the_contract() {
        let Some(server) = test_server("the history's contract").await else {
            return;
        };
        let database = Arc::new(ScratchDatabase::create(&server, "roster_contract").await.unwrap());
        let opener = Arc::clone(&database);
        run_journal_contract(&move |_: &Path| -> OpeningJournaled {
            let url = opener.url().to_owned();
            Box::pin(async move {
                let store = Arc::new(
                    PostgresUserRepository::connect(PostgresOptions::new(url))
                        .await
                        .unwrap(),
                );
                (
                    Arc::clone(&store) as Arc<dyn UserRepository>,
                    store as Arc<dyn ChangeJournal>,
                )
            })
        })
        .await;
        if let Ok(database) = Arc::try_unwrap(database) {
            database.remove().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cache_over_the_json_file_store_honours_the_contract() {
        run_contract(&|folder: &Path| -> Opening {
            let store = json_file(folder);
            Box::pin(async move {
                Arc::new(CachedUserRepository::new(store, Duration::from_secs(5))) as Arc<dyn UserRepository>
            })
        })
        .await;
    }

    /// One scratch database per folder, dropped when the test ends.
    struct Databases {
        server: String,
        by_folder: Mutex<HashMap<PathBuf, Arc<ScratchDatabase>>>,
    }

    impl Databases {
        async fn open(self: Arc<Self>, folder: PathBuf, cached: bool) -> Arc<dyn UserRepository> {
            let known = self.by_folder.lock().unwrap().get(&folder).cloned();
            let database = match known {
                Some(database) => database,
                None => {
                    let database = Arc::new(
                        ScratchDatabase::create(&self.server, "roster_contract")
                            .await
                            .unwrap(),
                    );
                    self.by_folder
                        .lock()
                        .unwrap()
                        .insert(folder, Arc::clone(&database));
                    database
                }
            };
            let store = Arc::new(
                PostgresUserRepository::connect(PostgresOptions::new(database.url()))
                    .await
                    .unwrap(),
            );
            if !cached {
                return store;
            }
            Arc::new(CachedUserRepository::new(store, Duration::from_secs(5)))
        }
    }

    async fn postgres_contract(cached: bool) {
        let Some(server) = test_server("the repository contract").await else {
            return;
        };
        let databases = Arc::new(Databases {
            server,
            by_folder: Mutex::new(HashMap::new()),
        });
        let opener = Arc::clone(&databases);
        run_contract(&move |folder: &Path| -> Opening {
            Box::pin(Arc::clone(&opener).open(folder.to_path_buf(), cached))
        })
        .await;
        // Dropping a database waits for a checkpoint: drop them all at once.
        let scratch: Vec<_> = databases
            .by_folder
            .lock()
            .unwrap()
            .drain()
            .map(|(_, db)| db)
            .collect();
        let removals = scratch
            .into_iter()
            .filter_map(|db| Arc::try_unwrap(db).ok())
            .map(ScratchDatabase::remove);
        for removed in async_graphql::futures_util::future::join_all(removals).await {
            removed.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL"]
    async fn the_postgres_store_honours_the_contract() {
        postgres_contract(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL"]
    async fn the_cache_over_the_postgres_store_honours_the_contract() {
        postgres_contract(true).await;
    }
}
