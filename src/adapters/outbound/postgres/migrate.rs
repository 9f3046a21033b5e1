//! The schema, embedded in the binary and applied at start.
//!
//! Several replicas may start at once against a fresh database: each takes the same
//! transaction-scoped advisory lock before looking at what is applied, so exactly one of
//! them creates the schema and the others find it done.

use tokio_postgres::Client;

/// Every migration in order: its version, a name for people, and its SQL.
/// A migration, once released, is never edited: deployed databases have applied it.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "users", include_str!("sql/0001_users.sql")),
    (
        2,
        "readable timestamps",
        include_str!("sql/0002_readable_timestamps.sql"),
    ),
    (
        3,
        "email key trims Unicode spaces",
        include_str!("sql/0003_email_key_unicode_spaces.sql"),
    ),
    (
        4,
        "bulk update in one statement",
        include_str!("sql/0004_bulk_in_one_statement.sql"),
    ),
    (5, "user changes", include_str!("sql/0005_user_changes.sql")),
    (
        6,
        "changes in commit order",
        include_str!("sql/0006_changes_in_commit_order.sql"),
    ),
];

/// The advisory lock that serialises migrations ("Roster" in ASCII).
const LOCK: i64 = 0x526f_7374_6572;

/// Applies the migrations `client`'s database does not have yet, in one transaction.
///
/// # Errors
/// The driver's error; nothing is applied then.
pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    // `IF NOT EXISTS` on every start would otherwise leave a NOTICE in the log each time.
    transaction
        .batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS roster_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let applied: Vec<i32> = transaction
        .query("SELECT version FROM roster_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO roster_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        tracing::info!(version, name, "applied a database migration");
    }
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if let Some(newer) = applied.iter().filter(|v| **v > known).max() {
        tracing::warn!(
            version = newer,
            known,
            "the database was migrated by a newer Roster; this one may not understand it"
        );
    }
    transaction.commit().await
}
