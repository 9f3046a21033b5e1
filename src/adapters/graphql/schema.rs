//! The schema (SPEC §3) and its resolvers.

use async_graphql::{Context, EmptySubscription, ID, Object, Result, Schema};

use super::errors::{self, ErrorCode};
use super::logging::FieldLogger;
use super::parse_cache::ParseCache;
use super::types::{
    BulkUpdateEmailsPayload, CreateUserPayload, DeleteUserPayload, EmailUpdateInput, UpdateUserPayload,
    UserInput, UserObject,
};
use crate::app::{
    AppServices, CreateUser, CreateUserError, DeleteUser, DeleteUserError, EmailChange, ListUsersError,
    NewUser, UpdateUser, UpdateUserError, UserQuery, UserUpdate,
};

/// How deeply a query may nest (SPEC §2).
pub const MAX_DEPTH: usize = 20;
/// How many fields a query may select in all. The standard introspection query needs a
/// few hundred; ordinary queries far fewer.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The executable schema.
pub type RosterSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema over the use cases, with the limits and the logging extension.
pub fn build_schema(services: AppServices) -> RosterSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(services)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(FieldLogger)
        .extension(ParseCache::default())
        .finish()
}

/// The schema's SDL, for `--print-schema` and the checked-in `schema.graphql`.
pub fn schema_sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}

fn services<'a>(ctx: &Context<'a>) -> Result<&'a AppServices> {
    ctx.data::<AppServices>()
}

pub struct QueryRoot;

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
            Err(ListUsersError::Storage(err)) => Err(errors::storage(&err)),
            Err(invalid) => Err(ErrorCode::BadUserInput.error(invalid.to_string())),
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
}

pub struct MutationRoot;

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
                message: CreateUser::SUCCESS.to_owned(),
                user: Some(UserObject(user)),
            }),
            Err(CreateUserError::Storage(err)) => Err(errors::storage(&err)),
            Err(refused) => Ok(CreateUserPayload::failure(refused.to_string())),
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
                message: UpdateUser::SUCCESS.to_owned(),
                user: Some(UserObject(user)),
            }),
            Err(UpdateUserError::Storage(err)) => Err(errors::storage(&err)),
            Err(refused) => Ok(UpdateUserPayload::failure(refused.to_string())),
        }
    }

    /// Removes the user with this id.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteUserPayload> {
        match services(ctx)?.delete_user.execute(&id).await {
            Ok(user) => Ok(DeleteUserPayload {
                ok: true,
                message: DeleteUser::success_message(&user),
            }),
            Err(DeleteUserError::Storage(err)) => Err(errors::storage(&err)),
            Err(refused) => Ok(DeleteUserPayload {
                ok: false,
                message: refused.to_string(),
            }),
        }
    }

    /// Changes many emails in one write, item by item in order; items that cannot be
    /// applied are listed in `failed` and do not stop the others.
    async fn bulk_update_emails(
        &self,
        ctx: &Context<'_>,
        updates: Vec<EmailUpdateInput>,
    ) -> Result<BulkUpdateEmailsPayload> {
        let changes = updates
            .into_iter()
            .map(|item| EmailChange {
                id: item.id.0,
                email: item.email,
            })
            .collect();
        let report = services(ctx)?
            .bulk_update_emails
            .execute(changes)
            .await
            .map_err(|err| errors::storage(&err))?;
        Ok(report.into())
    }
}
