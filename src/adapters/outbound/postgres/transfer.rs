//! The database side of `roster import` and `roster export`: a user list, with the keys
//! and records the API does not show, into the `users` and `hidden_records` tables and
//! back, in file order.
//!
//! Both directions stream through `COPY` in PostgreSQL's binary format, so a million users
//! take seconds and memory stays bounded: an import sends rows as the file side reads them
//! (the file's text is the only copy of the list held), an export hands rows on as they
//! arrive. Values the API does not model travel as JSON text, never as parsed trees, so a
//! value nested deeper than a JSON parser's recursion limit goes in and comes out verbatim.
//!
//! An import is one transaction that holds writers off, refuses a list the tables' keys
//! would refuse before writing anything, and ends with one notification that makes every
//! running replica read the table again, rather than one notification per row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::hash::{BuildHasher, RandomState};

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub use crate::adapters::outbound::users_file::raw::{FileRecord, FileUser, RecordList};

use super::describe;
use super::owner::CHANNEL;
use super::rows::readable_at;

/// Progress is reported every this many records.
const PROGRESS_STEP: usize = 1000;
/// How many exported rows travel to the writer together.
const EXPORT_BATCH: usize = 1024;

/// A list of records that can be walked more than once (to check it, then to write it).
pub trait Records: Sync {
    /// How many records the list holds.
    fn len(&self) -> usize;

    /// Whether the list is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record, in order.
    fn each(&self) -> Box<dyn Iterator<Item = FileRecord<'_>> + Send + '_>;
}

/// A users file read as text is such a list.
impl Records for RecordList<'_> {
    fn len(&self) -> usize {
        RecordList::len(self)
    }

    fn each(&self) -> Box<dyn Iterator<Item = FileRecord<'_>> + Send + '_> {
        Box::new(RecordList::each(self))
    }
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
fn check_unique(records: &dyn Records) -> Result<(), TransferError> {
    let mut check = UniqueCheck::new(records.len());
    for record in records.each() {
        if let FileRecord::User(user) = record {
            check.see(&user);
        }
    }
    check.verdict(records)
}

/// The uniqueness check, fed one user at a time as an import walks the list.
///
/// It keeps only a hash of each id and key (16 bytes a user instead of their text); only
/// when two hashes meet does [`UniqueCheck::verdict`] walk the list again, looking at the
/// users involved with the exact rule, so the problems named are exactly those of a check
/// over every user's text.
struct UniqueCheck {
    hasher: RandomState,
    ids: HashSet<u64>,
    keys: HashSet<u64>,
    repeated_ids: HashSet<u64>,
    repeated_keys: HashSet<u64>,
}

impl UniqueCheck {
    fn new(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            ids: HashSet::with_capacity(capacity),
            keys: HashSet::with_capacity(capacity),
            repeated_ids: HashSet::new(),
            repeated_keys: HashSet::new(),
        }
    }

    fn see(&mut self, user: &FileUser<'_>) {
        let id = self.hasher.hash_one(&*user.id);
        if !self.ids.insert(id) {
            self.repeated_ids.insert(id);
        }
        let key = self.hasher.hash_one(crate::domain::email_key(&user.email));
        if !self.keys.insert(key) {
            self.repeated_keys.insert(key);
        }
    }

    /// The problems of `records` (every one of which [`UniqueCheck::see`] saw), if any.
    fn verdict(self, records: &dyn Records) -> Result<(), TransferError> {
        let Self {
            hasher,
            ids,
            keys,
            repeated_ids,
            repeated_keys,
        } = self;
        drop((ids, keys));
        if repeated_ids.is_empty() && repeated_keys.is_empty() {
            return Ok(());
        }
        let suspects = records
            .each()
            .filter_map(|record| match record {
                FileRecord::User(user) => Some(user),
                FileRecord::Hidden(_) => None,
            })
            .filter(|user| {
                repeated_ids.contains(&hasher.hash_one(&*user.id))
                    || repeated_keys.contains(&hasher.hash_one(crate::domain::email_key(&user.email)))
            });
        let mut seen_ids: HashSet<Cow<'_, str>> = HashSet::new();
        let mut emails: HashMap<String, Cow<'_, str>> = HashMap::new();
        let mut problems = Vec::new();
        for user in suspects {
            if !seen_ids.insert(user.id.clone()) {
                problems.push(format!("the id {:?} is used twice", user.id));
            }
            if let Some(first) = emails.insert(crate::domain::email_key(&user.email), user.id.clone()) {
                problems.push(format!(
                    "users {:?} and {:?} share the email {:?}",
                    first, user.id, user.email
                ));
            }
        }
        if problems.is_empty() {
            // Only hashes met.
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
}

/// JSON text sent to a `jsonb` column as it is (binary `jsonb` is a version byte, then the
/// text): never parsed here, so any depth goes through.
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// The `extra` column of `user`: an object of its unknown keys, their values as written.
fn extra_text(user: &FileUser<'_>) -> Cow<'static, str> {
    if user.extra.is_empty() {
        return Cow::Borrowed("{}");
    }
    let mut text = String::from("{");
    for (at, (key, value)) in user.extra.iter().enumerate() {
        if at > 0 {
            text.push(',');
        }
        // Writing a string to a String cannot fail.
        text.push_str(&serde_json::to_string(key).unwrap_or_default());
        text.push(':');
        text.push_str(value.get());
    }
    text.push('}');
    Cow::Owned(text)
}

/// A failed `COPY` or index build: a key the tables refuse is the file's problem, named as
/// the uniqueness check names it when the check sees it too; anything else the database's.
fn copy_failed(err: tokio_postgres::Error, records: &dyn Records) -> TransferError {
    match err.as_db_error() {
        Some(db) if db.constraint().is_some() => match check_unique(records) {
            Err(conflict) => conflict,
            Ok(()) => TransferError::Conflict(db.detail().unwrap_or(db.message()).to_owned()),
        },
        _ => err.into(),
    }
}

/// Sets aside what makes a large COPY slow, for the import to restore once every row is in:
/// Roster's row triggers, which stamp and announce each row (the column defaults stamp
/// them, one notification at the end says it all, and a row trigger keeps COPY from writing
/// rows in batches; triggers someone else added stay), and the indexes of `users`, its keys
/// included (building an index from the copied rows is several times faster than keeping it
/// up to date row by row). Answers the statements that restore them, exactly as they were;
/// none when something cannot be set aside (an index another table's foreign key needs, a
/// role that does not own the table), and then nothing is: the import is only slower.
async fn set_aside(transaction: &mut tokio_postgres::Transaction<'_>) -> Result<Vec<String>, TransferError> {
    let indexes = transaction
        .query(
            "SELECT CASE WHEN c.oid IS NULL THEN format('DROP INDEX %s', i.indexrelid::regclass)
                         ELSE format('ALTER TABLE users DROP CONSTRAINT %I', c.conname) END,
                    CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                         ELSE format('ALTER TABLE users ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)) END
               FROM pg_index i
               LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')
              WHERE i.indrelid = 'users'::regclass",
            &[],
        )
        .await?;
    let (mut drops, mut builds): (Vec<String>, Vec<String>) = indexes
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?
        .into_iter()
        .unzip();
    drops.insert(
        0,
        "ALTER TABLE users DISABLE TRIGGER users_stamp, DISABLE TRIGGER users_notify".to_owned(),
    );
    builds.push("ALTER TABLE users ENABLE TRIGGER users_stamp, ENABLE TRIGGER users_notify".to_owned());
    let attempt = transaction.transaction().await?;
    match attempt.batch_execute(&drops.join("; ")).await {
        Ok(()) => {
            attempt.commit().await?;
            Ok(builds)
        }
        Err(err) => {
            tracing::info!(error = %describe(&err), "the users' indexes and triggers stay during the import");
            attempt.rollback().await?;
            Ok(Vec::new())
        }
    }
}

/// Writes `records` into the tables in one transaction, in their order. With `replace`,
/// whatever the tables held goes; without it, a non-empty database is refused.
/// `progress` hears how many records are written so far. Answers how many users and
/// hidden records it wrote.
///
/// # Errors
/// [`TransferError`]; nothing is changed then.
pub async fn import(
    client: &mut Client,
    records: &dyn Records,
    replace: bool,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<(usize, usize), TransferError> {
    let mut transaction = client.transaction().await?;
    // Replicas read the table once at the end instead of hearing of every row.
    transaction
        .execute("SELECT set_config('roster.quiet', 'on', true)", &[])
        .await?;
    // Writers wait; readers too, since the indexes go (replicas serve from memory meanwhile).
    transaction
        .batch_execute(
            "LOCK TABLE users IN ACCESS EXCLUSIVE MODE; LOCK TABLE hidden_records IN EXCLUSIVE MODE",
        )
        .await?;
    let counts = transaction
        .query_one(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM hidden_records)",
            &[],
        )
        .await?;
    let (users, hidden): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
    // The users as they were, for the history to say what the import changed.
    transaction
        .batch_execute(
            "CREATE TEMPORARY TABLE roster_import_before ON COMMIT DROP AS
               SELECT u.id, roster_user_json(u) AS user_json, u.position FROM users u",
        )
        .await?;
    if users + hidden > 0 {
        if !replace {
            // A file the keys refuse is the first thing to hear about.
            check_unique(records)?;
            return Err(TransferError::NotEmpty { users, hidden });
        }
        // Not TRUNCATE: a replica's read that began before this commit must still see the
        // rows it began with.
        transaction
            .batch_execute("DELETE FROM users; DELETE FROM hidden_records")
            .await?;
    }
    let rebuild = set_aside(&mut transaction).await?;

    let sink = transaction
        .copy_in("COPY users (id, name, email, created_at, updated_at, position, extra) FROM STDIN (FORMAT binary)")
        .await?;
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::INT8,
        Type::JSONB,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    // Hidden records are rare; they wait for the users' COPY to end (a connection runs one
    // COPY at a time), as JSON text borrowed from the file.
    let mut hidden_records: Vec<(i64, &RawValue)> = Vec::new();
    // Checked as the rows go: nothing is committed unless the list passes.
    let mut check = UniqueCheck::new(records.len());
    let mut done = 0;
    for record in records.each() {
        done += 1;
        let position = done as i64;
        match &record {
            FileRecord::User(user) => {
                check.see(user);
                let extra = extra_text(user);
                writer
                    .as_mut()
                    .write(&[
                        &&*user.id,
                        &&*user.name,
                        &&*user.email,
                        &user.created_at,
                        &user.updated_at,
                        &position,
                        &JsonText(&extra),
                    ])
                    .await
                    .map_err(|err| copy_failed(err, records))?;
            }
            FileRecord::Hidden(value) => hidden_records.push((position, value)),
        }
        if done % PROGRESS_STEP == 0 {
            progress(done);
        }
    }
    writer.finish().await.map_err(|err| copy_failed(err, records))?;
    check.verdict(records)?;
    if !hidden_records.is_empty() {
        let sink = transaction
            .copy_in("COPY hidden_records (position, record) FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::JSONB]);
        let mut writer = std::pin::pin!(writer);
        for (position, value) in &hidden_records {
            writer
                .as_mut()
                .write(&[position, &JsonText(value.get())])
                .await
                .map_err(|err| copy_failed(err, records))?;
        }
        writer.finish().await.map_err(|err| copy_failed(err, records))?;
    }
    for statement in &rebuild {
        transaction
            .batch_execute(&format!("SET LOCAL maintenance_work_mem = '256MB'; {statement}"))
            .await
            .map_err(|err| copy_failed(err, records))?;
    }
    if done % PROGRESS_STEP != 0 {
        progress(done);
    }
    record_import(&transaction).await?;
    // New users are listed after every imported record.
    transaction
        .execute(
            "SELECT setval('roster_position_seq', greatest($1::int8, 1), $1::int8 > 0)",
            &[&(done as i64)],
        )
        .await?;
    let resync = serde_json::json!({ "op": "R" }).to_string();
    transaction
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &resync])
        .await?;
    transaction.commit().await?;
    Ok((done - hidden_records.len(), hidden_records.len()))
}

/// Records what the import did in the history, user by user, as the trigger (set aside
/// meanwhile) would have: creations and updates in file order, then deletions, each with
/// source IMPORT, numbered under the same lock as every change. A user the import left as
/// it was has no change.
async fn record_import(transaction: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    transaction
        .batch_execute(
            "SELECT pg_advisory_xact_lock(5940093377280361320);
             INSERT INTO user_changes (kind, user_id, before, after, source)
               SELECT CASE WHEN b.id IS NULL THEN 'created' ELSE 'updated' END, u.id, b.user_json,
                      roster_user_json(u), '{\"kind\":\"import\"}'::jsonb
                 FROM users u LEFT JOIN roster_import_before b ON b.id = u.id
                WHERE b.id IS NULL OR b.user_json IS DISTINCT FROM roster_user_json(u)
                ORDER BY u.position;
             INSERT INTO user_changes (kind, user_id, before, after, source)
               SELECT 'deleted', b.id, b.user_json, NULL, '{\"kind\":\"import\"}'::jsonb
                 FROM roster_import_before b
                WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = b.id)
                ORDER BY b.position",
        )
        .await
}

/// One record as export reads it.
pub enum ExportedRecord {
    /// A row of `users`, read with [`ExportedUser::of`].
    User(BinaryCopyOutRow),
    /// A hidden record's JSON text.
    Hidden(String),
}

/// A user as export writes it, borrowed from the row the database sent.
pub struct ExportedUser<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The `extra` column's JSON text.
    pub extra: &'a str,
}

/// The columns of an exported user, in the order [`ExportedUser::of`] reads them.
const EXPORTED_USER: &str = concat!(
    "SELECT position, id, name, email, ",
    readable_at!("created_at"),
    ", ",
    readable_at!("updated_at"),
    ", extra::text FROM users ORDER BY position, id"
);

const EXPORTED_TYPES: [Type; 7] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
];

impl<'a> ExportedUser<'a> {
    /// Reads a row of the users' `COPY`.
    ///
    /// # Errors
    /// The driver's error when a column does not have the expected type.
    pub fn of(row: &'a BinaryCopyOutRow) -> Result<Self, TransferError> {
        let read = || -> Result<Self, tokio_postgres::Error> {
            Ok(Self {
                id: row.try_get(1)?,
                name: row.try_get(2)?,
                email: row.try_get(3)?,
                created_at: row.try_get(4)?,
                updated_at: row.try_get(5)?,
                extra: row.try_get(6)?,
            })
        };
        read().map_err(Into::into)
    }
}

/// Hands every record, in list order and as one consistent read, to `records` in batches,
/// then an empty batch to say the list is complete; `progress(done, total)` hears of each
/// batch handed on. Ends early, without the empty batch, when the receiving side is gone.
///
/// # Errors
/// [`TransferError::Database`]; the empty batch is not sent then.
pub async fn export(
    client: &mut Client,
    progress: &mut (dyn FnMut(usize, usize) + Send),
    records: mpsc::Sender<Vec<ExportedRecord>>,
) -> Result<(), TransferError> {
    let transaction = super::consistent_read(client).await?;
    let users: i64 = transaction
        .query_one("SELECT count(*) FROM users", &[])
        .await?
        .try_get(0)?;
    // Hidden records are rare; they are merged in by position as the users stream past.
    let mut hidden = std::collections::VecDeque::new();
    for row in transaction
        .query(
            "SELECT position, record::text FROM hidden_records ORDER BY position",
            &[],
        )
        .await?
    {
        hidden.push_back((row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?));
    }
    let total = usize::try_from(users).unwrap_or(0) + hidden.len();
    let stream = transaction
        .copy_out(&format!("COPY ({EXPORTED_USER}) TO STDOUT (FORMAT binary)"))
        .await?;
    let rows = BinaryCopyOutStream::new(stream, &EXPORTED_TYPES);
    let mut rows = std::pin::pin!(rows);
    let mut done = 0;
    let mut batch = Vec::with_capacity(EXPORT_BATCH);
    loop {
        let row = rows.next().await.transpose()?;
        let position = match &row {
            Some(row) => row.try_get::<i64>(0)?,
            None => i64::MAX,
        };
        // A user comes before a hidden record that shares its position.
        while hidden
            .front()
            .is_some_and(|(at, _)| *at < position || row.is_none())
        {
            if let Some((_, record)) = hidden.pop_front() {
                batch.push(ExportedRecord::Hidden(record));
            }
        }
        let last = row.is_none();
        if let Some(row) = row {
            batch.push(ExportedRecord::User(row));
        }
        if batch.len() >= EXPORT_BATCH || (last && !batch.is_empty()) {
            let before = done;
            done += batch.len();
            let full = std::mem::replace(&mut batch, Vec::with_capacity(EXPORT_BATCH));
            if records.send(full).await.is_err() {
                return Ok(());
            }
            for step in before / PROGRESS_STEP + 1..=done / PROGRESS_STEP {
                progress(step * PROGRESS_STEP, total);
            }
            if last && done % PROGRESS_STEP != 0 {
                progress(done, total);
            }
        }
        if last {
            break;
        }
    }
    transaction.commit().await?;
    let _ = records.send(Vec::new()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct List<'a>(Vec<FileRecord<'a>>);

    impl Records for List<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn each(&self) -> Box<dyn Iterator<Item = FileRecord<'_>> + Send + '_> {
            Box::new(self.0.iter().cloned())
        }
    }

    fn user<'a>(id: &'a str, email: &'a str) -> FileRecord<'a> {
        FileRecord::User(FileUser {
            id: id.into(),
            name: id.into(),
            email: email.into(),
            created_at: None,
            updated_at: None,
            extra: Vec::new(),
        })
    }

    #[test]
    fn a_list_with_a_repeated_id_or_email_is_refused_naming_them() {
        let null = RawValue::from_string("null".into()).unwrap();
        assert!(
            check_unique(&List(vec![
                user("a", "a@x"),
                FileRecord::Hidden(&null),
                user("b", "b@x")
            ]))
            .is_ok()
        );
        let err = check_unique(&List(vec![
            user("a", "a@x"),
            user("x", "x@x"),
            user("b", " A@X "),
            user("a", "c@x"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(r#"users "a" and "b" share the email " A@X ""#),
            "{text}"
        );
        assert!(text.contains(r#"the id "a" is used twice"#), "{text}");
        assert!(!text.contains("x@x"), "{text}");
    }

    #[test]
    fn more_than_five_problems_are_counted_not_listed() {
        let ids: Vec<String> = (0..8).map(|n| format!("u{n}")).collect();
        let records = ids.iter().map(|id| user(id, "same@x")).collect();
        let text = check_unique(&List(records)).unwrap_err().to_string();
        assert!(text.ends_with("; and 2 more"), "{text}");
    }

    #[test]
    fn unknown_keys_go_to_the_database_as_their_json_text() {
        let deep = RawValue::from_string(format!("{}1{}", "[".repeat(300), "]".repeat(300))).unwrap();
        let role = RawValue::from_string("\"admin\"".into()).unwrap();
        let FileRecord::User(mut ann) = user("a", "a@x") else {
            unreachable!()
        };
        assert_eq!(extra_text(&ann), "{}");
        ann.extra = vec![("role \"x\"".into(), &role), ("deep".into(), &deep)];
        let text = extra_text(&ann);
        assert!(text.starts_with(r#"{"role \"x\"":"admin","deep":[[["#), "{text}");
        assert!(text.ends_with("]]]}"));
    }
}
