//! `roster seed N`, run as the built binary: the file it writes is one the service serves as
//! it is and would itself write byte for byte, the same for the same seed, to standard
//! output or to `--out FILE`, or into an empty database with `--database-url` (both at
//! once is refused).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::helpers::spawned::RosterProcess;

fn roster_seed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("seed")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("USERS_JSON_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("roster seed runs")
}

fn seeded(args: &[&str]) -> Vec<u8> {
    let output = roster_seed(args);
    assert!(
        output.status.success(),
        "roster seed {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn records(bytes: &[u8]) -> Vec<Value> {
    match serde_json::from_slice(bytes).expect("a JSON array") {
        Value::Array(records) => records,
        other => panic!("not an array: {other}"),
    }
}

#[tokio::test]
async fn a_seeded_file_is_served_as_it_is_and_is_what_the_store_itself_would_write() {
    let bytes = seeded(&["3000", "--seed", "9"]);
    let users = records(&bytes);
    assert_eq!(users.len(), 3000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(&file, &bytes).unwrap();
    let roster = RosterProcess::start(&file).await;

    let health: Value = roster
        .client
        .get(format!("{}/health", roster.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["users"], 3000, "{health}");
    let someone = &users[1234];
    let answer = roster
        .gql(
            "query($e: String!) { userByEmail(email: $e) { id name createdAt updatedAt } }",
            json!({ "e": someone["email"] }),
        )
        .await
        .unwrap();
    let found = &answer["data"]["userByEmail"];
    assert_eq!(found["id"], someone["id"], "{answer}");
    assert_eq!(found["name"], someone["name"], "{answer}");
    assert_eq!(found["createdAt"], someone["created_at"], "{answer}");
    assert_eq!(found["updatedAt"], someone["updated_at"], "{answer}");

    // A create and a delete make the store render the whole list again: the same bytes.
    let id = roster
        .create("Passing Through", "passing@seed.test")
        .await
        .unwrap()
        .expect("the create is accepted");
    assert_ne!(std::fs::read(&file).unwrap(), bytes);
    let deleted = roster
        .gql(
            "mutation($id: ID!) { deleteUser(id: $id) { ok } }",
            json!({ "id": id }),
        )
        .await
        .unwrap();
    assert_eq!(deleted["data"]["deleteUser"]["ok"], true, "{deleted}");
    assert!(
        std::fs::read(&file).unwrap() == bytes,
        "the store's rewrite differs from the seeded file"
    );
}

#[test]
fn the_same_seed_gives_the_same_file_on_standard_output_and_in_a_replaced_out_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeded.json");
    std::fs::write(&out, "an older file").unwrap();
    let written = roster_seed(&["500", "--seed", "4", "--out", out.to_str().unwrap()]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    assert!(
        written.stdout.is_empty(),
        "--out writes nothing to standard output"
    );
    let bytes = seeded(&["500", "--seed", "4"]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(seeded(&["500", "--seed", "4"]), bytes);
    assert_ne!(seeded(&["500", "--seed", "5"]), bytes);
    // The default seed is fixed, not drawn per run.
    assert_eq!(seeded(&["50"]), seeded(&["50"]));
    let folder: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(folder.len(), 1, "no temporary file is left beside the output");
}

#[test]
fn seed_refuses_a_file_and_a_database_at_once_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeded.json");
    let refused = roster_seed(&[
        "10",
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("not both"), "{message}");
    assert!(refused.stdout.is_empty());
    assert!(!Path::new(&out).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn seed_with_a_database_url_fills_an_empty_database_with_the_users_of_the_file() {
    let Some(database) = crate::helpers::scratch_database("roster seed into a database").await else {
        return;
    };
    let (code, stderr) =
        crate::postgres_outage::run_roster(&["seed", "300", "--seed", "9"], Some(database.url())).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("seeded 300 users into the database"), "{stderr}");
    let replica = crate::helpers::spawn_replica(database.url()).await;
    let served: Vec<Value> = replica.all_users().await;
    let file: Vec<Value> = serde_json::from_slice(&seeded(&["300", "--seed", "9"])).unwrap();
    let emails = |users: &[Value]| -> Vec<String> {
        users
            .iter()
            .map(|user| user["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        emails(&served),
        emails(&file),
        "the database holds the file's users, in order"
    );
    // A second seed meets a database that is no longer empty.
    let (code, stderr) = crate::postgres_outage::run_roster(&["seed", "5"], Some(database.url())).await;
    assert_eq!(code, Some(1), "{stderr}");
}

#[test]
fn seed_refuses_a_count_that_is_not_a_number_and_an_unwritable_out_file() {
    let not_a_count = roster_seed(&["lots"]);
    assert_eq!(not_a_count.status.code(), Some(2));
    assert!(not_a_count.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("missing-folder").join("users.json");
    let unwritable = roster_seed(&["10", "--out", nowhere.to_str().unwrap()]);
    assert_eq!(unwritable.status.code(), Some(1));
    let message = String::from_utf8_lossy(&unwritable.stderr);
    assert!(message.contains("cannot write the seeded users"), "{message}");
}
