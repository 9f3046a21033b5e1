//! The GraphQL driving adapter: schema, wire types, error mapping and field logging.
//!
//! Resolvers translate between the wire and the use cases and decide nothing themselves.

mod access;
mod cost;
mod errors;
mod gate;
mod limits;
mod logging;
mod parse_cache;
mod schema;
mod types;

#[cfg(test)]
mod tests;

pub use access::{Access, AccessPolicy, NEEDS_A_TOKEN};
pub use errors::ErrorCode;
pub use limits::QueryLimits;
pub use schema::{RosterSchema, SchemaSettings, build_schema, build_schema_with, schema_sdl};
