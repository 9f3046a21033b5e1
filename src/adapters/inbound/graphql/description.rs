//! The schema's own description: what Roster's API is, for GraphiQL's documentation pane,
//! code generators and anyone reading `schema.graphql`.
//!
//! async-graphql 7 answers `__schema { description }` with a fixed sentence about GraphQL
//! schemas in general and offers no way to set it, so a field hook answers that one field
//! with ours ([`answer`]); `schema_sdl` puts the same text above the SDL's `schema` block.
//!
//! The hook is called from the schema's one extension (`pipeline`) rather than an extension
//! of its own: async-graphql passes every field through every extension, and one more
//! extension cost about 9% more instructions per `allUsers(limit: 10)` request.

use async_graphql::Value;
use async_graphql::extensions::ResolveInfo;

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

/// Our answer to `__schema { description }`, when `info` is that field; `None` for any
/// other field, which resolves as usual.
pub fn answer(info: &ResolveInfo<'_>) -> Option<Value> {
    (info.parent_type == "__Schema" && info.name == "description")
        .then(|| Value::String(DESCRIPTION.to_owned()))
}
