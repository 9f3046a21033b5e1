//! Hostile requests and hostile rows against the PostgreSQL store: a bulk update built to
//! make the database work quadratically, rows that psql lets in but no client can read
//! (infinite or five-digit-year timestamps), and addresses the service calls the same that
//! the database's unique index did not. Each must leave the replicas serving.

use roster::bootstrap::Application;
use roster::domain::email_key;
use serde_json::{Value, json};

use crate::helpers::{
    WATCH_DEADLINE, also_on_postgres, assert_no_errors, error_codes, eventually, scratch_database, spawn_app,
    spawn_replica, test_config_on_database,
};

/// The bulk cap when no flag sets it.
const DEFAULT_MAX_BULK_ITEMS: usize = 10_000;

/// The first migration as deployed databases applied it.
const FIRST_MIGRATION: &str = include_str!("../../src/adapters/outbound/postgres/sql/0001_users.sql");

/// A direct connection to the database, as a person with psql would have.
async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    client
}

/// The database as a Roster that knew only the first migration left it.
async fn deployed_with_the_first_migration(url: &str) -> tokio_postgres::Client {
    let client = psql(url).await;
    client
        .batch_execute(FIRST_MIGRATION)
        .await
        .expect("the first migration");
    client
        .batch_execute(
            "CREATE TABLE roster_migrations (version integer PRIMARY KEY, name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO roster_migrations (version, name) VALUES (1, 'users');",
        )
        .await
        .expect("the first migration recorded");
    client
}

/// `count` items that all change the user `id`, each to a new address.
fn one_id_repeated(id: &str, count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|n| json!({ "id": id, "email": format!("ann.{n}@x.com") }))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_bulk_at_the_cap_repeating_one_id_answers_while_the_replica_keeps_serving() {
    let Some(database) = scratch_database("a bulk at the cap repeating one id").await else {
        return;
    };
    let app = spawn_replica(database.url()).await;
    let id = app.create_ok("Ann", "ann@x.com").await;
    let updates = one_id_repeated(&id, DEFAULT_MAX_BULK_ITEMS);

    let (bulk, (health, created)) = tokio::join!(app.bulk_update(updates), async {
        let health = app.health().await;
        (health, app.create_user("Bob", "bob@x.com").await)
    });
    assert_eq!(bulk["ok"], true, "{bulk}");
    assert_eq!(bulk["updatedCount"], 1, "one user, counted once: {bulk}");
    assert_eq!(bulk["failed"], json!([]), "{bulk}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(created["ok"], true, "an unrelated create meanwhile: {created}");

    app.health().await;
    let users = app.all_users().await;
    let ann = users.iter().find(|u| u["id"] == id.as_str()).expect("Ann");
    assert_eq!(
        ann["email"],
        format!("ann.{}@x.com", DEFAULT_MAX_BULK_ITEMS - 1),
        "the last item wins"
    );
    let by_old_address = app
        .gql("{ userByEmail(email: \"ann.0@x.com\") { id } }", json!({}))
        .await;
    assert_eq!(
        by_old_address["data"]["userByEmail"],
        Value::Null,
        "{by_old_address}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_bulk_whose_items_trade_addresses_applies_them_in_order() {
    let Some(database) = scratch_database("a bulk trading addresses").await else {
        return;
    };
    let app = spawn_replica(database.url()).await;
    let a = app.create_ok("A", "x@x.com").await;
    let b = app.create_ok("B", "y@x.com").await;
    // Step by step each item is allowed; written at once, A and B swap their addresses.
    let report = app
        .bulk_update(json!([
            { "id": a, "email": "t@x.com" },
            { "id": b, "email": "X@x.com" },
            { "id": a, "email": "y@x.com" },
            { "id": b, "email": "y@x.com" },
            { "id": "nobody", "email": "n@x.com" },
            { "id": a, "email": "not an address" },
        ]))
        .await;
    assert_eq!(report["updatedCount"], 2, "A and B, each counted once: {report}");
    assert_eq!(
        report["failed"],
        json!([
            format!("{b} email in use"),
            "nobody not found",
            format!("{a} invalid email")
        ]),
        "{report}"
    );
    let emails: Vec<Value> = app.all_users().await.iter().map(|u| u["email"].clone()).collect();
    assert_eq!(emails, ["y@x.com", "X@x.com"]);
}

async fn a_bulk_over_the_cap_is_refused_with_its_code_before_any_work_impl() {
    let app = spawn_app().await;
    let id = app.create_ok("Ann", "ann@x.com").await;
    let answer = app
        .gql(
            "mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { ok updatedCount } }",
            json!({ "u": one_id_repeated(&id, DEFAULT_MAX_BULK_ITEMS + 1) }),
        )
        .await;
    assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("10001") && message.contains("10000") && message.contains("--max-bulk-items"),
        "{message}"
    );
    assert_eq!(answer["data"], Value::Null, "{answer}");
    assert_eq!(
        app.all_users().await[0]["email"],
        "ann@x.com",
        "nothing was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_over_the_cap_is_refused_with_its_code_before_any_work() {
    a_bulk_over_the_cap_is_refused_with_its_code_before_any_work_impl().await;
}

also_on_postgres!(a_bulk_over_the_cap_is_refused_with_its_code_before_any_work);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_cap_follows_its_flag_and_counts_items_written_in_the_query() {
    let users = json!([
        { "id": "a", "name": "A", "email": "old-a@x" },
        { "id": "b", "name": "B", "email": "old-b@x" },
    ]);
    let app = crate::helpers::spawn_app_with_flags(&users, &["--max-bulk-items", "2"]).await;
    let answer = app
        .gql(
            "mutation { bulkUpdateEmails(updates: [{id: \"a\", email: \"a@x\"}, {id: \"b\", email: \"b@x\"},
               {id: \"c\", email: \"c@x\"}]) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    let two = app
        .bulk_update(json!([{ "id": "a", "email": "a@x" }, { "id": "b", "email": "b@x" }]))
        .await;
    assert_eq!(
        (&two["ok"], &two["updatedCount"]),
        (&json!(true), &json!(2)),
        "{two}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn rows_with_timestamps_no_client_can_read_are_cleaned_then_refused_and_read_as_null() {
    let Some(database) = scratch_database("unreadable timestamps").await else {
        return;
    };
    let sql = deployed_with_the_first_migration(database.url()).await;
    sql.batch_execute(
        "INSERT INTO users (id, name, email, created_at, updated_at) VALUES
           ('inf', 'Inf', 'inf@x.com', 'infinity', now()),
           ('neg', 'Neg', 'neg@x.com', '2024-05-01T10:00:00Z', '-infinity'),
           ('far', 'Far', 'far@x.com', '200000-01-01T00:00:00Z', '200000-01-01T00:00:00Z'),
           ('ok', 'Ok', 'ok@x.com', '2024-05-01T10:00:00Z', '2024-05-01T10:00:00Z')",
    )
    .await
    .expect("psql takes them");

    let app = spawn_replica(database.url()).await;
    let users = app.all_users().await;
    let field = |id: &str, key: &str| {
        users
            .iter()
            .find(|u| u["id"] == id)
            .map(|u| u[key].clone())
            .unwrap_or_else(|| panic!("{id} is served: {users:?}"))
    };
    assert_eq!(field("inf", "createdAt"), Value::Null);
    assert_eq!(field("neg", "updatedAt"), Value::Null);
    assert_eq!(field("neg", "createdAt"), "2024-05-01T10:00:00.000000Z");
    assert_eq!(field("far", "createdAt"), Value::Null);
    assert_eq!(field("far", "updatedAt"), Value::Null);
    assert_eq!(field("ok", "createdAt"), "2024-05-01T10:00:00.000000Z");

    for at in [
        "infinity",
        "-infinity",
        "200000-01-01T00:00:00Z",
        "0044-03-15T00:00:00Z BC",
    ] {
        let refused = sql
            .execute(
                "INSERT INTO users (id, name, email, created_at) VALUES ('new', 'New', 'new@x.com', $1::text::timestamptz)",
                &[&at],
            )
            .await;
        assert!(refused.is_err(), "a new row with created_at {at} is refused");
    }
    sql.execute(
        "INSERT INTO users (id, name, email, created_at) VALUES ('min', 'Min', 'min@x.com', '0001-01-01T00:00:00Z')",
        &[],
    )
    .await
    .expect("year 1 is an ordinary timestamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_row_with_an_infinite_timestamp_that_slipped_past_the_check_never_stops_a_replica() {
    let Some(database) = scratch_database("an infinite timestamp past the check").await else {
        return;
    };
    let app = spawn_replica(database.url()).await;
    let kept = app.create_ok("Kept", "kept@x.com").await;
    let sql = psql(database.url()).await;
    // A row from before the check existed, or written with it dropped, is the same row.
    sql.batch_execute("ALTER TABLE users DROP CONSTRAINT users_timestamps_readable")
        .await
        .expect("the check is there to drop");
    sql.batch_execute(
        "INSERT INTO users (id, name, email, created_at) VALUES ('inf', 'Inf', 'inf@x.com', 'infinity')",
    )
    .await
    .expect("psql takes it");
    // Too long a row for its notification: the replica reads it by id.
    let long_name = "L".repeat(9_000);
    sql.execute(
        "UPDATE users SET name = $2, updated_at = '-infinity' WHERE id = $1",
        &[&kept, &long_name],
    )
    .await
    .expect("psql changes it");

    eventually(WATCH_DEADLINE, "both rows reach the running replica", || async {
        let users = app.all_users().await;
        users.iter().any(|u| u["id"] == "inf" && u["createdAt"].is_null())
            && users.iter().any(|u| {
                u["id"] == kept.as_str() && u["name"] == long_name.as_str() && u["updatedAt"].is_null()
            })
    })
    .await;
    app.health().await;

    let fresh = spawn_replica(database.url()).await;
    let users = fresh.all_users().await;
    assert_eq!(users.len(), 2, "{users:?}");
    let inf = users.iter().find(|u| u["id"] == "inf").expect("inf is served");
    assert_eq!(inf["createdAt"], Value::Null);
    let kept = users
        .iter()
        .find(|u| u["id"] == kept.as_str())
        .expect("kept is served");
    assert_eq!(kept["updatedAt"], Value::Null);
    fresh.health().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn the_database_trims_every_unicode_space_from_an_address_as_the_service_does() {
    let Some(database) = scratch_database("unicode spaces around an address").await else {
        return;
    };
    let app = spawn_replica(database.url()).await;
    app.create_ok("Bob", "bob@example.com").await;
    let sql = psql(database.url()).await;
    let padded = "bob@example.com\u{a0}";
    let refused = sql
        .execute(
            "INSERT INTO users (id, name, email) VALUES ('nbsp', 'Bob again', $1)",
            &[&padded],
        )
        .await;
    let err = refused.expect_err("the same address with a no-break space is refused");
    assert_eq!(
        err.as_db_error().map(|db| db.constraint()),
        Some(Some("users_email_key")),
        "{err}"
    );

    // The first rule also trimmed the letter v.
    for (id, email) in [("v", "vi@x.com"), ("i", "i@x.com")] {
        sql.execute(
            "INSERT INTO users (id, name, email) VALUES ($1, $1, $2)",
            &[&id, &email],
        )
        .await
        .unwrap_or_else(|err| panic!("{email} is an address of its own: {err}"));
    }

    let spaces: Vec<char> = (0..=0x10FFFF_u32)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
        .collect();
    assert!(spaces.len() >= 25, "{spaces:?}");
    for space in spaces {
        let address = format!("{space}{space}Zoë@Example.COM{space}");
        let key: String = sql
            .query_one("SELECT roster_email_key($1)", &[&address])
            .await
            .expect("the key")
            .get(0);
        assert_eq!(key, email_key(&address), "U+{:04X}", space as u32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_deployed_database_whose_addresses_clash_under_the_new_rule_names_them_and_keeps_its_schema() {
    let Some(database) = scratch_database("addresses that clash under the new rule").await else {
        return;
    };
    let sql = deployed_with_the_first_migration(database.url()).await;
    sql.execute(
        "INSERT INTO users (id, name, email) VALUES ('a', 'A', 'bob@example.com'), ('b', 'B', $1),
           ('c', 'C', 'inf@x.com')",
        &[&"\u{2003}Bob@example.com"],
    )
    .await
    .expect("the first migration's index lets them in");
    sql.batch_execute("UPDATE users SET created_at = 'infinity' WHERE id = 'c'")
        .await
        .expect("an unreadable timestamp too");

    let refused = Application::build(test_config_on_database(database.url(), &[])).await;
    let Err(err) = refused else {
        panic!("a replica started over clashing addresses")
    };
    let text = err.to_string();
    assert!(
        text.contains("bob@example.com") && text.contains("\u{2003}Bob@example.com"),
        "the clash is named: {text}"
    );
    let versions: Vec<i32> = sql
        .query("SELECT version FROM roster_migrations ORDER BY version", &[])
        .await
        .expect("the migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1], "nothing half-applied");
    let infinite: bool = sql
        .query_one("SELECT created_at = 'infinity' FROM users WHERE id = 'c'", &[])
        .await
        .expect("the row")
        .get(0);
    assert!(infinite, "the timestamp cleanup went back with the rest");

    sql.batch_execute("UPDATE users SET email = 'robert@example.com' WHERE id = 'b'")
        .await
        .expect("a person settles the clash");
    let app = spawn_replica(database.url()).await;
    let users = app.all_users().await;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_no_errors(&app.gql("{ allUsers { id } }", json!({})).await);
}
