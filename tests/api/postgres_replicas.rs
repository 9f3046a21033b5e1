//! Several replicas over one PostgreSQL database (docs/src/storage.md, What holds across
//! replicas): each test makes a database of its own, starts two or three services on it
//! (in-process on `127.0.0.1:0`, or real processes where a crash is the point) and checks what
//! crosses between them.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_graphql::futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::spawned::{RosterProcess, serve_with};
use crate::helpers::ws::Subscriber;
use crate::helpers::{
    TestApp, WATCH_DEADLINE, assert_no_errors, eventually, scratch_database, spawn_replica,
    spawn_replica_with,
};

/// `n` replicas over the database at `url`, started at the same moment (so their
/// migrations race, as real replicas' would).
async fn replicas(url: &str, n: usize) -> Vec<TestApp> {
    join_all((0..n).map(|_| spawn_replica(url))).await
}

async fn emails(app: &TestApp) -> Vec<String> {
    app.all_users()
        .await
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A direct connection to the database, as a person with psql would have.
async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn replicas_started_together_share_the_schema_and_see_each_others_creates_at_once() {
    let Some(database) = scratch_database("replicas see each other's creates").await else {
        return;
    };
    let replicas = replicas(database.url(), 3).await;
    let id = replicas[0].create_ok("Ann", "ann@x.com").await;
    for other in &replicas[1..] {
        eventually(WATCH_DEADLINE, "a create on another replica", || async {
            other.all_users().await.iter().any(|u| u["id"] == id.as_str())
        })
        .await;
    }
    replicas[2].create_ok("Bob", "bob@x.com").await;
    for replica in &replicas {
        eventually(
            WATCH_DEADLINE,
            "both users on every replica, in creation order",
            || async { emails(replica).await == ["ann@x.com", "bob@x.com"] },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn twenty_creates_of_one_email_spread_over_replicas_have_exactly_one_winner() {
    let Some(database) = scratch_database("the same-email race over replicas").await else {
        return;
    };
    let replicas = replicas(database.url(), 3).await;
    let payloads = join_all((0..20).map(|n| {
        let replica = &replicas[n % 3];
        async move {
            let email = if n % 2 == 0 { "same@x.com" } else { " SAME@x.com " };
            replica.create_user(&format!("Racer {n}"), email).await
        }
    }))
    .await;
    let winners = payloads.iter().filter(|p| p["ok"] == true).count();
    assert_eq!(winners, 1, "{payloads:?}");
    for loser in payloads.iter().filter(|p| p["ok"] != true) {
        assert_eq!(loser["message"], "Email exists.", "{loser}");
    }
    for replica in &replicas {
        eventually(WATCH_DEADLINE, "one user on every replica", || async {
            replica.all_users().await.len() == 1
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn three_hundred_concurrent_creates_spread_over_replicas_all_land_on_every_replica() {
    let Some(database) = scratch_database("300 creates over replicas").await else {
        return;
    };
    let replicas = replicas(database.url(), 3).await;
    let payloads = join_all((0..300).map(|n| {
        let replica = &replicas[n % 3];
        async move {
            replica
                .create_user(&format!("User {n}"), &format!("user{n}@x.com"))
                .await
        }
    }))
    .await;
    assert!(payloads.iter().all(|p| p["ok"] == true), "{payloads:?}");
    let expected: HashSet<String> = (0..300).map(|n| format!("user{n}@x.com")).collect();
    for replica in &replicas {
        eventually(WATCH_DEADLINE, "all 300 users on every replica", || async {
            emails(replica).await.into_iter().collect::<HashSet<_>>() == expected
        })
        .await;
    }
    let count: i64 = psql(database.url())
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_row_inserted_with_sql_reaches_every_replicas_subscribers_once() {
    let Some(database) = scratch_database("an SQL insert reaches subscribers").await else {
        return;
    };
    let replicas = replicas(database.url(), 2).await;
    let mut subscribers = Vec::new();
    for replica in &replicas {
        subscribers.push(Subscriber::open(replica, Value::Null).await);
    }
    for (at, (subscriber, replica)) in subscribers.iter_mut().zip(&replicas).enumerate() {
        subscriber.sync(replica, &format!("probe{at}")).await;
    }
    for subscriber in &mut subscribers {
        while subscriber.next_event(Duration::from_millis(300)).await.is_some() {}
    }

    psql(database.url())
        .await
        .execute(
            "INSERT INTO users (id, name, email) VALUES ('by-hand', 'From SQL', 'sql@x.com')",
            &[],
        )
        .await
        .unwrap();
    for subscriber in &mut subscribers {
        let event = subscriber.next_event(Duration::from_secs(5)).await;
        let (kind, name, _) = event.expect("the insert's event");
        assert_eq!((kind.as_str(), name.as_str()), ("CREATED", "From SQL"));
    }
    // Anything that came twice would arrive before the next change's event.
    replicas[0].create_ok("After", "after@x.com").await;
    for subscriber in &mut subscribers {
        let (kind, name, _) = subscriber
            .next_event(Duration::from_secs(5))
            .await
            .expect("the next create's event");
        assert_eq!(
            (kind.as_str(), name.as_str()),
            ("CREATED", "After"),
            "nothing came twice"
        );
    }
    for replica in &replicas {
        let users = replica.all_users().await;
        let by_hand = users
            .iter()
            .find(|u| u["id"] == "by-hand")
            .expect("the SQL row is listed");
        assert!(
            by_hand["createdAt"].is_string(),
            "the table's defaults fill in: {by_hand}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn killing_a_replica_under_write_load_loses_no_acknowledged_create() {
    let Some(database) = scratch_database("kill -9 of a replica under load").await else {
        return;
    };
    let victim = RosterProcess::start_on_database(database.url()).await;
    let survivor = RosterProcess::start_on_database(database.url()).await;
    let acknowledged = Mutex::new(Vec::new());
    let writers = join_all((0..8).map(|writer| {
        let (victim, acknowledged) = (&victim, &acknowledged);
        async move {
            for n in 0.. {
                let email = format!("w{writer}-{n}@x.com");
                match victim.create("Load", &email).await {
                    Ok(Some(_)) => acknowledged.lock().unwrap().push(email),
                    Ok(None) => panic!("a distinct email was refused: {email}"),
                    Err(_) => return,
                }
            }
        }
    }));
    let killer = async {
        eventually(Duration::from_secs(20), "some creates acknowledged", || async {
            acknowledged.lock().unwrap().len() >= 40
        })
        .await;
        let pid = victim.id().expect("the victim runs").to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
    };
    tokio::join!(writers, killer);
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= 40);
    let in_table: HashSet<String> = psql(database.url())
        .await
        .query("SELECT email FROM users", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|e| !in_table.contains(*e)).collect();
    assert!(lost.is_empty(), "acknowledged but not in the table: {lost:?}");
    eventually(
        WATCH_DEADLINE,
        "every acknowledged create on the surviving replica",
        || async {
            let listed: HashSet<String> = survivor.emails().await.into_iter().collect();
            acknowledged.iter().all(|email| listed.contains(email))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_change_that_was_never_announced_is_found_by_the_periodic_check() {
    let Some(database) = scratch_database("the periodic consistency check").await else {
        return;
    };
    let app = spawn_replica(database.url()).await;
    app.create_ok("Ann", "ann@x.com").await;
    // The import's switch silences the trigger: nothing is announced for this row.
    let direct = psql(database.url()).await;
    direct
        .batch_execute(
            "BEGIN; SET LOCAL roster.quiet = 'on';
             INSERT INTO users (id, name, email) VALUES ('silent', 'Silent', 'silent@x.com');
             COMMIT;",
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "the silent row after the 5 s check",
        || async { app.names("").await == ["Ann", "Silent"] },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn the_database_password_is_never_shown_on_health_nor_logged() {
    let Some(database) = scratch_database("the password stays hidden").await else {
        return;
    };
    // A server that trusts local connections accepts any password and never uses it.
    let Some((scheme, rest)) = database.url().split_once("://") else {
        return;
    };
    let Some((user, host)) = rest.split_once('@').filter(|(user, _)| !user.contains(':')) else {
        eprintln!("SKIPPED: the password test needs a URL with a user and no password");
        return;
    };
    let url = format!("{scheme}://{user}:Sup3rSecret@{host}");
    let mut command = serve_with::<&str>(&[]);
    command.env("DATABASE_URL", &url).env("RUST_LOG", "debug");
    let replica = RosterProcess::spawn(command).await;
    let base = &replica.base;
    let client = &replica.client;
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!health.contains("Sup3rSecret"), "{health}");
    assert!(
        health.contains(&format!("postgres://{user}@")),
        "the database is named without it: {health}"
    );
    let created = client
        .post(format!("{base}/graphql"))
        .json(&serde_json::json!({"query": "mutation { createUser(userData: {name: \"A\", email: \"a@x.com\"}) { ok } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let logged = replica.stderr().await;
    assert!(logged.contains("using PostgreSQL"), "{logged}");
    assert!(!logged.contains("Sup3rSecret"), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn aliased_mutations_are_not_charged_for_rewriting_every_user_on_the_database() {
    let Some(database) = scratch_database("aliased mutations on the database").await else {
        return;
    };
    // Over the file, four further creates among three users would count 4 × 3 × 10.
    let app = spawn_replica_with(database.url(), &["--max-query-scan", "1"]).await;
    for n in 0..3 {
        app.create_ok("Seed", &format!("seed{n}@x.com")).await;
    }
    let creates: Vec<String> = (0..5)
        .map(|n| format!(r#"c{n}: createUser(userData: {{name: "New", email: "new{n}@x.com"}}) {{ ok }}"#))
        .collect();
    let answer = app
        .gql(&format!("mutation {{ {} }}", creates.join(" ")), json!({}))
        .await;
    assert_no_errors(&answer);
    assert_eq!(answer["data"]["c4"]["ok"], true, "{answer}");
    assert_eq!(app.all_users().await.len(), 8);
}
