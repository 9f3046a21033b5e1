//! The GraphQL driving adapter: schema, wire types, error mapping, field logging, the
//! schema's description, request metrics, the request gate (limits, access, persisted
//! queries), what it must know of operations that came over plain HTTP, and the streams
//! that WebSocket subscribers of one request share (`shared_events`).
//!
//! Resolvers translate between the wire and the use cases and decide nothing themselves.

mod access;
mod answer_budget;
mod answer_cache;
mod cost;
mod description;
mod errors;
mod gate;
mod history;
mod limits;
mod logging;
pub mod messages;
mod metrics;
mod operation;
mod over_http;
mod page;
mod parse_cache;
mod persisted;
mod pipeline;
mod schema;
mod shared_events;
mod typename;
mod types;

#[cfg(test)]
mod tests;

pub use access::{Access, AccessPolicy, NEEDS_A_TOKEN};
pub use answer_budget::{
    AnswerBudgetSettings, AnswerTicket, DEFAULT_MAX_ANSWER_MIB, DEFAULT_QUEUE_TIMEOUT, RETRY_AFTER_SECONDS,
    Reservation,
};
pub use answer_cache::{AnswerCache, Attempt as AnswerAttempt};
pub use errors::ErrorCode;
pub use limits::QueryLimits;
pub use logging::{loggable, noting_fields};
pub use metrics::{MAX_OPERATION_LABELS, OPERATION_LABEL_IDLE, describe as describe_metrics};
pub use over_http::{Batch, OverHttp, SocketUrl};
pub use schema::{RosterSchema, SchemaSettings, build_schema, build_schema_with, schema_sdl};
pub use shared_events::{Delivery, ShareKey, ShareTicket, SharedEvents, SocketShares};
