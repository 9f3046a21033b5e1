//! What the database sends back, turned into domain values: rows of `users`, change
//! notifications, and the transaction snapshots that order them.
//!
//! Kept apart from the SQL that produces them so that the replica's bookkeeping
//! ([`super::replica`]) can be tested with plain values.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio_postgres::Row;

use crate::domain::{User, UserId};

/// `column` when a client can read it (a year from 1 to 9999 in UTC), else NULL: psql
/// accepts `infinity` and years up to 294276, which the driver cannot decode (one such row
/// would fail every full read) or the API cannot write as RFC 3339. The database refuses
/// them for new writes (see the migrations); this keeps a row that got in anyway readable.
macro_rules! readable_at {
    ($column:literal) => {
        concat!(
            "CASE WHEN ",
            $column,
            " >= '0001-01-01 00:00:00+00' AND ",
            $column,
            " < '10000-01-01 00:00:00+00' THEN ",
            $column,
            " END AS ",
            $column
        )
    };
}
pub(crate) use readable_at;

/// The columns every query that feeds the replica selects, in this order.
pub const USER_COLUMNS: &str = concat!(
    "id, name, email, ",
    readable_at!("created_at"),
    ", ",
    readable_at!("updated_at"),
    ", position, revision"
);

/// One row of `users` as the replica keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub user: Arc<User>,
    /// Where the user is listed (creation or imported file order).
    pub position: i64,
    /// Set by the database on every insert and update; higher is newer.
    pub revision: i64,
}

impl StoredRow {
    /// A row selected with [`USER_COLUMNS`] first.
    ///
    /// # Errors
    /// The driver's error when a column does not have the expected type.
    pub fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            user: Arc::new(User::restore(
                UserId::new(row.try_get::<_, String>(0)?),
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            )),
            position: row.try_get(5)?,
            revision: row.try_get(6)?,
        })
    }
}

/// One row's change, as a notification or a committed statement reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// The row as it now is.
    Upsert(StoredRow),
    /// The row is gone; `revision` is the last one it had.
    Delete { id: UserId, revision: i64 },
}

/// A change notification from the `roster_users` channel, as the trigger writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A row changed in transaction `tx`; `change` is `None` when the row did not fit in the
    /// notification and must be read by id.
    Row {
        tx: u64,
        id: UserId,
        revision: i64,
        change: Option<RowChange>,
        /// The revision the history gave the change (0 from a trigger older than the
        /// history).
        journal: u64,
    },
    /// Many rows changed at once (a `TRUNCATE`, an import): read the whole table again.
    Resync,
    /// A marker one replica sent itself, to know that every earlier change has arrived.
    Marker(String),
}

#[derive(Deserialize)]
struct Payload {
    op: String,
    #[serde(default)]
    tx: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    rev: Option<i64>,
    #[serde(default)]
    row: Option<RowPayload>,
    /// The change's revision in `user_changes`.
    #[serde(default)]
    change: Option<u64>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize)]
struct RowPayload {
    name: String,
    email: String,
    created_at: Option<String>,
    updated_at: Option<String>,
    position: i64,
}

/// Why a notification could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable change notification: {0}")]
pub struct NoticeError(String);

impl Notice {
    /// Reads a notification's payload.
    ///
    /// # Errors
    /// [`NoticeError`] when the payload is not one the trigger writes.
    pub fn parse(payload: &str) -> Result<Self, NoticeError> {
        let payload: Payload = serde_json::from_str(payload).map_err(|err| NoticeError(err.to_string()))?;
        let missing = |what: &str| NoticeError(format!("{} without {what}", payload.op));
        match payload.op.as_str() {
            "R" => return Ok(Self::Resync),
            "M" => return Ok(Self::Marker(payload.tag.clone().unwrap_or_default())),
            "I" | "U" | "D" => {}
            other => return Err(NoticeError(format!("unknown operation {other:?}"))),
        }
        let tx = payload
            .tx
            .as_deref()
            .and_then(|tx| tx.parse().ok())
            .ok_or_else(|| missing("a transaction"))?;
        let id = UserId::new(payload.id.clone().ok_or_else(|| missing("an id"))?);
        let revision = payload.rev.ok_or_else(|| missing("a revision"))?;
        let change = if payload.op == "D" {
            Some(RowChange::Delete {
                id: id.clone(),
                revision,
            })
        } else {
            payload.row.map(|row| {
                RowChange::Upsert(StoredRow {
                    user: Arc::new(User::restore(
                        id.clone(),
                        row.name,
                        row.email,
                        row.created_at.as_deref().and_then(utc),
                        row.updated_at.as_deref().and_then(utc),
                    )),
                    position: row.position,
                    revision,
                })
            })
        };
        Ok(Self::Row {
            tx,
            id,
            revision,
            change,
            journal: payload.change.unwrap_or_default(),
        })
    }
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Which transactions a snapshot sees (`pg_current_snapshot()`): every one below `xmin`,
/// and those below `xmax` that were not running (`xip`) when it was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XidSnapshot {
    xmin: u64,
    xmax: u64,
    running: HashSet<u64>,
}

impl XidSnapshot {
    /// Reads the text form `xmin:xmax:xip,xip,...`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let running = match parts.next()? {
            "" => HashSet::new(),
            list => list.split(',').map(str::parse).collect::<Result<_, _>>().ok()?,
        };
        Some(Self { xmin, xmax, running })
    }

    /// Whether transaction `tx`'s changes are part of what the snapshot saw.
    pub fn sees(&self, tx: u64) -> bool {
        tx < self.xmin || (tx < self.xmax && !self.running.contains(&tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_finished_transactions_only() {
        let snapshot = XidSnapshot::parse("10:15:11,13").unwrap();
        assert!(snapshot.sees(9));
        assert!(snapshot.sees(10));
        assert!(!snapshot.sees(11));
        assert!(snapshot.sees(12));
        assert!(!snapshot.sees(13));
        assert!(!snapshot.sees(15));
        assert!(XidSnapshot::parse("5:5:").unwrap().sees(4));
        assert!(XidSnapshot::parse("nonsense").is_none());
    }

    #[test]
    fn notices_carry_the_row_or_only_its_id() {
        let full = Notice::parse(
            r#"{"op":"I","tx":"42","id":"a","rev":7,"row":{"name":"Ann","email":"a@x.com",
                "created_at":"2024-05-01T10:00:00.123456Z","updated_at":null,"position":3}}"#,
        )
        .unwrap();
        let Notice::Row {
            tx,
            change: Some(RowChange::Upsert(row)),
            ..
        } = full
        else {
            panic!("expected an upsert, got {full:?}")
        };
        assert_eq!((tx, row.position, row.revision), (42, 3, 7));
        assert_eq!(row.user.name(), "Ann");
        assert!(row.user.created_at().is_some() && row.user.updated_at().is_none());

        let bare = Notice::parse(r#"{"op":"U","tx":"43","id":"a","rev":8,"change":12}"#).unwrap();
        assert!(matches!(
            bare,
            Notice::Row {
                change: None,
                revision: 8,
                journal: 12,
                ..
            }
        ));
        let gone = Notice::parse(r#"{"op":"D","tx":"44","id":"a","rev":8}"#).unwrap();
        assert!(matches!(
            gone,
            Notice::Row {
                change: Some(RowChange::Delete { revision: 8, .. }),
                ..
            }
        ));
        assert_eq!(Notice::parse(r#"{"op":"R","tx":"1"}"#).unwrap(), Notice::Resync);
        assert!(Notice::parse(r#"{"op":"X"}"#).is_err());
        assert!(Notice::parse("not json").is_err());
    }
}
