//! The GraphQL driving adapter: schema, wire types, error mapping, field logging, the
//! schema's description and request metrics.
//!
//! Resolvers translate between the wire and the use cases and decide nothing themselves.

mod description;
mod errors;
mod logging;
mod metrics;
mod parse_cache;
mod schema;
mod types;

#[cfg(test)]
mod tests;

pub use errors::ErrorCode;
pub use metrics::{MAX_OPERATION_LABELS, describe as describe_metrics};
pub use schema::{MAX_COMPLEXITY, MAX_DEPTH, RosterSchema, build_schema, schema_sdl};
