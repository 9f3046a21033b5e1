//! The schema's own description: what Roster's API is, for GraphiQL's documentation pane,
//! code generators and anyone reading `schema.graphql`.
//!
//! async-graphql 7 answers `__schema { description }` with a fixed sentence about GraphQL
//! schemas in general and offers no way to set it, so this extension answers that one
//! field with ours; `schema_sdl` puts the same text above the SDL's `schema` block.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ServerResult, Value};

/// The schema's description.
pub const DESCRIPTION: &str = "Roster: a user list kept in a plain JSON file, served over GraphQL.

Read users with `allUsers` (file order, search and typo-tolerant fuzzy matching), `users` \
(cursor pages in any order), `userById` and `userByEmail`. Change them with `createUser`, \
`updateUser`, `patchUser`, `deleteUser` and `bulkUpdateEmails`: every change is written \
durably before it is answered, and a refusal (a taken email, an unknown id, an invalid \
name) is a payload with `ok: false` and a message, not an error. Follow every change, \
whoever made it, with the `userEvents` subscription over the WebSocket at `/graphql`.

Every error carries a machine-readable `extensions.code` (BAD_USER_INPUT for a request \
that is not valid). Timestamps are RFC 3339 strings in UTC with microseconds.";

/// Installs [`SchemaDescription`] on every request.
pub struct SchemaDescription;

impl ExtensionFactory for SchemaDescription {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SchemaDescription)
    }
}

#[async_trait::async_trait]
impl Extension for SchemaDescription {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.parent_type == "__Schema" && info.name == "description" {
            return Ok(Some(Value::String(DESCRIPTION.to_owned())));
        }
        next.run(ctx, info).await
    }
}
