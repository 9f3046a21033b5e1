//! The JSON store's honest edges: `/health` follows the file's real state, timestamps
//! compare as clients read them, a change that changes nothing writes nothing, records that
//! share an id stay distinct, a symlinked file keeps its link, owner and group, and the
//! store keeps itself fresh (its own watcher, and a periodic check when events are lost).

use std::time::Duration;

use roster::adapters::outbound::json_file::{JsonFileUserRepository, StoreOptions};
use roster::ports::UserRepository;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WATCH_DEADLINE, assert_no_errors, eventually, spawn_app_in, spawn_app_with, spawn_app_with_users,
};

const PATCH: &str =
    "mutation($i: PatchUserInput!) { patchUser(input: $i) { ok message user { name email updatedAt } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_drops_the_corrupt_note_once_a_mutation_replaced_the_file() {
    let app = spawn_app_with("{not json").await;
    assert!(app.all_users().await.is_empty());
    let health = app.health().await;
    assert!(health["corrupt"].is_string(), "{health}");
    app.create_ok("Ann", "ann@x.com").await;
    eventually(
        WATCH_DEADLINE,
        "the corrupt note clears after our write",
        || async { app.health().await["corrupt"].is_null() },
    )
    .await;
    let health = app.health().await;
    assert_eq!(
        (health["status"].clone(), health["users"].clone()),
        (json!("ok"), json!(1)),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_drops_the_corrupt_note_once_someone_else_put_a_good_file_in_place() {
    let app = spawn_app_with("[{broken").await;
    assert!(app.health().await["corrupt"].is_string());
    std::fs::write(
        &app.data_file,
        r#"[{"id": "u1", "name": "Ann", "email": "ann@x.com"}]"#,
    )
    .unwrap();
    app.wait_for_names("the repaired file", |names| names == ["Ann"])
        .await;
    eventually(
        WATCH_DEADLINE,
        "the corrupt note clears after a person's fix",
        || async { app.health().await["corrupt"].is_null() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_updated_at_matches_a_stored_timestamp_with_more_than_six_fractional_digits() {
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ann", "email": "ann@x.com",
          "created_at": "2024-05-01T10:00:00.1234567Z", "updated_at": "2024-05-01T10:00:00.1234567Z" }
    ]))
    .await;
    let seen = app.all_users().await[0]["updatedAt"].clone();
    assert_eq!(seen, "2024-05-01T10:00:00.123456Z");
    let answer = app
        .gql(
            PATCH,
            json!({ "i": { "id": "u1", "name": "Anne", "expectedUpdatedAt": seen } }),
        )
        .await;
    assert_no_errors(&answer);
    let payload = &answer["data"]["patchUser"];
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["name"], "Anne");
}

/// The data file's identity: a rewrite renames a new file over it, so its inode changes.
#[cfg(unix)]
fn file_identity(app: &TestApp) -> (u64, Vec<u8>) {
    use std::os::unix::fs::MetadataExt;
    (std::fs::metadata(&app.data_file).unwrap().ino(), app.file_bytes())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_or_patch_that_changes_nothing_answers_ok_and_writes_nothing() {
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ann", "email": "Ann@X.com",
          "created_at": "2024-05-01T10:00:00.000000Z", "updated_at": "2024-05-01T10:00:00.000000Z" }
    ]))
    .await;
    let before = file_identity(&app);
    let payload = app
        .update_user(json!({ "id": "u1", "name": " Ann ", "email": "Ann@X.com" }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["message"], "User updated.");
    assert_eq!(
        payload["user"]["updatedAt"], "2024-05-01T10:00:00.000000Z",
        "{payload}"
    );
    let answer = app
        .gql(
            PATCH,
            json!({ "i": { "id": "u1", "email": "Ann@X.com", "expectedUpdatedAt": "2024-05-01T10:00:00Z" } }),
        )
        .await;
    assert_eq!(answer["data"]["patchUser"]["ok"], true, "{answer}");
    assert_eq!(
        answer["data"]["patchUser"]["user"]["updatedAt"],
        "2024-05-01T10:00:00.000000Z"
    );
    let bulk = app
        .bulk_update(json!([{ "id": "u1", "email": "Ann@X.com" }]))
        .await;
    assert_eq!(bulk["ok"], true, "{bulk}");
    assert_eq!(file_identity(&app), before, "the file was rewritten");
    assert_eq!(
        app.all_users().await[0]["updatedAt"],
        "2024-05-01T10:00:00.000000Z"
    );

    // A change of case is a change: the address is kept as given.
    let payload = app
        .update_user(json!({ "id": "u1", "name": "Ann", "email": "ann@x.com" }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_ne!(payload["user"]["updatedAt"], "2024-05-01T10:00:00.000000Z");
    assert_eq!(app.file_records()[0]["email"], "ann@x.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sharing_an_id_keep_their_own_unknown_keys_through_a_rewrite() {
    let app = spawn_app_with_users(&json!([
        { "id": "1", "name": "Ann", "email": "ann@x.com", "role": "user" },
        { "id": "1", "name": "Bob", "email": "bob@x.com", "role": "admin" },
    ]))
    .await;
    app.create_ok("Carl", "carl@x.com").await;
    let records = app.file_records();
    let roles: Vec<(Value, Value)> = records
        .iter()
        .map(|r| (r["name"].clone(), r["role"].clone()))
        .collect();
    assert_eq!(
        roles,
        [
            (json!("Ann"), json!("user")),
            (json!("Bob"), json!("admin")),
            (json!("Carl"), Value::Null)
        ]
    );
    // Updating the first of them moves its keys along and leaves the second's alone.
    let payload = app
        .update_user(json!({ "id": "1", "name": "Ann B", "email": "ann@x.com" }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    let records = app.file_records();
    assert_eq!(
        (records[0]["name"].clone(), records[0]["role"].clone()),
        (json!("Ann B"), json!("user"))
    );
    assert_eq!(
        (records[1]["name"].clone(), records[1]["role"].clone()),
        (json!("Bob"), json!("admin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sharing_an_id_each_appear_once_when_paging_with_cursors() {
    let app = spawn_app_with_users(&json!([
        { "id": "1", "name": "Ann", "email": "ann@x.com" },
        { "id": "1", "name": "Bob", "email": "bob@x.com" },
        { "id": "2", "name": "Carl", "email": "carl@x.com" },
        { "id": "1", "name": "Dora", "email": "dora@x.com" },
    ]))
    .await;
    let query = "query($after: String) { users(first: 1, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for _ in 0..10 {
        let answer = app.gql(query, json!({ "after": after })).await;
        assert_no_errors(&answer);
        let page = &answer["data"]["users"];
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["name"].as_str().unwrap().to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    seen.sort();
    assert_eq!(seen, ["Ann", "Bob", "Carl", "Dora"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_data_file_is_written_through_to_its_target_and_the_link_stays() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(
        real.join("people.json"),
        r#"[{"id": "u1", "name": "Ann", "email": "ann@x.com"}]"#,
    )
    .unwrap();
    std::os::unix::fs::symlink("real/people.json", dir.path().join("users.json")).unwrap();
    let app = spawn_app_in(dir).await;
    assert_eq!(app.all_users().await.len(), 1);
    app.create_ok("Bob", "bob@x.com").await;
    let link = std::fs::symlink_metadata(&app.data_file).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link was replaced by a plain file"
    );
    let target: Value = serde_json::from_slice(&std::fs::read(real.join("people.json")).unwrap()).unwrap();
    let names: Vec<&str> = target
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann", "Bob"]);
    let mut beside_target = crate::helpers::folder_entries(&real);
    beside_target
        .retain(|name| name != "people.json" && name != "people.json.lock" && name != "people.json.history");
    assert!(
        beside_target.is_empty(),
        "left beside the target: {beside_target:?}"
    );
    // A person's edit of the target, through the link, still shows.
    std::fs::write(
        real.join("people.json"),
        r#"[{"id": "u9", "name": "Zed", "email": "zed@x.com"}]"#,
    )
    .unwrap();
    app.wait_for_names("an edit of the link's target", |names| names == ["Zed"])
        .await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_keeps_the_files_owner_and_group() {
    use std::os::unix::fs::MetadataExt;
    let app = spawn_app_with("[]").await;
    let ours = std::fs::metadata(&app.data_file).unwrap();
    // Giving a file away takes root; as anyone else there is no other owner to keep.
    if ours.uid() != 0 {
        eprintln!("skipped: only root can give the data file another owner");
        return;
    }
    std::os::unix::fs::chown(&app.data_file, Some(4242), Some(4343)).unwrap();
    app.create_ok("Ann", "ann@x.com").await;
    let after = std::fs::metadata(&app.data_file).unwrap();
    assert_eq!((after.uid(), after.gid()), (4242, 4343));
    assert_eq!(app.file_records().len(), 1);
}

/// Opens a store on `users.json` in a fresh folder holding `[]`, with `options`.
fn bare_store(options: StoreOptions) -> (tempfile::TempDir, std::path::PathBuf, JsonFileUserRepository) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    std::fs::write(&path, "[]\n").unwrap();
    let store = JsonFileUserRepository::open_with(&path, options).unwrap();
    (dir, path, store)
}

const HAND_EDIT: &str = r#"[{"id": "h1", "name": "Hand", "email": "hand@example.com",
  "created_at": "2024-01-01T00:00:00Z", "updated_at": null}]"#;

/// Waits at most `deadline` for the next event of `events`, with nobody reading the store.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<roster::domain::UserEvent>,
    deadline: Duration,
) -> Option<roster::domain::UserEvent> {
    tokio::time::timeout(deadline, events.recv())
        .await
        .ok()
        .and_then(Result::ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_watcher_the_store_still_notices_a_hand_edit_by_itself_with_no_reader() {
    let options = StoreOptions {
        watch: false,
        check_every: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let (_dir, path, store) = bare_store(options);
    let mut events = store.subscribe();
    std::fs::write(&path, HAND_EDIT).unwrap();
    let event = next_event(&mut events, Duration::from_secs(10))
        .await
        .expect("the periodic check publishes the hand edit");
    assert_eq!(event.user.name(), "Hand");
    assert_eq!(store.latest().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_own_watcher_tells_subscribers_of_a_hand_edit_long_before_its_periodic_check() {
    let options = StoreOptions {
        check_every: Duration::from_secs(3600),
        ..StoreOptions::default()
    };
    let (_dir, path, store) = bare_store(options);
    let mut events = store.subscribe();
    std::fs::write(&path, HAND_EDIT).unwrap();
    let event = next_event(&mut events, WATCH_DEADLINE)
        .await
        .expect("the watcher publishes the hand edit");
    assert_eq!(event.user.name(), "Hand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_neither_watches_nor_checks_soon_publishes_nothing_until_asked() {
    let options = StoreOptions {
        watch: false,
        check_every: Duration::from_secs(3600),
        ..StoreOptions::default()
    };
    let (_dir, path, store) = bare_store(options);
    let mut events = store.subscribe();
    std::fs::write(&path, HAND_EDIT).unwrap();
    assert!(next_event(&mut events, Duration::from_secs(1)).await.is_none());
    assert_eq!(store.snapshot().await.unwrap().len(), 1, "a read makes it look");
}
