//! The schema (docs/src/graphql.md) and its resolvers.

use async_graphql::futures_util::stream;
use async_graphql::{Context, ID, Object, Result, Schema, Subscription};

use super::access::AccessPolicy;
use super::answer_budget::{AnswerBudget, AnswerBudgetSettings};
use super::answer_cache::AnswerCache;
use super::description::DESCRIPTION;
use super::errors;
use super::gate::Gate;
use super::history::{self, EventStream, PurgeUserPayload, RestoreUserPayload, UserChangeConnection};
use super::limits::QueryLimits;
use super::messages;
use super::metrics::{RequestMetrics, SubscriberGuard};
use super::page::page_request;
use super::parse_cache::ParseCache;
use super::persisted::PersistedQueries;
use super::pipeline::Pipeline;
use super::shared_events::{self, SharedEvents};
use super::types::{
    BulkUpdateEmailsPayload, CreateUserPayload, DeleteUserPayload, EmailUpdateInput, EventKind,
    PatchUserInput, PatchUserPayload, UpdateUserPayload, UserConnection, UserEventObject, UserInput,
    UserObject, UserOrderInput,
};
use crate::app::{
    AppServices, EmailChange, NewUser, PageFilter, PatchUserError, UserPatch, UserQuery, UserUpdate,
};
use crate::domain::BulkMode;

/// The executable schema.
pub type RosterSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What the schema enforces beyond its types: limits, tokens and the caches' budget.
#[derive(Clone, Copy, Debug)]
pub struct SchemaSettings {
    pub limits: QueryLimits,
    pub access: AccessPolicy,
    /// The most bytes each cache (parsed documents, validations, persisted queries' text,
    /// answers) may hold.
    pub cache_bytes: usize,
    /// How long an operation's metrics label is kept without the operation being seen.
    pub metrics_label_idle: std::time::Duration,
    /// The memory answers may take at once (`answer_budget`).
    pub answers: AnswerBudgetSettings,
}

impl Default for SchemaSettings {
    fn default() -> Self {
        Self {
            limits: QueryLimits::default(),
            access: AccessPolicy::default(),
            cache_bytes: super::parse_cache::DEFAULT_BUDGET_BYTES,
            metrics_label_idle: super::metrics::OPERATION_LABEL_IDLE,
            answers: AnswerBudgetSettings::default(),
        }
    }
}

/// Builds the schema over the use cases, with the default settings.
pub fn build_schema(services: AppServices) -> RosterSchema {
    build_schema_with(services, SchemaSettings::default())
}

/// Builds the schema over the use cases with these settings, under one extension
/// (`pipeline`: each extension costs every field a pass through it).
pub fn build_schema_with(services: AppServices, settings: SchemaSettings) -> RosterSchema {
    // Shared subscriptions run their request once on a schema without the pipeline: each
    // subscriber has passed it on this one (`shared_events`).
    let render = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(services.clone())
        .finish();
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(services)
        .data(SharedEvents::new(render))
        .data(AnswerCache::with_budget(settings.cache_bytes))
        .extension(Pipeline {
            gate: Gate {
                limits: settings.limits,
                access: settings.access,
                cache: ParseCache::with_budget(settings.cache_bytes),
                persisted: PersistedQueries::with_budget(settings.cache_bytes),
                answers: AnswerBudget::new(settings.answers),
            },
            metrics: RequestMetrics::with_idle(settings.metrics_label_idle),
        })
        .finish()
}

/// The schema's SDL, for `--print-schema` and the checked-in `schema.graphql`, with the
/// schema's description as `#` comments above its `schema` block: a description string
/// there is valid GraphQL, but graphql-parser (under graphql_client) refuses it, and
/// comments every parser skips. Introspection still answers the description.
pub fn schema_sdl() -> String {
    let sdl = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl();
    let comment: String = DESCRIPTION
        .lines()
        .map(|line| {
            if line.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {line}\n")
            }
        })
        .collect();
    sdl.replacen("\nschema {", &format!("\n{comment}schema {{"), 1)
}

fn services<'a>(ctx: &Context<'a>) -> Result<&'a AppServices> {
    ctx.data::<AppServices>()
}

pub struct QueryRoot;

/// Reading users.
#[Object(name = "Query")]
impl QueryRoot {
    /// Users in file order, or best fuzzy match first. `search` keeps users whose name or
    /// email contains it (any case); `fuzzy` keeps users within `maxDistance` typos of the
    /// query; both may be combined. Then `offset` users are skipped and at most `limit` kept.
    async fn all_users(
        &self,
        ctx: &Context<'_>,
        limit: Option<i32>,
        offset: Option<i32>,
        search: Option<String>,
        fuzzy: Option<String>,
        #[graphql(default = 2)] max_distance: Option<i32>,
    ) -> Result<Vec<UserObject>> {
        let query = UserQuery {
            limit,
            offset,
            search,
            fuzzy,
            max_distance,
        };
        match services(ctx)?.list_users.execute(query).await {
            Ok(users) => Ok(users.into_iter().map(UserObject).collect()),
            Err(refused) => Err(messages::list_users(&refused)),
        }
    }

    /// The user with this id, or null.
    async fn user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<UserObject>> {
        let user = services(ctx)?
            .get_user
            .execute(&id)
            .await
            .map_err(|err| errors::storage(&err))?;
        Ok(user.map(UserObject))
    }

    /// The user with this email, ignoring case and surrounding spaces, or null.
    async fn user_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<UserObject>> {
        let user = services(ctx)?
            .find_user_by_email
            .execute(&email)
            .await
            .map_err(|err| errors::storage(&err))?;
        Ok(user.map(UserObject))
    }

    /// A page of users with cursors (a Relay connection): filtered like `allUsers`, ordered
    /// by `orderBy` (default: createdAt ascending; ties by id). Cursors stay valid when other
    /// users are added or removed. Give `first` (with `after`) or `last` (with `before`),
    /// not both; each is at most 1000, and without either a page holds at most 1000 users.
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        search: Option<String>,
        fuzzy: Option<String>,
        #[graphql(default = 2)] max_distance: Option<i32>,
        order_by: Option<UserOrderInput>,
    ) -> Result<UserConnection> {
        let filter = PageFilter {
            search,
            fuzzy,
            max_distance,
        };
        let order = order_by.map(Into::into).unwrap_or_default();
        let request = page_request(first, after.as_deref(), last, before.as_deref(), order)
            .map_err(|err| messages::page_argument(&err))?;
        match services(ctx)?.page_users.execute(filter, request).await {
            Ok(page) => Ok(UserConnection::new(page, order)),
            Err(refused) => Err(messages::page_users(&refused)),
        }
    }

    /// The changes of the user with this id (also a deleted one), newest first: at most
    /// `first` (1000 at most, and without it), before the change whose revision is `after`.
    async fn user_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<UserChangeConnection> {
        history::user_history(ctx, id, first, after).await
    }

    /// Every change after revision `after` (from the oldest kept, without it), oldest
    /// first, at most `first` (1000 at most, and without it).
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<UserChangeConnection> {
        history::changes(ctx, after, first).await
    }
}

pub struct MutationRoot;

/// Changing users. Each change is durable in the file before it is answered.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Adds a user with a new id. Fails (`ok: false`) on invalid input or a taken email.
    async fn create_user(&self, ctx: &Context<'_>, user_data: UserInput) -> Result<CreateUserPayload> {
        let input = NewUser {
            name: user_data.name,
            email: user_data.email,
        };
        match services(ctx)?.create_user.execute(input).await {
            Ok(user) => Ok(CreateUserPayload {
                ok: true,
                message: messages::USER_CREATED.to_owned(),
                user: Some(UserObject(user)),
            }),
            Err(refused) => Ok(CreateUserPayload::failure(messages::create_user(&refused)?)),
        }
    }

    /// Replaces the name and email of the user with `userData.id`.
    async fn update_user(&self, ctx: &Context<'_>, user_data: UserInput) -> Result<UpdateUserPayload> {
        let input = UserUpdate {
            id: user_data.id.map(|id| id.0),
            name: user_data.name,
            email: user_data.email,
        };
        match services(ctx)?.update_user.execute(input).await {
            Ok(user) => Ok(UpdateUserPayload {
                ok: true,
                message: messages::USER_UPDATED.to_owned(),
                user: Some(UserObject(user)),
            }),
            Err(refused) => Ok(UpdateUserPayload::failure(messages::update_user(&refused)?)),
        }
    }

    /// Removes the user with this id; the payload holds the user as it was.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteUserPayload> {
        match services(ctx)?.delete_user.execute(&id).await {
            Ok(user) => Ok(DeleteUserPayload {
                ok: true,
                message: messages::user_deleted(&user),
                user: Some(UserObject(user)),
            }),
            Err(refused) => Ok(DeleteUserPayload {
                ok: false,
                message: messages::delete_user(&refused)?,
                user: None,
            }),
        }
    }

    /// Changes many emails in one write, item by item in order; items that cannot be
    /// applied are listed in `failed` and do not stop the others. Several items may name one
    /// user: they apply in order (the last applied wins) and the user is counted once in
    /// `updatedCount`. When nothing applies, `ok` is false and `message` says why.
    ///
    /// With `atomic: true` either every item applies or none does; with `dryRun: true`
    /// nothing is written and the payload says what would happen.
    async fn bulk_update_emails(
        &self,
        ctx: &Context<'_>,
        updates: Vec<EmailUpdateInput>,
        #[graphql(default = false)] atomic: bool,
        #[graphql(default = false)] dry_run: bool,
    ) -> Result<BulkUpdateEmailsPayload> {
        let mode = BulkMode { atomic, dry_run };
        let items = updates.len();
        let changes = updates
            .into_iter()
            .map(|item| EmailChange {
                id: item.id.0,
                email: item.email,
            })
            .collect();
        let report = services(ctx)?
            .bulk_update_emails
            .execute(changes, mode)
            .await
            .map_err(|err| errors::storage(&err))?;
        Ok(BulkUpdateEmailsPayload::new(&report, mode, items))
    }

    /// Changes only the fields given. With `expectedUpdatedAt`, refuses (`ok: false`, the
    /// current user included) when someone changed the user since you read it.
    async fn patch_user(&self, ctx: &Context<'_>, input: PatchUserInput) -> Result<PatchUserPayload> {
        let patch = UserPatch {
            id: input.id.0,
            name: input.name,
            email: input.email,
            expected_updated_at: input.expected_updated_at,
        };
        match services(ctx)?.patch_user.execute(patch).await {
            Ok(user) => Ok(PatchUserPayload {
                ok: true,
                message: messages::USER_UPDATED.to_owned(),
                user: Some(UserObject(user)),
            }),
            Err(refused) => {
                let message = messages::patch_user(&refused)?;
                let current = match refused {
                    PatchUserError::Conflict(current) => Some(UserObject(current)),
                    _ => None,
                };
                Ok(PatchUserPayload {
                    ok: false,
                    message,
                    user: current,
                })
            }
        }
    }

    /// Puts the user back as they were just after the change `revision` (undoing a later
    /// delete or update), as a new change. Fails (`ok: false`) when the revision is unknown
    /// or no longer kept, or the email now belongs to someone else.
    async fn restore_user(&self, ctx: &Context<'_>, id: ID, revision: String) -> Result<RestoreUserPayload> {
        history::restore_user(ctx, id, revision).await
    }

    /// Removes the user and every name and email of theirs from the stored data and the
    /// history, which keeps only each change's revision, time, id and source, as PURGED.
    async fn purge_user(&self, ctx: &Context<'_>, id: ID) -> Result<PurgeUserPayload> {
        history::purge_user(ctx, id).await
    }
}

pub struct SubscriptionRoot;

/// Following changes as they happen, over the WebSocket at `/graphql`.
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every user created, updated or deleted from now on, by this service, another
    /// process on the same file, or a person editing it; `kinds` keeps only those kinds.
    /// A subscriber that falls more than 1024 events behind gets an error
    /// (`SUBSCRIPTION_LAGGED`) and the subscription ends; writers never wait for it.
    /// With `after` (a revision), every change after it comes first, from the history,
    /// then the live ones, each once; such a subscriber that falls behind catches up from
    /// the history instead.
    async fn user_events(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<EventKind>>,
        after: Option<String>,
    ) -> Result<EventStream> {
        if let Some(after) = after {
            return history::user_events_after(ctx, kinds, &after);
        }
        let kinds: Option<Vec<crate::domain::UserEventKind>> =
            kinds.map(|kinds| kinds.into_iter().map(Into::into).collect());
        // Over a WebSocket, subscribers of the same request share one rendering of each event.
        if let Some(shared) = shared_events::user_events(ctx, kinds.as_deref())? {
            return Ok(shared);
        }
        let feed = services(ctx)?.watch_user_events.execute(kinds);
        // The guard lives in the stream's state, so the subscriber count drops with it.
        let open = SubscriberGuard::new();
        Ok(Box::pin(stream::unfold(Some((feed, open)), |state| async move {
            let (mut feed, open) = state?;
            match feed.next().await? {
                Ok(event) => Some((Ok(UserEventObject(event)), Some((feed, open)))),
                Err(lagged) => Some((Err(messages::feed(&lagged)), None)),
            }
        })))
    }
}
