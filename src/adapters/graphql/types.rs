//! Wire types: the `User` object, inputs and payloads (SPEC §3), with `From` conversions
//! from the domain so resolvers stay one line per case.

use std::sync::Arc;

use async_graphql::{ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{BulkReport, User};

/// RFC 3339 in UTC with microseconds, the same form the data file holds.
fn wire_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A user as clients see it.
pub struct UserObject(pub Arc<User>);

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> ID {
        ID(self.0.id().as_str().to_owned())
    }
    async fn name(&self) -> &str {
        self.0.name()
    }
    async fn email(&self) -> &str {
        self.0.email()
    }
    /// When the user was created: RFC 3339 in UTC, or null when the file has no time.
    async fn created_at(&self) -> Option<String> {
        self.0.created_at().map(wire_time)
    }
    /// When the user last changed: RFC 3339 in UTC, or null when the file has no time.
    async fn updated_at(&self) -> Option<String> {
        self.0.updated_at().map(wire_time)
    }
}

/// A user's fields as a client sends them. `id` is ignored by `createUser` and required
/// by `updateUser`.
#[derive(InputObject)]
pub struct UserInput {
    pub id: Option<ID>,
    pub name: String,
    pub email: String,
}

/// One item of `bulkUpdateEmails`.
#[derive(InputObject)]
pub struct EmailUpdateInput {
    pub id: ID,
    pub email: String,
}

/// The answer to `createUser`.
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    pub ok: bool,
    pub message: String,
    /// The created user; null when `ok` is false.
    pub user: Option<UserObject>,
}

/// The answer to `updateUser`.
#[derive(SimpleObject)]
pub struct UpdateUserPayload {
    pub ok: bool,
    pub message: String,
    /// The updated user; null when `ok` is false.
    pub user: Option<UserObject>,
}

/// The answer to `deleteUser`.
#[derive(SimpleObject)]
pub struct DeleteUserPayload {
    pub ok: bool,
    pub message: String,
}

/// The answer to `bulkUpdateEmails`.
#[derive(SimpleObject)]
pub struct BulkUpdateEmailsPayload {
    /// True when the batch was processed, even if some items failed.
    pub ok: bool,
    /// How many items were applied.
    pub updated_count: i32,
    /// One line per item that was not applied: `<id> not found`, `<id> email in use`,
    /// `<id> invalid email`.
    pub failed: Vec<String>,
    /// A one-line summary.
    pub message: String,
}

impl CreateUserPayload {
    pub fn failure(message: String) -> Self {
        Self {
            ok: false,
            message,
            user: None,
        }
    }
}

impl UpdateUserPayload {
    pub fn failure(message: String) -> Self {
        Self {
            ok: false,
            message,
            user: None,
        }
    }
}

impl From<BulkReport> for BulkUpdateEmailsPayload {
    fn from(report: BulkReport) -> Self {
        let applied = report.applied;
        let total = applied + report.failures.len();
        Self {
            ok: true,
            updated_count: i32::try_from(applied).unwrap_or(i32::MAX),
            failed: report.failures.iter().map(ToString::to_string).collect(),
            message: format!("Updated {applied} of {total}."),
        }
    }
}
