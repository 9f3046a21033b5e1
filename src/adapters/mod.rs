//! The outer ring: everything that talks to the world.
//!
//! Driven adapters implement the ports (the JSON file, PostgreSQL, the cache in front of any store,
//! the system clock and ids); driving adapters call the use cases (GraphQL over HTTP) or
//! serve the command line (`check`, `import` and `export`, `seed`).
//! The watcher connects file-system events to the cache.

pub mod cache;
pub mod console;
pub mod file_check;
pub mod graphql;
pub mod http;
pub mod json_file;
pub mod postgres;
#[cfg(test)]
mod repository_contract;
pub mod seed;
pub mod system;
pub mod transfer;
pub mod watcher;
