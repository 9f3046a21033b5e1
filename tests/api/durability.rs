//! Nothing lost (docs/src/storage.md, The data file): the real binary, killed with SIGKILL
//! mid-storm, two processes on one file, a sequential model of concurrent mixed mutations, a
//! person's edit during a write storm, and a folder that vanishes under a running service.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::eventually;
use crate::helpers::spawned::{RosterProcess, create_storm};

fn file_users(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).expect("the data file exists");
    let value: Value = serde_json::from_slice(&bytes).expect("the data file is valid JSON");
    value.as_array().expect("the data file is an array").clone()
}

fn file_emails(path: &Path) -> Vec<String> {
    file_users(path)
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .collect()
}

fn temp_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .expect("folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("roster-tmp"))
        })
        .collect()
}

/// A pseudo-random delay in `range` milliseconds, different on every call.
fn random_millis(range: std::ops::Range<u64>) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    Duration::from_millis(range.start + nanos % (range.end - range.start))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_at_any_moment_loses_no_acknowledged_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..5 {
        let mut roster = RosterProcess::start(&path).await;
        let clients = create_storm(&roster.base, round, 8, &acknowledged);
        tokio::time::sleep(random_millis(150..900)).await;
        roster.kill9().await;
        for client in clients {
            client.await.unwrap();
        }
        let on_disk: HashSet<String> = file_emails(&path).into_iter().collect();
        let acked = acknowledged.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round}: the storm acknowledged nothing");
        let lost: Vec<_> = acked.iter().filter(|e| !on_disk.contains(*e)).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged but lost: {lost:?}");
    }
    // A restart after the last crash starts cleanly: no temporary file is left behind and
    // the lock the killed process held does not block writes.
    let roster = RosterProcess::start(&path).await;
    assert!(temp_files(dir.path()).is_empty(), "{:?}", temp_files(dir.path()));
    assert!(
        roster
            .create("After", "after@crash.test")
            .await
            .unwrap()
            .is_some()
    );
    let listed: HashSet<String> = roster.emails().await.into_iter().collect();
    for email in acknowledged.lock().unwrap().iter() {
        assert!(
            listed.contains(email),
            "{email} is missing from the API after restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_file_lose_nothing_and_share_uniqueness() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let first = Arc::new(RosterProcess::start(&path).await);
    let second = Arc::new(RosterProcess::start(&path).await);
    let mut tasks = Vec::new();
    for (side, roster) in [("a", &first), ("b", &second)] {
        for client in 0..4 {
            let roster = Arc::clone(roster);
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut contested = 0;
                for n in 0..25 {
                    let email = format!("{side}{client}-{n}@two.test");
                    if roster.create("Two", &email).await.unwrap().is_some() {
                        acked.push(email);
                    }
                    let shared = format!("Contested{n}@Two.Test");
                    contested += usize::from(roster.create("Contested", &shared).await.unwrap().is_some());
                }
                (acked, contested)
            }));
        }
    }
    let mut acked = Vec::new();
    let mut contested_wins = 0;
    for task in tasks {
        let (emails, wins) = task.await.unwrap();
        acked.extend(emails);
        contested_wins += wins;
    }
    assert_eq!(acked.len(), 200, "every distinct create is acknowledged");
    assert_eq!(
        contested_wins, 25,
        "each contested email is won exactly once across both processes"
    );
    let on_disk = file_emails(&path);
    let keys: HashSet<String> = on_disk.iter().map(|e| e.to_lowercase()).collect();
    assert_eq!(keys.len(), on_disk.len(), "no email twice in the file");
    assert_eq!(on_disk.len(), 225);
    for email in &acked {
        assert!(keys.contains(&email.to_lowercase()), "{email} lost");
    }
    // Each process sees the other's writes (through its watcher, well before the TTL).
    eventually(
        Duration::from_secs(3),
        "each process seeing the other's writes",
        || async { first.emails().await.len() == 225 && second.emails().await.len() == 225 },
    )
    .await;
}

/// What the model keeps of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Modelled {
    name: String,
    email: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mixed_mutations_end_as_a_sequential_model_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let roster = Arc::new(RosterProcess::start(&path).await);
    // Each client works on its own users, so the acknowledged operations of different
    // clients commute and each client's own order defines the expected end state.
    let mut tasks = Vec::new();
    for client in 0..6 {
        let roster = Arc::clone(&roster);
        tasks.push(tokio::spawn(async move {
            let mut model: BTreeMap<String, Modelled> = BTreeMap::new();
            let mut ids = Vec::new();
            for n in 0..12 {
                let email = format!("m{client}-{n}@model.test");
                let id = roster.create(&format!("M{client}-{n}"), &email).await.unwrap().expect("create");
                model.insert(id.clone(), Modelled { name: format!("M{client}-{n}"), email });
                ids.push(id);
            }
            for (n, id) in ids.iter().enumerate().step_by(3) {
                let (name, email) = (format!("U{client}-{n}"), format!("u{client}-{n}@model.test"));
                let answer = roster
                    .gql(
                        "mutation($u: UserInput!) { updateUser(userData: $u) { ok } }",
                        json!({ "u": { "id": id, "name": name, "email": email } }),
                    )
                    .await
                    .unwrap();
                assert_eq!(answer["data"]["updateUser"]["ok"], true, "{answer}");
                model.insert(id.clone(), Modelled { name, email });
            }
            for id in ids.iter().skip(1).step_by(4) {
                let answer = roster
                    .gql("mutation($id: ID!) { deleteUser(id: $id) { ok } }", json!({ "id": id }))
                    .await
                    .unwrap();
                assert_eq!(answer["data"]["deleteUser"]["ok"], true, "{answer}");
                model.remove(id);
            }
            let survivors: Vec<String> = model.keys().cloned().collect();
            let updates: Vec<Value> = survivors
                .iter()
                .take(3)
                .map(|id| json!({ "id": id, "email": format!("bulk-{id}@model.test") }))
                .chain([json!({ "id": "no-such-id", "email": "x@model.test" })])
                .collect();
            let answer = roster
                .gql(
                    "mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { updatedCount failed } }",
                    json!({ "u": updates }),
                )
                .await
                .unwrap();
            assert_eq!(answer["data"]["bulkUpdateEmails"]["updatedCount"], 3, "{answer}");
            for id in survivors.iter().take(3) {
                if let Some(user) = model.get_mut(id) {
                    user.email = format!("bulk-{id}@model.test");
                }
            }
            model
        }));
    }
    let mut expected = BTreeMap::new();
    for task in tasks {
        expected.extend(task.await.unwrap());
    }
    let actual: BTreeMap<String, Modelled> = file_users(&path)
        .iter()
        .map(|u| {
            let text = |key: &str| u[key].as_str().unwrap_or_default().to_owned();
            (
                text("id"),
                Modelled {
                    name: text("name"),
                    email: text("email"),
                },
            )
        })
        .collect();
    assert_eq!(actual, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_edit_during_a_write_storm_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let roster = Arc::new(RosterProcess::start(&path).await);
    let after_edit = Arc::new(Mutex::new(Vec::<String>::new()));
    let edited = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (roster, after_edit, edited) =
            (Arc::clone(&roster), Arc::clone(&after_edit), Arc::clone(&edited));
        clients.push(tokio::spawn(async move {
            for n in 0..60 {
                let was_edited = edited.load(std::sync::atomic::Ordering::SeqCst);
                let email = format!("s{client}-{n}@storm.test");
                if roster.create("Storm", &email).await.unwrap().is_some() && was_edited {
                    after_edit.lock().unwrap().push(email);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // An editor's save: read, add a record, write a new file and rename it over the old one.
    let mut users = file_users(&path);
    users.push(json!({ "id": "by-hand", "name": "Hand Edit", "email": "hand@storm.test", "note": "typed" }));
    let staging = dir.path().join("users.json.editor-swap");
    std::fs::write(&staging, serde_json::to_vec_pretty(&users).unwrap()).unwrap();
    std::fs::rename(&staging, &path).unwrap();
    edited.store(true, std::sync::atomic::Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let final_users = file_users(&path);
    let hand = final_users
        .iter()
        .find(|u| u["id"] == "by-hand")
        .expect("the hand-added user survives");
    assert_eq!(hand["note"], "typed");
    let on_disk: HashSet<String> = file_emails(&path).into_iter().collect();
    for email in after_edit.lock().unwrap().iter() {
        assert!(
            on_disk.contains(email),
            "{email}, acknowledged after the edit, is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vanished_folder_fails_writes_cleanly_until_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("data");
    std::fs::create_dir(&folder).unwrap();
    let path = folder.join("users.json");
    let roster = RosterProcess::start(&path).await;
    assert!(
        roster
            .create("Before", "before@gone.test")
            .await
            .unwrap()
            .is_some()
    );
    let away = root.path().join("moved-away");
    std::fs::rename(&folder, &away).unwrap();

    let answer = roster
        .gql(
            "mutation { createUser(userData: {name: \"During\", email: \"during@gone.test\"}) { ok message } }",
            json!({}),
        )
        .await
        .unwrap();
    let refused_as_payload = answer["data"]["createUser"]["ok"] == false;
    let refused_as_error = answer["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE";
    assert!(refused_as_payload || refused_as_error, "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("users.json") && message.contains("No such file"),
        "{answer}"
    );

    let health = roster
        .client
        .get(format!("{}/health", roster.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert!(
        body["writeError"]
            .as_str()
            .unwrap_or_default()
            .contains("No such file"),
        "{body}"
    );
    let reads = roster.gql("{ allUsers { email } }", json!({})).await.unwrap();
    assert!(
        reads["data"]["allUsers"].is_array(),
        "reads keep working: {reads}"
    );
    assert_eq!(
        file_emails(&away.join("users.json")),
        ["before@gone.test"],
        "the old file is intact"
    );

    std::fs::rename(&away, &folder).unwrap();
    assert!(roster.create("After", "after@gone.test").await.unwrap().is_some());
    let health = roster
        .client
        .get(format!("{}/health", roster.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(file_emails(&path), ["before@gone.test", "after@gone.test"]);
    assert!(temp_files(&folder).is_empty());
}
