//! Live updates over a real WebSocket speaking graphql-transport-ws: mutations through
//! HTTP and a person's edit of the file arrive as the per-user events they amount to.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::helpers::spawned::RosterProcess;
use crate::helpers::ws::Subscriber;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_receive_each_change_from_http_and_from_a_hand_edit_in_order() {
    let app = spawn_app().await;
    let mut all = Subscriber::open(&app, Value::Null).await;
    all.sync(&app, "Probe").await;
    let mut deletions = Subscriber::open(&app, json!(["DELETED"])).await;
    // Sync the filtered subscriber with a throwaway user's deletion.
    for attempt in 0.. {
        let id = app.create_ok("Gone", &format!("gone{attempt}@x.test")).await;
        app.delete_user(&id).await;
        if deletions.next_event(Duration::from_millis(200)).await.is_some() {
            break;
        }
        assert!(attempt < 50, "the filtered subscription never went live");
    }
    while all.next_event(Duration::from_millis(150)).await.is_some() {}
    while deletions.next_event(Duration::from_millis(150)).await.is_some() {}

    let ann = app.create_ok("Ann", "ann@x.test").await;
    let patched = app
        .gql(
            "mutation($i: PatchUserInput!) { patchUser(input: $i) { ok } }",
            json!({ "i": { "id": ann, "name": "Anne" } }),
        )
        .await;
    assert_eq!(patched["data"]["patchUser"]["ok"], true, "{patched}");
    let bob = app.create_ok("Bob", "bob@x.test").await;
    app.delete_user(&ann).await;

    // A person edits the file: renames Bob and adds a user, saving by rename like an editor.
    let mut records: Vec<Value> = app.file_records();
    for record in &mut records {
        if record["id"] == bob.as_str() {
            record["name"] = json!("Robert");
        }
    }
    records.push(json!({ "id": "typed-by-hand", "name": "Hand", "email": "hand@x.test" }));
    let staging = app.dir.path().join("users.json.swp");
    std::fs::write(&staging, serde_json::to_vec_pretty(&records).unwrap()).unwrap();
    std::fs::rename(&staging, &app.data_file).unwrap();

    let mut seen = Vec::new();
    while let Some((kind, name, event)) = all.next_event(Duration::from_secs(2)).await {
        assert!(
            event["at"].as_str().is_some_and(|at| at.ends_with('Z')),
            "{event}"
        );
        seen.push((kind, name));
        if seen.len() == 6 {
            break;
        }
    }
    let expected = [
        ("CREATED", "Ann"),
        ("UPDATED", "Anne"),
        ("CREATED", "Bob"),
        ("DELETED", "Anne"),
        ("UPDATED", "Robert"),
        ("CREATED", "Hand"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    assert_eq!(seen, expected);
    assert!(
        all.next_event(Duration::from_millis(300)).await.is_none(),
        "no extra events"
    );

    let (kind, name, _) = deletions
        .next_event(Duration::from_secs(2))
        .await
        .expect("the deletion");
    assert_eq!((kind.as_str(), name.as_str()), ("DELETED", "Anne"));
    assert!(
        deletions.next_event(Duration::from_millis(300)).await.is_none(),
        "only deletions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_by_another_process_on_the_same_file_reach_subscribers() {
    let app = spawn_app().await;
    let mut subscriber = Subscriber::open(&app, Value::Null).await;
    subscriber.sync(&app, "Probe").await;
    let other = RosterProcess::start(&app.data_file).await;
    let id = other
        .create("Other", "other@x.test")
        .await
        .unwrap()
        .expect("created by the other process");
    let (kind, name, event) = subscriber
        .next_event(Duration::from_secs(3))
        .await
        .expect("an event");
    assert_eq!((kind.as_str(), name.as_str()), ("CREATED", "Other"));
    assert_eq!(event["user"]["id"], id.as_str());
    assert!(
        subscriber.next_event(Duration::from_millis(300)).await.is_none(),
        "announced once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editors_truncate_then_write_yields_only_the_events_of_the_final_content() {
    use std::io::Write;
    let app = spawn_app().await;
    let mut subscriber = Subscriber::open(&app, Value::Null).await;
    subscriber.sync(&app, "Probe").await;
    app.create_ok("Ann", "ann@x.test").await;
    app.create_ok("Bob", "bob@x.test").await;
    while subscriber.next_event(Duration::from_millis(300)).await.is_some() {}

    // An editor saving in place: truncate, write part of the text, pause, write the rest.
    let mut records = app.file_records();
    for record in &mut records {
        if record["name"] == "Bob" {
            record["name"] = json!("Robert");
        }
    }
    let text = serde_json::to_vec_pretty(&records).unwrap();
    let (first, rest) = text.split_at(text.len() / 2);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&app.data_file)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    file.write_all(first).unwrap();
    file.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    file.write_all(rest).unwrap();
    drop(file);

    let mut seen = Vec::new();
    while let Some((kind, name, _)) = subscriber.next_event(Duration::from_secs(1)).await {
        seen.push((kind, name));
    }
    assert_eq!(seen, [("UPDATED".to_owned(), "Robert".to_owned())]);
    assert!(app.corrupt_copies().is_empty(), "{:?}", app.folder_entries());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browsers_get_of_the_endpoint_still_serves_the_console() {
    let app = spawn_app().await;
    let response = app.get_as_browser("/graphql").await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("<title>Roster console</title>"), "{page}");
}

// Over PostgreSQL, events are tested with replicas in `postgres_replicas.rs`.
crate::helpers::also_on_postgres!(a_browsers_get_of_the_endpoint_still_serves_the_console,);
