//! Roster: a strict GraphQL service over a user list kept in a plain JSON file.
//!
//! The crate is a hexagon. `domain` holds users, their rules and the search algorithms;
//! `ports` the traits the application needs from the outside (storage, clock, ids); `app`
//! one use case per file, written against the ports only; `adapters` everything that talks
//! to the world: the JSON file, the cache, the file watcher, GraphQL and HTTP.
//!
//! Dependencies point inward only: adapters → app → ports → domain. `bootstrap` is the one
//! place outside `adapters` that names concrete adapters and wires them together.

pub mod adapters;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod domain;
pub mod ports;
pub mod telemetry;
