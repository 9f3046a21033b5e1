//! Wire types: the `User` object, inputs and payloads (docs/src/graphql.md), with `From`
//! conversions from the domain so resolvers stay one line per case.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::answer_budget::charge_text;

use crate::domain::pagination::{Cursor, Direction, OrderField, Page, UserOrder};
use crate::domain::{
    BulkFailure, BulkFailureReason, BulkMode, BulkReport, User, UserEvent, UserEventKind, timestamp_text,
};

/// A user as clients see it. Its id, name and email, when longer than ordinary, are charged
/// to the answer's share of the answer budget (`answer_budget`) before they are copied.
pub struct UserObject(pub Arc<User>);

/// A person on the list: an id, a name and a unique email.
#[Object(name = "User")]
impl UserObject {
    /// The user's id: a UUID for users made here, or whatever id the file gives.
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        Ok(ID(charge_text(ctx, self.0.id().as_str())?.to_owned()))
    }
    /// The name, trimmed; never empty.
    async fn name(&self, ctx: &Context<'_>) -> Result<&str> {
        charge_text(ctx, self.0.name())
    }
    /// The email address as given (trimmed); unique among users, ignoring case.
    async fn email(&self, ctx: &Context<'_>) -> Result<&str> {
        charge_text(ctx, self.0.email())
    }
    /// When the user was created: RFC 3339 in UTC, or null when the file has no time.
    async fn created_at(&self) -> Option<String> {
        self.0.created_at().map(timestamp_text)
    }
    /// When the user last changed: RFC 3339 in UTC, or null when the file has no time.
    async fn updated_at(&self) -> Option<String> {
        self.0.updated_at().map(timestamp_text)
    }
}

/// A user's fields as a client sends them. `id` is ignored by `createUser` and required
/// by `updateUser`.
#[derive(InputObject)]
pub struct UserInput {
    /// The user to update; ignored when creating (ids are made here).
    pub id: Option<ID>,
    /// Trimmed; 1 to 200 characters.
    pub name: String,
    /// Trimmed; at most 254 characters, no spaces, one `@` between a local part and a domain.
    pub email: String,
}

/// One item of `bulkUpdateEmails`.
#[derive(InputObject)]
pub struct EmailUpdateInput {
    /// The user whose email changes.
    pub id: ID,
    /// The new address.
    pub email: String,
}

/// The answer to `createUser`.
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    /// True when the user was created.
    pub ok: bool,
    /// `User created.`, or why not: `Email exists.`, `Invalid name: …`, `Invalid email: …`.
    pub message: String,
    /// The created user; null when `ok` is false.
    pub user: Option<UserObject>,
}

/// The answer to `updateUser`.
#[derive(SimpleObject)]
pub struct UpdateUserPayload {
    /// True when the user was updated.
    pub ok: bool,
    /// `User updated.`, or why not: `Not found.`, `Email in use.`, `Invalid name: …`,
    /// `Invalid email: …`.
    pub message: String,
    /// The updated user; null when `ok` is false.
    pub user: Option<UserObject>,
}

/// The answer to `deleteUser`.
#[derive(SimpleObject)]
pub struct DeleteUserPayload {
    /// True when the user was deleted.
    pub ok: bool,
    /// `Deleted <name>`, or `Not found.`.
    pub message: String,
    /// The deleted user as it was; null when `ok` is false.
    pub user: Option<UserObject>,
}

/// The answer to `bulkUpdateEmails`.
#[derive(SimpleObject)]
pub struct BulkUpdateEmailsPayload {
    /// True when at least one item applied (or would, in a dry run), even if others failed;
    /// false when nothing applied: every item failed, or an atomic batch had a failure (the
    /// message then counts the failures by cause). An empty list is ok.
    pub ok: bool,
    /// How many users were updated (or would be, in a dry run), each counted once however
    /// many items name it; a user already having the address asked for counts.
    pub updated_count: i32,
    /// One line per item that was not applied: `<id> not found`, `<id> email in use`,
    /// `<id> invalid email`.
    pub failed: Vec<String>,
    /// A one-line summary.
    pub message: String,
    /// The items not applied, with a code each.
    pub failures: Vec<BulkFailureObject>,
    /// True when nothing was written because the request asked for a dry run.
    pub dry_run: bool,
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

impl BulkUpdateEmailsPayload {
    /// The payload for a processed batch of `items` items; its `ok`, count and summary are
    /// `messages::bulk_update_emails`'.
    pub fn new(report: &BulkReport, mode: BulkMode, items: usize) -> Self {
        let (ok, applied, message) = super::messages::bulk_update_emails(report, mode, items);
        Self {
            ok,
            updated_count: i32::try_from(applied).unwrap_or(i32::MAX),
            failed: report.failures.iter().map(ToString::to_string).collect(),
            message,
            failures: report.failures.iter().map(BulkFailureObject::from).collect(),
            dry_run: mode.dry_run,
        }
    }
}

/// The kind of a user event.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "UserEventKind")]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

impl From<EventKind> for UserEventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Created => Self::Created,
            EventKind::Updated => Self::Updated,
            EventKind::Deleted => Self::Deleted,
        }
    }
}

impl From<UserEventKind> for EventKind {
    fn from(kind: UserEventKind) -> Self {
        match kind {
            UserEventKind::Created => Self::Created,
            UserEventKind::Updated => Self::Updated,
            UserEventKind::Deleted => Self::Deleted,
        }
    }
}

/// A user event as clients see it.
pub struct UserEventObject(pub UserEvent);

/// A user created, updated or deleted, by this service, another process or a person
/// editing the file.
#[Object(name = "UserEvent")]
impl UserEventObject {
    /// What happened to the user.
    async fn kind(&self) -> EventKind {
        self.0.kind.into()
    }
    /// The user after the change (before it, for a deletion).
    async fn user(&self) -> UserObject {
        UserObject(Arc::clone(&self.0.user))
    }
    /// When the change was seen: RFC 3339 in UTC.
    async fn at(&self) -> String {
        timestamp_text(self.0.at)
    }
    /// The store's revision the change made (decimal digits; give it as `after` to pick up
    /// from here); "0" for a change the store could not record in its history.
    async fn revision(&self) -> String {
        self.0.revision.to_string()
    }
}

/// What `users` can be ordered by; ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOrderField {
    Name,
    Email,
    CreatedAt,
    UpdatedAt,
}

/// Ascending or descending.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

/// An order for `users`.
#[derive(InputObject)]
pub struct UserOrderInput {
    /// What to sort by.
    pub field: UserOrderField,
    /// Which way; ascending unless given.
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl From<UserOrderInput> for UserOrder {
    fn from(input: UserOrderInput) -> Self {
        Self {
            field: match input.field {
                UserOrderField::Name => OrderField::Name,
                UserOrderField::Email => OrderField::Email,
                UserOrderField::CreatedAt => OrderField::CreatedAt,
                UserOrderField::UpdatedAt => OrderField::UpdatedAt,
            },
            direction: match input.direction {
                OrderDirection::Asc => Direction::Asc,
                OrderDirection::Desc => Direction::Desc,
            },
        }
    }
}

/// A page of users (a Relay connection).
#[derive(SimpleObject)]
pub struct UserConnection {
    /// The page's users, each with its cursor.
    pub edges: Vec<UserEdge>,
    /// The page's users without cursors, in the same order as `edges`.
    pub nodes: Vec<UserObject>,
    /// Where the page sits, and the cursors to move on from it.
    pub page_info: PageInfo,
    /// How many users match the filters, over all pages.
    pub total_count: i32,
}

/// One user of a page and the cursor that points at it.
#[derive(SimpleObject)]
pub struct UserEdge {
    /// Give it as `after` (or `before`) to page on from this user.
    pub cursor: String,
    pub node: UserObject,
}

/// Where a page sits in the whole ordered list.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More users follow this page in this order.
    pub has_next_page: bool,
    /// Users come before this page in this order.
    pub has_previous_page: bool,
    /// The first user's cursor; null for an empty page.
    pub start_cursor: Option<String>,
    /// The last user's cursor; null for an empty page.
    pub end_cursor: Option<String>,
}

impl UserConnection {
    /// The connection for `page`, its cursors written for `order`, the order it was cut in.
    pub fn new(page: Page, order: UserOrder) -> Self {
        let text = |cursor: &Cursor| super::page::cursor_text(order, cursor);
        let start_cursor = page.edges.first().map(|(cursor, _)| text(cursor));
        let end_cursor = page.edges.last().map(|(cursor, _)| text(cursor));
        let nodes = page
            .edges
            .iter()
            .map(|(_, user)| UserObject(Arc::clone(user)))
            .collect();
        Self {
            nodes,
            edges: page
                .edges
                .into_iter()
                .map(|(cursor, user)| UserEdge {
                    cursor: text(&cursor),
                    node: UserObject(user),
                })
                .collect(),
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                has_previous_page: page.has_previous_page,
                start_cursor,
                end_cursor,
            },
            total_count: i32::try_from(page.total_count).unwrap_or(i32::MAX),
        }
    }
}

/// A partial update: only the fields given change.
#[derive(InputObject)]
pub struct PatchUserInput {
    /// The user to change.
    pub id: ID,
    /// The new name, or null to keep it.
    pub name: Option<String>,
    /// The new email, or null to keep it.
    pub email: Option<String>,
    /// The `updatedAt` you last read. When given and the stored value differs, nothing
    /// changes and the payload says so, with the current user.
    pub expected_updated_at: Option<String>,
}

/// The answer to `patchUser`.
#[derive(SimpleObject)]
pub struct PatchUserPayload {
    /// True when the patch was applied.
    pub ok: bool,
    /// `User updated.`, or why not (`Conflict: …`, `Not found.`, `Email in use.`, …).
    pub message: String,
    /// The user as stored after the patch, or as it is now after a conflict.
    pub user: Option<UserObject>,
}

/// Why a bulk item was not applied. The names are the error codes used elsewhere, so a
/// client can treat both alike.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkFailureCode {
    /// No user has this id.
    NotFound,
    /// Another user has this email.
    Conflict,
    /// The email is not valid.
    BadUserInput,
}

/// One bulk item that was not applied.
#[derive(SimpleObject)]
#[graphql(name = "BulkFailure")]
pub struct BulkFailureObject {
    /// The item's user id.
    pub id: ID,
    /// The address the item asked for.
    pub email: String,
    /// Why it was not applied.
    pub code: BulkFailureCode,
    /// The same reason in words: `Not found.`, `Email in use.` or `Invalid email.`.
    pub message: String,
}

impl From<&BulkFailure> for BulkFailureObject {
    fn from(failure: &BulkFailure) -> Self {
        let (code, message) = match failure.reason {
            BulkFailureReason::NotFound => (BulkFailureCode::NotFound, "Not found."),
            BulkFailureReason::EmailInUse => (BulkFailureCode::Conflict, "Email in use."),
            BulkFailureReason::InvalidEmail => (BulkFailureCode::BadUserInput, "Invalid email."),
        };
        Self {
            id: ID(failure.id.as_str().to_owned()),
            email: failure.email.clone(),
            code,
            message: message.to_owned(),
        }
    }
}
