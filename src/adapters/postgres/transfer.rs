//! The database side of `roster import` and `roster export`: a user list, with the keys
//! and records the API does not show, into the `users` and `hidden_records` tables and
//! back, in file order.
//!
//! An import is one transaction that holds writers off, inserts in chunks (reporting
//! progress), and ends with one notification that makes every running replica read the
//! table again, rather than one notification per row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::Client;

use super::describe;
use super::owner::CHANNEL;

/// How many records one insert carries.
const CHUNK: usize = 1000;

/// One element of a user list, as the file holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum FileRecord {
    User(FileUser),
    /// Anything that is not a user, kept verbatim at its place and hidden from the API.
    Hidden(Value),
}

/// A user record: the fields the API shows and every other key, in the file's order.
#[derive(Clone, Debug, PartialEq)]
pub struct FileUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Keys Roster does not model, including a timestamp it could not read.
    pub extra: Map<String, Value>,
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(
        "the database already holds {users} users and {hidden} hidden records; import with --replace to replace them"
    )]
    NotEmpty { users: i64, hidden: i64 },
    #[error("the file cannot be imported as it is: {0}")]
    Conflict(String),
    #[error("the database failed: {0}")]
    Database(String),
}

impl From<tokio_postgres::Error> for TransferError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Database(describe(&err))
    }
}

/// Refuses a list the table's keys would refuse: a repeated id, or two users whose emails
/// differ only in case or surrounding spaces.
fn check_unique(records: &[FileRecord]) -> Result<(), TransferError> {
    let mut ids: HashSet<&str> = HashSet::new();
    let mut emails: HashMap<String, &str> = HashMap::new();
    let mut problems = Vec::new();
    for record in records {
        let FileRecord::User(user) = record else { continue };
        if !ids.insert(&user.id) {
            problems.push(format!("the id {:?} is used twice", user.id));
        }
        if let Some(first) = emails.insert(crate::domain::email_key(&user.email), &user.id) {
            problems.push(format!(
                "users {:?} and {:?} share the email {:?}",
                first, user.id, user.email
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(5);
    let more = problems.len() - shown;
    let mut text = problems[..shown].join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    Err(TransferError::Conflict(text))
}

/// Writes `records` into the tables in one transaction, in their order. With `replace`,
/// whatever the tables held goes; without it, a non-empty database is refused.
/// `progress` hears how many records are written so far.
///
/// # Errors
/// [`TransferError`]; nothing is changed then.
pub async fn import(
    client: &mut Client,
    records: &[FileRecord],
    replace: bool,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<(), TransferError> {
    check_unique(records)?;
    let transaction = client.transaction().await?;
    // Replicas read the table once at the end instead of hearing of every row.
    transaction
        .execute("SELECT set_config('roster.quiet', 'on', true)", &[])
        .await?;
    transaction
        .batch_execute("LOCK TABLE users, hidden_records IN EXCLUSIVE MODE")
        .await?;
    let counts = transaction
        .query_one(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM hidden_records)",
            &[],
        )
        .await?;
    let (users, hidden): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
    if users + hidden > 0 {
        if !replace {
            return Err(TransferError::NotEmpty { users, hidden });
        }
        transaction
            .batch_execute("DELETE FROM users; DELETE FROM hidden_records")
            .await?;
    }
    let insert_users = transaction
        .prepare(
            "INSERT INTO users (id, name, email, created_at, updated_at, position, extra) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int8[], $7::jsonb[])",
        )
        .await?;
    let insert_hidden = transaction
        .prepare(
            "INSERT INTO hidden_records (position, record) SELECT * FROM unnest($1::int8[], $2::jsonb[])",
        )
        .await?;
    let mut done = 0;
    for (chunk_at, chunk) in records.chunks(CHUNK).enumerate() {
        let mut users = UserColumns::default();
        let (mut hidden_positions, mut hidden_records) = (Vec::new(), Vec::new());
        for (offset, record) in chunk.iter().enumerate() {
            let position = (chunk_at * CHUNK + offset + 1) as i64;
            match record {
                FileRecord::User(user) => users.push(user, position),
                FileRecord::Hidden(value) => {
                    hidden_positions.push(position);
                    hidden_records.push(value.clone());
                }
            }
        }
        if !users.ids.is_empty() {
            transaction
                .execute(
                    &insert_users,
                    &[
                        &users.ids,
                        &users.names,
                        &users.emails,
                        &users.created,
                        &users.updated,
                        &users.positions,
                        &users.extras,
                    ],
                )
                .await
                .map_err(|err| match err.as_db_error() {
                    Some(db) if db.constraint().is_some() => {
                        TransferError::Conflict(db.detail().unwrap_or(db.message()).to_owned())
                    }
                    _ => err.into(),
                })?;
        }
        if !hidden_positions.is_empty() {
            transaction
                .execute(&insert_hidden, &[&hidden_positions, &hidden_records])
                .await?;
        }
        done += chunk.len();
        progress(done);
    }
    // New users are listed after every imported record.
    transaction
        .execute(
            "SELECT setval('roster_position_seq', greatest($1::int8, 1), $1::int8 > 0)",
            &[&(records.len() as i64)],
        )
        .await?;
    let resync = serde_json::json!({ "op": "R" }).to_string();
    transaction
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &resync])
        .await?;
    transaction.commit().await?;
    Ok(())
}

#[derive(Default)]
struct UserColumns {
    ids: Vec<String>,
    names: Vec<String>,
    emails: Vec<String>,
    created: Vec<Option<DateTime<Utc>>>,
    updated: Vec<Option<DateTime<Utc>>>,
    positions: Vec<i64>,
    extras: Vec<Value>,
}

impl UserColumns {
    fn push(&mut self, user: &FileUser, position: i64) {
        self.ids.push(user.id.clone());
        self.names.push(user.name.clone());
        self.emails.push(user.email.clone());
        self.created.push(user.created_at);
        self.updated.push(user.updated_at);
        self.positions.push(position);
        self.extras.push(Value::Object(user.extra.clone()));
    }
}

/// Every record in list order, as one consistent read.
///
/// # Errors
/// [`TransferError::Database`].
pub async fn export(client: &mut Client) -> Result<Vec<FileRecord>, TransferError> {
    let transaction = super::consistent_read(client).await?;
    let users = transaction
        .query(
            "SELECT position, id, name, email, created_at, updated_at, extra FROM users ORDER BY position, id",
            &[],
        )
        .await?;
    let hidden = transaction
        .query(
            "SELECT position, record FROM hidden_records ORDER BY position",
            &[],
        )
        .await?;
    transaction.commit().await?;
    let mut records: Vec<(i64, FileRecord)> = Vec::with_capacity(users.len() + hidden.len());
    for row in &users {
        let extra = match row.try_get::<_, Value>(6)? {
            Value::Object(map) => map,
            // Someone stored another kind of value: keep it rather than drop it.
            other => Map::from_iter([("extra".to_owned(), other)]),
        };
        records.push((
            row.try_get(0)?,
            FileRecord::User(FileUser {
                id: row.try_get(1)?,
                name: row.try_get(2)?,
                email: row.try_get(3)?,
                created_at: row.try_get(4)?,
                updated_at: row.try_get(5)?,
                extra,
            }),
        ));
    }
    for row in &hidden {
        records.push((row.try_get(0)?, FileRecord::Hidden(row.try_get(1)?)));
    }
    // A stable sort keeps users before a hidden record that shares their position.
    records.sort_by_key(|(position, _)| *position);
    Ok(records.into_iter().map(|(_, record)| record).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str) -> FileRecord {
        FileRecord::User(FileUser {
            id: id.into(),
            name: id.into(),
            email: email.into(),
            created_at: None,
            updated_at: None,
            extra: Map::new(),
        })
    }

    #[test]
    fn a_list_with_a_repeated_id_or_email_is_refused_naming_them() {
        assert!(
            check_unique(&[
                user("a", "a@x"),
                FileRecord::Hidden(Value::Null),
                user("b", "b@x")
            ])
            .is_ok()
        );
        let err = check_unique(&[user("a", "a@x"), user("b", " A@X "), user("a", "c@x")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(r#"users "a" and "b" share the email " A@X ""#),
            "{text}"
        );
        assert!(text.contains(r#"the id "a" is used twice"#), "{text}");
    }
}
