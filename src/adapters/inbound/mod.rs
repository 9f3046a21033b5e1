//! Driving adapters: what calls the use cases.
//!
//! [`http`] serves the routes and the WebSocket, [`graphql`] is the schema behind them (its
//! wire types, the messages and codes clients read, the limits), [`console`] the page a
//! browser gets, and [`cli`] the command line's one-shot commands.

pub mod cli;
pub mod console;
pub mod graphql;
pub mod http;
