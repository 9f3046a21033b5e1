//! Live updates over a real WebSocket speaking graphql-transport-ws: mutations through
//! HTTP and a person's edit of the file arrive as the per-user events they amount to;
//! many subscribers of one selection share its rendering and still each get every event
//! once, beside other selections; and a mutation over the socket is recorded with its source.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawned::RosterProcess;
use crate::helpers::ws::{Socket, Subscriber, connect_speaking, messages_until_quiet, next_json, send_json};
use crate::helpers::{TestApp, assert_no_errors, spawn_app, spawn_app_with_flags};

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

const NAMES: &str = "subscription { userEvents { kind user { name } } }";
const WITH_EMAIL: &str =
    "subscription($kinds: [UserEventKind!]) { userEvents(kinds: $kinds) { kind user { name email } } }";
/// Two fields: not shared, each field's events come on their own.
const TWO_FIELDS: &str =
    "subscription { userEvents { kind user { name } } deleted: userEvents(kinds: [DELETED]) { kind } }";

/// A socket with several subscriptions, in either protocol.
struct Live {
    socket: Socket,
    legacy: bool,
    ids: Vec<&'static str>,
}

impl Live {
    async fn open(app: &TestApp, legacy: bool) -> Self {
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        let (mut socket, _) = connect_speaking(&app.base, protocol, &[]).await.expect("upgrade");
        send_json(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
        Self {
            socket,
            legacy,
            ids: Vec::new(),
        }
    }

    async fn subscribe(&mut self, id: &'static str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        let message =
            json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } });
        send_json(&mut self.socket, message).await;
        self.ids.push(id);
    }

    async fn complete(&mut self, id: &str) {
        let kind = if self.legacy { "stop" } else { "complete" };
        send_json(&mut self.socket, json!({ "id": id, "type": kind })).await;
        let confirmed = next_json(&mut self.socket).await;
        assert_eq!(confirmed, json!({ "type": "complete", "id": id }));
        self.ids.retain(|known| *known != id);
    }

    /// The payloads that arrived until the socket went quiet, by operation id.
    async fn events(&mut self) -> BTreeMap<String, Vec<Value>> {
        let next = if self.legacy { "data" } else { "next" };
        let mut events: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for message in messages_until_quiet(&mut self.socket, Duration::from_millis(400)).await {
            assert_eq!(message["type"], next, "{message}");
            assert!(message["payload"].get("errors").is_none(), "{message}");
            let id = message["id"].as_str().expect("an id").to_owned();
            events
                .entry(id)
                .or_default()
                .push(message["payload"]["data"].clone());
        }
        events
    }
}

/// Probes with a created and deleted user until every subscription of every socket has
/// heard of one (the server registers them asynchronously), then forgets the probes.
async fn sync(app: &TestApp, sockets: &mut [Live]) {
    let mut heard: Vec<BTreeSet<String>> = vec![BTreeSet::new(); sockets.len()];
    for attempt in 0..50 {
        let id = app.create_ok("Probe", &format!("probe{attempt}@x.test")).await;
        app.delete_user(&id).await;
        let mut all = true;
        for (socket, heard) in sockets.iter_mut().zip(&mut heard) {
            heard.extend(socket.events().await.into_keys());
            all &= socket.ids.iter().all(|id| heard.contains(*id));
        }
        if all {
            return;
        }
    }
    panic!("the subscriptions never went live: {heard:?}");
}

fn event(kind: &str, user: Value) -> Value {
    json!({ "userEvents": { "kind": kind, "user": user } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_one_selection_on_many_sockets_each_get_every_event_once_beside_other_selections() {
    let app = spawn_app().await;
    let mut sockets = Vec::new();
    for legacy in [false, false, false, true] {
        let mut live = Live::open(&app, legacy).await;
        live.subscribe("n1", NAMES, json!({})).await;
        live.subscribe("n2", NAMES, json!({})).await;
        live.subscribe("c", WITH_EMAIL, json!({ "kinds": ["CREATED"] }))
            .await;
        live.subscribe("d", WITH_EMAIL, json!({ "kinds": ["DELETED"] }))
            .await;
        sockets.push(live);
    }
    sockets[0].subscribe("two", TWO_FIELDS, json!({})).await;
    sync(&app, &mut sockets).await;

    let ann = app.create_ok("Ann", "ann@x.test").await;
    let updated = app
        .update_user(json!({ "id": ann, "name": "Anne", "email": "ann@x.test" }))
        .await;
    assert_eq!(updated["ok"], true, "{updated}");
    app.delete_user(&ann).await;

    let names = vec![
        event("CREATED", json!({ "name": "Ann" })),
        event("UPDATED", json!({ "name": "Anne" })),
        event("DELETED", json!({ "name": "Anne" })),
    ];
    let created = vec![event("CREATED", json!({ "name": "Ann", "email": "ann@x.test" }))];
    let deleted = vec![event("DELETED", json!({ "name": "Anne", "email": "ann@x.test" }))];
    for (at, socket) in sockets.iter_mut().enumerate() {
        let mut events = socket.events().await;
        if at == 0 {
            let mut two = events.remove("two").expect("the two-field subscription's events");
            let mut expected = names.clone();
            expected.push(json!({ "deleted": { "kind": "DELETED" } }));
            let text = |values: &mut Vec<Value>| {
                let mut texts: Vec<String> = values.iter().map(Value::to_string).collect();
                texts.sort();
                texts
            };
            assert_eq!(text(&mut two), text(&mut expected), "socket {at}");
        }
        let expected = BTreeMap::from([
            ("c".to_owned(), created.clone()),
            ("d".to_owned(), deleted.clone()),
            ("n1".to_owned(), names.clone()),
            ("n2".to_owned(), names.clone()),
        ]);
        assert_eq!(events, expected, "socket {at}");
    }

    // Ending one subscription leaves its neighbours, on its socket and on the others, alone.
    sockets[1].complete("n1").await;
    sockets[3].complete("n2").await;
    app.create_ok("Bob", "bob@x.test").await;
    let bob = vec![event("CREATED", json!({ "name": "Bob" }))];
    let bob_with_email = vec![event("CREATED", json!({ "name": "Bob", "email": "bob@x.test" }))];
    for (at, socket) in sockets.iter_mut().enumerate() {
        let mut events = socket.events().await;
        if at == 0 {
            assert_eq!(events.remove("two"), Some(bob.clone()));
        }
        let mut expected = BTreeMap::from([
            ("c".to_owned(), bob_with_email.clone()),
            ("n1".to_owned(), bob.clone()),
            ("n2".to_owned(), bob.clone()),
        ]);
        match at {
            1 => expected.remove("n1"),
            3 => expected.remove("n2"),
            _ => None,
        };
        assert_eq!(events, expected, "socket {at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_over_the_websocket_is_recorded_with_its_request_id_and_credential() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "secret-w"]).await;
    let (mut socket, _) = connect_speaking(&app.base, "graphql-transport-ws", &[("X-Request-Id", "ws-up-1")])
        .await
        .expect("upgrade");
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer secret-w" } }),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    let create = r#"mutation { createUser(userData: {name: "Ann", email: "ann@x.test"}) { user { id } } }"#;
    send_json(
        &mut socket,
        json!({ "id": "m1", "type": "subscribe", "payload": { "query": create } }),
    )
    .await;
    let answer = next_json(&mut socket).await;
    assert_eq!(
        (&answer["type"], &answer["id"]),
        (&json!("next"), &json!("m1")),
        "{answer}"
    );
    let id = answer["payload"]["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned();
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "complete", "id": "m1" })
    );

    let history = app
        .gql(
            "query($id: ID!) { userHistory(id: $id) { nodes { kind source { kind requestId credential } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&history);
    assert_eq!(
        history["data"]["userHistory"]["nodes"],
        json!([{ "kind": "CREATED", "source": { "kind": "API", "requestId": "ws-up-1/m1", "credential": "WRITE" } }])
    );
    let changes = app
        .gql(
            "{ changes { nodes { userId source { kind requestId credential } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        changes["data"]["changes"]["nodes"],
        json!([{ "userId": id, "source": { "kind": "API", "requestId": "ws-up-1/m1", "credential": "WRITE" } }])
    );
}

// Over PostgreSQL, events are tested with replicas in `postgres_replicas.rs`.
crate::helpers::also_on_postgres!(a_browsers_get_of_the_endpoint_still_serves_the_console,);
