//! The outer ring: everything that talks to the world, in two halves the file tree shows.
//!
//! - [`inbound`] (driving): what calls the use cases: GraphQL over HTTP, the console page,
//!   and the command line's one-shot commands.
//! - [`outbound`] (driven): what the use cases call through the ports: the JSON file store
//!   (with its watcher), the PostgreSQL store, the cache in front of either, the system
//!   clock and ids.
//!
//! Outbound adapters never name inbound ones; the HTTP, GraphQL and console adapters never
//! name outbound ones (they reach storage through the use cases). The composition roots
//! (`bootstrap` for the service, [`inbound::cli`] for a one-shot command) are the only code
//! that names both; `tests/api/architecture.rs` checks it.

pub mod inbound;
pub mod outbound;
