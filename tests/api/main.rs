//! Integration tests: the real service over real HTTP, each with its own temp folder.

mod allocator;
mod architecture;
mod behaviour;
mod browser;
mod check;
mod clients;
mod contract;
mod conventions;
mod durability;
mod file_store;
mod graphql_over_http;
mod helpers;
mod hostile;
mod http;
mod live_events;
mod logging;
mod metrics;
mod postgres_hostile;
mod postgres_outage;
mod postgres_replicas;
mod postgres_transfer;
mod reference;
mod request_ids;
mod security;
mod seed;
mod storage;
