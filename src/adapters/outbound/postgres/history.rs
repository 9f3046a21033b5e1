//! The database store's change history: the `user_changes` table the notify trigger
//! writes in the same transaction as each change (see `sql/0005_user_changes.sql`).
//!
//! The store's own writes name their source first (`roster.source`, a JSON object of the
//! change's kind, request id and credential); a change made any other way (psql) is
//! recorded as source SQL.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_postgres::Row;

use super::{PostgresUserRepository, describe};
use crate::domain::history::Retention;
use crate::domain::{Change, ChangeOutcome};
use crate::domain::{ChangeKind, ChangeSource, Credential, User, UserChange, UserId};
use crate::ports::{ChangeJournal, RepositoryError, UserRepository};

/// `roster.source` for a change made by `source`.
pub(super) fn source_setting(source: &ChangeSource) -> String {
    let credential = |credential: Credential| match credential {
        Credential::Write => "write",
        Credential::Read => "read",
        Credential::None => "none",
    };
    let (kind, request_id, credential) = match source {
        ChangeSource::Api {
            request_id,
            credential: c,
        } => ("api", request_id.clone(), Some(credential(*c))),
        ChangeSource::Restore {
            request_id,
            credential: c,
        } => ("restore", request_id.clone(), Some(credential(*c))),
        ChangeSource::FileEdit => ("file_edit", None, None),
        ChangeSource::Sql => ("sql", None, None),
        ChangeSource::Import => ("import", None, None),
    };
    json!({ "kind": kind, "requestId": request_id, "credential": credential }).to_string()
}

/// Names the source of the writes that follow on this connection (every write of the
/// store sets it first, so one never inherits another's).
pub(super) async fn name_source(
    client: &deadpool_postgres::Client,
    source: &ChangeSource,
) -> Result<(), tokio_postgres::Error> {
    let statement = client
        .prepare_cached("SELECT set_config('roster.source', $1, false)")
        .await?;
    client.execute(&statement, &[&source_setting(source)]).await?;
    Ok(())
}

fn parse_source(value: &Value) -> ChangeSource {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let request_id = text("requestId").map(str::to_owned);
    let credential = match text("credential") {
        Some("write") => Credential::Write,
        Some("read") => Credential::Read,
        _ => Credential::None,
    };
    match text("kind") {
        Some("api") => ChangeSource::Api {
            request_id,
            credential,
        },
        Some("restore") => ChangeSource::Restore {
            request_id,
            credential,
        },
        Some("file_edit") => ChangeSource::FileEdit,
        Some("import") => ChangeSource::Import,
        _ => ChangeSource::Sql,
    }
}

fn parse_user(value: Option<Value>) -> Option<Arc<User>> {
    let value = value.filter(|value| value.is_object())?;
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let time = |key: &str| {
        text(key)
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    };
    Some(Arc::new(User::restore(
        UserId::new(text("id")?),
        text("name").unwrap_or_default().to_owned(),
        text("email").unwrap_or_default().to_owned(),
        time("createdAt"),
        time("updatedAt"),
    )))
}

fn change_of(row: &Row) -> Result<UserChange, tokio_postgres::Error> {
    let revision: i64 = row.try_get("revision")?;
    let kind = match row.try_get::<_, &str>("kind")? {
        "created" => ChangeKind::Created,
        "updated" => ChangeKind::Updated,
        "deleted" => ChangeKind::Deleted,
        _ => ChangeKind::Purged,
    };
    let source: Value = row.try_get("source")?;
    Ok(UserChange {
        revision: u64::try_from(revision).unwrap_or_default(),
        at: row.try_get("at")?,
        kind,
        user_id: UserId::new(row.try_get::<_, String>("user_id")?),
        before: parse_user(row.try_get("before")?),
        after: parse_user(row.try_get("after")?),
        source: parse_source(&source),
    })
}

const COLUMNS: &str = "revision, at, kind, user_id, before, after, source";

/// How many changes one compaction statement drops at most, so it never holds many locks
/// or runs long.
const COMPACT_BATCH: i64 = 10_000;

/// Drops the oldest changes while they are older than `keep`, a batch per statement (the
/// first change younger than that ends it, so the history never has holes); answers how
/// many went. The revision sequence is untouched: numbers are never used again.
///
/// # Errors
/// The driver's error.
pub(super) async fn compact(
    client: &deadpool_postgres::Client,
    keep: std::time::Duration,
) -> Result<u64, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "WITH head AS (SELECT revision, at FROM user_changes ORDER BY revision LIMIT $2),
                  young AS (SELECT min(revision) AS revision FROM head
                             WHERE at >= clock_timestamp() - make_interval(secs => $1))
             DELETE FROM user_changes WHERE revision IN (
               SELECT revision FROM head
                WHERE revision < coalesce((SELECT revision FROM young), 9223372036854775807))",
        )
        .await?;
    let mut dropped = 0;
    loop {
        let went = client
            .execute(&statement, &[&keep.as_secs_f64(), &COMPACT_BATCH])
            .await?;
        dropped += went;
        if went < COMPACT_BATCH as u64 {
            return Ok(dropped);
        }
    }
}

/// Compacts the history at `location` now and then every `retention.every`, for as long
/// as the task runs.
pub(super) async fn compact_every(pool: deadpool_postgres::Pool, location: String, retention: Retention) {
    loop {
        let done = match pool.get().await {
            Ok(client) => compact(&client, retention.keep)
                .await
                .map_err(|err| describe(&err)),
            Err(err) => Err(describe(&err)),
        };
        match done {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "compacted the history"),
            Err(err) => {
                tracing::warn!(database = %location, error = %err, "cannot compact the history; trying again later")
            }
        }
        tokio::time::sleep(retention.every).await;
    }
}

fn as_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl PostgresUserRepository {
    async fn history_query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<UserChange>, RepositoryError> {
        let failed = |what: String| {
            RepositoryError::Unavailable(format!("cannot read the history at {}: {what}", self.location))
        };
        let client = self.pool.get().await.map_err(|err| failed(describe(&err)))?;
        let rows = client
            .query(sql, params)
            .await
            .map_err(|err| failed(describe(&err)))?;
        rows.iter()
            .map(change_of)
            .collect::<Result<_, _>>()
            .map_err(|err| failed(describe(&err)))
    }
}

#[async_trait]
impl ChangeJournal for PostgresUserRepository {
    async fn changes(&self, after: Option<u64>, first: usize) -> Result<Vec<UserChange>, RepositoryError> {
        let sql =
            format!("SELECT {COLUMNS} FROM user_changes WHERE revision > $1 ORDER BY revision LIMIT $2");
        self.history_query(&sql, &[&as_i64(after.unwrap_or(0)), &as_i64(first)])
            .await
    }

    async fn user_history(
        &self,
        id: &UserId,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<UserChange>, RepositoryError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM user_changes WHERE user_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT $3"
        );
        let before = before.map_or(i64::MAX, as_i64);
        self.history_query(&sql, &[&id.as_str(), &before, &as_i64(first)])
            .await
    }
    async fn purge(&self, id: &UserId) -> Result<bool, RepositoryError> {
        // The delete goes the way of every write (the replica shows it before the answer);
        // then every change of the user loses its data.
        let deleted = matches!(
            self.apply(Change::Delete { id: id.clone() }).await?,
            ChangeOutcome::Deleted(_)
        );
        let failed =
            |what: String| RepositoryError::Unavailable(format!("cannot purge at {}: {what}", self.location));
        let client = self.pool.get().await.map_err(|err| failed(describe(&err)))?;
        let erased = client
            .execute(
                "UPDATE user_changes SET kind = 'purged', before = NULL, after = NULL WHERE user_id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(|err| failed(describe(&err)))?;
        Ok(deleted || erased > 0)
    }
}
