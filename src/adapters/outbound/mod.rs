//! Driven adapters: what the use cases call through the ports.
//!
//! [`json_file`] and [`postgres`] are the two stores, [`cache`] the read cache in front of
//! either, [`system`] the real clock and id generator, [`users_file`] the users file's
//! format, which the file store, `roster import`/`export` and `roster check` all read and
//! write through. One contract suite runs against every store (the integration tests'
//! `contract`).

pub mod cache;
pub mod json_file;
pub mod postgres;
pub mod system;
pub mod users_file;
