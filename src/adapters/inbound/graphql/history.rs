//! The history on the wire: `userHistory`, `changes`, `restoreUser`, and `userEvents` with
//! `after`. Revisions travel as strings of decimal digits (a 64-bit number does not fit
//! GraphQL's `Int`).

use std::pin::Pin;
use std::sync::Arc;

use async_graphql::futures_util::{Stream, stream};
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use super::errors::ErrorCode;
use super::messages;
use super::metrics::SubscriberGuard;
use super::types::{EventKind, PageInfo, UserEventObject, UserObject};
use crate::app::{AppServices, ChangePage, HistoryError};
use crate::domain::{ChangeKind, ChangeSource, Credential, UserChange, timestamp_text};

/// A stream of events, live or replayed first.
pub(super) type EventStream = Pin<Box<dyn Stream<Item = Result<UserEventObject>> + Send>>;

/// What a change did to its user.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "UserChangeKind")]
pub enum ChangeKindValue {
    Created,
    Updated,
    Deleted,
    /// The user's data was erased; only the fact of a change remains.
    Purged,
}

/// Who or what made a change.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChangeSourceKind")]
pub enum SourceKindValue {
    /// A client of this API.
    Api,
    /// A person or program editing the data file.
    FileEdit,
    /// A statement run on the database outside the service.
    Sql,
    /// A bulk import.
    Import,
    /// `restoreUser`.
    Restore,
}

/// The token an API change came with.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Credential")]
pub enum CredentialValue {
    Write,
    Read,
    None,
}

/// Where a change came from.
#[derive(SimpleObject)]
#[graphql(name = "ChangeSource")]
pub struct ChangeSourceObject {
    pub kind: SourceKindValue,
    /// The `X-Request-Id` of the request that made it (API and restore changes).
    pub request_id: Option<String>,
    /// The token the request presented (API and restore changes).
    pub credential: Option<CredentialValue>,
}

impl From<&ChangeSource> for ChangeSourceObject {
    fn from(source: &ChangeSource) -> Self {
        let kind = match source {
            ChangeSource::Api { .. } => SourceKindValue::Api,
            ChangeSource::FileEdit => SourceKindValue::FileEdit,
            ChangeSource::Sql => SourceKindValue::Sql,
            ChangeSource::Import => SourceKindValue::Import,
            ChangeSource::Restore { .. } => SourceKindValue::Restore,
        };
        Self {
            kind,
            request_id: source.request_id().map(str::to_owned),
            credential: source.credential().map(|credential| match credential {
                Credential::Write => CredentialValue::Write,
                Credential::Read => CredentialValue::Read,
                Credential::None => CredentialValue::None,
            }),
        }
    }
}

pub struct UserChangeObject(pub UserChange);

/// One change to one user, as the history keeps it.
#[Object(name = "UserChange")]
impl UserChangeObject {
    /// The store's revision this change made: decimal digits, growing with every change.
    async fn revision(&self) -> String {
        self.0.revision.to_string()
    }
    /// When it was made: RFC 3339 in UTC.
    async fn at(&self) -> String {
        timestamp_text(self.0.at)
    }
    async fn kind(&self) -> ChangeKindValue {
        match self.0.kind {
            ChangeKind::Created => ChangeKindValue::Created,
            ChangeKind::Updated => ChangeKindValue::Updated,
            ChangeKind::Deleted => ChangeKindValue::Deleted,
            ChangeKind::Purged => ChangeKindValue::Purged,
        }
    }
    async fn source(&self) -> ChangeSourceObject {
        ChangeSourceObject::from(&self.0.source)
    }
    /// The user's id (also for a purged user).
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.as_str().to_owned())
    }
    /// The user before the change; null for a creation and a purge.
    async fn before(&self) -> Option<UserObject> {
        self.0.before.as_ref().map(|user| UserObject(Arc::clone(user)))
    }
    /// The user after the change; null for a deletion and a purge.
    async fn after(&self) -> Option<UserObject> {
        self.0.after.as_ref().map(|user| UserObject(Arc::clone(user)))
    }
}

/// One change of a page and its cursor (its revision).
#[derive(SimpleObject)]
pub struct UserChangeEdge {
    pub cursor: String,
    pub node: UserChangeObject,
}

/// A page of changes.
#[derive(SimpleObject)]
pub struct UserChangeConnection {
    pub edges: Vec<UserChangeEdge>,
    pub nodes: Vec<UserChangeObject>,
    pub page_info: PageInfo,
}

impl UserChangeConnection {
    fn new(page: ChangePage, after: bool) -> Self {
        let cursor = |change: &UserChange| change.revision.to_string();
        Self {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                has_previous_page: after,
                start_cursor: page.changes.first().map(cursor),
                end_cursor: page.changes.last().map(cursor),
            },
            nodes: page.changes.iter().cloned().map(UserChangeObject).collect(),
            edges: page
                .changes
                .into_iter()
                .map(|change| UserChangeEdge {
                    cursor: cursor(&change),
                    node: UserChangeObject(change),
                })
                .collect(),
        }
    }
}

/// What `restoreUser` answers.
#[derive(SimpleObject)]
pub struct RestoreUserPayload {
    pub ok: bool,
    pub message: String,
    /// The user as restored.
    pub user: Option<UserObject>,
}

fn failed(err: HistoryError) -> async_graphql::Error {
    messages::history(&err)
}

/// `userHistory`: the user's changes, newest first.
pub(super) async fn user_history(
    ctx: &Context<'_>,
    id: ID,
    first: Option<i32>,
    after: Option<String>,
) -> Result<UserChangeConnection> {
    let services = ctx.data::<AppServices>()?;
    let page = services
        .history
        .read
        .user_history(&id, after.as_deref(), first)
        .await
        .map_err(failed)?;
    Ok(UserChangeConnection::new(page, after.is_some()))
}

/// `changes`: every change after a revision, oldest first.
pub(super) async fn changes(
    ctx: &Context<'_>,
    after: Option<String>,
    first: Option<i32>,
) -> Result<UserChangeConnection> {
    let services = ctx.data::<AppServices>()?;
    let page = services
        .history
        .read
        .changes(after.as_deref(), first)
        .await
        .map_err(failed)?;
    Ok(UserChangeConnection::new(page, after.is_some()))
}

/// `restoreUser`: the user as a past change left them, written as a new change.
pub(super) async fn restore_user(ctx: &Context<'_>, id: ID, revision: String) -> Result<RestoreUserPayload> {
    let services = ctx.data::<AppServices>()?;
    match services.history.restore.execute(&id, &revision).await {
        Ok(user) => Ok(RestoreUserPayload {
            ok: true,
            message: messages::USER_RESTORED.to_owned(),
            user: Some(UserObject(user)),
        }),
        Err(refused) => Ok(RestoreUserPayload {
            ok: false,
            message: messages::restore_user(&refused)?,
            user: None,
        }),
    }
}

/// What `purgeUser` answers.
#[derive(SimpleObject)]
pub struct PurgeUserPayload {
    pub ok: bool,
    pub message: String,
}

/// `purgeUser`: the user removed, and their data erased from the history.
pub(super) async fn purge_user(ctx: &Context<'_>, id: ID) -> Result<PurgeUserPayload> {
    let services = ctx.data::<AppServices>()?;
    match services.history.purge.execute(&id).await {
        Ok(()) => Ok(PurgeUserPayload {
            ok: true,
            message: messages::USER_PURGED.to_owned(),
        }),
        Err(refused) => Ok(PurgeUserPayload {
            ok: false,
            message: messages::purge_user(&refused)?,
        }),
    }
}

/// `userEvents(after:)`: every change after the revision from the history, then live.
pub(super) fn user_events_after(
    ctx: &Context<'_>,
    kinds: Option<Vec<EventKind>>,
    after: &str,
) -> Result<EventStream> {
    let kinds = kinds.map(|kinds| kinds.into_iter().map(Into::into).collect());
    let feed = ctx
        .data::<AppServices>()?
        .history
        .watch
        .execute(kinds, after)
        .map_err(failed)?;
    let open = SubscriberGuard::new();
    Ok(Box::pin(stream::unfold(Some((feed, open)), |state| async move {
        let (mut feed, open) = state?;
        match feed.next().await? {
            Ok(event) => Some((Ok(UserEventObject(event)), Some((feed, open)))),
            Err(lagged) => Some((Err(ErrorCode::SubscriptionLagged.error(lagged.to_string())), None)),
        }
    })))
}
